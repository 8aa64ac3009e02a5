//! Application variables (`[variables]`) and Spin's template syntax, through which
//! components refer to them (`"{{ greeting }}, {{ target }}"`).
//!
//! Contract: a variable name follows Spin's rule; a variable is either `required` or
//! has a `default`; a template checked here names only declared variables. Values
//! are resolved later, by the host, through [`render_template`].

use std::collections::BTreeMap;

use crate::VariableDecl;
use crate::check::{Checked, Checker, Loc};
use crate::de::{Entries, Table, Typed};
use crate::raw::RawVariable;

enum Part<'a> {
    Literal(&'a str),
    Variable(&'a str),
}

/// Spin's template syntax: `{{` opens an expression that runs to the next `}}`
/// (trimmed); there is no escape; an unmatched `{{` is an error, a lone `}}` is text.
fn parse_template(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let Some((expr, tail)) = after.split_once("}}") else {
                return Err("unmatched `{{` in template".to_string());
            };
            parts.push(Part::Variable(expr.trim()));
            rest = tail;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            let (literal, tail) = rest.split_at(end);
            parts.push(Part::Literal(literal));
            rest = tail;
        }
    }
    Ok(parts)
}

/// Expands `{{ name }}` references (whitespace inside the braces optional) with
/// `lookup`. Fails on a malformed template or a name `lookup` does not know.
pub fn render_template(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for part in parse_template(template)? {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Variable(name) => match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("no value for variable `{name}`")),
            },
        }
    }
    Ok(out)
}

/// The variable names a template refers to, in order of first appearance. For a
/// malformed template, those before the error.
#[allow(dead_code, reason = "API for callers that list a template's inputs")]
pub fn template_references(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some((expr, tail)) = rest[start + 2..].split_once("}}") else {
            break;
        };
        let name = expr.trim();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = tail;
    }
    names
}

/// Spin's variable-name rule (`spin_expressions::Key`): lower-case ASCII letters,
/// digits and single underscores, starting with a letter and not ending with `_`.
pub(crate) fn check_variable_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!("{c:?} is not allowed"))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lower-case letter".to_string())
    } else if name.ends_with('_') {
        Some("it must not end with `_`".to_string())
    } else if name.contains("__") {
        Some("it must not contain `__`".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "invalid variable name `{name}`: {why} (names are lower-case letters, digits and single `_`, starting with a letter)"
        )),
    }
}

impl Checker<'_> {
    pub(crate) fn variables(
        &self,
        loc: &Loc,
        value: &Typed<Entries<Table<RawVariable>>>,
    ) -> Checked<BTreeMap<String, VariableDecl>> {
        let mut out = BTreeMap::new();
        for (key, decl) in &self.table(loc, value)?.0 {
            let (name, here) = (&key.name, loc.entry(key, decl));
            check_variable_name(name).map_err(|e| self.key_error(&here, e))?;
            let table = self.expect(
                &here,
                &decl.value,
                "a table such as `{ default = \"...\" }` or `{ required = true }`",
            )?;
            self.check_keys(&here, table, &[])?;
            let v = &table.fields;
            let default = self.opt_string(&here, table, "default", &v.default)?;
            let required = self.flag(&here, table, "required", &v.required)?;
            let secret = self.flag(&here, table, "secret", &v.secret)?;
            match (required, &default) {
                (true, Some(_)) => {
                    let at = here.field(table, "default", &v.default).map(|(at, _)| at);
                    return Err(self.error(
                        &at.unwrap_or_else(|| here.missing("default")),
                        format!("variable `{name}` is `required = true` and has a `default`: it must be one or the other"),
                    ));
                }
                (false, None) => {
                    return Err(self.error(
                        &here,
                        format!("variable `{name}` needs a `default` or `required = true`"),
                    ));
                }
                _ => {}
            }
            out.insert(
                name.clone(),
                VariableDecl {
                    default,
                    required,
                    secret,
                    description: self.opt_string(&here, table, "description", &v.description)?,
                },
            );
        }
        Ok(out)
    }

    /// Checks a template and that every variable it names is declared.
    pub(crate) fn template(
        &self,
        template: &str,
        loc: &Loc,
        what: &str,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<()> {
        let parts =
            parse_template(template).map_err(|e| self.error(loc, format!("{what}: {e}")))?;
        for part in parts {
            if let Part::Variable(name) = part {
                if check_variable_name(name).is_err() {
                    return Err(self.error(
                        loc,
                        format!("{what}: `{{{{ {name} }}}}` does not name a variable"),
                    ));
                }
                if !variables.contains_key(name) {
                    return Err(self.error(
                        loc,
                        format!("{what} references the application variable `{name}`, which is not declared in [variables]"),
                    ));
                }
            }
        }
        Ok(())
    }
}
