//! Sending e-mail (`estore:platform/mailer`).
//!
//! A component sends only when its manifest entry says `allow_email = true`. The host
//! builds one [`Mailer`] at start from `[email]` in the runtime config and shares it:
//!
//! - `file` (the default, for development): each message is an RFC 5322 `.eml` file
//!   in `<state-dir>/outbox/email/`, named so the files sort by time, and written to a
//!   hidden temp file first and renamed, so a reader never sees half a message;
//! - `smtp`: a pooled connection to the operator's SMTP server, each message bounded by
//!   `timeout_ms`.
//!
//! Addresses are checked before anything is sent or written. The sender is always the
//! operator's `from`: a component cannot send in someone else's name. Each message sent
//! is logged with the component and its Message-ID, never with its body.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

use estore_manifest::Manifest;
use estore_runtime_config::RuntimeConfig;
use wasmtime::component::{HasData, Linker};

mod config;

pub use bindings::estore::platform::mailer;
pub use config::{EmailBackend, EmailConfig, SmtpTls};
use mailer::{Error, Host, Message};

/// The interface's bindings, generated here so this crate alone implements them.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:email-host; world host { import estore:platform/mailer@0.1.0; }",
        imports: { default: async | trappable },
    });
}

/// The interface this capability serves, and the manifest key that grants it.
pub const INTERFACE: &str = "estore:platform/mailer";
pub const GRANT: &str = "allow_email = true";

/// Environment variable overriding `[email] password`, so the secret need not be in
/// the file.
pub const PASSWORD_ENV: &str = "ESTORE_SMTP_PASSWORD";
/// Where the `file` backend writes, under the state dir.
pub const OUTBOX_DIR: &str = "outbox/email";
/// The sender when `[email] from` is not set.
const DEFAULT_FROM: &str = "estore <estore@localhost>";
/// Long enough for a slow server, short enough to answer well within a request's
/// default 30 s deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The submission ports: STARTTLS (RFC 6409) and implicit TLS (RFC 8314).
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;

/// The application's one way of sending mail.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    /// The folder the `.eml` files go to.
    File(PathBuf),
    Smtp {
        client: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for errors and logs.
        server: String,
        timeout: Duration,
    },
}

impl Mailer {
    /// The mailer of an application, built once at start; `None` when no component
    /// may send e-mail, so such an application opens no folder and no connection.
    pub fn for_app(manifest: &Manifest, runtime: &RuntimeConfig, state_dir: &Path) -> Result<Option<Arc<Mailer>>> {
        let config = EmailConfig::from_runtime(runtime)?;
        if !manifest.components.values().any(|c| c.allow_email) {
            return Ok(None);
        }
        let env_password = std::env::var(PASSWORD_ENV).ok();
        let mailer = Mailer::new(&config, &runtime.file(), state_dir, env_password)?;
        tracing::info!("e-mail: {}", mailer.describe());
        Ok(Some(Arc::new(mailer)))
    }

    /// `file` names the runtime config in errors; `env_password` is the value of
    /// [`PASSWORD_ENV`].
    fn new(config: &EmailConfig, file: &str, state_dir: &Path, env_password: Option<String>) -> Result<Mailer> {
        let from = match &config.from {
            Some(from) => from.clone(),
            None => DEFAULT_FROM.parse().context("the default sender")?,
        };
        let transport = match config.backend {
            EmailBackend::File => {
                let dir = state_dir.join(OUTBOX_DIR);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create the e-mail outbox {}", dir.display()))?;
                Transport::File(dir)
            }
            EmailBackend::Smtp => smtp(config, file, env_password)?,
        };
        Ok(Mailer { from, transport })
    }

    fn describe(&self) -> String {
        match &self.transport {
            Transport::File(dir) => format!("messages are written to {} (file backend)", dir.display()),
            Transport::Smtp { server, .. } => format!("messages are sent through {server} (smtp backend)"),
        }
    }

    /// Checks, builds and sends one message of `component`; returns its Message-ID.
    async fn send(&self, component: &str, message: Message) -> Result<String, Error> {
        let unique = Uuid::new_v4().simple().to_string();
        let message_id = format!("<{unique}@{}>", self.from.email.domain());
        let email = compose(&self.from, &message_id, &message)?;
        let sent = match &self.transport {
            Transport::File(dir) => write_eml(dir, &unique, email.formatted()).await,
            Transport::Smtp { client, server, timeout } => deliver(client, server, *timeout, email).await,
        };
        match &sent {
            Ok(place) => tracing::info!(component, message_id, recipients = message.to.len(), "e-mail sent to {place}"),
            Err(e) => tracing::warn!(component, message_id, "e-mail not sent: {}", describe(e)),
        }
        sent.map(|_| message_id)
    }
}

