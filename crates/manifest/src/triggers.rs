//! Triggers: `[[trigger.http]]` (routes) and `[[trigger.kafka]]` (topics), the
//! components they run, and the rules that span several triggers.
//!
//! Contract: every trigger names a defined component or holds an inline one (named
//! as Spin names it); no two public routes match the same requests; no topic is
//! consumed twice by one consumer group. Other trigger types are refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::check::{Checked, Checker, Loc, is_close};
use crate::components::inline_component_id;
use crate::de::{Node, StringOr, Table, Typed};
use crate::error::{KeyPath, display_key};
use crate::raw::{
    ComponentRef, RawExecutor, RawHttpTrigger, RawKafkaTrigger, RawPrivateRoute, RawTriggers,
};
use crate::{ComponentDecl, HttpRoute, HttpTrigger, KafkaTrigger, VariableDecl, routes};

/// What the entries of every trigger type have.
trait RawTrigger {
    /// Spin keys that estore refuses by name rather than ignore (unless empty).
    const UNSUPPORTED: &[(&str, &str)];
    fn id(&self) -> &Option<Node<String>>;
    fn component(&self) -> &Option<Node<ComponentRef>>;
}

impl RawTrigger for RawHttpTrigger {
    const UNSUPPORTED: &[(&str, &str)] = &[
        ("static_response", "static responses"),
        ("components", "the reserved `components` key"),
    ];
    fn id(&self) -> &Option<Node<String>> {
        &self.id
    }
    fn component(&self) -> &Option<Node<ComponentRef>> {
        &self.component
    }
}

impl RawTrigger for RawKafkaTrigger {
    const UNSUPPORTED: &[(&str, &str)] = &[("components", "the reserved `components` key")];
    fn id(&self) -> &Option<Node<String>> {
        &self.id
    }
    fn component(&self) -> &Option<Node<ComponentRef>> {
        &self.component
    }
}

/// A `[[trigger.<type>]]` entry of a type estore runs.
enum Entry<'a> {
    Http(&'a Table<RawHttpTrigger>),
    Kafka(&'a Table<RawKafkaTrigger>),
}

impl Entry<'_> {
    /// The `<type>` of `[[trigger.<type>]]`.
    fn type_name(&self) -> &'static str {
        match self {
            Entry::Http(_) => "http",
            Entry::Kafka(_) => "kafka",
        }
    }
}

/// A trigger entry whose shape, keys and `id` have been checked.
struct TriggerEntry<'a> {
    entry: Entry<'a>,
    loc: Loc,
    /// The `id` as written.
    id: Option<String>,
    /// `component`, if written: where, and the id or inline table.
    component: Option<(Loc, &'a Typed<ComponentRef>)>,
}

impl TriggerEntry<'_> {
    /// The component id the trigger names, if it names one (rather than inline).
    fn component_name(&self) -> Option<&str> {
        match self.component {
            Some((_, Ok(StringOr::String(name)))) => Some(name),
            _ => None,
        }
    }
}

