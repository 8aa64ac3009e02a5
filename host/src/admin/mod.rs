//! The admin API: deploy, roll back and list the components of the running host,
//! one component at a time, without a restart.
//!
//! It has its own listener (`--admin-listen`, loopback by default), and every request
//! needs `Authorization: Bearer <token>`: `ESTORE_ADMIN_TOKEN`, or a token generated
//! into `<state>/admin/token` (owner-only) at the first start. The listener's address
//! goes to `<state>/admin/address`, so `estore deploy` finds the host by its state dir.
//!
//! - `GET /v1/components`: every component with its version, deploy time, source,
//!   triggers and what it served.
//! - `POST /v1/components/{id}/deploy`: the body is the new version's wasm
//!   (`x-estore-source` says where it came from). It is compiled and checked (its
//!   exports against its triggers, its imports against the manifest's grants), the
//!   component's pending migrations are applied, then it replaces the running version
//!   atomically ([`estore_instance::registry`]). Any failure leaves the old version serving.
//! - `POST /v1/components/{id}/rollback`: back to the version before.
//!
//! With SQL on PostgreSQL, deploys and rollbacks are recorded in the database's deploy
//! ledger before the switch, and every host sharing it follows ([`crate::cluster`]);
//! the component list then shows what each host runs.
//! - `GET /health/live` and `GET /health/ready`, without the token ([`health`]).
//! - `GET /metrics`: Prometheus metrics ([`estore_engine::metrics`]), without the token.

pub mod client;
mod health;
mod platform;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;

use estore_bus::Bus;
use crate::cluster::{Change, HostReport, Ledger};
use crate::deployments::{Deployments, History, Version};
use estore_manifest::{HttpRoute, Manifest};
use estore_instance::registry::{LoadedComponent, Registry};

/// The largest wasm a deploy accepts.
const MAX_WASM_BYTES: usize = 256 << 20;
pub const TOKEN_ENV: &str = "ESTORE_ADMIN_TOKEN";

/// Where a state dir keeps the admin API's address and token.
pub fn address_file(state_dir: &Path) -> PathBuf {
    state_dir.join("admin").join("address")
}

pub fn token_file(state_dir: &Path) -> PathBuf {
    state_dir.join("admin").join("token")
}

