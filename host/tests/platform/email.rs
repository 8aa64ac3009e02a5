//! E-mail, end to end: the mailcheck fixture sends what each request describes, to
//! `.eml` files in the state dir (the `file` backend) or to a real SMTP server the
//! test starts (aiosmtpd, see [`crate::smtp`]). Every message is read back with
//! Python's own `email` parser, so "well-formed" is judged by another implementation.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::harness::{App, Host};
use crate::smtp::SmtpServer;

const SENDER: &str = "Electronic Store <shop@localhost>";

/// An application of one component, `mailcheck` (with `allow_email = true` when
/// `granted`), and a runtime config of `runtime` with `[email]` on top.
struct MailApp {
    app: App,
    runtime_config: PathBuf,
}

impl MailApp {
    fn new(granted: bool, email: &str) -> MailApp {
        let grant = if granted { "allow_email = true\n" } else { "" };
        let app = App::new(&format!(
            "spin_manifest_version = 2\n[application]\nname = \"mail\"\n\
             [[trigger.http]]\nroute = \"/mailcheck/...\"\ncomponent = \"mailcheck\"\n\
             [component.mailcheck]\nsource = \"{{wasm}}/mailcheck.wasm\"\n{grant}"
        ));
        let runtime_config = app.dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, format!("[email]\nfrom = \"{SENDER}\"\n{email}")).expect("write runtime config");
        MailApp { app, runtime_config }
    }

    /// `[email]` for the SMTP server on `port`, in plain text.
    fn smtp(port: u16) -> MailApp {
        MailApp::new(true, &format!("backend = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_ms = 5000\n"))
    }

    fn start(&self) -> Host {
        let mut command = self.app.command();
        command.arg("--runtime-config-file").arg(&self.runtime_config).env_remove("ESTORE_SMTP_PASSWORD");
        Host::start(command)
    }

    fn outbox(&self) -> PathBuf {
        self.app.state_dir().join("outbox/email")
    }

    /// The outbox's file names, hidden ones included, sorted.
    fn outbox_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.outbox())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// `POST /mailcheck/send` with `message`; the status and the JSON answer.