impl Checker<'_> {
    /// `[[trigger.http]]` and `[[trigger.kafka]]`, each in file order. Inline
    /// components are added to `components`.
    pub(crate) fn triggers(
        &self,
        tloc: &Loc,
        value: Option<&Node<Table<RawTriggers>>>,
        components: &mut BTreeMap<String, ComponentDecl>,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<(Vec<HttpTrigger>, Vec<KafkaTrigger>)> {
        const NO_TRIGGERS: &str = "the application has no triggers: add a `[[trigger.http]]` with a `route` and a `component`, or a `[[trigger.kafka]]` with `topics` and a `component`";
        let Some(value) = value else {
            return Err(self.error(tloc, NO_TRIGGERS));
        };
        let entries = self.trigger_entries(tloc, self.table(tloc, &value.value)?)?;
        if entries.is_empty() {
            return Err(self.error(tloc, NO_TRIGGERS));
        }
        let trigger_ids = normalized_trigger_ids(&entries);

        let (mut http, mut kafka) = (Vec::new(), Vec::new());
        for (entry, trigger_id) in entries.iter().zip(&trigger_ids) {
            let component =
                self.trigger_component(entry, trigger_id, components, dir, variables)?;
            match entry.entry {
                Entry::Http(table) => http.push(self.http_trigger(entry, table, component)?),
                Entry::Kafka(table) => kafka.push(self.kafka_trigger(entry, table, component)?),
            }
        }
        self.check_component_references(&entries, components)?;
        self.check_duplicate_routes(&entries, &http, &tloc.path.key("http"))?;
        self.check_shared_topics(&entries, &kafka, &tloc.path.key("kafka"))?;
        Ok((http, kafka))
    }

    /// First pass over `[trigger]`: the shape, keys and `id` of every entry of every
    /// type, which Spin's id normalisation needs before anything else.
    fn trigger_entries<'t>(
        &self,
        tloc: &Loc,
        table: &'t Table<RawTriggers>,
    ) -> Checked<Vec<TriggerEntry<'t>>> {
        let mut entries = Vec::new();
        for key in table.sorted_keys() {
            let t = &table.fields;
            match key.name.as_str() {
                "http" => {
                    self.push_entries(tloc, table, "http", &t.http, Entry::Http, &mut entries)?
                }
                "kafka" => {
                    self.push_entries(tloc, table, "kafka", &t.kafka, Entry::Kafka, &mut entries)?;
                }
                name => return Err(self.unsupported_trigger(&tloc.undeclared(table, name), name)),
            }
        }
        Ok(entries)
    }

    /// Checks the entries of `[[trigger.<name>]]` and appends them to `entries`.
    fn push_entries<'t, T: RawTrigger>(
        &self,
        tloc: &Loc,
        table: &'t Table<RawTriggers>,
        name: &str,
        list: &'t Option<Node<Vec<Node<Table<T>>>>>,
        entry: fn(&'t Table<T>) -> Entry<'t>,
        entries: &mut Vec<TriggerEntry<'t>>,
    ) -> Checked<()> {
        let Some((here, list)) = tloc.field(table, name, list) else {
            return Ok(());
        };
        let list = self.expect(
            &here,
            list,
            &format!("an array of tables (write `[[trigger.{name}]]`)"),
        )?;
        for (i, item) in list.iter().enumerate() {
            let loc = here.index(i, item);
            let table = self.table(&loc, &item.value)?;
            self.check_keys(&loc, table, T::UNSUPPORTED)?;
            entries.push(TriggerEntry {
                id: self.opt_string(&loc, table, "id", table.fields.id())?,
                component: loc.field(table, "component", table.fields.component()),
                entry: entry(table),
                loc,
            });
        }
        Ok(())
    }
}

