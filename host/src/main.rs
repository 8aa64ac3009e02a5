//! `estore`: the command line. The host itself is the library (`src/lib.rs`).



use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use estore::manifest::Manifest;
use estore::{app, builder};

#[derive(Parser)]
#[command(name = "estore", version, about = "Run Spin-format WebAssembly applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the application: serve its triggers until interrupted.
    Up(UpArgs),
    /// Build the application's components with their build commands.
    Build(BuildArgs),
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
    /// Build the components before starting.
    #[arg(long)]
    build: bool,
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
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
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
            })
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
