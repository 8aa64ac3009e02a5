//! A bad manifest stops `estore up` with one message naming the file, the key and
//! what is wrong; never a panic or a backtrace (checked by `start_failure`).

use crate::harness::App;

const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"bad\"\n";

fn fails_with(body: &str, expected: &[&str]) {
    let app = App::new(&format!("{HEADER}{body}"));
    let stderr = app.start_failure();
    assert!(stderr.contains("spin.toml"), "the message names the file: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "expected `{part}` in: {stderr}");
    }
}

#[test]
fn bad_toml() {
    fails_with("[[trigger.http]\nroute = \"/\"\n", &["spin.toml:4"]);
}

#[test]
fn trigger_naming_an_unknown_component() {
    fails_with(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n[component.hello]\nsource = \"{wasm}/hello.wasm\"\n",
        &["ghost", "hello"],
    );
}

#[test]
fn duplicate_routes() {
    fails_with(
        "[[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"hello\"\n[[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{wasm}/hello.wasm\"\n",
        &["/a/...", "duplicate"],
    );
}

#[test]
fn missing_source_file() {
    fails_with(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"nowhere/hello.wasm\"\n",
        &["component.hello.source", "nowhere/hello.wasm", "does not exist"],
    );
}

#[test]
fn unknown_key() {
    fails_with(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{wasm}/hello.wasm\"\nallowed_outbund_hosts = []\n",
        &["allowed_outbund_hosts", "component.hello"],
    );
}

#[test]
fn bad_outbound_host() {
    fails_with(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{wasm}/hello.wasm\"\nallowed_outbound_hosts = [\"example.com\"]\n",
        &["allowed_outbound_hosts", "example.com"],
    );
}

#[test]
fn wrong_manifest_version() {
    let app = App::new("spin_manifest_version = 1\n[application]\nname = \"old\"\n");
    let stderr = app.start_failure();
    assert!(stderr.contains("spin_manifest_version"), "{stderr}");
}
