//! Application variables: `fermyon:spin/variables@2.0.0` (WASI 0.2 guests) and
//! `spin:variables/variables@3.0.0` (WASI 0.3 guests, an async function), both
//! served from the same resolved values with the same errors.
//!
//! Values are resolved once at start, so a required variable without a value stops the
//! host before it serves anything, naming the variable; and a request never waits on
//! a provider. The environment (`SPIN_VARIABLE_<NAME>`) overrides a default, as in
//! Spin. A component sees only the variables its manifest entry declares.
//!
//! A `secret = true` variable is checked before anything serves ([`AppVariables::weak_secrets`]):
//! a manifest's default is public (it is in the repository), so a secret still holding
//! it protects nothing, and a secret named as key material (`…secret`, `…_key`) must be
//! long enough to resist guessing. `estore up` refuses to start with one unless told
//! explicitly that this is a development machine.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use estore_manifest::{ComponentDecl, Manifest, render_template};
use wasmtime::component::{HasData, Linker};

pub use bindings::fermyon::spin::variables;
use bindings::spin::variables::variables as v3;
use variables::{Error, Host};
use wasmtime::component::Accessor;

/// The interfaces' bindings, generated here so this crate alone implements them.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:variables-host; world host {
            import fermyon:spin/variables@2.0.0;
            import spin:variables/variables@3.0.0;
        }",
        imports: { default: async | trappable },
    });
}

/// One component's variables, with their final values.
#[derive(Debug, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

/// Application-level values, resolved from the environment and the manifest.
pub struct AppVariables {
    values: BTreeMap<String, String>,
    /// The variables whose value is their manifest default (no `SPIN_VARIABLE_<NAME>`).
    defaulted: Vec<String>,
}

/// The least length, in bytes, of a secret named as key material: 32 bytes is the
/// key size of HMAC-SHA256 and AES-256.
pub const MIN_KEY_BYTES: usize = 32;

/// A secret variable whose value is unsafe to serve with, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct WeakSecret {
    pub name: String,
    pub why: String,
}

impl std::fmt::Display for WeakSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "variable `{}` {}: set {}", self.name, self.why, env_name(&self.name))?;
        if is_key_material(&self.name) {
            write!(f, " to at least {MIN_KEY_BYTES} random bytes (e.g. `openssl rand -hex 32`)")?;
        }
        Ok(())
    }
}

impl AppVariables {
    pub fn resolve(manifest: &Manifest, env: impl Fn(&str) -> Option<String>) -> Result<AppVariables> {
        let mut values = BTreeMap::new();
        let mut defaulted = Vec::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            let value = match env(&env_name(name)) {
                Some(value) => Some(value),
                None => {
                    defaulted.push(name.clone());
                    decl.default.clone()
                }
            };
            match value {
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
        Ok(AppVariables { values, defaulted })
    }

    /// The `secret = true` variables that are unsafe to serve with: one that holds its
    /// manifest default (an empty default means "not configured" and is left alone),
    /// and key material shorter than [`MIN_KEY_BYTES`].
    pub fn weak_secrets(&self, manifest: &Manifest) -> Vec<WeakSecret> {
        let mut weak = Vec::new();
        for (name, decl) in manifest.variables.iter().filter(|(_, decl)| decl.secret) {
            let value = self.values.get(name).map_or("", String::as_str);
            let why = if self.defaulted.contains(name) && !value.is_empty() {
                "holds its manifest default, which anyone who reads the manifest knows".to_owned()
            } else if is_key_material(name) && value.len() < MIN_KEY_BYTES && (decl.required || !value.is_empty()) {
                format!("is key material but only {} bytes long", value.len())
            } else {
                continue;
            };
            weak.push(WeakSecret { name: name.clone(), why });
        }
        weak
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

/// Whether a secret's name says it is a key (`token_secret`, `card_key`), rather than
/// a password or a third party's token, whose length is not ours to choose.
fn is_key_material(name: &str) -> bool {
    name.ends_with("secret") || name.ends_with("_key") || name == "key"
}

/// What the interface's calls reach of an instance: its component's variables.
pub struct VariablesView<'a> {
    pub component: &'a str,
    pub variables: &'a Variables,
}

struct HasVariables;

impl HasData for HasVariables {
    type Data<'a> = VariablesView<'a>;
}

/// Adds both versions of Spin's variables interface to `linker`, served by the view
/// `view` gives of the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> VariablesView<'_>) -> wasmtime::Result<()> {
    variables::add_to_linker::<T, HasVariables>(linker, view)?;
    v3::add_to_linker::<T, HasVariables>(linker, view)
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl VariablesView<'_> {
    /// The value of `name`, or the error both interfaces give for it.
    fn lookup(&self, name: &str) -> Result<String, Error> {
        if !is_valid_name(name) {
            return Err(Error::InvalidName(format!(
                "`{name}` is not a variable name: lowercase letters, digits and underscores, starting with a letter"
            )));
        }
        self.variables.values.get(name).cloned().ok_or_else(|| {
            Error::Undefined(format!("component `{}` declares no variable `{name}`", self.component))
        })
    }
}

impl Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self.lookup(&name))
    }
}

