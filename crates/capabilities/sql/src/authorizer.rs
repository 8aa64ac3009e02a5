//! The SQLite authorizer: what a statement may do, decided while SQLite compiles it.
//!
//! A component's SQLite connection is an ordinary SQLite connection, which can open any
//! file the host can (`ATTACH`, `VACUUM INTO`), change how its file is written
//! (`PRAGMA journal_mode`, `synchronous`, `writable_schema`) and write the host's own
//! tables (`_estore_outbox`, `_estore_handled`, `_estore_migrations`). Before every
//! statement it runs, the host arms the connection for who is asking ([`Caller`]):
//!
//! - **a component** (its calls and its migrations) gets its own database: DDL and DML
//!   on its own tables, transactions and savepoints, reads of anything, functions but
//!   `load_extension`, and the read-only pragmas of [`INTROSPECTION_PRAGMAS`] (plus
//!   `defer_foreign_keys`, which lasts one transaction, and the read form of
//!   [`READABLE_PRAGMAS`]). Refused: ATTACH and DETACH (`VACUUM`, `INTO` or not,
//!   attaches a database to write its copy, so it is refused too), every other
//!   pragma, and any write, DDL, index, trigger or view touching a `_estore_*` name,
//!   in `main` or `temp` (a temp table of that name would shadow the host's).
//! - **the host** (its bookkeeping on those tables) may do what it does, but runs no
//!   trigger or view a component made: a foreign key from a component's table with
//!   `ON DELETE CASCADE` would otherwise have the host's own `DELETE` on its outbox
//!   fire the component's triggers on that table with the host's rights.
//!
//! Authorizers run when a statement is compiled, and sqlx keeps compiled statements
//! per connection by their text. Two things keep a statement compiled for one caller
//! from running for the other: a component's statements carry a prefix of their own
//! ([`COMPONENT_STATEMENT`]), so the host's are never reused for a component's
//! identical text, nor the other way round; and SQLite marks every compiled statement
//! of a connection for recompiling (under the authorizer then armed) when the
//! authorizer changes, which [`arm`] does whenever the caller changes (and only then,
//! so the cache keeps its worth while one caller runs).
//!
//! SQLite reports a refusal as `SQLITE_AUTH` ("not authorized"), or as an error about
//! the function; the reason is kept per connection for [`take_denial`], so the
//! component's `not-allowed` error names what was refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{LazyLock, Mutex, PoisonError};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

/// Who a statement runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The component: its calls through the `sql` interface, and its migrations.
    Component,
    /// The host's own statements on its tables.
    Host,
}

/// The comment a component's statements start with on SQLite: it keeps them apart
/// from the host's in sqlx's per-connection statement cache, which is keyed by text.
pub const COMPONENT_STATEMENT: &str = "/* estore: component */\n";

/// Names of the host's own tables, compared case-insensitively.
pub const HOST_TABLE_PREFIX: &str = "_estore_";

/// Pragmas that only read the schema: allowed with any argument.
const INTROSPECTION_PRAGMAS: [&str; 10] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_info",
    "index_xinfo",
    "index_list",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Pragmas a component may read but not set (allowed without a value only).
const READABLE_PRAGMAS: [&str; 4] = ["foreign_keys", "journal_mode", "synchronous", "user_version"];

/// What the authorizer knows of each open connection, by its `sqlite3*` address.
#[derive(Default)]
struct Armed {
    /// The caller the connection is armed for.
    caller: Option<Caller>,
    /// Why the latest statement was refused, until taken: a refusal happens on sqlx's
    /// worker thread, and the caller reads it afterwards.
    denial: Option<String>,
}

/// One entry per connection address; [`prepare_connection`] resets it when a new
/// connection opens, so a reused address never inherits an old connection's state.
static CONNECTIONS: LazyLock<Mutex<HashMap<usize, Armed>>> = LazyLock::new(Default::default);

/// Sets a newly opened connection up: no ATTACH whatever the authorizer (a second
/// guard on the same door), and armed for the host.
pub fn prepare_connection(handle: &mut LockedSqliteHandle<'_>) {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection the handle holds locked.
    unsafe {
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
    }
    connections().insert(db as usize, Armed::default());
    arm(handle, Caller::Host);
}

