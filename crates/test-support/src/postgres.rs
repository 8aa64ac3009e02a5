//! A real PostgreSQL server for the SQL tests, started by the test suite itself: a
//! throwaway cluster (`initdb` into a temp dir) served on a free 127.0.0.1 port, with
//! its unix socket in that dir. Nothing is configured beforehand and the system
//! cluster (Debian's on 5432), if any, is never used.
//!
//! - `Postgres::start()` gives a test its own server (for tests that stop and restart
//!   it); `shared()` is one server for the whole test run. Each test should take its
//!   own database from `create_database`.
//! - The admin is `estore` with a password; TCP connections (the URLs) use
//!   scram-sha-256, the unix socket is trusted.
//! - PostgreSQL refuses to run as root: as root (CI) initdb and the server run as the
//!   `postgres` system user (created by Debian's package; `nobody` otherwise) through
//!   `setpriv`, in a temp dir owned by that user. Otherwise they run as we do.
//! - The server runs under the [`watched`](crate::watched) watchdog (SIGINT: fast
//!   shutdown): it never outlives the test run, and `stop()` keeps its data for
//!   `start_again()`. The shared server is also stopped by an `atexit` handler, so a
//!   normal exit waits until it is gone.
//!
//! Binaries: `ESTORE_PG_BINDIR` if set, else the newest `/usr/lib/postgresql/<v>/bin`
//! (Debian's layout; `scripts/setup` installs it), else `initdb` on PATH.
#![allow(dead_code)] // the SQL tests use some of it, this module's own test the rest

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::watched::{self, Watched};
use std::time::{Duration, Instant};

const ADMIN: &str = "estore";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL server of our own; stopped and deleted on drop.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
    password: String,
    /// uid/gid the server runs as when we are root.
    run_as: Option<(u32, u32)>,
    server: Mutex<Option<Watched>>,
}

/// The server for the whole test run, started on first use and stopped when the test
/// process exits. Do not stop it: tests that do need their own `Postgres::start()`.
pub fn shared() -> &'static Postgres {
    SHARED.get_or_init(|| {
        let pg = Postgres::start();
        // Statics are never dropped: stop it when the process exits normally, so the
        // test run ends with it gone. (Any other way out, the watchdog stops it.)
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: registers a plain function that catches its own panics.
        unsafe { atexit(stop_shared) };
        pg
    })
}

static SHARED: OnceLock<Postgres> = OnceLock::new();

extern "C" fn stop_shared() {
    let _ = std::panic::catch_unwind(|| {
        let Some(pg) = SHARED.get() else { return };
        let server = pg.server.try_lock().ok().and_then(|mut s| s.take());
        if let Some(server) = server {
            server.halt(false, STOP_TIMEOUT);
        }
    });
}