impl v3::Host for VariablesView<'_> {}

impl<U> v3::HostWithStore<U> for HasVariables {
    async fn get(accessor: &Accessor<U, Self>, name: String) -> wasmtime::Result<Result<String, v3::Error>> {
        let value = accessor.with(|mut access| access.get().lookup(&name));
        Ok(value.map_err(|e| match e {
            Error::InvalidName(why) => v3::Error::InvalidName(why),
            Error::Undefined(why) => v3::Error::Undefined(why),
            Error::Provider(why) => v3::Error::Provider(why),
            Error::Other(why) => v3::Error::Other(why),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(variables: &str) -> Manifest {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spin.toml");
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[variables]\n{variables}\n\
             [[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        std::fs::write(&path, text).expect("write manifest");
        Manifest::load(&path).expect("manifest loads")
    }

    fn weak(variables: &str, env: &[(&str, &str)]) -> Vec<String> {
        let manifest = manifest(variables);
        let resolved = AppVariables::resolve(&manifest, |name| {
            env.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        })
        .expect("resolves");
        resolved.weak_secrets(&manifest).into_iter().map(|w| w.to_string()).collect()
    }

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_secret_holding_its_default_is_weak_until_set() {
        let variables = "token_secret = { default = \"change-me\", secret = true }\n\
                         admin_password = { default = \"admin\", secret = true }\n\
                         greeting = { default = \"hi\" }";
        let found = weak(variables, &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("variable `admin_password` holds its manifest default"), "{found:?}");
        assert!(found[0].ends_with("set SPIN_VARIABLE_ADMIN_PASSWORD"), "{found:?}");
        assert!(found[1].contains("SPIN_VARIABLE_TOKEN_SECRET to at least 32 random bytes"), "{found:?}");

        let set = [("SPIN_VARIABLE_TOKEN_SECRET", LONG), ("SPIN_VARIABLE_ADMIN_PASSWORD", "a passphrase")];
        assert_eq!(weak(variables, &set), Vec::<String>::new());
    }

    #[test]
    fn key_material_must_be_long_enough_wherever_it_comes_from() {
        let found = weak("token_secret = { required = true, secret = true }", &[("SPIN_VARIABLE_TOKEN_SECRET", "short")]);
        assert_eq!(found, ["variable `token_secret` is key material but only 5 bytes long: set SPIN_VARIABLE_TOKEN_SECRET to at least 32 random bytes (e.g. `openssl rand -hex 32`)"]);
        let found = weak("card_key = { required = true, secret = true }", &[("SPIN_VARIABLE_CARD_KEY", "")]);
        assert_eq!(found.len(), 1, "an empty key is no key: {found:?}");
        // A password or a provider's token is as long as whoever issued it made it.
        assert!(weak("sms_auth_token = { required = true, secret = true }", &[("SPIN_VARIABLE_SMS_AUTH_TOKEN", "x")]).is_empty());
    }

    #[test]
    fn an_empty_default_means_not_configured() {
        assert!(weak("sms_auth_token = { default = \"\", secret = true }", &[]).is_empty());
        assert!(weak("signing_key = { default = \"\", secret = true }", &[]).is_empty());
    }
}
