//! Why a manifest was refused, and where: [`ManifestError`], the key paths errors
//! name (`component.hello.source`, `trigger.http[2].route`) and line:col positions.
//!
//! Contract: an error displays on one line as `file:line:col: key: message` (the
//! parts that are known), whatever the message.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a manifest was refused. Displays on one line as
/// `file:line:col: key: message` (the parts that are known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.file, .key, .line_col, .message))]
pub struct ManifestError {
    pub file: PathBuf,
    /// The TOML path of the offending key, e.g. `component.hello.source` or
    /// `trigger.http[2].component` (for an unknown key: the table that holds it).
    pub key: Option<String>,
    /// 1-based line and column (in characters), when known.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

fn describe(
    file: &Path,
    key: &Option<String>,
    line_col: &Option<(usize, usize)>,
    message: &str,
) -> String {
    let mut out = file.display().to_string();
    if let Some((line, col)) = line_col {
        out.push_str(&format!(":{line}:{col}"));
    }
    out.push_str(": ");
    if let Some(key) = key {
        out.push_str(key);
        out.push_str(": ");
    }
    // One line, whatever the message (toml's own messages may span several).
    let message: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    out.push_str(&message.join("; "));
    out
}

/// 1-based line and column of a byte offset, for error messages.
pub fn line_col(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A TOML path such as `trigger.http[2].route`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        KeyPath(segs)
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        KeyPath(segs)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(&display_key(k))?,
                Seg::Key(k) => write!(f, ".{}", display_key(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key as TOML would write it: bare when it can be, quoted otherwise.
pub(crate) fn display_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
