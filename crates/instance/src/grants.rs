//! Whether a new version's imports fit what the manifest grants its component. The
//! linker provides every interface the host has, so a version that imports one its
//! component is not granted would only fail later, on a request; a deploy refuses it
//! at once, naming the grant it lacks.

use wasmtime::component::Component;

use crate::ComponentContext;

impl ComponentContext {
    /// The grants `component` would need and this context (what the manifest grants
    /// its component) lacks, in words.
    pub fn missing_grants(&self, component: &Component, engine: &wasmtime::Engine) -> Vec<String> {
        // Each capability's interface, whether this component has its grant, and the
        // manifest key that gives it.
        let capabilities = [
            (estore_sql::INTERFACE, self.sql.is_granted(), estore_sql::GRANT),
            (estore_messaging::INTERFACE, !self.publish.allowed_topics.is_empty(), estore_messaging::GRANT),
            (estore_email::INTERFACE, self.email.is_some(), estore_email::GRANT),
            (estore_key_value::INTERFACE, !self.key_value.is_empty(), estore_key_value::GRANT),
        ];
        component
            .component_type()
            .imports(engine)
            .filter_map(|(name, _)| {
                let interface = name.split('@').next().unwrap_or(name);
                let (_, _, grant) = capabilities.iter().find(|(i, granted, _)| *i == interface && !granted)?;
                Some(format!("it imports {interface}, but the manifest gives component `{}` no {grant}", self.id))
            })
            .collect()
    }
}