/// The SMTP transport `[email]` describes.
fn smtp(config: &EmailConfig, file: &str, env_password: Option<String>) -> Result<Transport> {
    // Present and not blank: checked when the runtime config was loaded.
    let host = config.host.as_deref().map(str::trim).with_context(|| format!("{file}: email.host: not set"))?;
    let tls = config.tls.unwrap_or(SmtpTls::Starttls);
    let port = config.port.unwrap_or(if tls == SmtpTls::Tls { SUBMISSIONS_PORT } else { SUBMISSION_PORT });
    let timeout = config.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let parameters = || TlsParameters::new(host.to_owned()).with_context(|| format!("{file}: email.host: `{host}`"));
    let tls = match tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(parameters()?),
        SmtpTls::Tls => Tls::Wrapper(parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new());
    if let Some(credentials) = credentials(config, file, env_password)? {
        builder = builder.credentials(credentials);
    }
    Ok(Transport::Smtp { client: builder.build(), server: format!("{host}:{port}"), timeout })
}

/// The login, if any: the password from [`PASSWORD_ENV`] (when set and not empty),
/// else from the file.
fn credentials(config: &EmailConfig, file: &str, env_password: Option<String>) -> Result<Option<Credentials>> {
    let password = env_password.filter(|p| !p.is_empty()).or_else(|| config.password.clone());
    match (&config.username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials::new(username.clone(), password))),
        (Some(_), None) => bail!("{file}: email.username: no password; set email.password or {PASSWORD_ENV}"),
        (None, Some(_)) => bail!("{PASSWORD_ENV} is set, but {file} has no email.username to log in with"),
        (None, None) => Ok(None),
    }
}

/// The message as lettre builds it, every address checked first.
fn compose(from: &Mailbox, message_id: &str, message: &Message) -> Result<lettre::Message, Error> {
    if message.to.is_empty() {
        return Err(Error::Invalid("no recipient: `to` is empty".into()));
    }
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(message.subject.as_str())
        .message_id(Some(message_id.to_owned()));
    for (i, to) in message.to.iter().enumerate() {
        builder = builder.to(mailbox(&format!("to[{i}]"), to)?);
    }
    if let Some(reply_to) = &message.reply_to {
        builder = builder.reply_to(mailbox("reply-to", reply_to)?);
    }
    let built = match &message.html {
        None => builder.singlepart(SinglePart::plain(message.text.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(message.text.clone(), html.clone())),
    };
    built.map_err(|e| Error::Invalid(e.to_string()))
}

/// `text` as an address (`ann@example.com` or `Ann <ann@example.com>`); `field` says
/// which one in the error.
fn mailbox(field: &str, text: &str) -> Result<Mailbox, Error> {
    text.trim().parse().map_err(|e| Error::Invalid(format!("{field}: `{text}` is not an e-mail address: {e}")))
}

/// Writes the message into `dir` whole or not at all; returns the file's path.
async fn write_eml(dir: &Path, unique: &str, bytes: Vec<u8>) -> Result<String, Error> {
    let name = outbox_file_name(SystemTime::now(), unique);
    let dir = dir.to_owned();
    let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes)).await;
    match written {
        Ok(Ok(path)) => Ok(path.display().to_string()),
        Ok(Err(e)) => Err(Error::Other(format!("cannot write the message into the outbox: {e}"))),
        Err(e) => Err(Error::Other(format!("the outbox writer failed: {e}"))),
    }
}

/// A hidden temp file, flushed to disk, then renamed: the name appears only with the
/// whole message behind it, even after a crash. The folder is created again if a
/// developer emptied the outbox by deleting it.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    }
    Ok(path)
}

/// `20250131T120000.123456Z-<unique>.eml`: UTC to the microsecond, so names sort by
/// time; `unique` (the Message-ID's random part) keeps two messages of the same
/// microsecond apart.
fn outbox_file_name(at: SystemTime, unique: &str) -> String {
    let time = chrono::DateTime::<chrono::Utc>::from(at);
    format!("{}Z-{unique}.eml", time.format("%Y%m%dT%H%M%S%.6f"))
}

