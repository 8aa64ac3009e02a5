//! The host's signature on the outbox rows it stages.
//!
//! `_estore_outbox` lives in the component's own database, where (on PostgreSQL) the
//! component's role must keep the right to insert, since the host stages messages in
//! the component's transaction, on its connection. So the relay does not take a row's
//! word for what it is: the host signs each row it stages with HMAC-SHA256 over the
//! component, the database label, the topic, the key, the payload and the headers,
//! and the relay sends only rows whose signature it can verify (see
//! [`super::outbox`]). A component cannot sign: the key is outside its reach.
//!
//! The key outlives the process, so a row committed before a crash is still sent after
//! it: an embedded host keeps it in `<state-dir>/sql/outbox.key` (owner-only, made at
//! the first start), and the hosts of one PostgreSQL database derive the same key from
//! the operator's URL, as they derive the roles' passwords (see [`super::postgres`]).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use estore_bus::Outgoing;

/// Where an embedded host keeps its key, under the state dir.
const KEY_FILE: &str = "sql/outbox.key";
/// Tells this signature's input apart from any other use of the key.
const DOMAIN: &[u8] = b"estore outbox v1";

/// Signs and verifies outbox rows.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// The embedded host's key: read from the state dir, or drawn and written there
    /// (readable by the owner only) at the first start.
    pub fn from_state_dir(state_dir: &Path) -> anyhow::Result<Signer> {
        let path = state_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = hex::decode(text.trim()).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
                let Some(key) = key else {
                    bail!("{} does not hold an outbox signing key (64 hex digits)", path.display());
                };
                let metadata = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
                if metadata.permissions().mode() & 0o077 != 0 {
                    tracing::warn!("{} was readable by others; made it owner-only", path.display());
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("cannot make {} owner-only", path.display()))?;
                }
                Ok(Signer { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("cannot draw an outbox signing key: {e}"))?;
                write_owner_only(&path, &hex::encode(key))?;
                Ok(Signer { key })
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The key the hosts of one PostgreSQL database share, from the operator's URL.
    pub fn derived(secret: &str) -> Signer {
        Signer { key: Sha256::digest(format!("estore outbox\0{secret}")).into() }
    }

    /// The signature of `message`, staged by the host for `component`'s database
    /// `label`.
    pub fn sign(&self, component: &str, label: &str, message: &Outgoing) -> Vec<u8> {
        self.mac(component, label, message).finalize().into_bytes().to_vec()
    }

    /// Whether `signature` is the host's for `message` in that database.
    pub fn verify(&self, component: &str, label: &str, message: &Outgoing, signature: &[u8]) -> bool {
        self.mac(component, label, message).verify_slice(signature).is_ok()
    }

    /// Each field length-prefixed, so no two different rows sign the same bytes.
    fn mac(&self, component: &str, label: &str, message: &Outgoing) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        field(DOMAIN);
        field(component.as_bytes());
        field(label.as_bytes());
        field(message.topic.as_bytes());
        match &message.key {
            Some(key) => {
                field(b"key");
                field(key);
            }
            None => field(b"no key"),
        }
        field(&message.payload);
        field(&(message.headers.len() as u64).to_be_bytes());
        for (name, value) in &message.headers {
            field(name.as_bytes());
            field(value);
        }
        mac
    }
}

/// Writes `text` to `path` readable by the owner only, all or nothing (a crash leaves
/// no half-written key behind).
fn write_owner_only(path: &Path, text: &str) -> anyhow::Result<()> {
    let folder = path.parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let partial = path.with_extension("partial");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    written.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Outgoing {
        Outgoing {
            topic: "payment.completed".into(),
            key: Some(b"order-1".to_vec()),
            payload: b"{}".to_vec(),
            headers: vec![("message-id".into(), b"m-1".to_vec())],
        }
    }

    #[test]
    fn a_signature_holds_for_exactly_what_was_signed() {
        let signer = Signer::derived("postgres://admin:secret@db/store");
        let signature = signer.sign("payments", "default", &message());
        assert!(signer.verify("payments", "default", &message(), &signature));

        let changes: [fn(&mut Outgoing); 6] = [
            |m| m.topic = "payment.failed".into(),
            |m| m.key = None,
            |m| m.key = Some(b"order-2".to_vec()),
            |m| m.payload = b"{\"forged\":true}".to_vec(),
            |m| m.headers[0].1 = b"m-2".to_vec(),
            |m| m.headers.push(("x-estore-component".into(), b"payments".to_vec())),
        ];
        for change in changes {
            let mut changed = message();
            change(&mut changed);
            assert!(!signer.verify("payments", "default", &changed, &signature), "{changed:?}");
        }
        assert!(!signer.verify("orders", "default", &message(), &signature), "another component");
        assert!(!signer.verify("payments", "other", &message(), &signature), "another database");
        assert!(!signer.verify("payments", "default", &message(), &[]), "no signature");
        assert!(!Signer::derived("another url").verify("payments", "default", &message(), &signature), "another key");
    }

    #[test]
    fn an_embedded_key_is_made_once_owner_only_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Signer::from_state_dir(dir.path()).expect("made");
        let path = dir.path().join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).expect("key file").permissions().mode() & 0o777, 0o600);
        let again = Signer::from_state_dir(dir.path()).expect("read");
        assert_eq!(first.key, again.key, "a restart signs and verifies with the same key");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        Signer::from_state_dir(dir.path()).expect("read");
        assert_eq!(std::fs::metadata(&path).expect("key file").permissions().mode() & 0o777, 0o600, "made owner-only");

        std::fs::write(&path, "not a key").expect("write");
        let refused = Signer::from_state_dir(dir.path()).err().expect("refused").to_string();
        assert!(refused.contains("outbox.key"), "{refused}");
    }
}