async fn send(host: &Host, message: Json) -> (u16, Json) {
    let response = reqwest::Client::new()
        .post(host.url("/mailcheck/send"))
        .json(&message)
        .send()
        .await
        .expect("POST /mailcheck/send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// Sends `message`, expecting it to be sent; returns its Message-ID.
async fn sent(host: &Host, message: Json) -> String {
    let (status, answer) = send(host, message).await;
    assert_eq!(status, 200, "not sent: {answer}\nlog:\n{}", host.log());
    answer["message_id"].as_str().expect("a message_id").to_owned()
}

/// Sends `message`, expecting the mailer's error `kind`; returns the error message.
async fn refused(host: &Host, message: Json, kind: &str) -> String {
    let (status, answer) = send(host, message).await;
    let expected_status = match kind {
        "not-allowed" => 403,
        "invalid" => 400,
        "unavailable" => 503,
        _ => 500,
    };
    assert_eq!((status, answer["error"]["kind"].as_str()), (expected_status, Some(kind)), "{answer}");
    answer["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// What a mail reader sees in `raw`, as parsed by Python's `email` package (with the
/// modern policy, which decodes encoded words and records defects).
fn parse_message(raw: &[u8]) -> Json {
    const PARSER: &str = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
def body(kind):
    part = m.get_body(preferencelist=(kind,))
    # Lines end in CRLF on the wire and in .eml files; a reader sees lines.
    return part.get_content().replace("\r\n", "\n").strip() if part is not None else None
print(json.dumps({
    "from": str(m["from"]),
    "to": [str(a) for a in m["to"].addresses],
    "reply_to": str(m["reply-to"]) if m["reply-to"] else None,
    "subject": str(m["subject"]),
    "message_id": str(m["message-id"]),
    "has_date": m["date"] is not None,
    "rcpt_to": [str(h) for h in m.get_all("x-rcptto", [])],
    "content_type": m.get_content_type(),
    "text": body("plain"),
    "html": body("html"),
    "defects": [str(d) for d in m.defects],
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child.stdin.take().expect("stdin").write_all(raw).expect("write the message to python3");
    let output = child.wait_with_output().expect("wait for python3");
    assert!(output.status.success(), "python3 could not parse the message: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

fn order_confirmation() -> Json {
    json!({
        "to": ["Ann Example <ann@example.com>", "bob@example.org"],
        "subject": "Your order #42 — Grüße ✓",
        "text": "Thank you for your order.\nIt ships tomorrow.",
        "html": "<p>Thank you for your order.</p>",
    })
}

/// Checks a delivered order confirmation against what was sent.
fn assert_order_confirmation(message: &Json, message_id: &str) {
    assert_eq!(message["defects"], json!([]), "{message}");
    assert_eq!(message["from"], SENDER);
    assert_eq!(message["to"], json!(["Ann Example <ann@example.com>", "bob@example.org"]));
    assert_eq!(message["subject"], "Your order #42 — Grüße ✓");
    assert_eq!(message["message_id"], message_id);
    assert_eq!(message["has_date"], true);
    assert_eq!(message["content_type"], "multipart/alternative");
    assert_eq!(message["text"], "Thank you for your order.\nIt ships tomorrow.");
    assert_eq!(message["html"], "<p>Thank you for your order.</p>");
}

#[tokio::test]
async fn the_file_backend_writes_one_parseable_eml_per_message_in_the_state_dir() {
    let app = MailApp::new(true, "");
    let host = app.start();
    host.wait_for_log(&["e-mail: messages are written to", "outbox/email"]);

    let first = sent(&host, order_confirmation()).await;
    assert!(first.starts_with('<') && first.ends_with("@localhost>"), "{first}");
    let second = sent(&host, json!({"to": ["carol@example.net"], "subject": "Plain", "text": "Just text.", "reply_to": "help@example.com"})).await;

    let files = app.outbox_files();
    assert_eq!(files.len(), 2, "one file per message, no temp file left: {files:?}");
    for (file, id) in files.iter().zip([&first, &second]) {
        // `YYYYMMDDTHHMMSS.ffffffZ-<the Message-ID's unique part>.eml`: sorted by time.
        let unique = id.trim_start_matches('<').split('@').next().unwrap_or_default();
        let (stamp, rest) = file.split_at(23);
        assert!(stamp.len() == 23 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'), "{file}");
        assert_eq!(rest, format!("-{unique}.eml"), "{file}");
    }

    let raw = std::fs::read(app.outbox().join(&files[0])).expect("read the first .eml");
    assert!(raw.windows(2).any(|w| w == b"\r\n"), "RFC 5322 lines end in CRLF");
    assert_order_confirmation(&parse_message(&raw), &first);

    let plain = parse_message(&std::fs::read(app.outbox().join(&files[1])).expect("read the second .eml"));
    assert_eq!(plain["to"], json!(["carol@example.net"]));
    assert_eq!(plain["reply_to"], "help@example.com");
    assert_eq!((plain["content_type"].as_str(), plain["text"].as_str()), (Some("text/plain"), Some("Just text.")));
    assert_eq!(plain["html"], Json::Null);

    // Logged with the component and the Message-ID, never the body.
    host.wait_for_log(&["e-mail sent", "mailcheck", &first]);
    assert!(!host.log().contains("Thank you for your order"), "the body reached the log:\n{}", host.log());
}

#[tokio::test]
async fn a_component_without_allow_email_is_not_allowed() {
    let app = MailApp::new(false, "");
    let host = app.start();
    let why = refused(&host, order_confirmation(), "not-allowed").await;
    assert!(why.contains("`mailcheck`") && why.contains("allow_email = true"), "{why}");
    host.wait_for_log(&["denied sending e-mail", "mailcheck"]);
    assert!(!app.outbox().exists(), "no component may send, so no outbox: {:?}", app.outbox_files());
}

#[tokio::test]
async fn a_bad_address_is_invalid_and_nothing_is_written() {
    let app = MailApp::new(true, "");
    let host = app.start();
    let cases = [
        (json!({"to": ["ann@example.com", "not an address"], "subject": "s", "text": "t"}), "to[1]: `not an address`"),
        (json!({"to": ["ann@example.com, bob@example.com"], "subject": "s", "text": "t"}), "to[0]:"),
        (json!({"to": [], "subject": "s", "text": "t"}), "no recipient"),
        (json!({"to": ["ann@example.com"], "subject": "s", "text": "t", "reply_to": "nobody"}), "reply-to: `nobody`"),
    ];
    for (message, expected) in cases {
        let why = refused(&host, message, "invalid").await;
        assert!(why.contains(expected), "`{expected}` not in: {why}");
    }
    assert_eq!(app.outbox_files(), Vec::<String>::new());
}

#[tokio::test]
async fn the_smtp_backend_delivers_to_a_real_smtp_server() {
    let smtp = SmtpServer::start();
    let app = MailApp::smtp(smtp.port());
    let host = app.start();
    host.wait_for_log(&["e-mail: messages are sent through", &format!("127.0.0.1:{}", smtp.port())]);

    let id = sent(&host, order_confirmation()).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "delivered once, and before `send` returned");
    let delivered = parse_message(&messages[0]);
    assert_order_confirmation(&delivered, &id);
    // The envelope: every recipient, by address.
    assert_eq!(delivered["rcpt_to"], json!(["ann@example.com, bob@example.org"]));
    assert!(!app.outbox().exists(), "the smtp backend writes no files");

    // The server refuses a recipient for good: the message is the problem.
    let why = refused(&host, json!({"to": ["refused@example.com"], "subject": "s", "text": "t"}), "invalid").await;
    assert!(why.contains("550") && why.contains("refused@example.com"), "{why}");
    // ... or for now: worth a retry.
    let why = refused(&host, json!({"to": ["later@example.com"], "subject": "s", "text": "t"}), "unavailable").await;
    assert!(why.contains("451"), "{why}");
    // One refused recipient keeps the message from the others too.
    refused(&host, json!({"to": ["ann@example.com", "refused@example.com"], "subject": "s", "text": "t"}), "invalid").await;
    assert_eq!(smtp.messages().len(), 1, "nothing more was delivered");
}

#[tokio::test]
async fn starttls_is_required_by_default_so_a_server_without_it_gets_nothing() {
    let smtp = SmtpServer::start();
    let app = MailApp::new(true, &format!("backend = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n", smtp.port()));
    let host = app.start();
    let why = refused(&host, order_confirmation(), "other").await;
    assert!(why.to_lowercase().contains("starttls"), "{why}");
    assert_eq!(smtp.messages().len(), 0);
}

#[tokio::test]
async fn an_smtp_server_that_is_down_is_unavailable_and_the_host_keeps_serving() {
    let mut smtp = SmtpServer::start();
    let app = MailApp::smtp(smtp.port());
    let host = app.start();
    sent(&host, order_confirmation()).await;

    smtp.stop();
    let started = Instant::now();
    let why = refused(&host, order_confirmation(), "unavailable").await;
    assert!(why.contains(&format!("127.0.0.1:{}", smtp.port())), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // The pooled connection is gone, and so is the server: again, and quickly.
    refused(&host, order_confirmation(), "unavailable").await;
    let (status, _) = send(&host, json!({"to": ["a@example.com"]})).await;
    assert_eq!(status, 400, "the component still answers");
    host.wait_for_log(&["e-mail not sent", "mailcheck", "unavailable"]);

    // Back on the same port: the host reconnects by itself.
    smtp.start_again();
    let id = sent(&host, order_confirmation()).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "the first message and this one");
    assert_eq!(parse_message(&messages[1])["message_id"], id);
}
