//! `estore`: the command line. The host itself is the library (`src/lib.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use estore::admin::client::AdminClient;
use estore_manifest::Manifest;
use estore_engine::telemetry::{self, LogFormat};
use estore::{app, builder, watch};

#[derive(Parser)]
#[command(name = "estore", version, about = "Run Spin-format WebAssembly applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines look: `human` (default) or `json` (one JSON object per line, for
    /// log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "ESTORE_LOG_FORMAT")]
    log_format: LogFormat,
}


#[derive(Subcommand)]
enum Command {
    /// Start the application: serve its triggers until interrupted.
    Up(UpArgs),
    /// Build the application's components with their build commands.
    Build(BuildArgs),
    /// Replace one component of the running host with a new version (built first when
    /// no file is given); the host keeps serving throughout.
    Deploy(DeployArgs),
    /// Return a component of the running host to its previous version.
    Rollback(ComponentArgs),
    /// List the running host's components: version, deploy time, source, triggers,
    /// requests and messages served.
    Components(HostArgs),
    /// Rebuild the components whose sources change and deploy each into the running
    /// host, until interrupted.
    Watch(HostArgs),
}

/// How the CLI finds a running host: by its state dir.
#[derive(Args)]
struct HostArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// The running host's state dir. Default: .estore beside the manifest.
    #[arg(long, env = "ESTORE_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ComponentArgs {
    /// The component's id in the manifest.
    component: String,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Args)]
struct DeployArgs {
    /// The component's id in the manifest.
    component: String,
    /// The new version's wasm. Default: build the component, then take its `source`.
    file: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Args)]
struct ManifestArg {
    /// The application manifest, or a folder containing spin.toml.
    #[arg(short = 'f', long = "from", alias = "file", default_value = "spin.toml")]
    manifest: PathBuf,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Address to listen on for HTTP.
    #[arg(long, default_value = "127.0.0.1:3000", env = "ESTORE_LISTEN")]
    listen: SocketAddr,
    /// Runtime configuration (stores, limits), as Spin's runtime-config.toml.
    #[arg(long = "runtime-config-file", env = "ESTORE_RUNTIME_CONFIG")]
    runtime_config: Option<PathBuf>,
    /// Folder for the application's state (key-value data, compiled cache).
    /// Default: .estore beside the manifest.
    #[arg(long, env = "ESTORE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Folder for compiled components. Default: <state-dir>/cache.
    #[arg(long, env = "ESTORE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Address of the admin API (deploy, rollback, components). Keep it on loopback
    /// or a private network: it replaces code.
    #[arg(long, default_value = "127.0.0.1:0", env = "ESTORE_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
    /// This host's name among the hosts sharing one PostgreSQL database, as
    /// `estore components` shows it. Default: the machine's name and the state dir.
    #[arg(long, env = "ESTORE_HOST_ID")]
    host_id: Option<String>,
    /// Build the components before starting.
    #[arg(long)]
    build: bool,
    /// Serve even while `secret = true` variables hold their manifest defaults or
    /// keys are shorter than 32 bytes. Development only: the defaults are public.
    #[arg(long)]
    allow_default_secrets: bool,
    /// Requests one WASI 0.3 instance serves in all before it is dropped (Spin's
    /// flag; default 128). Overrides the runtime config's; a component's own
    /// `[component.<id>.limits]` overrides this.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_reuse_count: Option<u64>,
    /// Requests one WASI 0.3 instance serves at once (Spin's flag; default 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_concurrent_reuse_count: Option<u64>,
    /// How long an idle WASI 0.3 instance is kept for the next request (Spin's flag;
    /// default 1s): seconds, or a number with `s`, `ms`, `us` or `ns`.
    #[arg(long, value_name = "DURATION", value_parser = app::parse_duration)]
    idle_instance_timeout: Option<std::time::Duration>,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Build only this component (repeatable).
    #[arg(short = 'c', long = "component-id")]
    component: Vec<String>,
    /// Start the application once built (as `estore up`, with its defaults).
    #[arg(long)]
    up: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only a serving host has spans to export.
    let serves = matches!(&cli.command, Command::Up(_) | Command::Build(BuildArgs { up: true, .. }));
    let telemetry = match telemetry::init(cli.log_format, serves) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = run(cli);
    drop(telemetry);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => {
            let path = manifest_path(&args.manifest.manifest);
            builder::build(&Manifest::load(&path)?, &args.component)?;
            if args.up {
                return serve(app::UpOptions {
                    manifest: path,
                    listen: ([127, 0, 0, 1], 3000).into(),
                    runtime_config: None,
                    state_dir: None,
                    cache_dir: None,
                    admin_listen: ([127, 0, 0, 1], 0).into(),
                    host_id: None,
                    allow_default_secrets: false,
                    reuse: app::ReuseFlags::default(),
                });
            }
            Ok(())
        }
        Command::Up(args) => {
            let path = manifest_path(&args.manifest.manifest);
            if args.build {
                builder::build(&Manifest::load(&path)?, &[])?;
            }
            serve(app::UpOptions {
                manifest: path,
                listen: args.listen,
                runtime_config: args.runtime_config,
                state_dir: args.state_dir,
                cache_dir: args.cache_dir,
                admin_listen: args.admin_listen,
                host_id: args.host_id,
                allow_default_secrets: args.allow_default_secrets,
                reuse: app::ReuseFlags {
                    max_instance_reuse_count: args.max_instance_reuse_count,
                    max_instance_concurrent_reuse_count: args.max_instance_concurrent_reuse_count,
                    idle_instance_timeout: args.idle_instance_timeout,
                },
            })
        }
        Command::Deploy(args) => {
            let (manifest, client) = host(&args.host)?;
            let file = match args.file {
                Some(file) => file,
                None => {
                    builder::build(&manifest, std::slice::from_ref(&args.component))?;
                    manifest.components[&args.component].source.clone()
                }
            };
            let switched = block_on(client.deploy(&args.component, &file))?;
            println!("{}", describe_switch("deployed", &switched));
            Ok(())
        }
        Command::Rollback(args) => {
            let (_, client) = host(&args.host)?;
            let switched = block_on(client.rollback(&args.component))?;
            println!("{}", describe_switch("rolled back", &switched));
            Ok(())
        }
        Command::Components(args) => {
            let (_, client) = host(&args)?;
            print_components(&block_on(client.components())?);
            Ok(())
        }
        Command::Watch(args) => {
            let (manifest, client) = host(&args)?;
            block_on(watch::watch(&manifest, &client))
        }
    }
}

