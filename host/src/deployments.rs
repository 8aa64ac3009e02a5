//! The versions each component was deployed in, kept in the state dir so that a
//! deploy survives a restart and a rollback has something to return to.
//!
//! `<state>/deployments/<component>/`: every deployed version's wasm, named by its
//! SHA-256 (`<digest>.wasm`), and `history.json`, the deploys in order with the one
//! serving now. Both are written through a temporary file and a rename, so a crash
//! leaves the previous state, never half of one.
//!
//! Hosts sharing a PostgreSQL database keep the history there ([`crate::cluster`]);
//! the state dir then mirrors it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many versions of a component are kept (the one serving included).
pub const KEEP_VERSIONS: usize = 10;

/// One deployed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// SHA-256 of the wasm, hex.
    pub digest: String,
    /// RFC 3339, UTC.
    pub deployed_at: String,
    /// Where it came from: a file path, or the manifest's `source` for the version the
    /// host started with.
    pub source: String,
}

/// A component's deploys, oldest first, and which one serves.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct History {
    pub versions: Vec<Version>,
    /// Index into `versions`.
    pub current: usize,
}

impl History {
    pub fn current(&self) -> Option<&Version> {
        self.versions.get(self.current)
    }

    /// The version before the current one: what a rollback returns to.
    pub fn previous(&self) -> Option<&Version> {
        self.current.checked_sub(1).and_then(|index| self.versions.get(index))
    }

    /// This history after deploying `version`: it serves next, after the one serving
    /// now (`started_with` when the component was never deployed: the manifest's
    /// version, so a rollback can return to it). A deploy after a rollback continues
    /// from the version serving, forgetting the ones rolled back from; the oldest
    /// beyond [`KEEP_VERSIONS`] are forgotten too.
    pub fn deployed(&self, version: Version, started_with: Option<Version>) -> History {
        let mut versions = self.versions.clone();
        if versions.is_empty() {
            versions.extend(started_with);
        }
        versions.truncate((self.current + 1).min(versions.len()));
        versions.push(version);
        let excess = versions.len().saturating_sub(KEEP_VERSIONS);
        versions.drain(..excess);
        History { current: versions.len() - 1, versions }
    }

    /// This history after a rollback: the version before the current one serves.
    pub fn rolled_back(&self) -> Option<History> {
        Some(History { current: self.current.checked_sub(1)?, versions: self.versions.clone() })
    }
}

/// The deployments folder of one host's state dir.
#[derive(Debug, Clone)]
pub struct Deployments {
    dir: PathBuf,
}

impl Deployments {
    pub fn new(state_dir: &Path) -> Deployments {
        Deployments { dir: state_dir.join("deployments") }
    }

    fn component_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The file of a version of component `id`.
    pub fn file(&self, id: &str, version: &Version) -> PathBuf {
        self.component_dir(id).join(format!("{}.wasm", version.digest))
    }

    /// The component's history; empty if it was never deployed.
    pub fn history(&self, id: &str) -> Result<History> {
        let path = self.component_dir(id).join("history.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is not a deploy history", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The version of `id` to serve at start, if it was ever deployed.
    pub fn serving(&self, id: &str) -> Result<Option<(Version, PathBuf)>> {
        let history = self.history(id)?;
        Ok(history.current().map(|version| (version.clone(), self.file(id, version))))
    }

    /// Stores `wasm` as a version of `id` (not yet serving) and answers it with its file.
    pub fn store(&self, id: &str, wasm: &[u8], source: &str) -> Result<(Version, PathBuf)> {
        let version = Version {
            digest: hex::encode(Sha256::digest(wasm)),
            deployed_at: now_rfc3339(),
            source: source.to_owned(),
        };
        let dir = self.component_dir(id);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let file = self.file(id, &version);
        if !file.exists() {
            write_atomically(&file, wasm)?;
        }
        Ok((version, file))
    }

    /// Makes `history` the component's, as a deploy, a rollback or the cluster's
    /// ledger changed it, and deletes the wasm of the versions it no longer names.
    pub fn record(&self, id: &str, history: &History) -> Result<()> {
        let before = self.history(id)?;
        self.save(id, history)?;
        for old in before.versions.iter().filter(|old| history.versions.iter().all(|kept| kept.digest != old.digest)) {
            let _ = std::fs::remove_file(self.file(id, old));
        }
        Ok(())
    }

    fn save(&self, id: &str, history: &History) -> Result<()> {
        let json = serde_json::to_vec_pretty(history)?;
        write_atomically(&self.component_dir(id).join("history.json"), &json)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&temporary, bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(deployments: &Deployments, wasm: &[u8]) -> History {
        let (version, _) = deployments.store("cart", wasm, "cart.wasm").expect("store");
        let manifest = Version { digest: "m".into(), deployed_at: "start".into(), source: "spin.toml".into() };
        let history = deployments.history("cart").expect("read").deployed(version, Some(manifest));
        deployments.record("cart", &history).expect("record");
        history
    }

    fn roll_back(deployments: &Deployments) -> Option<History> {
        let history = deployments.history("cart").expect("read").rolled_back()?;
        deployments.record("cart", &history).expect("record");
        Some(history)
    }

    #[test]
    fn a_first_deploy_keeps_the_manifests_version_to_roll_back_to() {
        let state = tempfile::tempdir().expect("temp dir");
        let deployments = Deployments::new(state.path());
        assert!(deployments.serving("cart").expect("read").is_none());
        let history = deploy(&deployments, b"v1");
        let digests: Vec<_> = history.versions.iter().map(|v| v.digest.as_str()).collect();
        assert_eq!(digests, ["m", hex::encode(Sha256::digest(b"v1")).as_str()]);
        let (serving, file) = deployments.serving("cart").expect("read").expect("deployed");
        assert_eq!(std::fs::read(file).expect("the wasm is kept"), b"v1");
        assert_eq!(serving.source, "cart.wasm");
        assert_eq!(roll_back(&deployments).expect("rollback").current().map(|v| v.digest.as_str()), Some("m"));
        assert!(roll_back(&deployments).is_none(), "nothing before the first");
    }

    #[test]
    fn a_deploy_after_a_rollback_continues_from_the_version_serving_and_old_ones_go() {
        let state = tempfile::tempdir().expect("temp dir");
        let deployments = Deployments::new(state.path());
        deploy(&deployments, b"v1");
        deploy(&deployments, b"v2");
        roll_back(&deployments).expect("rollback");
        let history = deploy(&deployments, b"v3");
        assert_eq!(history.versions.len(), 3, "m, v1, v3: {history:?}");
        for n in 4..20 {
            deploy(&deployments, format!("v{n}").as_bytes());
        }
        let history = deployments.history("cart").expect("read");
        assert_eq!(history.versions.len(), KEEP_VERSIONS);
        assert_eq!(history.current, KEEP_VERSIONS - 1);
        let (_, oldest_file) = deployments.store("cart", b"v1", "x").expect("store");
        let wasm_files = std::fs::read_dir(oldest_file.parent().expect("dir"))
            .expect("list")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wasm")))
            .count();
        assert_eq!(wasm_files, KEEP_VERSIONS + 1, "the kept ones and the v1 just stored again");
    }
}
