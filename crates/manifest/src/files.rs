//! A component's `files`: glob patterns relative to the manifest directory, or
//! `{ source, destination }` mappings to absolute guest paths.
//!
//! Contract: nothing mounted comes from outside the manifest directory (no absolute
//! path, no `..`); whether the files exist is checked later, by
//! [`crate::Manifest::check_sources`].

use std::path::{Component, Path};

use crate::FileMount;
use crate::check::{Checked, Checker, Loc};
use crate::de::{StringOr, Typed};
use crate::raw::FileEntry;

/// Relative, and staying inside the directory it is relative to.
fn inside(path: &str) -> bool {
    !Path::new(path).is_absolute()
        && !path.starts_with('/')
        && !Path::new(path)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
}

impl Checker<'_> {
    pub(crate) fn file_mount(
        &self,
        loc: &Loc,
        entry: &Typed<FileEntry>,
        dir: &Path,
    ) -> Checked<FileMount> {
        let entry = self.expect(
            loc,
            entry,
            "a path pattern or `{ source = ..., destination = ... }`",
        )?;
        let table = match entry {
            StringOr::String(pattern) => return self.file_pattern(loc, pattern),
            StringOr::Other(table) => table,
        };
        self.check_keys(loc, table, &[])?;
        let m = &table.fields;
        let Some((sloc, source)) = loc.field(table, "source", &m.source) else {
            return Err(self.error(loc, "missing `source`"));
        };
        let source = self.string(&sloc, source)?;
        let Some((dloc, destination)) = loc.field(table, "destination", &m.destination) else {
            return Err(self.error(loc, "missing `destination`"));
        };
        let destination = self.string(&dloc, destination)?;
        if source.trim().is_empty() || !inside(source) {
            return Err(self.error(
                &sloc,
                format!("`{source}` must be a path relative to the manifest directory, inside it (no absolute path, no `..`)"),
            ));
        }
        if !destination.starts_with('/') {
            return Err(self.error(
                &dloc,
                format!("`{destination}` must be an absolute guest path (starting with `/`)"),
            ));
        }
        Ok(FileMount::Mapping {
            source: dir.join(source),
            destination: destination.to_string(),
        })
    }

    fn file_pattern(&self, loc: &Loc, pattern: &str) -> Checked<FileMount> {
        if pattern.trim().is_empty() {
            return Err(self.error(loc, "empty file pattern"));
        }
        if !inside(pattern) {
            return Err(self.error(
                loc,
                format!("`{pattern}` must be relative to the manifest directory and stay inside it (no absolute path, no `..`); use `{{ source = ..., destination = ... }}` to mount elsewhere"),
            ));
        }
        glob::Pattern::new(pattern)
            .map_err(|e| self.error(loc, format!("invalid glob pattern `{pattern}`: {e}")))?;
        Ok(FileMount::Pattern(pattern.to_string()))
    }
}
