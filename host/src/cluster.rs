//! Deploys shared by every host of one PostgreSQL database.
//!
//! Hosts whose runtime config puts SQL on PostgreSQL serve one application together,
//! so a deploy or rollback sent to any of them is for all of them. The database keeps,
//! in the schema `estore_cluster`:
//! - `deploys`: each component's deploy history (as the state dir keeps it) and a
//!   generation counted up by every change;
//! - `versions`: the wasm of each version a history names, so any host can fetch it;
//! - `hosts`: what each host runs, written every second, for `estore components`.
//!
//! A deploy changes the history under the row's lock, so two deploys of a component
//! sent to two hosts at once are ordered, and the second builds on the first. Each
//! host looks at the generations every [`FOLLOW_EVERY`] and switches to the current
//! version of any history that changed, the way a deploy on it would (compile, check,
//! switch: running requests keep their version, so none fails). The state dir's
//! history mirrors the ledger's, so a host started later starts on the version the
//! others serve.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};

use crate::admin::Admin;
use estore_sql::{RELEASE_SET_UP_LOCK, TAKE_SET_UP_LOCK};
use crate::deployments::{Deployments, History, Version};

/// How often a host looks for deploys made through the others.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How long a deploy waits for another deploy of the same component to finish.
const CHANGE_WAIT: Duration = Duration::from_secs(120);
/// How long a host that could not switch to a version waits before trying again.
const RETRY_PROBLEMS_AFTER: Duration = Duration::from_secs(10);
/// Hosts not heard from for longer are left out of `estore components`.
const FORGET_HOSTS_AFTER: Duration = Duration::from_secs(300);

const SCHEMA: &str = "
    CREATE SCHEMA IF NOT EXISTS estore_cluster;
    CREATE TABLE IF NOT EXISTS estore_cluster.deploys (
        component TEXT PRIMARY KEY,
        generation BIGINT NOT NULL,
        history TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS estore_cluster.versions (
        component TEXT NOT NULL,
        digest TEXT NOT NULL,
        wasm BYTEA NOT NULL,
        PRIMARY KEY (component, digest)
    );
    CREATE TABLE IF NOT EXISTS estore_cluster.hosts (
        host TEXT PRIMARY KEY,
        running TEXT NOT NULL,
        problems TEXT NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL
    );";

/// The deploy ledger in the shared PostgreSQL, as one host sees it.
pub struct Ledger {
    pool: PgPool,
    /// This host's name in `hosts`.
    host: String,
}

/// A component's history, locked for a deploy or rollback until committed or dropped.
pub struct Change {
    transaction: sqlx::Transaction<'static, Postgres>,
    component: String,
    /// The history as the ledger has it now.
    pub history: History,
}

/// One host's report: the version of each component it runs, and why it does not run
/// the ledger's version where it could not switch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostReport {
    pub host: String,
    pub running: BTreeMap<String, String>,
    pub problems: BTreeMap<String, String>,
    pub seen_ms_ago: i64,
}

impl Ledger {
    /// The ledger of the database at `url` (connected on first use: a database down at
    /// start does not keep the host from serving).
    pub fn new(url: &str, host: String) -> Result<Ledger> {
        let options: PgConnectOptions = url.parse().context("[sql] url is not a PostgreSQL connection URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        Ok(Ledger { pool, host })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Creates the ledger's tables, under the set-up lock the hosts' provisioning takes,
    /// since PostgreSQL's `IF NOT EXISTS` is not safe against a concurrent creation.
    async fn create_tables(&self) -> Result<()> {
        let mut connection = self.pool.acquire().await?;
        sqlx::query(TAKE_SET_UP_LOCK).execute(&mut *connection).await?;
        let created = sqlx::raw_sql(SCHEMA).execute(&mut *connection).await;
        sqlx::query(RELEASE_SET_UP_LOCK).execute(&mut *connection).await?;
        created.map(drop).context("cannot create the deploy ledger's tables")
    }

    /// Every component's history with its generation.
    async fn histories(&self) -> Result<BTreeMap<String, (i64, History)>> {
        let rows = sqlx::query("SELECT component, generation, history FROM estore_cluster.deploys")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let component: String = row.try_get("component")?;
                let history = parse_history(&component, row.try_get("history")?)?;
                Ok((component, (row.try_get("generation")?, history)))
            })
            .collect()
    }

