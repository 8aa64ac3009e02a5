//! A real SMTP server for the e-mail tests, started by the test itself: aiosmtpd
//! (`scripts/smtp-server`, with the handler in `scripts/smtp_sink.py`) on a free
//! 127.0.0.1 port, storing what it accepts in a Maildir in a temp dir.
//!
//! - `scripts/smtp-server install` puts aiosmtpd into a virtualenv (`ESTORE_VENV`,
//!   default `/var/cache/estore/venv`); `scripts/setup` runs it, and so does
//!   `SmtpServer::start()` once per test run (a no-op when installed).
//! - Ready means: the port answers with the SMTP greeting (`220`).
//! - Recipients named `refused…@` are refused with 550, `later…@` with 451.
//! - `stop()` / `start_again()`: the same port and Maildir, for "the server goes away
//!   and comes back" tests.
//! - The server runs under the [`watched`](crate::watched) watchdog (stopped with
//!   SIGTERM): it never outlives the test run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::watched::{self, Watched};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// An SMTP server of our own; stopped and deleted on drop.
pub struct SmtpServer {
    dir: PathBuf,
    port: u16,
    server: Option<Watched>,
}

impl SmtpServer {
    /// Installs aiosmtpd (once per test run), then serves on a free 127.0.0.1 port;
    /// returns when the server greets.
    pub fn start() -> SmtpServer {
        install();
        let dir = tempfile::Builder::new().prefix("estore-smtp-").tempdir().expect("create a temp dir for SMTP").keep();
        let mut smtp = SmtpServer { dir, port: 0, server: None };
        // A free port can be taken between our probe and the server's bind: retry.
        for attempt in 1.. {
            smtp.port = watched::free_port();
            let log_start = smtp.log().len();
            match smtp.launch() {
                Ok(()) => break,
                Err(failure) => {
                    let new_log = smtp.log().get(log_start..).unwrap_or_default().to_owned();
                    if !new_log.contains("Address already in use") || attempt == 5 {
                        panic!("the SMTP server did not start on 127.0.0.1:{}: {failure}\n{}", smtp.port, smtp.log());
                    }
                }
            }
        }
        smtp
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message the server accepted, raw, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.dir.join("maildir/new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        files.sort();
        files.iter().map(|(_, path)| std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))).collect()
    }

    /// Stops the server; the Maildir and the port stay ours.
    pub fn stop(&mut self) {
        let server = self.server.take().expect("the SMTP server is not running");
        server.halt(true, STOP_TIMEOUT);
    }

    /// Serves the same Maildir on the same port again, after `stop()`.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the SMTP server is already running");
        if let Err(failure) = self.launch() {
            panic!("the SMTP server did not start again on 127.0.0.1:{}: {failure}\n{}", self.port, self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("smtp.log")).unwrap_or_default()
    }

    /// Starts the server under its watchdog and waits for its greeting.
    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("smtp.log"))
            .map_err(|e| format!("open the server log: {e}"))?;
        let mut command = watched::command("estore-smtp-watchdog", &self.dir, "TERM");
        command.arg(script()).arg("start").arg(&self.dir).arg(self.port.to_string()).stderr(log);
        let mut server = Watched::spawn(command)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let failure = loop {
            if let Some(status) = server.exited() {
                break format!("the server exited ({status})");
            }
            if Instant::now() > deadline {
                break format!("no greeting after {START_TIMEOUT:?}");
            }
            if greets(self.port) {
                self.server = Some(server);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        server.halt(true, STOP_TIMEOUT);
        Err(failure)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.halt(false, STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether an SMTP server answers on the port with its `220` greeting.
fn greets(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = String::new();
    let greeted = BufReader::new(&stream).read_line(&mut greeting).is_ok() && greeting.starts_with("220");
    let _ = (&stream).write_all(b"QUIT\r\n");
    greeted
}

/// `scripts/smtp-server` of this workspace.
fn script() -> PathBuf {
    crate::harness::workspace().join("scripts/smtp-server")
}

/// `scripts/smtp-server install`, once per test run (at once when installed).
fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let output = Command::new(script()).arg("install").output().expect("run scripts/smtp-server install");
        assert!(
            output.status.success(),
            "scripts/smtp-server install failed (scripts/setup installs what it needs):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