/// The token: from the environment, else the state dir's, else a new one written there.
pub fn token(state_dir: &Path) -> Result<String> {
    if let Some(token) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
        return Ok(token.trim().to_owned());
    }
    let path = token_file(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read the admin token {}", path.display())),
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let dir = path.parent().context("the token file has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_private(&path, &token).with_context(|| format!("cannot write the admin token {}", path.display()))?;
    Ok(token)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// What the admin API works on.
pub struct Admin {
    registry: Arc<Registry>,
    manifest: Arc<Manifest>,
    deployments: Deployments,
    token: String,
    /// When the host started: the "deploy time" of a version it started with.
    started_at: String,
    /// The versions the never-deployed components started with, kept in the state dir
    /// at start: the first entry of their history when they are first deployed.
    started_with: BTreeMap<String, Version>,
    /// One deploy or rollback at a time, whichever component.
    changing: tokio::sync::Mutex<()>,
    /// For readiness: whether the bus answers.
    bus: Option<Bus>,
    /// The deploy ledger shared with the other hosts of the PostgreSQL database, if
    /// SQL runs there ([`crate::cluster`]): deploys and rollbacks are recorded there
    /// first, and every host follows them.
    ledger: Option<Arc<Ledger>>,
}

/// Why a deploy or rollback did not happen; the old version keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no running component `{0}`")]
    UnknownComponent(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// A deploy's or rollback's outcome.
#[derive(Debug, Serialize)]
pub struct Switched {
    pub component: String,
    pub version: Version,
    pub previous: String,
    /// From receiving the request to the switch, compilation included.
    pub took_ms: u64,
}

impl Admin {
    pub fn new(
        registry: Arc<Registry>,
        manifest: Arc<Manifest>,
        state_dir: &Path,
        token: String,
        started_with: BTreeMap<String, Version>,
        bus: Option<Bus>,
        ledger: Option<Arc<Ledger>>,
    ) -> Admin {
        Admin {
            bus,
            ledger,
            started_with,
            registry,
            manifest,
            deployments: Deployments::new(state_dir),
            token,
            started_at: crate::deployments::now_rfc3339(),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Deploys `wasm` as the new version of `id`.
    pub async fn deploy(&self, id: &str, wasm: &[u8], source: &str) -> Result<Switched, Refused> {
        let started = Instant::now();
        let _changing = self.changing.lock().await;
        let current = self.registry.get(id).ok_or_else(|| Refused::UnknownComponent(id.to_owned()))?;
        let (change, history) = self.begin_change(id).await?;
        let (version, file) = self.deployments.store(id, wasm, source).map_err(Refused::Internal)?;
        let next = self.check(id, &file)?;
        let declared = self.manifest.components.get(id);
        let migrations = declared.and_then(|c| Some((c.sql_databases.first()?, c.sql_migrations.as_ref()?)));
        if let Some((label, folder)) = migrations {
            current.context.sql.migrate(label, folder).await.map_err(|e| {
                Refused::Invalid(format!("a migration of `{id}` failed, the running version stays: {e}"))
            })?;
        }
        let started_with = self.started_with(id, &history);
        self.record(id, change, &history.deployed(version.clone(), started_with)).await?;
        Ok(self.switch(id, next, version, started))
    }

    /// Returns `id` to the version before the one serving.
    pub async fn rollback(&self, id: &str) -> Result<Switched, Refused> {
        let started = Instant::now();
        let _changing = self.changing.lock().await;
        self.registry.get(id).ok_or_else(|| Refused::UnknownComponent(id.to_owned()))?;
        let (change, history) = self.begin_change(id).await?;
        let rolled_back = history
            .rolled_back()
            .ok_or_else(|| Refused::Conflict(format!("`{id}` has no earlier version to roll back to")))?;
        let previous = rolled_back.current().cloned().ok_or_else(|| Refused::Internal(anyhow::anyhow!("empty history")))?;
        let file = match &self.ledger {
            Some(ledger) => ledger.fetch_into(&self.deployments, id, &previous).await.map_err(Refused::Internal)?,
            None => self.deployments.file(id, &previous),
        };
        let next = self.check(id, &file)?;
        self.record(id, change, &rolled_back).await?;
        Ok(self.switch(id, next, previous, started))
    }

    /// Switches `id` to the version the ledger says serves, if it is not the one
    /// serving here: a deploy or rollback made through another host.
    pub async fn follow(&self, ledger: &Ledger, id: &str) -> Result<()> {
        let started = Instant::now();
        let _changing = self.changing.lock().await;
        let (Some(history), Some(current)) = (ledger.history(id).await?, self.registry.get(id)) else {
            return Ok(());
        };
        let Some(version) = history.current().cloned() else { return Ok(()) };
        if version.digest != current.digest {
            let file = ledger.fetch_into(&self.deployments, id, &version).await?;
            let next = self.check(id, &file)?;
            self.deployments.record(id, &history)?;
            self.switch(id, next, version, started);
        } else {
            self.deployments.record(id, &history)?;
        }
        Ok(())
    }

    /// The component's history to change, locked in the ledger when the host has one.
    async fn begin_change(&self, id: &str) -> Result<(Option<Change>, History), Refused> {
        match &self.ledger {
            Some(ledger) => {
                let change = ledger.change(id).await.map_err(Refused::Internal)?;
                let history = change.history.clone();
                Ok((Some(change), history))
            }
            None => Ok((None, self.deployments.history(id).map_err(Refused::Internal)?)),
        }
    }

    /// Makes `history` the component's: in the ledger first, for every host, then in
    /// the state dir.
    async fn record(&self, id: &str, change: Option<Change>, history: &History) -> Result<(), Refused> {
        if let Some(change) = change {
            change
                .commit(history, &self.deployments)
                .await
                .map_err(|e| Refused::Internal(e.context("cannot record it in the deploy ledger; nothing changed")))?;
        }
        self.deployments.record(id, history).map_err(Refused::Internal)
    }

    /// The digest of every running component's serving version.
    pub fn running_versions(&self) -> BTreeMap<String, String> {
        self.registry
            .running()
            .filter_map(|id| Some((id.to_owned(), self.registry.get(id)?.digest.clone())))
            .collect()
    }

    /// Compiles and links the version in `file`, refusing one that does not fit, with
    /// everything that does not.
    fn check(&self, id: &str, file: &Path) -> Result<LoadedComponent, Refused> {
        let refuse = |problems: Vec<String>| Refused::Invalid(format!("the new version of `{id}` was refused: {}", problems.join("; ")));
        let current = self.registry.get(id).ok_or_else(|| Refused::UnknownComponent(id.to_owned()))?;
        let engine = self.registry.engine();
        let compiled = engine.load(file).map_err(|e| refuse(vec![format!("{e:#}")]))?;
        let mut problems = current.context.missing_grants(&compiled.component, engine.wasmtime());
        match self.registry.prepare_version(id, file) {
            Ok(next) if problems.is_empty() => Ok(next),
            Ok(_) => Err(refuse(problems)),
            Err(e) => {
                problems.insert(0, format!("{e:#}"));
                Err(refuse(problems))
            }
        }
    }

    fn switch(&self, id: &str, next: LoadedComponent, version: Version, started: Instant) -> Switched {
        let previous = self.registry.switch(id, next).map(|old| old.digest.clone()).unwrap_or_default();
        tracing::info!(component = %id, "now serving version {} (was {})", &version.digest[..12], short(&previous));
        Switched {
            component: id.to_owned(),
            version,
            previous,
            took_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
        }
    }

    /// The version the host started `id` with, to record before its first deploy.
    fn started_with(&self, id: &str, history: &History) -> Option<Version> {
        if !history.versions.is_empty() {
            return None;
        }
        self.started_with.get(id).map(|version| Version { deployed_at: self.started_at.clone(), ..version.clone() })
    }

    /// Every running component, as `estore components` shows it; with a ledger, what
    /// each host of the cluster runs of it.
    pub async fn component_views(&self) -> Vec<ComponentView> {
        let hosts = match &self.ledger {
            Some(ledger) => match ledger.hosts().await {
                Ok(hosts) => Some(hosts),
                Err(e) => {
                    tracing::warn!("cannot read the other hosts' versions from the deploy ledger: {e:#}");
                    None
                }
            },
            None => None,
        };
        self.registry
            .running()
            .filter_map(|id| {
                let current = self.registry.get(id)?;
                let history = self.deployments.history(id).unwrap_or_default();
                let (deployed_at, source) = match history.current() {
                    Some(version) if version.digest == current.digest => (version.deployed_at.clone(), version.source.clone()),
                    _ => (self.started_at.clone(), current.file.display().to_string()),
                };
                Some(ComponentView {
                    id: id.to_owned(),
                    version: current.digest.clone(),
                    deployed_at,
                    source,
                    triggers: self.triggers(id),
                    requests: current.served.requests.load(std::sync::atomic::Ordering::Relaxed),
                    messages: current.served.messages.load(std::sync::atomic::Ordering::Relaxed),
                    history: history_view(&history),
                    hosts: hosts.as_ref().zip(self.ledger.as_ref()).map(|(hosts, ledger)| hosts_view(hosts, id, ledger.host())),
                })
            })
            .collect()
    }

    fn triggers(&self, id: &str) -> Vec<String> {
        let http = self.manifest.http_triggers.iter().filter(|t| t.component == id).map(|t| match &t.route {
            HttpRoute::Path(route) => format!("http {route}"),
            HttpRoute::Private => "http (private)".to_owned(),
        });
        let kafka = self
            .manifest
            .kafka_triggers
            .iter()
            .filter(|t| t.component == id)
            .map(|t| format!("kafka {} (group {})", t.topics.join(", "), t.group));
        http.chain(kafka).collect()
    }
}

/// A running component, as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct ComponentView {
    pub id: String,
    /// The digest of the version serving.
    pub version: String,
    pub deployed_at: String,
    pub source: String,
    pub triggers: Vec<String>,
    pub requests: u64,
    pub messages: u64,
    pub history: Vec<HistoryEntry>,
    /// With hosts sharing PostgreSQL: what each runs of the component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<serde_json::Value>,
}

/// One version in a [`ComponentView`]'s history.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    /// The version's digest.
    pub version: String,
    pub deployed_at: String,
    pub source: String,
    pub serving: bool,
}

fn history_view(history: &History) -> Vec<HistoryEntry> {
    history
        .versions
        .iter()
        .enumerate()
        .map(|(index, v)| HistoryEntry {
            version: v.digest.clone(),
            deployed_at: v.deployed_at.clone(),
            source: v.source.clone(),
            serving: index == history.current,
        })
        .collect()
}

/// What each host runs of component `id`, this host first.
fn hosts_view(hosts: &[HostReport], id: &str, this_host: &str) -> serde_json::Value {
    let mut hosts: Vec<&HostReport> = hosts.iter().filter(|h| h.running.contains_key(id)).collect();
    hosts.sort_by_key(|h| h.host != this_host);
    hosts
        .iter()
        .map(|h| {
            json!({
                "host": h.host,
                "this_host": h.host == this_host,
                "version": h.running[id],
                "problem": h.problems.get(id),
                "seen_ms_ago": h.seen_ms_ago,
            })
        })
        .collect()
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("admin API: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let admin = admin.clone();
        let service = service_fn(move |req| {
            let admin = admin.clone();
            async move { Ok::<_, std::convert::Infallible>(admin.handle(req).await) }
        });
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("admin API connection ended: {e}");
            }
        });
    }
}