    /// The component's history, if it was ever deployed through the ledger.
    pub async fn history(&self, component: &str) -> Result<Option<History>> {
        let row = sqlx::query("SELECT history FROM estore_cluster.deploys WHERE component = $1")
            .bind(component)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| parse_history(component, row.try_get("history")?)).transpose()
    }

    /// Locks the component's history for a change: another host's change of it waits.
    pub async fn change(&self, component: &str) -> Result<Change> {
        let mut transaction = self.pool.begin().await.context("the deploy ledger in PostgreSQL does not answer")?;
        sqlx::query(&format!("SET LOCAL lock_timeout = {}", CHANGE_WAIT.as_millis())).execute(&mut *transaction).await?;
        sqlx::query(
            "INSERT INTO estore_cluster.deploys (component, generation, history) VALUES ($1, 0, $2) \
             ON CONFLICT (component) DO NOTHING",
        )
        .bind(component)
        .bind(serde_json::to_string(&History::default())?)
        .execute(&mut *transaction)
        .await?;
        let row = sqlx::query("SELECT history FROM estore_cluster.deploys WHERE component = $1 FOR UPDATE")
            .bind(component)
            .fetch_one(&mut *transaction)
            .await
            .with_context(|| format!("`{component}` is being deployed through another host"))?;
        let history = parse_history(component, row.try_get("history")?)?;
        Ok(Change { transaction, component: component.to_owned(), history })
    }

    /// The wasm of one version, fetched into the state dir unless it is there already.
    pub async fn fetch_into(&self, deployments: &Deployments, component: &str, version: &Version) -> Result<PathBuf> {
        let file = deployments.file(component, version);
        if file.exists() {
            return Ok(file);
        }
        let row = sqlx::query("SELECT wasm FROM estore_cluster.versions WHERE component = $1 AND digest = $2")
            .bind(component)
            .bind(&version.digest)
            .fetch_optional(&self.pool)
            .await?
            .with_context(|| format!("the deploy ledger has no wasm for version {} of `{component}`", version.digest))?;
        let wasm: Vec<u8> = row.try_get("wasm")?;
        let (stored, file) = deployments.store(component, &wasm, &version.source)?;
        if stored.digest != version.digest {
            let _ = std::fs::remove_file(&file);
            bail!("the deploy ledger's wasm for version {} of `{component}` has digest {}", version.digest, stored.digest);
        }
        Ok(file)
    }

    /// Records this host's running versions (and why any is not the ledger's).
    async fn report(&self, running: &BTreeMap<String, String>, problems: &BTreeMap<String, String>) -> Result<()> {
        sqlx::query(
            "INSERT INTO estore_cluster.hosts (host, running, problems, seen_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (host) DO UPDATE SET running = $2, problems = $3, seen_at = now()",
        )
        .bind(&self.host)
        .bind(serde_json::to_string(running)?)
        .bind(serde_json::to_string(problems)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes this host out of the reports, as it stops.
    pub async fn leave(&self) {
        let left = sqlx::query("DELETE FROM estore_cluster.hosts WHERE host = $1").bind(&self.host).execute(&self.pool);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), left).await {
            tracing::debug!("cannot take this host out of the deploy ledger: {e}");
        }
    }

    /// Every host heard from lately, this one included.
    pub async fn hosts(&self) -> Result<Vec<HostReport>> {
        let rows = sqlx::query(
            "SELECT host, running, problems, (extract(epoch FROM now() - seen_at) * 1000)::BIGINT AS ago \
             FROM estore_cluster.hosts WHERE seen_at > now() - make_interval(secs => $1) ORDER BY host",
        )
        .bind(FORGET_HOSTS_AFTER.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HostReport {
                    host: row.try_get("host")?,
                    running: serde_json::from_str(row.try_get("running")?)?,
                    problems: serde_json::from_str(row.try_get("problems")?)?,
                    seen_ms_ago: row.try_get("ago")?,
                })
            })
            .collect()
    }

    /// Brings the state dir's histories to the ledger's before the host loads its
    /// components, so it starts on the versions the other hosts serve.
    pub async fn prepare_state_dir(&self, deployments: &Deployments) -> Result<()> {
        self.create_tables().await?;
        for (component, (_, history)) in self.histories().await? {
            if let Some(current) = history.current() {
                self.fetch_into(deployments, &component, current).await?;
                deployments.record(&component, &history)?;
            }
        }
        Ok(())
    }
}

