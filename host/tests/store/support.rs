//! The store under test: `Store::start` serves the root `spin.toml` from a fresh state
//! dir, on the embedded defaults or on Kafka + PostgreSQL; [`Client`] speaks its JSON
//! API with or without a bearer token.
#![allow(dead_code)] // each service's tests use their part

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value as Json;

use crate::harness::{ESTORE, Host, compiled_cache, workspace};

/// The administrator the store creates at start (the variables' defaults).
pub const ADMIN_EMAIL: &str = "admin@estore.local";
pub const ADMIN_PASSWORD: &str = "admin-password";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backends {
    /// SQLite and the embedded bus: `estore up` with nothing installed.
    Embedded,
    /// A real Kafka broker and a real PostgreSQL, shared by the run's tests.
    KafkaPostgres,
}

/// Builds the store's components once per test run.
pub fn build_store() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let output = Command::new(ESTORE)
            .args(["build", "-f"])
            .arg(workspace().join("spin.toml"))
            .output()
            .expect("run estore build");
        assert!(
            output.status.success(),
            "estore build of the store failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// One store instance's folder: its state dir and runtime config.
pub struct Store {
    dir: tempfile::TempDir,
    runtime_config: PathBuf,
    variables: Vec<(String, String)>,
}

impl Store {
    pub fn new(backends: Backends) -> Store {
        build_store();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = match backends {
            Backends::Embedded => String::new(),
            Backends::KafkaPostgres => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let name = format!("store_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
                let url = crate::postgres::shared().create_database(&name);
                let brokers = crate::kafka::shared().bootstrap();
                format!("[sql]\nbackend = \"postgres\"\nurl = \"{url}\"\n[messaging]\nbackend = \"kafka\"\nbrokers = \"{brokers}\"\n")
            }
        };
        let runtime_config = dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, config).expect("write runtime config");
        Store { dir, runtime_config, variables: Vec::new() }
    }

    /// Sets a manifest variable for the next start (`SPIN_VARIABLE_<NAME>`).
    pub fn variable(mut self, name: &str, value: &str) -> Store {
        self.variables.push((format!("SPIN_VARIABLE_{}", name.to_uppercase()), value.to_owned()));
        self
    }

    /// Appends `toml` to the runtime config for the next start, e.g. an `[email]`
    /// section that points at a test's SMTP server.
    pub fn runtime_config(self, toml: &str) -> Store {
        let mut config = std::fs::read_to_string(&self.runtime_config).expect("read runtime config");
        config.push_str(toml);
        std::fs::write(&self.runtime_config, config).expect("write runtime config");
        self
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Serves the store; the answer borrows the store, so its state dir cannot be
    /// dropped under the running host (`Store::new(..).start()` does not compile).
    pub fn start(&self) -> Running<'_> {
        let mut command = Command::new(ESTORE);
        command
            .arg("up")
            .arg("-f")
            .arg(workspace().join("spin.toml"))
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(self.state_dir())
            .arg("--cache-dir")
            .arg(compiled_cache())
            .arg("--runtime-config-file")
            .arg(&self.runtime_config)
            .env("RUST_LOG", "info")
            .envs(self.variables.iter().map(|(k, v)| (k, v)));
        Running { host: Host::start(command), _store: self }
    }
}

/// A host serving a [`Store`]'s state dir.
pub struct Running<'a> {
    host: Host,
    _store: &'a Store,
}

impl std::ops::Deref for Running<'_> {
    type Target = Host;

    fn deref(&self) -> &Host {
        &self.host
    }
}

impl std::ops::DerefMut for Running<'_> {
    fn deref_mut(&mut self) -> &mut Host {
        &mut self.host
    }
}

/// A client of the store's API, logged in or not.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Json,
}

impl Client {
    pub fn new(host: &Host) -> Client {
        Client { base: host.url.clone(), token: None, http: reqwest::Client::new() }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client { token: Some(token.to_owned()), ..self.clone() }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Answer {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Answer { status, headers, body }
    }

    /// Logs in (by e-mail) and returns a client carrying the token.
    pub async fn login(&self, email: &str, password: &str) -> Client {
        let answer = self.post("/api/auth/login", serde_json::json!({"email": email, "password": password})).await;
        assert_eq!(answer.status, 200, "login as {email}: {answer:?}");
        let token = answer.body["token"].as_str().expect("a token").to_owned();
        self.with_token(&token)
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}

/// The manifest's default `token_secret` (spin.toml), which the store under test uses.
pub const TOKEN_SECRET: &str = "development-secret-change-me";

/// A token for `role`, issued as the users service issues them at login, so that a
/// service's tests need no account.
pub fn issued_token(role: estore_shared::auth::Role) -> String {
    let claims = estore_shared::auth::Claims {
        sub: format!("test-{role:?}").to_lowercase(),
        role,
        exp: estore_shared::clock::now_unix() + 3600,
    };
    estore_shared::auth::issue(TOKEN_SECRET.as_bytes(), &claims)
}