/// Hands the message to the SMTP server; returns the server, for the log.
async fn deliver(
    client: &AsyncSmtpTransport<Tokio1Executor>,
    server: &str,
    timeout: Duration,
    email: lettre::Message,
) -> Result<String, Error> {
    match tokio::time::timeout(timeout, client.send(email)).await {
        Ok(Ok(_)) => Ok(server.to_owned()),
        Ok(Err(e)) => Err(smtp_error(server, &e)),
        Err(_) => Err(Error::Unavailable(format!(
            "SMTP server {server}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// What a component can do about an SMTP failure: retry (`unavailable`), fix the
/// message (`invalid`), or nothing (`other`: the operator's settings or the server).
fn smtp_error(server: &str, e: &lettre::transport::smtp::Error) -> Error {
    let why = format!("SMTP server {server}: {e}");
    match e.status() {
        Some(code) => refusal(code, why),
        None if e.is_tls() || e.is_response() || e.is_client() => Error::Other(why),
        // Could not connect, connection lost, timed out.
        None => Error::Unavailable(why),
    }
}

/// A reply code the server refused the message with: 4xx is worth a retry; 5xx about
/// an address or the message itself is the message's fault; any other 5xx (a failed
/// login, a command the server does not know) is the set-up's.
fn refusal(code: Code, why: String) -> Error {
    match (code.severity, code.category) {
        (Severity::TransientNegativeCompletion, _) => Error::Unavailable(why),
        (Severity::PermanentNegativeCompletion, Category::MailSystem) => Error::Invalid(why),
        // 501: a malformed address in MAIL FROM or RCPT TO.
        (Severity::PermanentNegativeCompletion, Category::Syntax) if code.detail == Detail::One => Error::Invalid(why),
        _ => Error::Other(why),
    }
}

/// For the host log.
fn describe(e: &Error) -> String {
    match e {
        Error::NotAllowed(why) => format!("not allowed: {why}"),
        Error::Invalid(why) => format!("invalid: {why}"),
        Error::Unavailable(why) => format!("unavailable: {why}"),
        Error::Other(why) => why.clone(),
    }
}

/// What the interface's calls reach of an instance: the application's mailer, when
/// its component may send (`allow_email = true`).
pub struct MailerView<'a> {
    pub component: &'a str,
    pub mailer: Option<&'a Mailer>,
}

struct HasMailer;

impl HasData for HasMailer {
    type Data<'a> = MailerView<'a>;
}

/// Adds `estore:platform/mailer` to `linker`, served by the view `view` gives of the
/// embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> MailerView<'_>) -> wasmtime::Result<()> {
    mailer::add_to_linker::<T, HasMailer>(linker, view)
}

impl Host for MailerView<'_> {
    async fn send(&mut self, message: Message) -> wasmtime::Result<Result<String, Error>> {
        let Some(mailer) = self.mailer else {
            tracing::warn!(component = %self.component, "denied sending e-mail: no `allow_email = true`");
            return Ok(Err(Error::NotAllowed(format!(
                "component `{}` may not send e-mail (grant it with `allow_email = true`)",
                self.component
            ))));
        };
        Ok(mailer.send(self.component, message).await)
    }
}

#[cfg(test)]
mod tests {
    use lettre::transport::smtp::response::Response;

    use super::*;

    const FILE: &str = "/etc/estore/runtime-config.toml";

    fn message(to: &[&str]) -> Message {
        Message {
            to: to.iter().map(|t| (*t).to_owned()).collect(),
            subject: "Your order 42".into(),
            text: "Thank you.".into(),
            html: None,
            reply_to: None,
        }
    }

    fn invalid(result: Result<lettre::Message, Error>) -> String {
        match result {
            Err(Error::Invalid(why)) => why,
            Err(other) => panic!("expected invalid, got {}", describe(&other)),
            Ok(_) => panic!("expected invalid, got a message"),
        }
    }

    fn at(seconds: u64, micros: u32) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros.into())
    }

    #[test]
    fn outbox_files_are_named_by_utc_time_to_the_microsecond() {
        assert_eq!(outbox_file_name(at(0, 0), "u"), "19700101T000000.000000Z-u.eml");
        assert_eq!(outbox_file_name(at(1_709_251_199, 999_999), "u"), "20240229T235959.999999Z-u.eml");
        assert_eq!(outbox_file_name(at(951_914_096, 42), "u"), "20000301T123456.000042Z-u.eml");
        assert_eq!(outbox_file_name(at(4_102_444_799, 1), "u"), "20991231T235959.000001Z-u.eml");
    }

    #[test]
    fn outbox_file_names_sort_by_time() {
        let times = [at(0, 0), at(9, 999_999), at(10, 0), at(86_399, 5), at(86_400, 0), at(1_709_251_199, 1), at(4_102_444_799, 0)];
        let names: Vec<String> = times.iter().map(|t| outbox_file_name(*t, "ffff")).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // The same microsecond: the unique part tells them apart.
        assert_ne!(outbox_file_name(at(5, 5), "a1"), outbox_file_name(at(5, 5), "b2"));
    }

    #[test]
    fn an_outbox_file_appears_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = dir.path().join("outbox/email");
        let path = write_atomically(&outbox, "one.eml", b"Subject: x\r\n\r\nbody").expect("write");
        assert_eq!(path, outbox.join("one.eml"));
        assert_eq!(std::fs::read(&path).expect("read"), b"Subject: x\r\n\r\nbody");
        // A developer empties the outbox by deleting it: the next message recreates it.
        std::fs::remove_dir_all(&outbox).expect("remove outbox");
        write_atomically(&outbox, "two.eml", b"two").expect("write again");
        let names: Vec<String> = std::fs::read_dir(&outbox)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["two.eml"]);
    }

    #[test]
    fn a_failed_write_names_the_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The target name is taken by a folder: the rename fails.
        std::fs::create_dir(dir.path().join("taken.eml")).expect("mkdir");
        std::fs::write(dir.path().join("taken.eml/x"), b"").expect("fill it");
        let e = write_atomically(dir.path(), "taken.eml", b"x").expect_err("should fail");
        assert!(e.to_string().contains("taken.eml"), "{e}");
        assert!(!dir.path().join(".taken.eml.tmp").exists());
    }

    #[test]
    fn every_address_is_checked_before_anything() {
        let from: Mailbox = "Shop <shop@example.com>".parse().expect("from");
        assert_eq!(invalid(compose(&from, "<id@x>", &message(&[]))), "no recipient: `to` is empty");
        let why = invalid(compose(&from, "<id@x>", &message(&["ann@example.com", "not an address"])));
        assert!(why.starts_with("to[1]: `not an address` is not an e-mail address"), "{why}");
        let two_in_one = invalid(compose(&from, "<id@x>", &message(&["a@example.com, b@example.com"])));
        assert!(two_in_one.starts_with("to[0]:"), "{two_in_one}");
        let mut bad_reply = message(&["ann@example.com"]);
        bad_reply.reply_to = Some("nobody".into());
        assert!(invalid(compose(&from, "<id@x>", &bad_reply)).starts_with("reply-to: `nobody`"));
    }

    #[test]
    fn a_message_has_the_hosts_sender_and_the_components_content() {
        let from: Mailbox = "Shop <shop@example.com>".parse().expect("from");
        let mut sent = message(&["Ann <ann@example.com>", " bob@example.org "]);
        sent.reply_to = Some("help@example.com".into());
        let text = String::from_utf8(compose(&from, "<abc@example.com>", &sent).expect("compose").formatted()).expect("utf-8");
        for header in [
            "From: Shop <shop@example.com>\r\n",
            "To: Ann <ann@example.com>, bob@example.org\r\n",
            "Reply-To: help@example.com\r\n",
            "Subject: Your order 42\r\n",
            "Message-ID: <abc@example.com>\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ] {
            assert!(text.contains(header), "no {header:?} in:\n{text}");
        }
        assert!(text.ends_with("\r\n\r\nThank you.\r\n"), "{text}");

        sent.html = Some("<p>Thank you.</p>".into());
        let text = String::from_utf8(compose(&from, "<abc@example.com>", &sent).expect("compose").formatted()).expect("utf-8");
        for part in ["multipart/alternative", "text/plain", "text/html", "<p>Thank you.</p>"] {
            assert!(text.contains(part), "no {part:?} in:\n{text}");
        }
    }

    #[tokio::test]
    async fn the_file_backend_writes_one_eml_per_message_and_returns_its_message_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EmailConfig { from: Some("Shop <shop@example.com>".parse().expect("from")), ..Default::default() };
        let mailer = Mailer::new(&config, FILE, dir.path(), None).expect("mailer");
        let id = mailer.send("orders", message(&["ann@example.com"])).await.map_err(|e| describe(&e)).expect("send");
        assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
        let files: Vec<PathBuf> =
            std::fs::read_dir(dir.path().join(OUTBOX_DIR)).expect("outbox").map(|e| e.expect("entry").path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let unique = id.trim_start_matches('<').split('@').next().unwrap_or_default();
        assert!(name.ends_with(&format!("Z-{unique}.eml")), "{name} for {id}");
        let text = std::fs::read_to_string(&files[0]).expect("read");
        assert!(text.contains(&format!("Message-ID: {id}\r\n")), "{text}");
        assert!(text.contains("From: Shop <shop@example.com>\r\n"), "{text}");

        // A bad address: nothing written.
        let refused = mailer.send("orders", message(&["ann@"])).await;
        assert!(matches!(refused, Err(Error::Invalid(_))));
        assert_eq!(std::fs::read_dir(dir.path().join(OUTBOX_DIR)).expect("outbox").count(), 1);
    }

    #[test]
    fn the_default_sender_is_the_hosts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mailer = Mailer::new(&EmailConfig::default(), FILE, dir.path(), None).expect("mailer");
        assert_eq!(mailer.from.to_string(), DEFAULT_FROM);
        assert!(dir.path().join(OUTBOX_DIR).is_dir(), "the outbox is created at start");
    }

    fn smtp_config(username: Option<&str>, password: Option<&str>) -> EmailConfig {
        EmailConfig {
            backend: EmailBackend::Smtp,
            host: Some("mail.example.com".into()),
            username: username.map(str::to_owned),
            password: password.map(str::to_owned),
            ..Default::default()
        }
    }

    fn smtp_server(config: &EmailConfig) -> String {
        match smtp(config, FILE, None) {
            Ok(Transport::Smtp { server, .. }) => server,
            Ok(Transport::File(_)) => panic!("expected smtp"),
            Err(e) => panic!("{e:#}"),
        }
    }

    /// The pooled transport lives on the Tokio runtime, as it does in the host.
    #[tokio::test]
    async fn smtp_ports_default_to_submission() {
        assert_eq!(smtp_server(&smtp_config(None, None)), "mail.example.com:587");
        let implicit = EmailConfig { tls: Some(SmtpTls::Tls), ..smtp_config(None, None) };
        assert_eq!(smtp_server(&implicit), "mail.example.com:465");
        let own = EmailConfig { tls: Some(SmtpTls::None), port: Some(2525), ..smtp_config(None, None) };
        assert_eq!(smtp_server(&own), "mail.example.com:2525");
    }

    #[test]
    fn the_password_comes_from_the_environment_then_the_file() {
        let login = |config: &EmailConfig, env: Option<&str>| credentials(config, FILE, env.map(str::to_owned));
        assert!(matches!(login(&smtp_config(None, None), None), Ok(None)));
        assert!(matches!(login(&smtp_config(Some("shop"), Some("file")), None), Ok(Some(_))));
        assert!(matches!(login(&smtp_config(Some("shop"), None), Some("env")), Ok(Some(_))));
        // Set but empty: as if unset.
        let e = login(&smtp_config(Some("shop"), None), Some("")).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, format!("{FILE}: email.username: no password; set email.password or {PASSWORD_ENV}"));
        let e = login(&smtp_config(None, None), Some("secret")).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, format!("{PASSWORD_ENV} is set, but {FILE} has no email.username to log in with"));
    }

    #[test]
    fn smtp_replies_say_whether_to_retry_fix_the_message_or_neither() {
        let kind = |code: &str| {
            let reply: Response = format!("{code} 4.0.0 no\r\n").parse().expect("an SMTP reply");
            match refusal(reply.code(), code.to_owned()) {
                Error::Invalid(c) => format!("invalid {c}"),
                Error::Unavailable(c) => format!("unavailable {c}"),
                Error::Other(c) => format!("other {c}"),
                Error::NotAllowed(c) => format!("not-allowed {c}"),
            }
        };
        for (code, expected) in [
            ("421", "unavailable"),
            ("451", "unavailable"),
            ("550", "invalid"),
            ("553", "invalid"),
            ("554", "invalid"),
            ("501", "invalid"),
            ("500", "other"),
            ("530", "other"),
            ("535", "other"),
        ] {
            assert_eq!(kind(code), format!("{expected} {code}"));
        }
    }
}
