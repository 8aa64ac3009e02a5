//! `estore up`: load the application, wire every component to its grants, serve.
//!
//! Everything that can be wrong with the manifest, the runtime config or a component
//! is found here, before the listener opens, and reported with the file and key at
//! fault; once serving, a failing component only fails its own requests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::net::TcpListener;

use estore_bus::Bus;
use estore_engine::limits::{InstanceReuse, RequestLimits, Slots};
use estore_engine::{Engine, EngineSettings};
use estore_instance::Capabilities;
use estore_instance::registry::{Registry, TriggeredBy};
use estore_manifest::{HttpRoute, Manifest};
use estore_runtime_config::RuntimeConfig;
use estore_trigger_http::HttpDispatcher;
use estore_trigger_kafka::MessageDispatcher;
use estore_variables::AppVariables;

use crate::admin::{self, Admin};
use crate::cluster::{self, Ledger};
use crate::deployments::Deployments;

/// How long a stopping host waits for in-flight requests beyond their own deadlines.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

pub struct UpOptions {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub runtime_config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// The admin API's address (deploy, rollback, components).
    pub admin_listen: SocketAddr,
    /// This host's name among the hosts of one PostgreSQL database. Default: the
    /// machine's name and the state dir.
    pub host_id: Option<String>,
    /// Serve even while secret variables hold their manifest defaults (or keys are
    /// too short): for a developer's own machine, never for one others can reach.
    pub allow_default_secrets: bool,
    /// Spin's instance-reuse flags, over the runtime config's defaults.
    pub reuse: ReuseFlags,
}

/// `--max-instance-reuse-count`, `--max-instance-concurrent-reuse-count` and
/// `--idle-instance-timeout`, as `spin up` takes them.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReuseFlags {
    pub max_instance_reuse_count: Option<u64>,
    pub max_instance_concurrent_reuse_count: Option<u64>,
    pub idle_instance_timeout: Option<Duration>,
}

impl ReuseFlags {
    fn apply(self, limits: &mut estore_runtime_config::Limits) {
        limits.max_instance_reuse_count = self.max_instance_reuse_count.or(limits.max_instance_reuse_count);
        limits.max_instance_concurrent_reuse_count =
            self.max_instance_concurrent_reuse_count.or(limits.max_instance_concurrent_reuse_count);
        if let Some(idle) = self.idle_instance_timeout {
            limits.idle_instance_timeout_ms = Some(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1));
        }
    }
}

/// A duration as Spin's flags write one: seconds (`5`), or a number with `s`, `ms`,
/// `us` (or `μs`) or `ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let number = |digits: &str| {
        digits.parse::<u64>().map_err(|_| format!("`{text}` is not a duration: seconds, or a number with s, ms, us or ns"))
    };
    if let Some(n) = text.strip_suffix("ms") {
        Ok(Duration::from_millis(number(n)?))
    } else if let Some(n) = text.strip_suffix("us").or_else(|| text.strip_suffix("μs")) {
        Ok(Duration::from_micros(number(n)?))
    } else if let Some(n) = text.strip_suffix("ns") {
        Ok(Duration::from_nanos(number(n)?))
    } else {
        Ok(Duration::from_secs(number(text.strip_suffix('s').unwrap_or(text))?))
    }
}

/// Refuses to serve with weak secrets, naming each and how to set it; with the
/// development switch, serves and says loudly which are weak.
fn check_secrets(manifest: &Manifest, variables: &AppVariables, allow_default_secrets: bool) -> Result<()> {
    let weak = variables.weak_secrets(manifest);
    if weak.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = weak.iter().map(|w| format!("  - {w}")).collect();
    if allow_default_secrets {
        let names: Vec<&str> = weak.iter().map(|w| w.name.as_str()).collect();
        tracing::warn!(
            "serving with development secrets ({}), as --allow-default-secrets asks: anyone who \
             reads {} can sign tokens or log in here; never let others reach this host",
            names.join(", "),
            manifest.path.display()
        );
        return Ok(());
    }
    Err(anyhow!(
        "{}: refusing to start with unsafe secrets:\n{}\nFor development on this machine only, \
         `estore up --allow-default-secrets` serves with them.",
        manifest.path.display(),
        list.join("\n")
    ))
}

/// Where an application keeps its state when not told: `.estore` beside the manifest.
pub fn default_state_dir(manifest: &Manifest) -> PathBuf {
    manifest.dir.join(".estore")
}

