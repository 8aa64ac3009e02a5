//! `[email]` in the runtime config: where the messages components send go. Read and
//! checked at start ([`EmailConfig::from_runtime`]), whether or not a component may
//! send, so a mistake in it is found before anything serves.

use anyhow::{Result, bail};
use estore_runtime_config::RuntimeConfig;
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};

/// `[email]`, as written; turned into a [`crate::Mailer`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub backend: EmailBackend,
    /// The sender of every message, `"Name <address>"` or a bare address.
    #[serde(default, deserialize_with = "sender")]
    pub from: Option<Mailbox>,
    /// The SMTP server (`smtp` only, and then required).
    pub host: Option<String>,
    /// Default 587, or 465 with `tls = "tls"`.
    pub port: Option<u16>,
    pub username: Option<String>,
    /// `ESTORE_SMTP_PASSWORD` overrides it.
    pub password: Option<String>,
    /// Default `starttls`.
    pub tls: Option<SmtpTls>,
    /// How long one message may take to reach the server, connecting included.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackend {
    /// Each message an `.eml` file in the state dir: for development, nothing to run.
    #[default]
    File,
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a server on the same machine or a test server.
    None,
    /// Connect in plain text, then upgrade with STARTTLS; a server that does not offer
    /// it is refused, so credentials never travel in clear.
    Starttls,
    /// TLS from the first byte (SMTPS, "implicit TLS").
    Tls,
}

/// `from` parsed as an address now, so a typo stops `estore up` rather than the first
/// message.
fn sender<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Mailbox>, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(|e| {
        D::Error::custom(format!("email.from: `{text}` is not a sender (expected `Name <address>` or an address): {e}"))
    })
}

impl EmailConfig {
    /// The runtime config's `[email]`, checked; the defaults (the `file` backend) when
    /// it has none.
    pub fn from_runtime(runtime: &RuntimeConfig) -> Result<EmailConfig> {
        let config: EmailConfig = runtime.section("email")?;
        config.validate(&runtime.file())?;
        Ok(config)
    }

    /// What `[email]` can get wrong on its own. A username without a password is left
    /// for start, where `ESTORE_SMTP_PASSWORD` may still supply it.
    fn validate(&self, file: &str) -> Result<()> {
        for (key, value) in [("email.port", self.port.map(u64::from)), ("email.timeout_ms", self.timeout_ms)] {
            if value == Some(0) {
                bail!("{file}: {key}: must be greater than zero");
            }
        }
        let email = self;
        match email.backend {
            EmailBackend::File => {
                let smtp_only = [
                    ("host", email.host.is_some()),
                    ("port", email.port.is_some()),
                    ("username", email.username.is_some()),
                    ("password", email.password.is_some()),
                    ("tls", email.tls.is_some()),
                    ("timeout_ms", email.timeout_ms.is_some()),
                ];
                if let Some((key, _)) = smtp_only.iter().find(|(_, set)| *set) {
                    bail!("{file}: email.{key}: only used by the smtp backend; set `backend = \"smtp\"` in [email] or remove it");
                }
            }
            EmailBackend::Smtp => {
                if email.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
                    bail!("{file}: email.host: the smtp backend needs the SMTP server's host name");
                }
                if email.password.is_some() && email.username.is_none() {
                    bail!("{file}: email.password: given without email.username");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const FILE: &str = "/etc/estore/runtime-config.toml";

    fn read(text: &str) -> Result<EmailConfig> {
        EmailConfig::from_runtime(&RuntimeConfig::parse(Path::new(FILE), text)?)
    }

    fn config(text: &str) -> EmailConfig {
        read(text).unwrap_or_else(|e| panic!("should parse, got: {e:#}"))
    }

    fn config_error(text: &str) -> String {
        match read(text) {
            Ok(config) => panic!("should fail, got: {config:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn email_defaults_to_files_from_the_hosts_sender() {
        let email = EmailConfig::default();
        assert_eq!(email.backend, EmailBackend::File);
        assert!(email.from.is_none() && email.host.is_none() && email.tls.is_none());
        let from = config("[email]\nfrom = \"Electronic Store <shop@localhost>\"\n").from;
        assert_eq!(from.map(|f| f.to_string()), Some("Electronic Store <shop@localhost>".to_string()));
    }

    #[test]
    fn email_smtp_settings_are_read_as_written() {
        let email = config(
            "[email]\nbackend = \"smtp\"\nhost = \"mail.example.com\"\nport = 2525\nusername = \"shop\"\n\
             password = \"secret\"\ntls = \"tls\"\ntimeout_ms = 5000\nfrom = \"shop@example.com\"\n",
        );
        assert_eq!(email.backend, EmailBackend::Smtp);
        assert_eq!(email.host.as_deref(), Some("mail.example.com"));
        assert_eq!((email.port, email.tls, email.timeout_ms), (Some(2525), Some(SmtpTls::Tls), Some(5000)));
        assert_eq!((email.username.as_deref(), email.password.as_deref()), (Some("shop"), Some("secret")));
        for (tls, expected) in [("none", SmtpTls::None), ("starttls", SmtpTls::Starttls)] {
            let text = format!("[email]\nbackend = \"smtp\"\nhost = \"h\"\ntls = \"{tls}\"\n");
            assert_eq!(config(&text).tls, Some(expected));
        }
        // A username alone is fine here: ESTORE_SMTP_PASSWORD may give the password at start.
        config("[email]\nbackend = \"smtp\"\nhost = \"h\"\nusername = \"shop\"\n");
    }

    #[test]
    fn bad_email_settings_name_the_file_and_the_key() {
        let cases: &[(&str, &[&str])] = &[
            ("[email]\nbackend = \"sendmail\"\n", &[":2:11", "unknown variant `sendmail`", "file", "smtp"]),
            ("[email]\nfrom = \"shop at example\"\n", &[":2:8", "email.from: `shop at example` is not a sender"]),
            ("[email]\nfrom = 5\n", &[":2:8", "string"]),
            ("[email]\nhots = \"h\"\n", &[":2:1", "unknown field `hots`"]),
            ("[email]\nbackend = \"smtp\"\nhost = \"h\"\ntls = \"ssl\"\n", &[":4:7", "unknown variant `ssl`", "starttls"]),
            ("[email]\nbackend = \"smtp\"\n", &["email.host: the smtp backend needs the SMTP server's host name"]),
            ("[email]\nbackend = \"smtp\"\nhost = \" \"\n", &["email.host: the smtp backend needs"]),
            ("[email]\nbackend = \"smtp\"\nhost = \"h\"\nport = 0\n", &["email.port: must be greater than zero"]),
            ("[email]\nbackend = \"smtp\"\nhost = \"h\"\nport = 70000\n", &[":4:8", "u16"]),
            ("[email]\nbackend = \"smtp\"\nhost = \"h\"\ntimeout_ms = 0\n", &["email.timeout_ms: must be greater than zero"]),
            (
                "[email]\nbackend = \"smtp\"\nhost = \"h\"\npassword = \"p\"\n",
                &["email.password: given without email.username"],
            ),
            ("[email]\nhost = \"mail.example.com\"\n", &["email.host: only used by the smtp backend", "backend = \"smtp\""]),
            ("[email]\ntls = \"none\"\n", &["email.tls: only used by the smtp backend"]),
        ];
        for (text, needles) in cases {
            let e = config_error(text);
            assert!(e.starts_with(FILE), "{e}");
            for needle in *needles {
                assert!(e.contains(needle), "`{needle}` not in: {e}");
            }
        }
    }
}