impl Admin {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() == Method::GET {
            match req.uri().path() {
                "/health/live" => return answer(StatusCode::OK, &health::liveness()),
                "/health/ready" => {
                    let (ready, checks) = health::readiness(&self.registry, &self.manifest, self.bus.as_ref()).await;
                    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                    return answer(status, &checks);
                }
                "/metrics" => return self.metrics().await,
                _ => {}
            }
        }
        if !self.authorised(&req) {
            return answer(StatusCode::UNAUTHORIZED, &json!({"error": "this needs the admin token: Authorization: Bearer <token>"}));
        }
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method().clone(), segments.as_slice()) {
            (Method::GET, ["v1", "components"]) => answer(StatusCode::OK, &self.component_views().await),
            (Method::POST, ["v1", "components", id, "deploy"]) => {
                let id = (*id).to_owned();
                let source = req
                    .headers()
                    .get("x-estore-source")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("uploaded")
                    .to_owned();
                let wasm = match Limited::new(req.into_body(), MAX_WASM_BYTES).collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(e) => return answer(StatusCode::BAD_REQUEST, &json!({"error": format!("cannot read the wasm: {e}")})),
                };
                outcome(self.deploy(&id, &wasm, &source).await)
            }
            (Method::POST, ["v1", "components", id, "rollback"]) => outcome(self.rollback(id).await),
            _ => answer(StatusCode::NOT_FOUND, &json!({"error": format!("no admin route {} {path}", req.method())})),
        }
    }

    /// Reads the levels (pools, outboxes, lag, memory), then renders every metric.
    async fn metrics(&self) -> Response<Full<Bytes>> {
        for id in self.manifest.components.keys() {
            if let Some(component) = self.registry.get(id) {
                component.context.sql.report_levels(id).await;
            }
        }
        if let Some(bus) = &self.bus {
            bus.report_lag().await;
        }
        let metrics = estore_engine::metrics::global();
        metrics.refresh_host_levels();
        let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response
    }

    fn authorised<B>(&self, req: &Request<B>) -> bool {
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Constant time: the comparison does not tell how much of a guess was right.
        given.len() == self.token.len() && given.bytes().zip(self.token.bytes()).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

fn outcome(result: Result<Switched, Refused>) -> Response<Full<Bytes>> {
    match result {
        Ok(switched) => answer(StatusCode::OK, &switched),
        Err(refused) => {
            let status = match &refused {
                Refused::UnknownComponent(_) => StatusCode::NOT_FOUND,
                Refused::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Refused::Conflict(_) => StatusCode::CONFLICT,
                Refused::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!("admin API: {refused}");
            answer(status, &json!({"error": refused.to_string()}))
        }
    }
}

fn answer<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(body).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#).into_bytes());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// Writes the admin listener's address where `estore deploy` looks for it.
pub fn publish_address(state_dir: &Path, address: SocketAddr) -> Result<()> {
    let path = address_file(state_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, address.to_string()).with_context(|| format!("cannot write {}", path.display()))
}
