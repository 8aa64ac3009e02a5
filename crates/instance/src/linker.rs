//! The linker: every interface the host serves, each by its capability's own view of
//! an instance's state.

use estore_email::MailerView;
use estore_key_value::KeyValueView;
use estore_messaging::PublisherView;
use estore_operations::OperationsView;
use estore_sql::SqlView;
use estore_variables::VariablesView;
use wasmtime::component::Linker;

use crate::HostState;

/// Every interface the host implements, in one linker shared by all components.
/// Linking is not the grant: a component may import key-value and still be refused
/// every store it was not given.
pub fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    estore_variables::add_to_linker(&mut linker, |s| VariablesView { component: &s.component, variables: &s.variables })?;
    estore_key_value::add_to_linker(&mut linker, |s| KeyValueView {
        component: &s.component,
        access: &s.key_value,
        table: &mut s.table,
    })?;
    estore_sql::add_to_linker(&mut linker, |s| SqlView { component: &s.component, state: &mut s.sql, table: &mut s.table })?;
    estore_messaging::add_to_linker(&mut linker, |s| PublisherView {
        component: &s.component,
        grant: &s.publish,
        trace: &s.trace,
        sql: SqlView { component: &s.component, state: &mut s.sql, table: &mut s.table },
    })?;
    estore_email::add_to_linker(&mut linker, |s| MailerView { component: &s.component, mailer: s.email.as_deref() })?;
    estore_operations::add_to_linker(&mut linker, |s| OperationsView {
        component: &s.component,
        operations: s.operations.as_ref(),
    })?;
    Ok(linker)
}