/// Arms the connection for `caller`'s statements; forgets any earlier refusal.
pub fn arm(handle: &mut LockedSqliteHandle<'_>, caller: Caller) {
    let db = handle.as_raw_handle().as_ptr();
    let mut connections = connections();
    let armed = connections.entry(db as usize).or_default();
    armed.denial = None;
    if armed.caller == Some(caller) {
        return;
    }
    let callback: Callback = match caller {
        Caller::Component => authorize_component,
        Caller::Host => authorize_host,
    };
    // SAFETY: `db` is the open connection the handle holds locked; the callbacks are
    // plain functions, and the user data is only an address they use as a key.
    unsafe {
        ffi::sqlite3_set_authorizer(db, Some(callback), db.cast());
    }
    armed.caller = Some(caller);
}

/// Why the connection's last statement was refused, if it was.
pub fn take_denial(handle: &mut LockedSqliteHandle<'_>) -> Option<String> {
    let db = handle.as_raw_handle().as_ptr() as usize;
    connections().get_mut(&db).and_then(|armed| armed.denial.take())
}

fn connections() -> std::sync::MutexGuard<'static, HashMap<usize, Armed>> {
    CONNECTIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

type Callback = unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char, *const c_char, *const c_char) -> c_int;

unsafe extern "C" fn authorize_component(
    db: *mut c_void,
    action: c_int,
    a: *const c_char,
    b: *const c_char,
    schema: *const c_char,
    inner: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes NUL-terminated strings or NULL, valid during the call.
    unsafe { authorize(Caller::Component, db, action, [a, b, schema, inner]) }
}

unsafe extern "C" fn authorize_host(
    db: *mut c_void,
    action: c_int,
    a: *const c_char,
    b: *const c_char,
    schema: *const c_char,
    inner: *const c_char,
) -> c_int {
    // SAFETY: as above.
    unsafe { authorize(Caller::Host, db, action, [a, b, schema, inner]) }
}

/// # Safety
/// Each of `args` is NULL or a NUL-terminated string valid for the call.
unsafe fn authorize(caller: Caller, db: *mut c_void, action: c_int, args: [*const c_char; 4]) -> c_int {
    let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy());
    let [a, b, _schema, inner] = args.map(text);
    // A panic must not unwind into SQLite: refuse instead.
    let decision = std::panic::catch_unwind(|| decide(caller, action, a.as_deref(), b.as_deref(), inner.as_deref()))
        .unwrap_or_else(|_| Err("the host could not decide whether to allow this statement".into()));
    match decision {
        Ok(()) => ffi::SQLITE_OK,
        Err(reason) => {
            // The first refusal of a statement is the one that says why.
            let mut connections = connections();
            let armed = connections.entry(db as usize).or_default();
            armed.denial.get_or_insert(reason);
            ffi::SQLITE_DENY
        }
    }
}

/// Whether `caller` may do `action` (an `SQLITE_*` authorizer code) with its
/// arguments `a` and `b`, `inner` being the trigger or view that does it, if any;
/// the reason when not.
pub fn decide(caller: Caller, action: c_int, a: Option<&str>, b: Option<&str>, inner: Option<&str>) -> Result<(), String> {
    match caller {
        Caller::Component => decide_for_component(action, a, b),
        Caller::Host => decide_for_host(inner),
    }
}

