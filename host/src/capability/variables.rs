//! Application variables (`fermyon:spin/variables@2.0.0`).
//!
//! Values are resolved once at start, so a required variable without a value stops the
//! host before it serves anything, naming the variable; and a request never waits on
//! a provider. The environment (`SPIN_VARIABLE_<NAME>`) overrides a default, as in
//! Spin. A component sees only the variables its manifest entry declares.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::bindings::variables::{Error, Host};
use crate::manifest::{ComponentDecl, Manifest, render_template};
use crate::store::HostState;

/// One component's variables, with their final values.
#[derive(Debug, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

/// Application-level values, resolved from the environment and the manifest.
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    pub fn resolve(manifest: &Manifest, env: impl Fn(&str) -> Option<String>) -> Result<AppVariables> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            match env(&env_name(name)).or_else(|| decl.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if decl.required => missing.push(name.as_str()),
                None => {}
            }
        }
        if !missing.is_empty() {
            let hints: Vec<String> =
                missing.iter().map(|n| format!("`{n}` (set {})", env_name(n))).collect();
            bail!(
                "{}: required variable{} without a value: {}",
                manifest.path.display(),
                if missing.len() == 1 { "" } else { "s" },
                hints.join(", ")
            );
        }
        Ok(AppVariables { values })
    }

    /// Expands `{{ name }}` references to application variables.
    pub fn render(&self, template: &str) -> Result<String, String> {
        render_template(template, |var| self.values.get(var).cloned())
    }

    /// Renders the component's `variables` templates against the application values.
    pub fn for_component(&self, manifest: &Manifest, component: &ComponentDecl) -> Result<Variables> {
        let mut values = BTreeMap::new();
        for (name, template) in &component.variables {
            let value = self.render(template).map_err(|e| {
                anyhow::anyhow!(
                    "{}: component.{}.variables.{name}: {e}",
                    manifest.path.display(),
                    component.id
                )
            })?;
            values.insert(name.clone(), value);
        }
        Ok(Variables { values })
    }
}

fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if !is_valid_name(&name) {
            return Ok(Err(Error::InvalidName(format!(
                "`{name}` is not a variable name: lowercase letters, digits and underscores, starting with a letter"
            ))));
        }
        Ok(self.variables.values.get(&name).cloned().ok_or_else(|| {
            Error::Undefined(format!("component `{}` declares no variable `{name}`", self.component))
        }))
    }
}
