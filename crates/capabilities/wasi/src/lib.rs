//! The WASI 0.2 world of a component: environment, files and standard streams.
//!
//! A component starts with nothing: no environment variables, no directories, no
//! sockets (WASI sockets are never granted; network access goes through outbound
//! HTTP, which checks `allowed_outbound_hosts`). The manifest's `environment` and
//! `files` add exactly what they name, read-only. Standard output and error go to the
//! host's log, one line per record, tagged with the component id.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use estore_manifest::{ComponentDecl, FileMount};

/// What a component may see of the host's environment and file system.
pub struct WasiGrant {
    environment: Vec<(String, String)>,
    /// (host directory, guest path), mounted read-only.
    mounts: Vec<(PathBuf, String)>,
}

impl WasiGrant {
    /// Resolves the component's `files`: directories named by a `source`/`destination`
    /// mapping are mounted in place; everything else (glob patterns, single files) is
    /// copied into a staging directory under the state dir, mounted at `/`, so the
    /// guest sees exactly the files granted and nothing beside them.
    pub fn from_manifest(
        component: &ComponentDecl,
        manifest_dir: &Path,
        state_dir: &Path,
    ) -> Result<WasiGrant> {
        let staging = state_dir.join("files").join(&component.id);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot clear {}", staging.display()))?;
        }
        let mut mounts = Vec::new();
        let mut staged_any = false;
        for mount in &component.files {
            match mount {
                FileMount::Mapping { source, destination } if source.is_dir() => {
                    mounts.push((source.clone(), destination.clone()));
                }
                FileMount::Mapping { source, destination } => {
                    stage_file(source, &staging.join(destination.trim_start_matches('/')))?;
                    staged_any = true;
                }
                FileMount::Pattern(pattern) => {
                    staged_any |= stage_pattern(&component.id, pattern, manifest_dir, &staging)?;
                }
            }
        }
        if staged_any {
            mounts.push((staging, "/".to_owned()));
        }
        let environment =
            component.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(WasiGrant { environment, mounts })
    }

    pub fn build_ctx(&self, component: &Arc<str>) -> Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .envs(&self.environment)
            .stdout(ComponentLog::new(component.clone(), LogStream::Stdout))
            .stderr(ComponentLog::new(component.clone(), LogStream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (host, guest) in &self.mounts {
            builder
                .preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot mount {} for `{component}`", host.display()))?;
        }
        Ok(builder.build())
    }
}

fn stage_file(source: &Path, target: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(source, target)
        .with_context(|| format!("cannot copy {} to {}", source.display(), target.display()))?;
    Ok(())
}

fn stage_pattern(component: &str, pattern: &str, manifest_dir: &Path, staging: &Path) -> Result<bool> {
    let full = manifest_dir.join(pattern);
    let full = full.to_str().with_context(|| format!("file pattern `{pattern}` is not UTF-8"))?;
    let mut staged = false;
    let matches = glob::glob(full)
        .with_context(|| format!("component.{component}.files: bad pattern `{pattern}`"))?;
    for entry in matches {
        let path = entry?;
        if !path.is_file() {
            continue;
        }
        let relative = path.strip_prefix(manifest_dir).unwrap_or(&path);
        stage_file(&path, &staging.join(relative))?;
        staged = true;
    }
    if !staged {
        bail!("component.{component}.files: pattern `{pattern}` matches no file");
    }
    Ok(staged)
}

#[derive(Clone, Copy)]
enum LogStream {
    Stdout,
    Stderr,
}

/// A guest's stdout or stderr, turned into log records one line at a time so lines
/// from concurrent instances never interleave mid-line.
struct ComponentLog {
    component: Arc<str>,
    stream: LogStream,
}

impl ComponentLog {
    fn new(component: Arc<str>, stream: LogStream) -> ComponentLog {
        ComponentLog { component, stream }
    }
}

impl IsTerminal for ComponentLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentLog {
    /// Asked for while the instance works for a request or message, so the span of
    /// that work is current: the writer keeps it, because wasmtime drives the stream
    /// from a task of its own, where no span is.
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            component: self.component.clone(),
            stream: self.stream,
            pending: Vec::new(),
            span: tracing::Span::current(),
        })
    }
}

struct LineWriter {
    component: Arc<str>,
    stream: LogStream,
    pending: Vec<u8>,
    /// The request's or message's span, which each line belongs to.
    span: tracing::Span,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        // A blank line says nothing, and as a stderr warning it only raises alarms.
        if line.trim().is_empty() {
            return;
        }
        self.span.in_scope(|| match self.stream {
            LogStream::Stdout => tracing::info!(component = %self.component, stream = "stdout", "{line}"),
            LogStream::Stderr => tracing::warn!(component = %self.component, stream = "stderr", "{line}"),
        });
    }

    fn emit_complete_lines(&mut self) {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        // A guest that never prints a newline must not grow the buffer without bound.
        if self.pending.len() > 64 * 1024 {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        self.emit_complete_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit(&self.pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use estore_manifest::Manifest;

    /// Component `web` of a manifest in `dir` whose `files` is `files` (TOML).
    fn web(dir: &Path, files: &str) -> ComponentDecl {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"files\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
             [component.web]\nsource = \"web.wasm\"\nfiles = {files}\n"
        );
        let manifest = Manifest::parse(&dir.join("spin.toml"), &text).expect("a manifest");
        manifest.components["web"].clone()
    }

    fn write(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
        std::fs::write(path, "x").expect("a file");
    }

    #[test]
    fn a_pattern_stages_exactly_the_files_it_matches() {
        let app = tempfile::tempdir().expect("temp dir");
        let state = tempfile::tempdir().expect("temp dir");
        for file in ["static/a.txt", "static/b.css", "secret.key"] {
            write(&app.path().join(file));
        }
        let grant = WasiGrant::from_manifest(&web(app.path(), r#"["static/*.txt"]"#), app.path(), state.path()).expect("a grant");
        let staging = state.path().join("files").join("web");
        assert_eq!(grant.mounts, vec![(staging.clone(), "/".to_owned())]);
        let staged: Vec<PathBuf> = walk(&staging).into_iter().map(|p| p.strip_prefix(&staging).expect("inside").to_owned()).collect();
        assert_eq!(staged, vec![PathBuf::from("static/a.txt")], "nothing beside the granted file");
    }

    #[test]
    fn a_directory_mapping_is_mounted_in_place_and_a_pattern_without_matches_is_refused() {
        let app = tempfile::tempdir().expect("temp dir");
        let state = tempfile::tempdir().expect("temp dir");
        write(&app.path().join("static/a.txt"));
        let mapping = r#"[{ source = "static", destination = "/assets" }]"#;
        let grant = WasiGrant::from_manifest(&web(app.path(), mapping), app.path(), state.path()).expect("a grant");
        assert_eq!(grant.mounts, vec![(app.path().join("static"), "/assets".to_owned())]);

        let refused = WasiGrant::from_manifest(&web(app.path(), r#"["missing/*.txt"]"#), app.path(), state.path());
        let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(message.contains("component.web.files: pattern `missing/*.txt` matches no file"), "{message}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
        }
        files
    }
}