fn decide_for_component(action: c_int, a: Option<&str>, b: Option<&str>) -> Result<(), String> {
    use ffi::*;
    let host_object = |what: &str, name: Option<&str>| match name {
        Some(name) if is_host_table(name) => Err(format!(
            "{what} `{name}` is not allowed: `{HOST_TABLE_PREFIX}*` tables are the host's, and components may only read them"
        )),
        _ => Ok(()),
    };
    match action {
        SQLITE_SELECT | SQLITE_READ | SQLITE_RECURSIVE | SQLITE_TRANSACTION | SQLITE_SAVEPOINT | SQLITE_ANALYZE
        | SQLITE_REINDEX => Ok(()),
        SQLITE_FUNCTION => match b {
            Some(name) if name.eq_ignore_ascii_case("load_extension") => {
                Err("load_extension() is not allowed: components cannot load SQLite extensions".into())
            }
            _ => Ok(()),
        },
        SQLITE_INSERT => host_object("inserting into", a),
        SQLITE_UPDATE => host_object("updating", a),
        SQLITE_DELETE => host_object("deleting from", a),
        SQLITE_CREATE_TABLE | SQLITE_CREATE_TEMP_TABLE | SQLITE_CREATE_VTABLE => host_object("creating table", a),
        SQLITE_DROP_TABLE | SQLITE_DROP_TEMP_TABLE | SQLITE_DROP_VTABLE => host_object("dropping table", a),
        SQLITE_CREATE_VIEW | SQLITE_CREATE_TEMP_VIEW => host_object("creating view", a),
        SQLITE_DROP_VIEW | SQLITE_DROP_TEMP_VIEW => host_object("dropping view", a),
        // (index or trigger name, table name)
        SQLITE_CREATE_INDEX | SQLITE_CREATE_TEMP_INDEX => {
            host_object("creating index", a).and(host_object("an index on", b))
        }
        SQLITE_DROP_INDEX | SQLITE_DROP_TEMP_INDEX => host_object("dropping index", a).and(host_object("an index on", b)),
        SQLITE_CREATE_TRIGGER | SQLITE_CREATE_TEMP_TRIGGER => {
            host_object("creating trigger", a).and(host_object("a trigger on", b))
        }
        SQLITE_DROP_TRIGGER | SQLITE_DROP_TEMP_TRIGGER => {
            host_object("dropping trigger", a).and(host_object("a trigger on", b))
        }
        // (schema name, table name)
        SQLITE_ALTER_TABLE => host_object("altering table", b),
        SQLITE_PRAGMA => pragma(a.unwrap_or_default(), b),
        SQLITE_ATTACH => Err(match a {
            Some("") => "VACUUM is not allowed: it attaches a scratch database to write its copy".into(),
            Some(file) => format!(
                "ATTACH and VACUUM INTO are not allowed: a component's SQL reaches only its own database, not `{file}`"
            ),
            None => "ATTACH is not allowed: a component's SQL reaches only its own database".into(),
        }),
        SQLITE_DETACH => Err("DETACH is not allowed: a component has only its own database".into()),
        other => Err(format!("SQLite action {other} is not allowed for components")),
    }
}

fn pragma(name: &str, value: Option<&str>) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    let allowed = INTROSPECTION_PRAGMAS.contains(&name.as_str())
        || name == "defer_foreign_keys"
        || (value.is_none() && READABLE_PRAGMAS.contains(&name.as_str()));
    if allowed {
        return Ok(());
    }
    Err(format!(
        "PRAGMA {name}{} is not allowed: components may run only the read-only pragmas ({}), \
         defer_foreign_keys, and read (not set) {}",
        value.map(|v| format!(" = {v}")).unwrap_or_default(),
        INTROSPECTION_PRAGMAS.join(", "),
        READABLE_PRAGMAS.join(", ")
    ))
}

fn decide_for_host(inner: Option<&str>) -> Result<(), String> {
    match inner {
        Some(inner) => Err(format!(
            "a host statement reached the trigger or view `{inner}`: the host runs none of a component's code"
        )),
        None => Ok(()),
    }
}

/// `_estore_…`, in any case.
pub fn is_host_table(name: &str) -> bool {
    name.get(..HOST_TABLE_PREFIX.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(HOST_TABLE_PREFIX))
}