pub async fn up(options: UpOptions) -> Result<()> {
    let manifest = Arc::new(Manifest::load(&options.manifest)?);
    let variables = AppVariables::resolve(&manifest, |name| std::env::var(name).ok())?;
    check_secrets(&manifest, &variables, options.allow_default_secrets)?;
    manifest.check_sources()?;
    let mut runtime = match &options.runtime_config {
        Some(path) => RuntimeConfig::load(path)?,
        None => RuntimeConfig::default(),
    };
    options.reuse.apply(&mut runtime.limits);
    let state_dir = options.state_dir.clone().unwrap_or_else(|| default_state_dir(&manifest));
    let _state_dir_lock = crate::state_dir::claim(&state_dir)?;

    let limits_of = |id: &str| {
        let own = manifest.components.get(id).map(|c| &c.limits);
        RequestLimits {
            timeout: own
                .and_then(|l| l.request_timeout_ms)
                .map(Duration::from_millis)
                .unwrap_or_else(|| runtime.request_timeout()),
            max_memory_bytes: own
                .and_then(|l| l.max_memory_mb)
                .unwrap_or_else(|| runtime.max_memory_mb())
                .saturating_mul(1 << 20)
                .try_into()
                .unwrap_or(usize::MAX),
            max_request_body_bytes: own
                .and_then(|l| l.max_request_body_bytes)
                .unwrap_or_else(|| runtime.max_request_body_bytes()),
            reuse: {
                let (requests, concurrent) = runtime.instance_reuse();
                let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
                InstanceReuse {
                    max_requests: count(own.and_then(|l| l.max_instance_reuse_count).unwrap_or(requests)),
                    max_concurrent: count(own.and_then(|l| l.max_instance_concurrent_reuse_count).unwrap_or(concurrent)),
                    idle_timeout: own
                        .and_then(|l| l.idle_instance_timeout_ms)
                        .map(Duration::from_millis)
                        .unwrap_or_else(|| runtime.idle_instance_timeout()),
                }
            },
        }
    };
    let server_limits = runtime.server_limits();
    let slots_per_component = usize::try_from(runtime.max_instances_per_component()).unwrap_or(usize::MAX);
    let largest_memory = manifest.components.keys().map(|id| limits_of(id).max_memory_bytes).max().unwrap_or(0);
    let engine = Engine::new(&EngineSettings {
        max_memory_bytes: largest_memory as u64,
        max_instances: runtime.max_instances(),
        cache_dir: options.cache_dir.clone().unwrap_or_else(|| state_dir.join("cache")),
    })?;

    let (bus_config, delivery) = runtime.messaging(&manifest)?;
    let bus = match uses_the_bus(&manifest) {
        true => Some(Bus::open(&bus_config, &state_dir).await?),
        false => None,
    };
    if let Some(bus) = &bus {
        create_publish_topics(&manifest, bus);
    }
    let mut capabilities =
        Capabilities::open(&manifest, &runtime, &state_dir, variables, bus.clone(), delivery.publish_timeout).await?;
    let linker = estore_instance::linker(engine.wasmtime())?;
    let deployments = Deployments::new(&state_dir);
    let ledger = match estore_sql::postgres_url(&runtime)? {
        Some(url) => {
            let host = options.host_id.clone().unwrap_or_else(|| cluster::default_host_id(&state_dir));
            let ledger = Arc::new(Ledger::new(&url, host)?);
            if let Err(e) = ledger.prepare_state_dir(&deployments).await {
                tracing::warn!("cannot read the deploy ledger in PostgreSQL ({e:#}); starting on this host's own versions");
            }
            Some(ledger)
        }
        None => None,
    };
    let mut started_with = std::collections::BTreeMap::new();
    let mut registry = Registry::new(engine, linker);
    for component in manifest.components.values() {
        let triggered_by = TriggeredBy {
            http: manifest.http_triggers.iter().any(|t| t.component == component.id),
            kafka: manifest.kafka_triggers.iter().any(|t| t.component == component.id),
        };
        if !triggered_by.http && !triggered_by.kafka {
            tracing::warn!(component = %component.id, "no trigger names this component; not loaded");
            continue;
        }
        let slots = Slots::new(slots_per_component);
        let context = match capabilities.grant(&manifest, component, &state_dir, limits_of(&component.id), slots)? {
            Ok(context) => context,
            Err(why) => {
                registry.mark_failed(&component.id, why);
                continue;
            }
        };
        let source = match deployments.serving(&component.id) {
            Ok(Some((version, file))) => {
                tracing::info!(
                    component = %component.id,
                    "serving the version deployed at {} ({}); `estore rollback` returns to the one before",
                    version.deployed_at,
                    &version.digest[..12.min(version.digest.len())]
                );
                file
            }
            Ok(None) => {
                // Kept now, so a rollback after the first deploy returns to exactly
                // this, even if the file at `source` is rebuilt meanwhile.
                match std::fs::read(&component.source)
                    .map_err(anyhow::Error::from)
                    .and_then(|wasm| deployments.store(&component.id, &wasm, &component.source.display().to_string()))
                {
                    Ok((version, _)) => {
                        started_with.insert(component.id.clone(), version);
                    }
                    Err(e) => tracing::warn!(component = %component.id, "cannot keep the version it starts with: {e:#}"),
                }
                component.source.clone()
            }
            Err(e) => {
                tracing::error!(component = %component.id, "{e:#}; serving the manifest's source instead");
                component.source.clone()
            }
        };
        if let Err(e) = registry.load(context, &source, triggered_by) {
            registry.mark_failed(&component.id, format!("{e:#}"));
        }
    }
    let registry = Arc::new(registry);
    let dispatcher = Arc::new(
        HttpDispatcher::new(&manifest, registry.clone(), server_limits.body_read_timeout)
            .map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?,
    );

    let messages = bus.as_ref().map(|bus| {
        let messages = MessageDispatcher::new(registry.clone(), dispatcher.clone(), bus.clone(), delivery);
        messages.start(&manifest.kafka_triggers);
        messages
    });

    let listener =
        TcpListener::bind(options.listen).await.with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let admin_listener = TcpListener::bind(options.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} for the admin API", options.admin_listen))?;
    let admin_address = admin_listener.local_addr()?;
    admin::publish_address(&state_dir, admin_address)?;
    let admin = Arc::new(Admin::new(
        registry.clone(),
        manifest.clone(),
        &state_dir,
        admin::token(&state_dir)?,
        started_with,
        bus.clone(),
        ledger.clone(),
    ));
    capabilities.operations().connect(admin.clone());
    print_routes(&manifest, &registry, bus.as_ref(), address);
    let token_from = match std::env::var_os(admin::TOKEN_ENV) {
        Some(_) => admin::TOKEN_ENV.to_owned(),
        None => admin::token_file(&state_dir).display().to_string(),
    };
    println!("Admin API: http://{admin_address} (token: {token_from})");
    let drain = runtime.request_timeout().max(largest_timeout(&manifest)) + DRAIN_GRACE;
    // One signal stops both triggers; each drains what it is running meanwhile.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.send_replace(true);
        }
    });
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let drain_messages = async {
        stopped(stopping.clone()).await;
        if let Some(messages) = &messages {
            messages.shutdown(drain).await;
        }
    };
    let serve = async {
        let served = estore_trigger_http::serve(listener, dispatcher, server_limits, stopped(stopping.clone()), drain).await;
        // A server that failed stops the message handlers too.
        stop.send_replace(true);
        served
    };
    let follow_deploys = async {
        if let Some(ledger) = ledger {
            cluster::follow(ledger, admin.clone(), stopped(stopping.clone())).await;
        }
    };
    let serve_admin = admin::serve(admin_listener, admin.clone(), stopped(stopping.clone()));
    let (served, (), (), ()) = tokio::join!(serve, drain_messages, serve_admin, follow_deploys);
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Whether anything publishes or consumes: only then is a bus opened (no file, no
/// broker connection for an application without events).
fn uses_the_bus(manifest: &Manifest) -> bool {
    !manifest.kafka_triggers.is_empty() || manifest.components.values().any(|c| !c.allowed_publish_topics.is_empty())
}

/// Creates the topics components publish to, in the background: a broker that is down
/// at start must not keep HTTP from being served.
fn create_publish_topics(manifest: &Manifest, bus: &Bus) {
    let topics: BTreeSet<String> =
        manifest.components.values().flat_map(|c| c.allowed_publish_topics.iter().cloned()).collect();
    let topics: Vec<String> = topics.into_iter().collect();
    let bus = bus.clone();
    tokio::spawn(async move {
        estore_bus::retry_until_ready("creating the topics components publish to", || bus.ensure_topics(&topics))
            .await
    });
}

/// The longest deadline the manifest sets, a component's or a route's.
fn largest_timeout(manifest: &Manifest) -> Duration {
    let components = manifest.components.values().filter_map(|c| c.limits.request_timeout_ms);
    let routes = manifest.http_triggers.iter().filter_map(|t| t.request_timeout_ms);
    components.chain(routes).max().map(Duration::from_millis).unwrap_or_default()
}

/// Spin's start-up banner: tests and people both read the address from it.
fn print_routes(manifest: &Manifest, registry: &Registry, bus: Option<&Bus>, address: SocketAddr) {
    println!("Serving http://{address}");
    println!("Available Routes:");
    let base = manifest.application.http_base.trim_end_matches('/');
    for trigger in &manifest.http_triggers {
        if let HttpRoute::Path(route) = &trigger.route {
            let (path, wildcard) = match route.strip_suffix("/...") {
                Some(prefix) => (prefix, " (wildcard)"),
                None => (route.as_str(), ""),
            };
            let path = if path.is_empty() { "/" } else { path };
            let down = if registry.failure(&trigger.component).is_some() { " [not running: see the log]" } else { "" };
            println!("  {}: http://{address}{base}{path}{wildcard}{down}", trigger.component);
        }
    }
    if let Some(bus) = bus.filter(|_| !manifest.kafka_triggers.is_empty()) {
        println!("Kafka Triggers ({}):", bus.describe());
        for trigger in &manifest.kafka_triggers {
            let down = if registry.failure(&trigger.component).is_some() { " [not running: see the log]" } else { "" };
            println!("  {}: {} (group {}){down}", trigger.component, trigger.topics.join(", "), trigger.group);
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_spins_flags_write_them() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_duration("9ns"), Ok(Duration::from_nanos(9)));
        for bad in ["", "s", "1.5s", "1..8s", "ten", "-1"] {
            assert!(parse_duration(bad).is_err_and(|e| e.contains("is not a duration")), "{bad}");
        }
    }
}