impl Postgres {
    /// initdb into a fresh temp dir, then serve on a free 127.0.0.1 port; returns when
    /// the server accepts connections.
    pub fn start() -> Postgres {
        let started = Instant::now();
        let run_as = if running_as_root() { Some(unprivileged_user()) } else { None };
        let dir = tempfile::Builder::new()
            .prefix("estore-pg-")
            .tempdir_in(temp_base(run_as.is_some()))
            .expect("create a temp dir for PostgreSQL")
            .keep();
        let mut pg = Postgres { dir, port: 0, password: new_password(), run_as, server: Mutex::new(None) };
        pg.init();
        // A free port can be taken between our probe and the server's bind: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            pg.port = watched::free_port();
            let log_start = pg.log().len();
            match pg.launch() {
                Ok(()) => break,
                Err(failure) => {
                    let new_log = pg.log().get(log_start..).unwrap_or_default().to_owned();
                    let port_taken = new_log.contains("could not bind") || new_log.contains("Address already in use");
                    if !port_taken || attempts == 5 {
                        panic!("PostgreSQL did not start on 127.0.0.1:{}: {failure}\n{}", pg.port, pg.log_tail());
                    }
                }
            }
        }
        eprintln!("postgres: {} serving 127.0.0.1:{} after {:?}", pg.dir.display(), pg.port, started.elapsed());
        pg
    }

    /// The admin (superuser) URL of the `postgres` database, password auth over TCP.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The admin URL of one database.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://{ADMIN}:{}@127.0.0.1:{}/{database}", self.password, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        ADMIN
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's own folder (data dir `data/`, log `postgres.log`, unix socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a database (name: lowercase letters, digits, `_`) and returns its admin
    /// URL. Panics if it exists: use one name per test.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.len() < 64 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?}: use lowercase letters, digits and _"
        );
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        self.url_for(name)
    }

    /// Runs SQL as the admin in the `postgres` database; returns stdout (unaligned,
    /// tuples only: `select 1, 2` gives "1|2\n"). Panics with stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// `psql` in another database.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        self.try_psql_in(database, sql).unwrap_or_else(|e| panic!("psql on port {} failed for {sql:?}:\n{e}", self.port))
    }

    /// `psql` that returns the failure (stderr) instead of panicking.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_in("postgres", sql)
    }

    pub fn try_psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={ADMIN} password={} dbname={database} sslmode=disable connect_timeout=5",
            self.port, self.password
        );
        let mut child = Command::new(tool("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(conninfo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", tool("psql").display()));
        let mut stdin = child.stdin.take().expect("psql stdin");
        let sql = sql.to_owned();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(sql.as_bytes());
        });
        let output = child.wait_with_output().expect("wait for psql");
        let _ = writer.join();
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout)))
        }
    }

    /// Fast shutdown (clients are disconnected); the data and the port stay ours.
    pub fn stop(&self) {
        let server = self.server.lock().unwrap().take().expect("PostgreSQL is not running");
        server.halt(true, STOP_TIMEOUT);
    }

    /// Serves the same data on the same port again, after `stop()`.
    pub fn start_again(&self) {
        assert!(self.server.lock().unwrap().is_none(), "PostgreSQL is already running");
        if let Err(failure) = self.launch() {
            panic!("PostgreSQL did not start again on 127.0.0.1:{}: {failure}\n{}", self.port, self.log_tail());
        }
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        format!("--- {} ---\n{tail}", self.dir.join("postgres.log").display())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a server-side program, as the unprivileged user when we are root.
    fn as_server_user(&self, program: &Path) -> Command {
        let mut command = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups").arg("--").arg(program);
                c
            }
            None => Command::new(program),
        };
        command.current_dir(&self.dir).env("LC_ALL", "C").env_remove("PGDATA");
        command
    }

    fn init(&self) {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password)).expect("write the password file");
        if let Some((uid, gid)) = self.run_as {
            for path in [&self.dir, &pwfile] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to {uid}:{gid}: {e}", path.display()));
            }
        }
        let initdb = tool("initdb");
        let output = self
            .as_server_user(&initdb)
            .arg("-D")
            .arg(self.data())
            .args(["-U", ADMIN, "--pwfile"])
            .arg(&pwfile)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}{}: {e}", initdb.display(), if self.run_as.is_some() { " through setpriv" } else { "" }));
        let _ = std::fs::remove_file(&pwfile);
        assert!(
            output.status.success(),
            "initdb failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let settings = format!(
            "\n# estore tests\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 32MB\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nlogging_collector = off\n",
            self.dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("configure postgresql.conf");
    }

    /// Starts the server under its watchdog and waits until it accepts connections.
    fn launch(&self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postgres.log"))
            .expect("open the server log");
        let server = self.as_server_user(&tool("postgres"));
        let mut command = watched::command("estore-pg-watchdog", &self.dir, "INT");
        command
            .arg(server.get_program())
            .args(server.get_args())
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .stderr(log);
        let mut server = Watched::spawn(command)?;
        match self.wait_ready(&mut server) {
            Ok(()) => {
                *self.server.lock().unwrap() = Some(server);
                Ok(())
            }
            Err(e) => {
                server.halt(true, STOP_TIMEOUT);
                Err(e)
            }
        }
    }

    /// Ready is what `pg_ctl -w` waits for: postmaster.pid of *our* pid, status ready.
    fn wait_ready(&self, server: &mut Watched) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid_file = self.data().join("postmaster.pid");
        loop {
            if let Some(status) = server.exited() {
                return Err(format!("the server exited ({status})"));
            }
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                let lines: Vec<&str> = text.lines().collect();
                if lines.len() >= 8
                    && lines[0].trim() == server.pid().to_string()
                    && lines[3].trim() == self.port.to_string()
                    && lines[7].trim() == "ready"
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let server = self.server.get_mut().map(Option::take).unwrap_or_else(|e| e.into_inner().take());
        if let Some(server) = server {
            server.halt(false, STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server program: from `ESTORE_PG_BINDIR`, Debian's newest version, or PATH.
fn tool(name: &str) -> PathBuf {
    static BINDIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = BINDIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("ESTORE_PG_BINDIR") {
            let dir = PathBuf::from(dir);
            assert!(dir.join("initdb").exists(), "ESTORE_PG_BINDIR={}: no initdb there", dir.display());
            return Some(dir);
        }
        let newest = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
            .filter(|(_, bin)| bin.join("initdb").exists() && bin.join("postgres").exists())
            .max();
        if let Some((_, bin)) = newest {
            return Some(bin);
        }
        // initdb on PATH (maybe a symlink): its real folder has the rest.
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("initdb"))
            .find(|p| p.exists())
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_owned))
    });
    let Some(dir) = dir else {
        panic!(
            "no PostgreSQL server binaries (initdb, postgres): run scripts/setup, which installs \
             Debian's postgresql, or set ESTORE_PG_BINDIR"
        );
    };
    // psql may live elsewhere on PATH (not on Debian, where every tool is in `dir`).
    let path = dir.join(name);
    if path.exists() || name == "initdb" || name == "postgres" { path } else { PathBuf::from(name) }
}

