//! The state dir belongs to one running host.
//!
//! What the embedded defaults keep there (the bus, the SQLite databases, key-value
//! stores, the deployment history, the admin address) assumes a single writer: two
//! hosts on one state dir would deliver each message twice and overwrite each other's
//! deployments. So `estore up` takes an exclusive lock on `<state>/estore.lock` for
//! its whole life, and a second host fails at start instead. The operating system
//! drops the lock when the process ends, however it ends, so a crash never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const LOCK_FILE: &str = "estore.lock";

/// Held while the host runs; dropping it releases the state dir.
#[derive(Debug)]
pub struct StateDirLock {
    _file: File,
}

/// Creates the state dir if need be and claims it for this process.
pub fn claim(state_dir: &Path) -> Result<StateDirLock> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create the state dir {}", state_dir.display()))?;
    let path = state_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(in_use(state_dir, &path, &mut file)),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(StateDirLock { _file: file })
}

fn in_use(state_dir: &Path, lock: &PathBuf, file: &mut File) -> String {
    let mut holder = String::new();
    let holder = match file.read_to_string(&mut holder) {
        Ok(_) if !holder.trim().is_empty() => format!("process {}", holder.trim()),
        _ => format!("the process holding {}", lock.display()),
    };
    format!(
        "the state dir {} is in use by another estore host ({holder}). Its embedded bus, SQLite \
         databases and deployments serve one host only: give this host its own --state-dir, or, to \
         run several hosts on the same data, configure Kafka and PostgreSQL in the runtime config \
         (README, \"Several hosts\")",
        state_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_names_the_holder_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path()).unwrap();
        let second = claim(dir.path()).unwrap_err().to_string();
        assert!(second.contains(&format!("process {}", std::process::id())), "{second}");
        assert!(second.contains("--state-dir") && second.contains("PostgreSQL"), "{second}");
        drop(first);
        claim(dir.path()).expect("free again once the holder is gone");
    }
}
