//! Secrets: `estore up` refuses to serve while a `secret = true` variable holds the
//! manifest's (public) default or a key is too short, and says which and how to set
//! it; `--allow-default-secrets` is the explicit development switch.

use std::process::{Command, Stdio};

use crate::harness::{App, ESTORE, get, workspace};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "secrets"
[variables]
api_secret = { default = "everyone-can-read-this", secret = true }
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.hello]
source = "{wasm}/hello.wasm"
[component.hello.variables]
greeting = "{{ api_secret }}"
"#;

const STRONG: &str = "9c1f0e5a7b3d2c4e6f8a0b1c2d3e4f5a";

#[test]
fn a_secret_holding_its_manifest_default_stops_the_host_naming_it() {
    let app = App::new(APP);
    let stderr = app.start_failure();
    assert!(stderr.contains("refusing to start with unsafe secrets"), "{stderr}");
    assert!(stderr.contains("variable `api_secret` holds its manifest default"), "{stderr}");
    assert!(stderr.contains("set SPIN_VARIABLE_API_SECRET to at least 32 random bytes"), "{stderr}");
    assert!(stderr.contains("--allow-default-secrets"), "the way out is named: {stderr}");
}

#[test]
fn a_key_shorter_than_32_bytes_stops_the_host() {
    let app = App::new(APP);
    let output = app.command().env("SPIN_VARIABLE_API_SECRET", "hunter2").stdin(Stdio::null()).output().expect("run estore up");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a 7-byte key was accepted: {stderr}");
    assert!(stderr.contains("variable `api_secret` is key material but only 7 bytes long"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_set_by_the_operator_serves() {
    let app = App::new(APP);
    let mut up = app.command();
    up.env("SPIN_VARIABLE_API_SECRET", STRONG);
    let host = crate::harness::Host::start(up);
    let (status, body) = get(&host.url("/hello/?action=var&name=greeting")).await;
    assert_eq!((status, body["value"].as_str()), (200, Some(STRONG)));
    assert!(!host.log().contains("development secrets"), "{}", host.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_development_switch_serves_with_the_defaults_and_says_so() {
    let app = App::new(APP);
    let mut up = app.command();
    up.arg("--allow-default-secrets");
    let host = crate::harness::Host::start(up);
    let (status, body) = get(&host.url("/hello/?action=var&name=greeting")).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("everyone-can-read-this")));
    host.wait_for_log(&["serving with development secrets (api_secret)", "never let others reach this host"]);
}

/// The store's own manifest: its token secret, administrator password, carrier
/// webhook secrets and card vault key all have public defaults, and a host started
/// as is must refuse them all.
#[test]
fn the_store_does_not_start_on_its_public_defaults() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut up = Command::new(&*ESTORE);
    up.arg("up").arg("-f").arg(workspace().join("spin.toml")).args(["--listen", "127.0.0.1:0", "--state-dir"]).arg(state.path());
    const SECRETS: [&str; 6] =
        ["token_secret", "admin_password", "dhl_webhook_secret", "ups_webhook_secret", "dpd_webhook_secret", "card_vault_key"];
    for variable in SECRETS.map(str::to_uppercase) {
        up.env_remove(format!("SPIN_VARIABLE_{variable}"));
    }
    let output = up.stdin(Stdio::null()).output().expect("run estore up");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the store started on its defaults: {stderr}");
    for variable in SECRETS {
        assert!(stderr.contains(&format!("variable `{variable}` holds its manifest default")), "{variable}: {stderr}");
    }
}
