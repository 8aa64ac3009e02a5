//! `estore build`: runs each component's `[component.<id>.build] command`, as
//! `spin build` does, in the component's `workdir` (default: the manifest's folder).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use estore_manifest::Manifest;

/// Builds the components named in `only`, or all of them; stops at the first failure
/// so its output is the last thing on the screen.
pub fn build(manifest: &Manifest, only: &[String]) -> Result<()> {
    for id in only {
        if !manifest.components.contains_key(id) {
            let known: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
            bail!("no component `{id}` in {} (components: {})", manifest.path.display(), known.join(", "));
        }
    }
    let started = Instant::now();
    for (id, component) in &manifest.components {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let Some(build) = &component.build else {
            eprintln!("Component {id} has no build command; skipping");
            continue;
        };
        let workdir = build.workdir.clone().unwrap_or_else(|| manifest.dir.clone());
        eprintln!("Building component {id} with `{}`", build.command);
        let step = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .status()
            .with_context(|| format!("cannot run the build command of component `{id}` in {}", workdir.display()))?;
        if !status.success() {
            bail!("build of component `{id}` failed ({status}): `{}` in {}", build.command, workdir.display());
        }
        eprintln!("Built component {id} in {:.1}s", step.elapsed().as_secs_f64());
    }
    eprintln!("Finished building all components in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
