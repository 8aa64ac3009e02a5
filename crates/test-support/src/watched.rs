//! A server process the test suite starts (PostgreSQL, a Kafka broker) that must not
//! outlive the test run, however it ends.
//!
//! Cleanup does not depend on destructors: the server runs under a small `sh`
//! watchdog that reads a pipe from this process. When the pipe closes (`halt`, `Drop`
//! of the owner, or this process ending in any way, even SIGKILL, which never drops
//! statics) the watchdog stops the server with its stop signal, SIGKILL after 20 s,
//! and removes the server's folder. A line `keep` first keeps the folder, for tests
//! that restart a server on the same data.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `sh -c WATCHDOG NAME DIR SIGNAL SERVER-COMMAND...`: prints the server's pid, then
/// waits for it; a server that exits on its own ends the watchdog with its status.
/// The server's stdout and stderr go to the watchdog's stderr.
const WATCHDOG: &str = r#"
dir=$1; signal=$2; shift 2
exec 3<&0 </dev/null
"$@" 3<&- >&2 &
server=$!
( if read -r cmd <&3 && [ "$cmd" = keep ]; then :; else : >"$dir/.remove"; fi
  kill -"$signal" "$server" 2>/dev/null
  i=0
  while kill -0 "$server" 2>/dev/null && [ "$i" -lt 200 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$server" 2>/dev/null ) &
watch=$!
exec 3<&-
echo "$server"
exec >/dev/null
wait "$server"; status=$?
kill "$watch" 2>/dev/null
if [ -e "$dir/.remove" ]; then rm -rf "$dir"; fi
exit "$status"
"#;

/// A running server: its watchdog and the pipe that keeps it alive.
pub struct Watched {
    watchdog: Child,
    control: ChildStdin,
    pid: u32,
}

/// The watchdog command for a server whose folder is `dir` and which stops cleanly on
/// `stop_signal` (`TERM`, `INT`, …). Append the server's program and arguments, set its
/// environment and working directory, point stderr at its log, then [`Watched::spawn`].
pub fn command(name: &str, dir: &Path, stop_signal: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(WATCHDOG).arg(name).arg(dir).arg(stop_signal);
    command
}

impl Watched {
    pub fn spawn(mut command: Command) -> Result<Watched, String> {
        let mut watchdog = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its own process group: a Ctrl-C to the test run reaches the server only
            // through the pipe.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawn the watchdog: {e}"))?;
        let control = watchdog.stdin.take().ok_or("no watchdog stdin")?;
        let mut line = String::new();
        if let Some(stdout) = watchdog.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = watchdog.wait();
            return Err(format!("the watchdog printed no pid ({line:?})"));
        };
        Ok(Watched { watchdog, control, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.watchdog.try_wait().ok().flatten()
    }

    /// Stops the server (keeping its folder or not) and waits for it, killing its
    /// process group if it has not stopped within `timeout`.
    pub fn halt(mut self, keep_data: bool, timeout: Duration) {
        if keep_data {
            let _ = self.control.write_all(b"keep\n");
        }
        drop(self.control);
        let deadline = Instant::now() + timeout;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let group = format!("-{}", self.watchdog.id());
                    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                    let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
                    let _ = self.watchdog.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// A 127.0.0.1 port free at this moment (callers retry if it is taken before use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}