impl Checker<'_> {
    /// The id of the component a trigger runs; an inline component is checked and
    /// added to `components` under the id Spin would give it.
    fn trigger_component(
        &self,
        entry: &TriggerEntry,
        trigger_id: &str,
        components: &mut BTreeMap<String, ComponentDecl>,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<String> {
        let Some((cloc, component)) = &entry.component else {
            return Err(self.error(
                &entry.loc,
                "missing `component` (the id of the component to run)",
            ));
        };
        let expected = "a component id or an inline component table";
        match self.expect(cloc, component, expected)? {
            StringOr::String(name) => Ok(name.clone()),
            StringOr::Other(inline) => {
                let generated = inline_component_id(trigger_id, components);
                let decl = self.component(cloc, inline, &generated, dir, variables)?;
                components.insert(generated.clone(), decl);
                Ok(generated)
            }
        }
    }

    fn http_trigger(
        &self,
        entry: &TriggerEntry,
        table: &Table<RawHttpTrigger>,
        component: String,
    ) -> Checked<HttpTrigger> {
        let (loc, t) = (&entry.loc, &table.fields);
        let route = self.route(loc, table)?;
        if let Some((at, executor)) = loc.field(table, "executor", &t.executor) {
            self.executor(&at, executor)?;
        }
        let timeout = "request_timeout_ms";
        let request_timeout_ms = self.opt_positive(loc, table, timeout, &t.request_timeout_ms)?;
        if let Some((at, _)) = loc.field(table, timeout, &t.request_timeout_ms)
            && route == HttpRoute::Private
        {
            return Err(self.key_error(
                &at,
                format!(
                    "a private route takes no requests of its own: chained requests get the component's deadline; set `request_timeout_ms` in [component.{}.limits] instead",
                    display_key(&component)
                ),
            ));
        }
        Ok(HttpTrigger {
            id: entry.id.clone(),
            route,
            component,
            request_timeout_ms,
        })
    }

    fn kafka_trigger(
        &self,
        entry: &TriggerEntry,
        table: &Table<RawKafkaTrigger>,
        component: String,
    ) -> Checked<KafkaTrigger> {
        let (loc, t) = (&entry.loc, &table.fields);
        let Some((tloc, topics)) = loc.field(table, "topics", &t.topics) else {
            return Err(self.error(
                loc,
                "missing `topics` (the topics whose messages the component handles, e.g. `topics = [\"orders\"]`)",
            ));
        };
        let topics = self.topics(&tloc, topics)?;
        if topics.is_empty() {
            return Err(self.error(&tloc, "no topics: list at least one"));
        }
        let group = match loc.field(table, "group", &t.group) {
            Some((at, group)) => {
                let group = self.string(&at, group)?;
                if group.trim().is_empty() {
                    return Err(self.error(&at, "the consumer group is empty"));
                }
                group.to_string()
            }
            None => component.clone(),
        };
        Ok(KafkaTrigger {
            id: entry.id.clone(),
            component,
            topics,
            group,
        })
    }

    /// Every component a trigger names by id exists (inline ones were just added).
    fn check_component_references(
        &self,
        entries: &[TriggerEntry],
        components: &BTreeMap<String, ComponentDecl>,
    ) -> Checked<()> {
        for entry in entries {
            let (Some(name), Some((cloc, _))) = (entry.component_name(), &entry.component) else {
                continue;
            };
            if components.contains_key(name) {
                continue;
            }
            let known: Vec<&str> = components.keys().map(String::as_str).collect();
            let mut message = if known.is_empty() {
                format!("no component `{name}` (no components are defined)")
            } else {
                format!("no component `{name}` (defined: {})", known.join(", "))
            };
            if let Some(close) = known.iter().find(|k| is_close(k, name)) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            return Err(self.error(cloc, message));
        }
        Ok(())
    }

    /// No two public routes match the same requests.
    fn check_duplicate_routes(
        &self,
        entries: &[TriggerEntry],
        triggers: &[HttpTrigger],
        hpath: &KeyPath,
    ) -> Checked<()> {
        let describe = |i: usize| {
            describe_trigger(hpath, i, triggers[i].id.as_deref(), &triggers[i].component)
        };
        let tables = entries.iter().filter_map(|e| match e.entry {
            Entry::Http(table) => Some((&e.loc, table)),
            Entry::Kafka(_) => None,
        });
        let mut seen: BTreeMap<String, (usize, &str)> = BTreeMap::new();
        for (i, (trigger, (loc, table))) in triggers.iter().zip(tables).enumerate() {
            let (HttpRoute::Path(route), Some((rloc, _))) = (
                &trigger.route,
                loc.field(table, "route", &table.fields.route),
            ) else {
                continue;
            };
            let key = routes::route_key(route).map_err(|e| self.error(&rloc, e))?;
            if let Some(&(first, earlier_route)) = seen.get(&key) {
                return Err(self.error(
                    &rloc,
                    format!(
                        "route `{route}` of {} duplicates route `{earlier_route}` of {}: both match the same requests",
                        describe(i),
                        describe(first)
                    ),
                ));
            }
            seen.insert(key, (i, route));
        }
        Ok(())
    }

    /// No topic is consumed twice by one group: the group's members would split its
    /// partitions, so each trigger would get only part of the messages.
    fn check_shared_topics(
        &self,
        entries: &[TriggerEntry],
        triggers: &[KafkaTrigger],
        kpath: &KeyPath,
    ) -> Checked<()> {
        let describe = |i: usize| {
            describe_trigger(kpath, i, triggers[i].id.as_deref(), &triggers[i].component)
        };
        let tables = entries.iter().filter_map(|e| match e.entry {
            Entry::Kafka(table) => Some((&e.loc, table)),
            Entry::Http(_) => None,
        });
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, (trigger, (loc, table))) in triggers.iter().zip(tables).enumerate() {
            let Some((tloc, Ok(nodes))) = loc.field(table, "topics", &table.fields.topics) else {
                continue;
            };
            for (j, (topic, node)) in trigger.topics.iter().zip(nodes).enumerate() {
                let Some(&first) = seen.get(&(trigger.group.as_str(), topic.as_str())) else {
                    seen.insert((&trigger.group, topic), i);
                    continue;
                };
                return Err(self.error(
                    &tloc.index(j, node),
                    format!(
                        "topic `{topic}` is already consumed by group `{}` in {}: two triggers of one group would each get only part of its messages; give {} another `group`",
                        trigger.group,
                        describe(first),
                        describe(i)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn route(&self, loc: &Loc, trigger: &Table<RawHttpTrigger>) -> Checked<HttpRoute> {
        let Some((rloc, route)) = loc.field(trigger, "route", &trigger.fields.route) else {
            return Err(self.error(
                loc,
                "missing `route` (e.g. `route = \"/hello/...\"` or `route = { private = true }`)",
            ));
        };
        match self.expect(&rloc, route, "a path pattern or `{ private = true }`")? {
            StringOr::String(route) => {
                routes::validate_route(route)
                    .map_err(|e| self.error(&rloc, format!("invalid route `{route}`: {e}")))?;
                Ok(HttpRoute::Path(route.clone()))
            }
            StringOr::Other(table) => self.private_route(&rloc, table),
        }
    }

    fn private_route(&self, loc: &Loc, table: &Table<RawPrivateRoute>) -> Checked<HttpRoute> {
        self.check_keys(loc, table, &[])?;
        if self.flag(loc, table, "private", &table.fields.private)? {
            Ok(HttpRoute::Private)
        } else {
            Err(self.error(
                loc,
                "a route must be a path pattern or `{ private = true }`",
            ))
        }
    }

    fn executor(&self, loc: &Loc, value: &Typed<Table<RawExecutor>>) -> Checked<()> {
        let table = self.table(loc, value)?;
        let Some((tloc, kind)) = loc.field(table, "type", &table.fields.kind) else {
            return Err(self.error(loc, "missing `type` (`executor = { type = \"spin\" }`)"));
        };
        match self.string(&tloc, kind)? {
            "spin" | "http" => self.check_keys(loc, table, &[]),
            "wagi" => Err(self.error(
                &tloc,
                "the Wagi executor is not supported by estore: only HTTP components (`executor = { type = \"spin\" }`, the default)",
            )),
            other => Err(self.error(
                &tloc,
                format!("unknown executor type `{other}` (expected `spin`)"),
            )),
        }
    }
}

/// A trigger as errors name it, e.g. ``trigger `front` (trigger.http[0], component `c`)``.
fn describe_trigger(list: &KeyPath, i: usize, id: Option<&str>, component: &str) -> String {
    let at = list.index(i);
    match id {
        Some(id) => format!("trigger `{id}` ({at}, component `{component}`)"),
        None => format!("{at} (component `{component}`)"),
    }
}

/// Spin's trigger-id normalisation, needed to name inline components as Spin does:
/// a trigger without `id` gets `<component>-<type>-trigger`, or else
/// `<type>-trigger<n>`, unique across the triggers of all types.
fn normalized_trigger_ids(entries: &[TriggerEntry]) -> Vec<String> {
    let mut taken: BTreeSet<String> = entries
        .iter()
        .map(|entry| entry.id.clone().unwrap_or_default())
        .collect();
    let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for entry in entries {
        if let Some(id) = entry.id.as_ref().filter(|id| !id.is_empty()) {
            out.push(id.clone());
            continue;
        }
        let type_name = entry.entry.type_name();
        if let Some(component) = entry.component_name() {
            let candidate = format!("{component}-{type_name}-trigger");
            if taken.insert(candidate.clone()) {
                out.push(candidate);
                continue;
            }
        }
        let counter = counters.entry(type_name).or_insert(1);
        loop {
            let candidate = format!("{type_name}-trigger{counter}");
            if taken.insert(candidate.clone()) {
                out.push(candidate);
                break;
            }
            *counter += 1;
        }
    }
    out
}