impl Change {
    /// Makes `history` the component's for every host, with the wasm of each version
    /// it names that the ledger lacks (read from the state dir).
    pub async fn commit(mut self, history: &History, deployments: &Deployments) -> Result<()> {
        let known: Vec<String> = sqlx::query_scalar("SELECT digest FROM estore_cluster.versions WHERE component = $1")
            .bind(&self.component)
            .fetch_all(&mut *self.transaction)
            .await?;
        for version in history.versions.iter().filter(|v| !known.contains(&v.digest)) {
            let file = deployments.file(&self.component, version);
            let wasm = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            sqlx::query("INSERT INTO estore_cluster.versions (component, digest, wasm) VALUES ($1, $2, $3)")
                .bind(&self.component)
                .bind(&version.digest)
                .bind(wasm)
                .execute(&mut *self.transaction)
                .await?;
        }
        let kept: Vec<String> = history.versions.iter().map(|v| v.digest.clone()).collect();
        sqlx::query("DELETE FROM estore_cluster.versions WHERE component = $1 AND NOT (digest = ANY($2))")
            .bind(&self.component)
            .bind(&kept)
            .execute(&mut *self.transaction)
            .await?;
        sqlx::query("UPDATE estore_cluster.deploys SET generation = generation + 1, history = $2 WHERE component = $1")
            .bind(&self.component)
            .bind(serde_json::to_string(history)?)
            .execute(&mut *self.transaction)
            .await?;
        self.transaction.commit().await?;
        Ok(())
    }
}

fn parse_history(component: &str, json: &str) -> Result<History> {
    serde_json::from_str(json).with_context(|| format!("the deploy ledger's history of `{component}` is not one"))
}

/// Keeps this host on the ledger's versions until `stop`: every [`FOLLOW_EVERY`] it
/// switches each component whose history changed, then reports what it runs.
pub async fn follow(ledger: Arc<Ledger>, admin: Arc<Admin>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut following = Following::default();
    loop {
        following.look(&ledger, &admin).await;
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            () = &mut stop => break,
        }
    }
    ledger.leave().await;
}

/// What [`follow`] remembers between looks.
#[derive(Default)]
struct Following {
    tables_created: bool,
    /// The generation of each history this host has followed.
    seen: BTreeMap<String, i64>,
    /// Why a component does not run the ledger's version, and when to try again: a
    /// version that does not fit is not compiled every second.
    problems: BTreeMap<String, (String, Instant)>,
    unreachable: bool,
}

impl Following {
    async fn look(&mut self, ledger: &Ledger, admin: &Admin) {
        match self.switch_what_changed(ledger, admin).await {
            Ok(()) if self.unreachable => {
                tracing::info!("the deploy ledger in PostgreSQL answers again");
                self.unreachable = false;
            }
            Ok(()) => {}
            Err(e) if !self.unreachable => {
                tracing::warn!("cannot read the deploy ledger in PostgreSQL: {e:#}; deploys through other hosts wait");
                self.unreachable = true;
            }
            Err(_) => {}
        }
    }

    async fn switch_what_changed(&mut self, ledger: &Ledger, admin: &Admin) -> Result<()> {
        if !self.tables_created {
            ledger.create_tables().await?;
            self.tables_created = true;
        }
        for (component, (generation, _)) in ledger.histories().await? {
            let waiting = self.problems.get(&component).is_some_and(|(_, retry_at)| Instant::now() < *retry_at);
            if self.seen.get(&component) == Some(&generation) || waiting {
                continue;
            }
            match admin.follow(ledger, &component).await {
                Ok(()) => {
                    self.problems.remove(&component);
                    self.seen.insert(component, generation);
                }
                Err(e) => {
                    tracing::error!(component = %component, "cannot switch to the version deployed through another host: {e:#}");
                    self.problems.insert(component, (format!("{e:#}"), Instant::now() + RETRY_PROBLEMS_AFTER));
                }
            }
        }
        let problems = self.problems.iter().map(|(component, (why, _))| (component.clone(), why.clone())).collect();
        ledger.report(&admin.running_versions(), &problems).await
    }
}

/// This host's name in the ledger when not given: the machine and the state dir, which
/// only one host at a time can use.
pub fn default_host_id(state_dir: &std::path::Path) -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    format!("{machine}:{}", dir.display())
}
