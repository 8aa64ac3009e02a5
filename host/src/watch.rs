//! `estore watch`: rebuilds a component when a file its `build.watch` patterns match
//! changes, and deploys the result into the running host. The host never restarts;
//! a build that fails is reported and the running version stays.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::admin::client::AdminClient;
use crate::builder;
use estore_manifest::Manifest;

/// How often the watched files are looked at.
const POLL: Duration = Duration::from_millis(500);

pub async fn watch(manifest: &Manifest, client: &AdminClient) -> Result<()> {
    let mut seen: BTreeMap<&str, Option<SystemTime>> =
        manifest.components.keys().map(|id| (id.as_str(), latest_change(manifest, id))).collect();
    eprintln!("Watching {} components for changes (Ctrl-C stops)", seen.len());
    loop {
        tokio::time::sleep(POLL).await;
        for (id, last) in &mut seen {
            let now = latest_change(manifest, id);
            if now <= *last {
                continue;
            }
            *last = now;
            eprintln!("{id}: sources changed, rebuilding");
            if let Err(e) = builder::build(manifest, &[(*id).to_owned()]) {
                eprintln!("{id}: {e:#}; the running version stays");
                continue;
            }
            match client.deploy(id, &manifest.components[*id].source).await {
                Ok(switched) => eprintln!(
                    "{id}: deployed {} in {} ms",
                    switched["version"]["digest"].as_str().unwrap_or("?").chars().take(12).collect::<String>(),
                    switched["took_ms"]
                ),
                Err(e) => eprintln!("{id}: not deployed: {e:#}"),
            }
        }
    }
}

/// The newest modification time among the files the component's `build.watch`
/// patterns match (relative to its build's workdir); `None` when it has none.
fn latest_change(manifest: &Manifest, id: &str) -> Option<SystemTime> {
    let build = manifest.components.get(id)?.build.as_ref()?;
    let base = build.workdir.clone().unwrap_or_else(|| manifest.dir.clone());
    build
        .watch
        .iter()
        .filter_map(|pattern| glob::glob(&base.join(pattern).to_string_lossy()).ok())
        .flatten()
        .flatten()
        .filter_map(|path| path.metadata().ok()?.modified().ok())
        .max()
}