/// The text `caller`'s statement is compiled from on SQLite: a component's carries
/// [`COMPONENT_STATEMENT`], the host's never does.
pub fn statement_text(caller: Caller, sql: &str) -> Cow<'_, str> {
    match caller {
        Caller::Component => Cow::Owned(format!("{COMPONENT_STATEMENT}{sql}")),
        Caller::Host => Cow::Borrowed(sql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffi::*;

    fn component(action: c_int, a: Option<&str>, b: Option<&str>) -> Result<(), String> {
        decide(Caller::Component, action, a, b, None)
    }

    #[test]
    fn a_component_works_on_its_own_tables() {
        for (action, a, b) in [
            (SQLITE_CREATE_TABLE, Some("notes"), None),
            (SQLITE_INSERT, Some("notes"), None),
            (SQLITE_UPDATE, Some("notes"), Some("title")),
            (SQLITE_DELETE, Some("notes"), None),
            (SQLITE_CREATE_INDEX, Some("notes_by_title"), Some("notes")),
            (SQLITE_CREATE_TRIGGER, Some("touch"), Some("notes")),
            (SQLITE_ALTER_TABLE, Some("main"), Some("notes")),
            (SQLITE_DROP_TABLE, Some("notes"), None),
            (SQLITE_CREATE_TEMP_TABLE, Some("scratch"), None),
            // DDL writes the schema table; that is SQLite's, not the host's.
            (SQLITE_INSERT, Some("sqlite_master"), None),
            (SQLITE_TRANSACTION, Some("BEGIN"), None),
            (SQLITE_SAVEPOINT, Some("BEGIN"), Some("sp")),
            (SQLITE_FUNCTION, None, Some("lower")),
        ] {
            assert_eq!(component(action, a, b), Ok(()), "{action} {a:?} {b:?}");
        }
    }

    #[test]
    fn a_component_reads_but_never_writes_the_host_tables() {
        assert_eq!(component(SQLITE_READ, Some("_estore_outbox"), Some("topic")), Ok(()));
        assert_eq!(component(SQLITE_SELECT, None, None), Ok(()));
        for (action, a, b) in [
            (SQLITE_INSERT, Some("_estore_outbox"), None),
            (SQLITE_INSERT, Some("_ESTORE_OUTBOX"), None),
            (SQLITE_UPDATE, Some("_estore_handled"), Some("message_id")),
            (SQLITE_DELETE, Some("_estore_migrations"), None),
            (SQLITE_DROP_TABLE, Some("_estore_outbox"), None),
            (SQLITE_ALTER_TABLE, Some("main"), Some("_Estore_Outbox")),
            (SQLITE_CREATE_TEMP_TABLE, Some("_estore_outbox"), None),
            (SQLITE_CREATE_TEMP_VIEW, Some("_estore_outbox"), None),
            (SQLITE_CREATE_TABLE, Some("_estore_anything"), None),
            (SQLITE_CREATE_TRIGGER, Some("sneak"), Some("_estore_outbox")),
            (SQLITE_CREATE_TEMP_TRIGGER, Some("sneak"), Some("_estore_handled")),
            (SQLITE_CREATE_INDEX, Some("slow"), Some("_estore_outbox")),
            (SQLITE_CREATE_VTABLE, Some("_estore_outbox"), Some("fts5")),
        ] {
            let refused = component(action, a, b).expect_err("refused");
            assert!(refused.contains("_estore_"), "{action}: {refused}");
        }
    }

    #[test]
    fn a_component_opens_no_other_file_and_loads_no_extension() {
        let attach = component(SQLITE_ATTACH, Some("/state/sql/payments/default.db"), None).expect_err("refused");
        assert!(attach.contains("ATTACH") && attach.contains("/state/sql/payments/default.db"), "{attach}");
        assert!(component(SQLITE_ATTACH, None, None).is_err(), "a bound file name");
        assert!(component(SQLITE_ATTACH, Some(""), None).expect_err("refused").contains("VACUUM"));
        assert!(component(SQLITE_DETACH, Some("other"), None).is_err());
        let load = component(SQLITE_FUNCTION, None, Some("LOAD_EXTENSION")).expect_err("refused");
        assert!(load.contains("load_extension"), "{load}");
        assert!(component(99, None, None).is_err(), "an action SQLite may add later");
    }

    #[test]
    fn a_component_reads_its_schema_but_sets_no_pragma() {
        for (name, value) in [
            ("table_info", Some("notes")),
            ("TABLE_INFO", Some("notes")),
            ("foreign_key_list", Some("notes")),
            ("index_list", Some("notes")),
            ("defer_foreign_keys", Some("ON")),
            ("foreign_keys", None),
            ("journal_mode", None),
        ] {
            assert_eq!(component(SQLITE_PRAGMA, Some(name), value), Ok(()), "{name} {value:?}");
        }
        for (name, value) in [
            ("journal_mode", Some("DELETE")),
            ("synchronous", Some("OFF")),
            ("writable_schema", Some("ON")),
            ("foreign_keys", Some("OFF")),
            ("temp_store_directory", Some("/tmp")),
            ("busy_timeout", Some("0")),
            ("query_only", Some("1")),
            ("cache_size", None),
            ("no_such_pragma", None),
        ] {
            let refused = component(SQLITE_PRAGMA, Some(name), value).expect_err("refused");
            assert!(refused.starts_with(&format!("PRAGMA {name}")), "{refused}");
        }
    }

    #[test]
    fn the_host_runs_no_component_code() {
        let host = |action, table, inner| decide(Caller::Host, action, table, None, inner);
        assert_eq!(host(SQLITE_INSERT, Some("_estore_outbox"), None), Ok(()));
        assert_eq!(host(SQLITE_DELETE, Some("_estore_outbox"), None), Ok(()));
        assert_eq!(host(SQLITE_CREATE_TABLE, Some("_estore_outbox"), None), Ok(()));
        assert_eq!(host(SQLITE_DELETE, Some("notes"), None), Ok(()), "a cascade the component declared");
        let trigger = host(SQLITE_INSERT, Some("_estore_outbox"), Some("sneak")).expect_err("refused");
        assert!(trigger.contains("sneak"), "{trigger}");
    }
}