fn running_as_root() -> bool {
    // The effective uid; std has no getuid, /proc/self is owned by it.
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// `postgres` (Debian's package creates it), else `nobody`.
fn unprivileged_user() -> (u32, u32) {
    let id = |user: &str, flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).stderr(Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    for user in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (id(user, "-u"), id(user, "-g")) {
            return (uid, gid);
        }
    }
    panic!("running as root, and there is no `postgres` or `nobody` user to run PostgreSQL as")
}

/// Where the server's temp dir goes: the usual temp dir, unless another user must be
/// able to reach it and cannot, or the unix socket path would be too long.
fn temp_base(for_other_user: bool) -> PathBuf {
    let base = std::env::temp_dir();
    let reachable = !for_other_user
        || base.ancestors().all(|p| std::fs::metadata(p).map(|m| m.mode() & 0o001 != 0).unwrap_or(false));
    if reachable && base.as_os_str().len() <= 60 { base } else { PathBuf::from("/tmp") }
}

fn new_password() -> String {
    let mut bytes = [0u8; 12];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes.copy_from_slice(&(nanos ^ u128::from(std::process::id())).to_le_bytes()[..12]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn postgres_harness_starts_and_restarts() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("select 1"), "1\n");
    assert_eq!(pg.psql("select current_user"), format!("{ADMIN}\n"));
    assert!(pg.url().starts_with(&format!("postgres://{ADMIN}:")));
    assert!(pg.url().ends_with(&format!("@127.0.0.1:{}/postgres", pg.port())));
    // Password auth over TCP really is required.
    let no_password = Command::new(tool("psql"))
        .args(["-X", "-w", "-c", "select 1", "-d"])
        .arg(format!("host=127.0.0.1 port={} user={ADMIN} dbname=postgres sslmode=disable", pg.port()))
        .env_remove("PGPASSWORD")
        .output()
        .expect("run psql");
    assert!(!no_password.status.success(), "connected without a password");

    let url = pg.create_database("harness_restart");
    assert!(url.ends_with(&format!("@127.0.0.1:{}/harness_restart", pg.port())));
    pg.psql_in("harness_restart", "create table t (v text); insert into t values ('kept')");

    pg.stop();
    let refused = pg.try_psql("select 1").expect_err("connected to a stopped server");
    assert!(refused.contains("127.0.0.1") || refused.contains("connect"), "{refused}");

    pg.start_again();
    assert_eq!(pg.psql("select 1"), "1\n");
    assert_eq!(pg.psql_in("harness_restart", "select v from t"), "kept\n");

    let dir = pg.dir().to_owned();
    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());

    // The shared server: one for the run, one database per test.
    let shared = shared();
    assert!(std::ptr::eq(shared, self::shared()));
    let url = shared.create_database("harness_shared");
    assert_eq!(shared.psql_in("harness_shared", "select current_database()"), "harness_shared\n");
    assert!(url.contains(&format!("127.0.0.1:{}/", shared.port())));
}
