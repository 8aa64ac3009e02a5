//! Whether a new version's imports fit what the manifest grants its component. The
//! linker provides every interface the host has, so a version that imports one its
//! component is not granted would only fail later, on a request; a deploy refuses it
//! at once, naming the grant it lacks.

use wasmtime::component::Component;

use crate::store::ComponentContext;

/// The grants `component` would need and `context` (what the manifest grants it)
/// lacks, in words.
pub fn missing(component: &Component, context: &ComponentContext, engine: &wasmtime::Engine) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            let interface = name.split('@').next().unwrap_or(name);
            let grant = match interface {
                "estore:platform/sql" if !context.sql.is_granted() => "sql_databases",
                "estore:platform/publisher" if context.publish.allowed_topics.is_empty() => "allowed_publish_topics",
                "estore:platform/mailer" if context.email.is_none() => "allow_email = true",
                "fermyon:spin/key-value" if context.key_value.is_empty() => "key_value_stores",
                _ => return None,
            };
            Some(format!("it imports {interface}, but the manifest gives component `{}` no {grant}", context.id))
        })
        .collect()
}
