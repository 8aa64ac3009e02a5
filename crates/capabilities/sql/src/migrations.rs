//! Migrations: the `.sql` files of a component's `sql_migrations` folder, applied in
//! file-name order, each once, each in its own transaction together with the row
//! that records it, so a crash or a failing statement leaves the database as it was
//! before that file.
//!
//! A migration ships with its component and runs as the component's own SQL would:
//! on SQLite under the component's authorizer, on PostgreSQL as its role. The record
//! in `_estore_migrations` is the host's statement, in the same transaction.

use std::path::Path;

use super::Database;
use super::backend::Caller;
use super::errors::{describe, prefixed};
use super::statements::split_statements;
use super::tables::MIGRATIONS;
use crate::bindings::sql::{Error, Value};

pub async fn apply(database: &Database, folder: &Path) -> Result<(), Error> {
    let (backend, component, limits) = (&database.backend, database.component.as_str(), database.limits);
    let table = backend.host_table(MIGRATIONS);
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map_err(|e| Error::Other(format!("cannot read migrations folder {}: {e}", folder.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();

    let applied = backend.query(Caller::Host, None, &format!("SELECT name FROM {table}"), Vec::new(), limits).await?;
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
        let record = format!(
            "INSERT INTO {table} (name, applied_at) VALUES ('{}', CURRENT_TIMESTAMP)",
            name.replace('\'', "''")
        );
        let statements: Vec<(Caller, &str)> = split_statements(&script)
            .into_iter()
            .map(|statement| (Caller::Component, statement))
            .chain([(Caller::Host, record.as_str())])
            .collect();
        backend.run_script(&statements).await.map_err(|(index, error)| {
            let statement = statements.get(index).map_or("COMMIT", |(_, statement)| statement);
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
