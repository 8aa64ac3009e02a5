//! Migrations: the `.sql` files of a component's `sql_migrations` folder, applied in
//! file-name order, each once, each in its own transaction together with the row
//! that records it, so a crash or a failing statement leaves the database as it was
//! before that file.

use std::path::Path;

use super::backend::Backend;
use super::errors::{describe, prefixed};
use super::statements::split_statements;
use super::SqlLimits;
use crate::bindings::sql::{Error, Value};

const TABLE: &str = "_estore_migrations";

pub async fn apply(backend: &Backend, component: &str, folder: &Path, limits: SqlLimits) -> Result<(), Error> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map_err(|e| Error::Other(format!("cannot read migrations folder {}: {e}", folder.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();

    backend
        .run_script(&[&format!("CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")])
        .await
        .map_err(|(_, e)| e)?;
    let applied = backend.query(None, &format!("SELECT name FROM {TABLE}"), Vec::new(), limits).await?;
    let applied: Vec<&str> = applied
        .rows
        .iter()
        .filter_map(|row| match row.first() {
            Some(Value::Text(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();

    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if applied.contains(&name.as_str()) {
            continue;
        }
        let script = std::fs::read_to_string(path)
            .map_err(|e| Error::Other(format!("cannot read migration {}: {e}", path.display())))?;
        let mut statements = split_statements(&script);
        let record = format!(
            "INSERT INTO {TABLE} (name, applied_at) VALUES ('{}', CURRENT_TIMESTAMP)",
            name.replace('\'', "''")
        );
        statements.push(&record);
        backend.run_script(&statements).await.map_err(|(index, error)| {
            let statement = statements.get(index).copied().unwrap_or("COMMIT");
            let error = prefixed(
                error,
                &format!("migration `{name}` failed at statement {} (`{}`)", index + 1, abbreviate(statement)),
            );
            tracing::error!(component, "{}", describe(&error));
            error
        })?;
        tracing::info!(component, "applied migration {name}");
    }
    Ok(())
}

fn abbreviate(statement: &str) -> String {
    let flat = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