/// The manifest, and the admin API of the host serving it.
fn host(args: &HostArgs) -> anyhow::Result<(Manifest, AdminClient)> {
    let path = manifest_path(&args.manifest.manifest);
    let manifest = Manifest::load(&path)?;
    let state_dir = args.state_dir.clone().unwrap_or_else(|| app::default_state_dir(&manifest));
    Ok((manifest, AdminClient::for_state_dir(&state_dir)?))
}

fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(future)
}

fn describe_switch(what: &str, switched: &serde_json::Value) -> String {
    let short = |v: &serde_json::Value| v.as_str().map(|s| s.chars().take(12).collect::<String>()).unwrap_or_default();
    format!(
        "{what} {}: now {} (was {}), in {} ms",
        switched["component"].as_str().unwrap_or("?"),
        short(&switched["version"]["digest"]),
        short(&switched["previous"]),
        switched["took_ms"]
    )
}

/// The table of `estore components`. A closed pipe (`| head`) ends it quietly.
fn print_components(components: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:<12} {:<12} {:<24} {:>9} {:>9}  SOURCE / TRIGGERS", "COMPONENT", "VERSION", "DEPLOYED", "REQUESTS", "MESSAGES");
    for component in components.as_array().into_iter().flatten() {
        let text = |key: &str| component[key].as_str().unwrap_or_default().to_owned();
        let count = |key: &str| component[key].as_u64().unwrap_or(0);
        let written = writeln!(
            out,
            "{:<12} {:<12} {:<24} {:>9} {:>9}  {}",
            text("id"),
            text("version").chars().take(12).collect::<String>(),
            text("deployed_at"),
            count("requests"),
            count("messages"),
            text("source")
        );
        for trigger in component["triggers"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{:72}{}", "", trigger.as_str().unwrap_or_default());
        }
        // With hosts sharing PostgreSQL: the version each runs, so a rollout is seen
        // converging.
        for host in component["hosts"].as_array().into_iter().flatten() {
            let version: String = host["version"].as_str().unwrap_or_default().chars().take(12).collect();
            let this = if host["this_host"].as_bool() == Some(true) { " (this host)" } else { "" };
            let seen = host["seen_ms_ago"].as_i64().unwrap_or(0);
            let seen = if seen > 10_000 { format!(", not heard from for {} s", seen / 1000) } else { String::new() };
            let problem = host["problem"].as_str().map(|p| format!(": cannot switch: {p}")).unwrap_or_default();
            let _ = writeln!(out, "{:13}on {}{this}: {version}{seen}{problem}", "", host["host"].as_str().unwrap_or_default());
        }
        if written.is_err() {
            return;
        }
    }
}

fn serve(options: app::UpOptions) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(app::up(options))
}

/// `-f` takes a file or, as in Spin, a folder holding `spin.toml`.
fn manifest_path(given: &Path) -> PathBuf {
    if given.is_dir() { given.join("spin.toml") } else { given.to_owned() }
}
