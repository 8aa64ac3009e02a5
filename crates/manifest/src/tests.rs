//! The manifest's tests: each accepted form, and each refusal with its key path,
//! position and words.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::components::check_component_id;
use crate::variables::check_variable_name;
use crate::*;

    const HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"app\"\n";

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("/srv/app/spin.toml"), text)
    }

    fn ok(text: &str) -> Manifest {
        match parse(text) {
            Ok(m) => m,
            Err(e) => panic!("should parse, got: {e}"),
        }
    }

    fn err(text: &str) -> ManifestError {
        match parse(text) {
            Ok(m) => panic!("should fail, got: {m:?}"),
            Err(e) => e,
        }
    }

    /// A minimal valid app with one component `hello` at `/hello/...`, plus `extra`
    /// appended to the component table.
    fn with_component(extra: &str) -> String {
        format!(
            "{HEAD}[[trigger.http]]\nroute = \"/hello/...\"\ncomponent = \"hello\"\n\n[component.hello]\nsource = \"hello.wasm\"\n{extra}"
        )
    }

    fn assert_err(text: &str, key: Option<&str>, needles: &[&str]) -> ManifestError {
        let e = err(text);
        assert_eq!(e.key.as_deref(), key, "key of: {e}");
        for needle in needles {
            assert!(e.message.contains(needle), "`{needle}` not in: {e}");
        }
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        e
    }

    const FULL: &str = r#"
spin_manifest_version = 2

[application]
name = "shop"
version = "1.2.3"
description = "A shop"
authors = ["Ann <ann@example.com>"]
targets = ["spin-up:3.3"]
[application.trigger.http]
base = "/api"
[application.trigger.kafka]
brokers = ["kafka-1:9092", "kafka-2:9092"]
max_attempts = 3
initial_backoff_ms = 100
max_backoff_ms = 5000
concurrency = 16
[application.tool.lint]
level = "high"

[variables]
greeting = { default = "Hello" }
target = { required = true, secret = true, description = "who" }
api_host = { default = "api.example.com" }

[[trigger.http]]
id = "front"
route = "/hello/..."
component = "hello"
executor = { type = "spin" }

[[trigger.http]]
route = { private = true }
component = "backend"

[[trigger.http]]
route = "/users/:id"
component = { source = "inline.wasm" }
request_timeout_ms = 120000

[[trigger.kafka]]
id = "orders"
component = "backend"
topics = ["orders", "orders.retry"]

[[trigger.kafka]]
component = { source = "audit.wasm" }
topics = ["audit_log"]
group = "audit"

[component.hello]
description = "Says hello"
source = "target/hello.wasm"
allowed_outbound_hosts = ["https://{{ api_host }}", "http://backend.spin.internal", "https://*.example.com:8443", "*://localhost:*", "http://127.0.0.1:3000..3010"]
allowed_publish_topics = ["orders", "audit_log"]
allow_email = true
allow_operations = true
key_value_stores = ["default", "cart_items", "user-data"]
variables = { message = "{{ greeting }}, {{target}}!", plain = "text" }
environment = { RUST_LOG = "info" }
files = ["static/**/*", { source = "assets", destination = "/assets" }]
[component.hello.build]
command = ["cargo build", "wasm-tools strip"]
workdir = "hello"
watch = ["src/**/*.rs"]
[component.hello.limits]
request_timeout_ms = 1500
max_memory_mb = 64
max_request_body_bytes = 65536
max_instance_reuse_count = 64
max_instance_concurrent_reuse_count = 4
idle_instance_timeout_ms = 250
[component.hello.tool.clean]
command = "rm -rf target"

[component.backend]
source = "backend.wasm"

[component.unused]
source = "unused.wasm"
"#;

    #[test]
    fn parses_a_full_manifest() {
        let m = ok(FULL);
        assert_eq!(m.path, Path::new("/srv/app/spin.toml"));
        assert_eq!(m.dir, Path::new("/srv/app"));
        assert_eq!(
            m.application,
            Application {
                name: "shop".into(),
                version: Some("1.2.3".into()),
                description: Some("A shop".into()),
                authors: vec!["Ann <ann@example.com>".into()],
                http_base: "/api".into(),
                kafka: KafkaApplicationSettings {
                    brokers: Some("kafka-1:9092,kafka-2:9092".into()),
                    max_attempts: Some(3),
                    initial_backoff_ms: Some(100),
                    max_backoff_ms: Some(5000),
                    concurrency: Some(16),
                },
            }
        );
        assert_eq!(m.variables.len(), 3);
        let target = &m.variables["target"];
        assert!(target.required && target.secret && target.default.is_none());
        assert_eq!(m.variables["greeting"].default.as_deref(), Some("Hello"));

        assert_eq!(m.http_triggers.len(), 3);
        assert_eq!(m.http_triggers[0].id.as_deref(), Some("front"));
        assert_eq!(
            m.http_triggers[0].route,
            HttpRoute::Path("/hello/...".into())
        );
        assert_eq!(m.http_triggers[1].route, HttpRoute::Private);
        assert_eq!(m.http_triggers[1].component, "backend");
        let timeouts: Vec<Option<u64>> = m.http_triggers.iter().map(|t| t.request_timeout_ms).collect();
        assert_eq!(timeouts, vec![None, None, Some(120000)]);
        // Spin names an inline component after its trigger's (generated) id.
        assert_eq!(m.http_triggers[2].component, "http-trigger1-component");
        assert_eq!(
            m.components["http-trigger1-component"].source,
            Path::new("/srv/app/inline.wasm")
        );
        let routes: Vec<(&str, &str)> =
            m.http_routes().into_iter().map(|(route, t)| (route, t.component.as_str())).collect();
        assert_eq!(
            routes,
            vec![("/hello/...", "hello"), ("/users/:id", "http-trigger1-component")]
        );
        assert_eq!(
            m.kafka_triggers,
            vec![
                KafkaTrigger {
                    id: Some("orders".into()),
                    component: "backend".into(),
                    topics: vec!["orders".into(), "orders.retry".into()],
                    group: "backend".into(),
                },
                KafkaTrigger {
                    id: None,
                    component: "kafka-trigger1-component".into(),
                    topics: vec!["audit_log".into()],
                    group: "audit".into(),
                },
            ]
        );
        assert_eq!(
            m.components["kafka-trigger1-component"].source,
            Path::new("/srv/app/audit.wasm")
        );
        assert_eq!(
            m.triggered_components(),
            BTreeSet::from([
                "backend",
                "hello",
                "http-trigger1-component",
                "kafka-trigger1-component"
            ])
        );

        let hello = m.components.get("hello").expect("hello");
        assert_eq!(hello.source, Path::new("/srv/app/target/hello.wasm"));
        assert_eq!(hello.description.as_deref(), Some("Says hello"));
        assert_eq!(hello.allowed_outbound_hosts.len(), 5);
        assert_eq!(hello.allowed_publish_topics, vec!["orders", "audit_log"]);
        assert!(hello.allow_email);
        assert!(!m.components["backend"].allow_email);
        assert!(hello.allow_operations);
        assert!(!m.components["backend"].allow_operations, "operations are granted, never implied");
        assert_eq!(
            hello.key_value_stores,
            vec!["default", "cart_items", "user-data"]
        );
        assert_eq!(hello.variables["message"], "{{ greeting }}, {{target}}!");
        assert_eq!(hello.environment["RUST_LOG"], "info");
        assert_eq!(
            hello.files,
            vec![
                FileMount::Pattern("static/**/*".into()),
                FileMount::Mapping {
                    source: PathBuf::from("/srv/app/assets"),
                    destination: "/assets".into()
                },
            ]
        );
        let build = hello.build.as_ref().expect("build");
        assert_eq!(build.command, "cargo build && wasm-tools strip");
        assert_eq!(build.commands, vec!["cargo build", "wasm-tools strip"]);
        assert_eq!(build.workdir.as_deref(), Some(Path::new("/srv/app/hello")));
        assert_eq!(build.watch, vec!["src/**/*.rs"]);
        assert_eq!(
            hello.limits,
            ComponentLimits {
                request_timeout_ms: Some(1500),
                max_memory_mb: Some(64),
                max_request_body_bytes: Some(65536),
                max_instance_reuse_count: Some(64),
                max_instance_concurrent_reuse_count: Some(4),
                idle_instance_timeout_ms: Some(250),
            }
        );
        assert_eq!(m.components["backend"].limits, ComponentLimits::default());
        // A component no trigger uses is fine.
        assert!(m.components.contains_key("unused"));
    }

    #[test]
    fn the_projects_own_manifest_is_valid() {
        let m = ok(include_str!("../../../spin.toml"));
        assert!(!m.http_triggers.is_empty());
    }

    #[test]
    fn defaults_when_optional_parts_are_absent() {
        let m = ok(&with_component(""));
        assert_eq!(m.application.http_base, "/");
        assert_eq!(m.application.kafka, KafkaApplicationSettings::default());
        assert!(m.kafka_triggers.is_empty());
        assert!(m.components["hello"].allowed_publish_topics.is_empty());
        assert!(!m.components["hello"].allow_email);
        assert_eq!(m.application.version, None);
        assert!(m.application.authors.is_empty());
        assert!(m.variables.is_empty());
        let hello = &m.components["hello"];
        assert!(hello.build.is_none() && hello.files.is_empty());
        assert_eq!(hello.limits, ComponentLimits::default());
    }

    #[test]
    fn relative_manifest_path_gets_an_absolute_dir() {
        let m = match Manifest::parse(Path::new("spin.toml"), &with_component("")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(m.path, Path::new("spin.toml"));
        assert!(m.dir.is_absolute(), "{}", m.dir.display());
        assert_eq!(m.components["hello"].source, m.dir.join("hello.wasm"));
    }

    #[test]
    fn error_display_is_one_line_with_file_position_and_key() {
        let e = err(&with_component("sourc = \"x\"\n"));
        assert_eq!(e.key.as_deref(), Some("component.hello"));
        assert_eq!(e.line_col, Some((10, 1)));
        assert_eq!(
            e.to_string(),
            "/srv/app/spin.toml:10:1: component.hello: unknown key `sourc` (expected one of: source, description, variables, environment, files, allowed_outbound_hosts, allowed_publish_topics, allow_email, allow_operations, key_value_stores, sql_databases, sqlite_databases, sql_migrations, build, limits, tool); did you mean `source`?"
        );
        let no_position = ManifestError {
            file: "spin.toml".into(),
            key: None,
            line_col: None,
            message: "first\nsecond".into(),
        };
        assert_eq!(no_position.to_string(), "spin.toml: first; second");
    }

    #[test]
    fn bad_toml_syntax_reports_line_and_column() {
        let e = err("spin_manifest_version = 2\n[application\nname = \"x\"\n");
        assert_eq!(e.key, None);
        assert_eq!(e.line_col, Some((2, 13)));
        assert!(e.message.starts_with("invalid TOML"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let e = err("spin_manifest_version = 2\n[application]\nname = \"x\"\nname = \"y\"\n");
        assert_eq!(e.line_col.map(|(l, _)| l), Some(4));
        assert!(e.message.contains("duplicate key"), "{e}");
    }

    #[test]
    fn only_manifest_version_2_is_supported() {
        let body = "[application]\nname = \"x\"\n";
        let e = assert_err(
            body,
            Some("spin_manifest_version"),
            &["missing", "only Spin manifest version 2"],
        );
        assert_eq!(e.line_col, None);
        assert_err(
            &format!("spin_manifest_version = 1\n{body}"),
            Some("spin_manifest_version"),
            &["version 1", "only Spin manifest version 2"],
        );
        assert_err(
            &format!("spin_manifest_version = \"1\"\n{body}"),
            Some("spin_manifest_version"),
            &["version 1"],
        );
        assert_err(
            &format!("spin_manifest_version = 3\n{body}"),
            Some("spin_manifest_version"),
            &[
                "unsupported manifest version 3",
                "only Spin manifest version 2",
            ],
        );
        assert_err(
            &format!("spin_manifest_version = \"2\"\n{body}"),
            Some("spin_manifest_version"),
            &["no quotes"],
        );
        let e = assert_err(
            "spin_version = \"1\"\nname = \"old\"\ntrigger = { type = \"http\" }\n",
            Some("spin_version"),
            &["version 1", "only Spin manifest version 2"],
        );
        assert_eq!(e.line_col, Some((1, 1)));
    }

    #[test]
    fn unknown_keys_are_refused_everywhere_with_their_table() {
        let cases: Vec<(String, &str, &str, (usize, usize))> = vec![
            (format!("colour = 1\n{HEAD}"), "", "colour", (1, 1)),
            (format!("{HEAD}nmae = 2\n"), "application", "nmae", (4, 1)),
            (
                with_component("[component.hello.build]\ncommand = \"x\"\ncwd = \".\"\n"),
                "component.hello.build",
                "cwd",
                (12, 1),
            ),
            (
                with_component("limits = { timeout = 5 }\n"),
                "component.hello.limits",
                "timeout",
                (10, 12),
            ),
            (
                format!(
                    "{HEAD}[variables]\nx = {{ default = \"1\", secrett = true }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "variables.x",
                "secrett",
                (5, 22),
            ),
            (
                format!(
                    "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\nroutes = \"/x\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.http[0]",
                "routes",
                (7, 1),
            ),
            (
                format!(
                    "{HEAD}[[trigger.http]]\nroute = {{ private = true, public = false }}\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.http[0].route",
                "public",
                (5, 27),
            ),
            (
                with_component(
                    "files = [{ source = \"a\", destination = \"/a\", mode = \"ro\" }]\n",
                ),
                "component.hello.files[0]",
                "mode",
                (10, 46),
            ),
            (
                format!(
                    "{HEAD}[application.trigger.http]\nbase = \"/\"\nport = 80\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "application.trigger.http",
                "port",
                (6, 1),
            ),
            (
                format!(
                    "{HEAD}[[trigger.kafka]]\ncomponent = \"c\"\ntopics = [\"t\"]\npartition = 1\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.kafka[0]",
                "partition",
                (7, 1),
            ),
            (
                format!(
                    "{HEAD}[application.trigger.kafka]\nmax_attempts = 2\nretries = 3\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "application.trigger.kafka",
                "retries",
                (6, 1),
            ),
        ];
        for (text, key, unknown, position) in cases {
            let e = err(&text);
            assert_eq!(e.key.as_deref().unwrap_or(""), key, "{e}");
            assert!(
                e.message
                    .starts_with(&format!("unknown key `{unknown}` (expected one of: ")),
                "{e}"
            );
            assert_eq!(e.line_col, Some(position), "{e}");
        }
    }

    #[test]
    fn unknown_key_suggests_a_close_name() {
        let e = err(&with_component("allowed_outbound_host = []\n"));
        assert!(
            e.message
                .ends_with("did you mean `allowed_outbound_hosts`?"),
            "{e}"
        );
        let e = err(&with_component("zzz = 1\n"));
        assert!(!e.message.contains("did you mean"), "{e}");
    }

    #[test]
    fn trigger_naming_an_unknown_component_lists_the_defined_ones() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"helo\"\n[component.hello]\nsource = \"a.wasm\"\n[component.world]\nsource = \"b.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("trigger.http[0].component"),
            &[
                "no component `helo`",
                "defined: hello, world",
                "did you mean `hello`?",
            ],
        );
        assert_eq!(e.line_col, Some((6, 13)));
        let text = format!("{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"x\"\n");
        assert_err(
            &text,
            Some("trigger.http[0].component"),
            &["no components are defined"],
        );
    }

    #[test]
    fn trigger_needs_route_and_component() {
        let text = format!(
            "{HEAD}[[trigger.http]]\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(&text, Some("trigger.http[0]"), &["missing `route`"]);
        let text = format!("{HEAD}[[trigger.http]]\nroute = \"/\"\n");
        assert_err(&text, Some("trigger.http[0]"), &["missing `component`"]);
        assert_err(HEAD, Some("trigger"), &["no triggers"]);
        assert_err(
            &format!("trigger.http = []\n{HEAD}"),
            Some("trigger"),
            &["no triggers"],
        );
        assert_err(
            &format!("{HEAD}[trigger.http]\nroute = \"/\"\ncomponent = \"c\"\n"),
            Some("trigger.http"),
            &["`[[trigger.http]]`"],
        );
    }

    #[test]
    fn duplicate_routes_name_both_triggers() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = \"one\"\n[[trigger.http]]\nid = \"second\"\nroute = \"/a/\"\ncomponent = \"two\"\n[component.one]\nsource = \"1.wasm\"\n[component.two]\nsource = \"2.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("trigger.http[1].route"),
            &[
                "`/a/`",
                "trigger `second`",
                "`/a`",
                "trigger.http[0] (component `one`)",
            ],
        );
        assert_eq!(e.line_col, Some((9, 9)));
        for (a, b) in [("/x/...", "/x/*"), ("/u/:id", "/u/:name"), ("/", "/")] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"{a}\"\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"{b}\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("trigger.http[1].route"), &["duplicates"]);
        }
        // Private routes never clash; exact and wildcard are different routes.
        ok(&format!(
            "{HEAD}[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"c\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"/a\"\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        ));
    }

    #[test]
    fn routes_must_be_well_formed() {
        for bad in [
            "hello",
            "",
            "/a/.../b",
            "/.../x",
            "/a/*/b",
            "/:",
            "/:a/:a",
            "/:file.json",
        ] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"{bad}\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("trigger.http[0].route"), &["invalid route"]);
        }
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = {{ private = false }}\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(
            &text,
            Some("trigger.http[0].route"),
            &["{ private = true }"],
        );
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = 5\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(&text, Some("trigger.http[0].route"), &["found an integer"]);
    }

    #[test]
    fn base_must_be_a_plain_absolute_path() {
        for bad in ["api", "/a//b", "/api/..."] {
            let text = format!(
                "{HEAD}[application.trigger.http]\nbase = \"{bad}\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("application.trigger.http.base"), &[bad]);
        }
    }

    /// An app whose only trigger is the `[[trigger.kafka]]` entry `entry` (further
    /// entries may follow it), with components `orders` and `audit`.
    fn with_kafka_trigger(entry: &str) -> String {
        format!(
            "{HEAD}[[trigger.kafka]]\n{entry}[component.orders]\nsource = \"orders.wasm\"\n[component.audit]\nsource = \"audit.wasm\"\n"
        )
    }

    #[test]
    fn an_application_may_have_only_kafka_triggers() {
        let m = ok(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"orders\"]\n",
        ));
        assert!(m.http_triggers.is_empty() && m.http_routes().is_empty());
        assert_eq!(
            m.kafka_triggers,
            vec![KafkaTrigger {
                id: None,
                component: "orders".into(),
                topics: vec!["orders".into()],
                group: "orders".into(),
            }]
        );
        assert_eq!(m.triggered_components(), BTreeSet::from(["orders"]));
        assert_err(
            HEAD,
            Some("trigger"),
            &["no triggers", "`[[trigger.http]]`", "`[[trigger.kafka]]`"],
        );
        assert_err(
            &format!("trigger.kafka = []\n{HEAD}"),
            Some("trigger"),
            &["no triggers"],
        );
        assert_err(
            &format!("{HEAD}[trigger.kafka]\ncomponent = \"c\"\ntopics = [\"t\"]\n"),
            Some("trigger.kafka"),
            &["`[[trigger.kafka]]`"],
        );
    }

    #[test]
    fn kafka_triggers_need_a_component_and_valid_topics() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "topics = [\"orders\"]\n",
                "trigger.kafka[0]",
                &["missing `component`"],
            ),
            (
                "component = \"orders\"\n",
                "trigger.kafka[0]",
                &["missing `topics`"],
            ),
            (
                "component = \"orders\"\ntopics = []\n",
                "trigger.kafka[0].topics",
                &["no topics"],
            ),
            (
                "component = \"orders\"\ntopics = \"orders\"\n",
                "trigger.kafka[0].topics",
                &["expected an array, found a string"],
            ),
            (
                "component = \"orders\"\ntopics = [1]\n",
                "trigger.kafka[0].topics[0]",
                &["expected a string"],
            ),
            (
                "component = \"orders\"\ntopics = [\"ok\", \"no spaces\"]\n",
                "trigger.kafka[0].topics[1]",
                &["invalid topic name `no spaces`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"..\"]\n",
                "trigger.kafka[0].topics[0]",
                &["invalid topic name `..`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\", \"b\", \"a\"]\n",
                "trigger.kafka[0].topics[2]",
                &["topic `a` is listed twice"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = \"\"\n",
                "trigger.kafka[0].group",
                &["the consumer group is empty"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = 5\n",
                "trigger.kafka[0].group",
                &["expected a string, found an integer"],
            ),
            (
                "id = 3\ncomponent = \"orders\"\ntopics = [\"a\"]\n",
                "trigger.kafka[0].id",
                &["expected a string"],
            ),
            (
                "component = \"order\"\ntopics = [\"a\"]\n",
                "trigger.kafka[0].component",
                &[
                    "no component `order`",
                    "defined: audit, orders",
                    "did you mean `orders`?",
                ],
            ),
            (
                "component = 5\ntopics = [\"a\"]\n",
                "trigger.kafka[0].component",
                &["expected a component id or an inline component table"],
            ),
            (
                "component = \"orders\"\ntopic = [\"a\"]\n",
                "trigger.kafka[0]",
                &["unknown key `topic`", "did you mean `topics`?"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\nroute = \"/\"\n",
                "trigger.kafka[0]",
                &["unknown key `route`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ncomponents = { x = \"orders\" }\n",
                "trigger.kafka[0].components",
                &["is not supported by estore"],
            ),
        ];
        for (entry, key, needles) in cases {
            assert_err(&with_kafka_trigger(entry), Some(key), needles);
        }
        let e = err(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"ok\", \"no spaces\"]\n",
        ));
        assert_eq!(e.line_col, Some((6, 17)), "{e}");
        let long = "t".repeat(250);
        assert_err(
            &with_kafka_trigger(&format!("component = \"orders\"\ntopics = [\"{long}\"]\n")),
            Some("trigger.kafka[0].topics[0]"),
            &["invalid topic name"],
        );
    }

    #[test]
    fn one_group_consumes_a_topic_in_one_trigger_only() {
        let text = with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"a\", \"b\"]\n[[trigger.kafka]]\nid = \"again\"\ncomponent = \"orders\"\ntopics = [\"c\", \"b\"]\n",
        );
        assert_err(
            &text,
            Some("trigger.kafka[1].topics[1]"),
            &[
                "topic `b` is already consumed by group `orders` in trigger.kafka[0] (component `orders`)",
                "give trigger `again` (trigger.kafka[1], component `orders`) another `group`",
            ],
        );
        let m = ok(&text.replace(
            "topics = [\"c\", \"b\"]",
            "topics = [\"c\", \"b\"]\ngroup = \"second\"",
        ));
        let groups: Vec<&str> = m.kafka_triggers.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(groups, vec!["orders", "second"]);
        // A group written out is shared like any other.
        assert_err(
            &with_kafka_trigger(
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = \"g\"\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"a\"]\ngroup = \"g\"\n",
            ),
            Some("trigger.kafka[1].topics[0]"),
            &["already consumed by group `g`"],
        );
        // Each component in its own group sees every message; one group may read
        // several topics through several triggers.
        ok(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"a\"]\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"a\"]\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"b\"]\n",
        ));
    }

    #[test]
    fn kafka_inline_components_are_named_like_spin_does() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = {{ source = \"web.wasm\" }}\n[[trigger.kafka]]\ncomponent = {{ source = \"a.wasm\" }}\ntopics = [\"a\"]\n[[trigger.kafka]]\nid = \"audit\"\ncomponent = {{ source = \"b.wasm\" }}\ntopics = [\"b\"]\n[[trigger.kafka]]\ncomponent = {{ source = \"c.wasm\" }}\ntopics = [\"c\"]\n"
        );
        let m = ok(&text);
        assert_eq!(m.http_triggers[0].component, "http-trigger1-component");
        let names: Vec<(&str, &str)> = m
            .kafka_triggers
            .iter()
            .map(|t| (t.component.as_str(), t.group.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("kafka-trigger1-component", "kafka-trigger1-component"),
                ("audit-component", "audit-component"),
                ("kafka-trigger2-component", "kafka-trigger2-component"),
            ]
        );
        assert_eq!(
            m.components["audit-component"].source,
            Path::new("/srv/app/b.wasm")
        );
        assert_err(
            &text.replace(
                "{ source = \"b.wasm\" }",
                "{ source = \"b.wasm\", colour = 1 }",
            ),
            Some("trigger.kafka[1].component"),
            &["unknown key `colour`"],
        );
    }

    #[test]
    fn application_kafka_settings_are_positive_and_brokers_a_list() {
        let app = |settings: &str| {
            format!(
                "{}[application.trigger.kafka]\n{settings}",
                with_component("")
            )
        };
        let kafka = |settings: &str| ok(&app(settings)).application.kafka;
        assert_eq!(kafka(""), KafkaApplicationSettings::default());
        assert_eq!(
            kafka("brokers = \" a:9092 , b:9093\"\n").brokers.as_deref(),
            Some("a:9092,b:9093")
        );
        assert_eq!(
            kafka("brokers = [\"a:9092\", \"b:9093,c:9094\"]\n")
                .brokers
                .as_deref(),
            Some("a:9092,b:9093,c:9094")
        );
        assert_eq!(
            kafka(
                "max_attempts = 1\nconcurrency = 1\ninitial_backoff_ms = 50\nmax_backoff_ms = 50\n"
            ),
            KafkaApplicationSettings {
                brokers: None,
                max_attempts: Some(1),
                initial_backoff_ms: Some(50),
                max_backoff_ms: Some(50),
                concurrency: Some(1),
            }
        );
        let cases: &[(&str, &str, &[&str])] = &[
            ("brokers = \"\"", "brokers", &["no brokers", "host:port"]),
            ("brokers = []", "brokers", &["no brokers"]),
            (
                "brokers = \"a:1,,b:2\"",
                "brokers",
                &["an empty entry", "`a:1,,b:2`"],
            ),
            (
                "brokers = [\"a :1\"]",
                "brokers",
                &["invalid broker `a :1`"],
            ),
            (
                "brokers = 9092",
                "brokers",
                &["expected `\"host:port,host:port\"`", "found an integer"],
            ),
            ("brokers = [9092]", "brokers[0]", &["expected a string"]),
            (
                "max_attempts = 0",
                "max_attempts",
                &["must be a positive integer, not 0"],
            ),
            (
                "max_attempts = 4294967296",
                "max_attempts",
                &["4294967296 is too large"],
            ),
            (
                "concurrency = -2",
                "concurrency",
                &["must be a positive integer, not -2"],
            ),
            (
                "concurrency = \"8\"",
                "concurrency",
                &["expected a positive integer, found a string"],
            ),
            (
                "initial_backoff_ms = 0",
                "initial_backoff_ms",
                &["positive integer"],
            ),
            ("max_backoff_ms = 1.5", "max_backoff_ms", &["found a float"]),
            (
                "initial_backoff_ms = 500\nmax_backoff_ms = 100",
                "max_backoff_ms",
                &["100 is below `initial_backoff_ms` (500)"],
            ),
        ];
        for (settings, key, needles) in cases {
            assert_err(
                &app(&format!("{settings}\n")),
                Some(&format!("application.trigger.kafka.{key}")),
                needles,
            );
        }
        assert_err(
            &app("max_attempt = 3\n"),
            Some("application.trigger.kafka"),
            &["unknown key `max_attempt`", "did you mean `max_attempts`?"],
        );
        assert_err(
            &format!(
                "{}[application]\nname = \"x\"\ntrigger = {{ kafka = 5 }}\n",
                "spin_manifest_version = 2\n"
            ),
            Some("application.trigger.kafka"),
            &["expected a table, found an integer"],
        );
    }

    #[test]
    fn allowed_publish_topics_are_topic_names() {
        let m = ok(&with_component(
            "allowed_publish_topics = [\"orders\", \"a.b_c-1\"]\n",
        ));
        assert_eq!(
            m.components["hello"].allowed_publish_topics,
            vec!["orders", "a.b_c-1"]
        );
        ok(&with_component("allowed_publish_topics = []\n"));
        for (bad, key, why) in [
            ("[\"bad topic\"]", "[0]", "invalid topic name `bad topic`"),
            ("[\"ok\", \".\"]", "[1]", "invalid topic name `.`"),
            ("[\"a\", \"a\"]", "[1]", "topic `a` is listed twice"),
            ("[1]", "[0]", "expected a string"),
            ("\"orders\"", "", "expected an array"),
        ] {
            assert_err(
                &with_component(&format!("allowed_publish_topics = {bad}\n")),
                Some(&format!("component.hello.allowed_publish_topics{key}")),
                &[why],
            );
        }
    }

    #[test]
    fn allow_email_is_a_boolean() {
        assert!(ok(&with_component("allow_email = true\n")).components["hello"].allow_email);
        assert!(!ok(&with_component("allow_email = false\n")).components["hello"].allow_email);
        for bad in ["\"true\"", "1", "[]"] {
            assert_err(
                &with_component(&format!("allow_email = {bad}\n")),
                Some("component.hello.allow_email"),
                &["expected true or false"],
            );
        }
        let e = assert_err(&with_component("allow_emails = true\n"), Some("component.hello"), &["unknown key `allow_emails`"]);
        assert!(e.message.contains("did you mean `allow_email`?"), "{e}");
    }

    #[test]
    fn broker_lists_are_joined_with_commas() {
        assert_eq!(
            join_brokers(&["a:1", " b:2 ,c:3 "]),
            Ok("a:1,b:2,c:3".to_string())
        );
        assert_eq!(join_brokers(&["a"]), Ok("a".to_string()));
        for bad in [&[][..], &[""], &[" , "]] {
            assert!(
                join_brokers(bad).is_err_and(|e| e.starts_with("no brokers")),
                "{bad:?}"
            );
        }
        assert!(join_brokers(&["a:1,"]).is_err_and(|e| e.contains("an empty entry")));
        assert!(join_brokers(&["a:1", "b\t:2"]).is_err_and(|e| e.contains("invalid broker")));
    }

    #[test]
    fn component_ids_are_kebab_case() {
        for good in ["hello", "hello-world", "a1", "api-v2", "x-1y"] {
            assert_eq!(check_component_id(good), Ok(()), "{good}");
            ok(&format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"{good}\"\n[component.{good}]\nsource = \"c.wasm\"\n"
            ));
        }
        for bad in [
            "Hello",
            "hello_world",
            "1st",
            "-a",
            "a-",
            "a--b",
            "a.b",
            "héllo",
            "HELLO",
        ] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"{bad}\"\n[component.\"{bad}\"]\nsource = \"c.wasm\"\n"
            );
            let e = err(&text);
            assert!(e.message.contains("invalid component id"), "{bad}: {e}");
            assert!(
                e.key
                    .as_deref()
                    .is_some_and(|k| k.starts_with("component.")),
                "{e}"
            );
        }
        assert!(
            err(&with_component("").replace("hello", "my_app"))
                .message
                .contains("not `_`")
        );
    }

    #[test]
    fn variable_names_follow_spins_rule() {
        for good in ["a", "abc", "a1b2", "a_1", "api_host"] {
            assert_eq!(check_variable_name(good), Ok(()), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
        let text = format!(
            "{HEAD}[variables]\nApiHost = {{ default = \"x\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("variables.ApiHost"),
            &["invalid variable name `ApiHost`"],
        );
        assert_eq!(e.line_col, Some((5, 1)));
        let e = err(&with_component("variables = { BadName = \"x\" }\n"));
        assert_eq!(e.key.as_deref(), Some("component.hello.variables.BadName"));
        assert!(e.message.contains("invalid variable name"), "{e}");
    }

    #[test]
    fn a_variable_is_either_required_or_has_a_default() {
        let app = |decl: &str| {
            format!(
                "{HEAD}[variables]\nv = {decl}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            )
        };
        assert_err(
            &app("{ required = true, default = \"x\" }"),
            Some("variables.v.default"),
            &["`required = true` and has a `default`"],
        );
        assert_err(
            &app("{ secret = true }"),
            Some("variables.v"),
            &["needs a `default` or `required = true`"],
        );
        assert_err(
            &app("\"just a string\""),
            Some("variables.v"),
            &["expected a table"],
        );
        assert_err(
            &app("{ required = \"yes\" }"),
            Some("variables.v.required"),
            &["true or false"],
        );
        ok(&app("{ required = false, default = \"\" }"));
    }

    #[test]
    fn component_variables_may_only_reference_declared_variables() {
        let text = format!(
            "{HEAD}[variables]\ngreeting = {{ default = \"hi\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\nvariables = {{ message = \"{{{{ greeting }}}} {{{{ target }}}}\" }}\n"
        );
        let e = assert_err(
            &text,
            Some("component.c.variables.message"),
            &[
                "component variable `message`",
                "application variable `target`",
                "not declared",
            ],
        );
        assert_eq!(e.line_col.map(|(l, _)| l), Some(11));
        assert_err(
            &with_component("variables = { m = \"{{ unclosed\" }\n"),
            Some("component.hello.variables.m"),
            &["unmatched `{{`"],
        );
        assert_err(
            &with_component("variables = { m = \"{{ not a name }}\" }\n"),
            Some("component.hello.variables.m"),
            &["does not name a variable"],
        );
        assert_err(
            &with_component("variables = { m = 3 }\n"),
            Some("component.hello.variables.m"),
            &["expected a string"],
        );
    }

    #[test]
    fn allowed_outbound_hosts_are_checked_where_they_stand() {
        let e = assert_err(
            &with_component(
                "allowed_outbound_hosts = [\"https://ok.example.com\", \"example.com\"]\n",
            ),
            Some("component.hello.allowed_outbound_hosts[1]"),
            &["invalid outbound host `example.com`", "no scheme"],
        );
        assert_eq!(e.line_col, Some((10, 53)));
        // Templates are checked once resolved, but their variables must exist.
        let text = format!(
            "{HEAD}[variables]\nhost = {{ default = \"x\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\nallowed_outbound_hosts = [\"https://{{{{ host }}}}:{{{{ port }}}}\"]\n"
        );
        assert_err(
            &text,
            Some("component.c.allowed_outbound_hosts[0]"),
            &["`port`", "not declared"],
        );
        ok(&text.replace(":{{ port }}", ""));
    }

    #[test]
    fn key_value_store_labels() {
        ok(&with_component(
            "key_value_stores = [\"default\", \"a_b-c9\"]\n",
        ));
        for bad in ["", "Default", "a b", "a.b"] {
            let e = err(&with_component(&format!(
                "key_value_stores = [\"{bad}\"]\n"
            )));
            assert_eq!(
                e.key.as_deref(),
                Some("component.hello.key_value_stores[0]"),
                "{e}"
            );
            assert!(e.message.contains("invalid label"), "{e}");
        }
        assert_err(
            &with_component("key_value_stores = \"default\"\n"),
            Some("component.hello.key_value_stores"),
            &["expected an array"],
        );
    }

    #[test]
    fn build_needs_a_command() {
        assert_err(
            &with_component("[component.hello.build]\nwatch = [\"src/*.rs\"]\n"),
            Some("component.hello.build"),
            &["missing `command`"],
        );
        assert_err(
            &with_component("[component.hello.build]\ncommand = []\n"),
            Some("component.hello.build.command"),
            &["empty build command"],
        );
        assert_err(
            &with_component("[component.hello.build]\ncommand = 1\n"),
            Some("component.hello.build.command"),
            &["found an integer"],
        );
        let m = ok(&with_component(
            "[component.hello.build]\ncommand = \"make\"\n",
        ));
        let build = m.components["hello"].build.clone().expect("build");
        assert_eq!((build.command.as_str(), build.workdir), ("make", None));
    }

    #[test]
    fn only_the_spin_http_executor_is_supported() {
        let app = |executor: &str| {
            format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n{executor}\n[component.c]\nsource = \"c.wasm\"\n"
            )
        };
        ok(&app(""));
        ok(&app("executor = { type = \"spin\" }"));
        ok(&app("executor = { type = \"http\" }"));
        assert_err(
            &app("executor = { type = \"wagi\", argv = \"${SCRIPT_NAME}\" }"),
            Some("trigger.http[0].executor.type"),
            &["Wagi executor is not supported"],
        );
        assert_err(
            &app("executor = { type = \"cgi\" }"),
            Some("trigger.http[0].executor.type"),
            &["unknown executor type `cgi`"],
        );
        assert_err(
            &app("executor = { type = \"spin\", argv = \"x\" }"),
            Some("trigger.http[0].executor"),
            &["unknown key `argv`"],
        );
        assert_err(
            &app("executor = { }"),
            Some("trigger.http[0].executor"),
            &["missing `type`"],
        );
    }

    #[test]
    fn limits_must_be_positive() {
        for bad in ["0", "-5"] {
            assert_err(
                &with_component(&format!(
                    "[component.hello.limits]\nmax_memory_mb = {bad}\n"
                )),
                Some("component.hello.limits.max_memory_mb"),
                &["positive integer"],
            );
        }
        assert_err(
            &with_component("[component.hello.limits]\nrequest_timeout_ms = 1.5\n"),
            Some("component.hello.limits.request_timeout_ms"),
            &["positive integer", "float"],
        );
        assert_err(
            &with_component("[component.hello.limits]\nmax_request_body_bytes = 0\n"),
            Some("component.hello.limits.max_request_body_bytes"),
            &["positive integer"],
        );
    }

    #[test]
    fn a_route_may_have_its_own_timeout() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/orders/...\"\ncomponent = \"orders\"\n\
             [[trigger.http]]\nroute = \"/orders/:id/events\"\ncomponent = \"orders\"\nrequest_timeout_ms = 300000\n\
             [component.orders]\nsource = \"orders.wasm\"\n"
        );
        let m = ok(&text);
        let timeouts: Vec<Option<u64>> = m.http_triggers.iter().map(|t| t.request_timeout_ms).collect();
        assert_eq!(timeouts, vec![None, Some(300000)]);

        let bad = text.replace("request_timeout_ms = 300000", "request_timeout_ms = 0");
        assert_err(&bad, Some("trigger.http[1].request_timeout_ms"), &["positive integer"]);
        let private = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"b\"\nrequest_timeout_ms = 5000\n\
             [component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n"
        );
        let e = assert_err(
            &private,
            Some("trigger.http[1].request_timeout_ms"),
            &["a private route takes no requests of its own", "[component.b.limits]"],
        );
        assert_eq!(e.line_col, Some((10, 1)), "{e}");
    }

    #[test]
    fn unsupported_spin_features_say_so() {
        for (extra, key, what) in [
            ("ai_models = [\"llama2-chat\"]\n", "ai_models", "AI"),
            (
                "dependencies = { \"a:b/c\" = \"1.0.0\" }\n",
                "dependencies",
                "dependencies",
            ),
            (
                "exclude_files = [\"secret/*\"]\n",
                "exclude_files",
                "excluding",
            ),
            (
                "allowed_http_hosts = [\"example.com\"]\n",
                "allowed_http_hosts",
                "allowed_outbound_hosts",
            ),
        ] {
            let e = assert_err(
                &with_component(extra),
                Some(&format!("component.hello.{key}")),
                &["is not supported by estore", what],
            );
            assert_eq!(e.line_col, Some((10, 1)), "{e}");
        }
        // Empty lists ask for nothing, so they are harmless.
        ok(&with_component(
            "ai_models = []\ndependencies_inherit_configuration = false\n",
        ));

        let remote = with_component("").replace(
            "source = \"hello.wasm\"",
            "source = { url = \"https://example.com/x.wasm\", digest = \"sha256:00\" }",
        );
        assert_err(
            &remote,
            Some("component.hello.source"),
            &["remote sources", "not supported by estore"],
        );
        let registry = with_component("").replace(
            "source = \"hello.wasm\"",
            "source = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
        );
        assert_err(
            &registry,
            Some("component.hello.source"),
            &["registry sources", "not supported"],
        );

        assert_err(
            &format!("{HEAD}[[trigger.redis]]\nchannel = \"x\"\ncomponent = \"c\"\n"),
            Some("trigger.redis"),
            &["trigger type `redis` is not supported by estore"],
        );
        assert_err(
            &format!(
                "{}[application.trigger.redis]\naddress = \"redis://x\"\n",
                with_component("")
            ),
            Some("application.trigger.redis"),
            &["trigger type `redis` is not supported by estore"],
        );
        assert_err(
            &format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\nstatic_response = {{ body = \"hi\" }}\n"
            ),
            Some("trigger.http[0].static_response"),
            &["not supported by estore", "static responses"],
        );
    }

    #[test]
    fn files_are_relative_patterns_or_mappings_to_absolute_paths() {
        let m = ok(&with_component(
            "files = [\"a.txt\", \"static/**\", { source = \"data\", destination = \"/var/data\" }]\n",
        ));
        assert_eq!(m.components["hello"].files.len(), 3);
        for (bad, key, why) in [
            ("\"/etc/passwd\"", "files[0]", "relative"),
            ("\"../secret\"", "files[0]", "relative"),
            ("\"[\"", "files[0]", "invalid glob"),
            (
                "{ source = \"data\", destination = \"data\" }",
                "files[0].destination",
                "absolute guest path",
            ),
            (
                "{ source = \"../data\", destination = \"/d\" }",
                "files[0].source",
                "relative",
            ),
            ("{ destination = \"/d\" }", "files[0]", "missing `source`"),
            ("3", "files[0]", "found an integer"),
        ] {
            assert_err(
                &with_component(&format!("files = [{bad}]\n")),
                Some(&format!("component.hello.{key}")),
                &[why],
            );
        }
    }

    #[test]
    fn inline_components_are_named_like_spin_does() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nid = \"front\"\nroute = \"/a\"\ncomponent = {{ source = \"a.wasm\" }}\n[[trigger.http]]\nroute = \"/b\"\ncomponent = {{ source = \"b.wasm\" }}\n[[trigger.http]]\nid = \"Not_Kebab\"\nroute = \"/c\"\ncomponent = {{ source = \"c.wasm\" }}\n[[trigger.http]]\nroute = \"/d\"\ncomponent = \"front-component\"\n"
        );
        let m = ok(&text);
        let ids: Vec<&str> = m
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        assert_eq!(
            ids,
            vec![
                "front-component",
                "http-trigger1-component",
                "inline-component1",
                "front-component"
            ]
        );
        assert_eq!(
            m.components["inline-component1"].source,
            Path::new("/srv/app/c.wasm")
        );
        let e = err(&format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = {{ source = \"a.wasm\", colour = 1 }}\n"
        ));
        assert_eq!(e.key.as_deref(), Some("trigger.http[0].component"), "{e}");
    }

    #[test]
    fn type_errors_name_the_key() {
        assert_err(
            "spin_manifest_version = 2\napplication = 5\n",
            Some("application"),
            &["expected a table, found an integer"],
        );
        assert_err(
            "spin_manifest_version = 2\n[application]\nversion = \"1\"\n",
            Some("application"),
            &["missing `name`"],
        );
        assert_err(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\nauthors = [1]\n",
            Some("application.authors[0]"),
            &["expected a string"],
        );
        assert_err(
            &with_component("environment = { A = 1 }\n"),
            Some("component.hello.environment.A"),
            &["expected a string"],
        );
        assert_err(
            &with_component("environment = { \"A=B\" = \"1\" }\n"),
            Some("component.hello.environment.\"A=B\""),
            &["invalid environment variable name"],
        );
        assert_err(
            &with_component("").replace("source = \"hello.wasm\"", "source = \"\""),
            Some("component.hello.source"),
            &["empty"],
        );
        assert_err(
            &with_component("").replace("source = \"hello.wasm\"", "description = \"d\""),
            Some("component.hello"),
            &["missing `source`"],
        );
    }

    #[test]
    fn templates_render_and_list_references() {
        let lookup = |name: &str| match name {
            "greeting" => Some("Hello".to_string()),
            "target" => Some("world".to_string()),
            _ => None,
        };
        assert_eq!(
            render_template("{{ greeting }}, {{target}}!", lookup),
            Ok("Hello, world!".to_string())
        );
        assert_eq!(
            render_template("{{greeting}}{{ greeting }}", lookup),
            Ok("HelloHello".to_string())
        );
        assert_eq!(
            render_template("no templates } here }}", lookup),
            Ok("no templates } here }}".to_string())
        );
        assert_eq!(render_template("", lookup), Ok(String::new()));
        assert!(render_template("{{ missing }}", lookup).is_err_and(|e| e.contains("missing")));
        assert!(render_template("{{ greeting", lookup).is_err_and(|e| e.contains("unmatched")));
        assert_eq!(
            template_references("https://{{ host }}:{{port}}/{{ host }}"),
            vec!["host", "port"]
        );
        assert_eq!(template_references("plain"), Vec::<String>::new());
        assert_eq!(template_references("{{ a }} {{ b"), vec!["a"]);
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("estore-manifest-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                panic!("cannot create {}: {e}", dir.display());
            }
            TempDir(dir)
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(e) = std::fs::write(&path, contents) {
                panic!("cannot write {}: {e}", path.display());
            }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_reads_the_file_and_check_sources_finds_missing_files() {
        let tmp = TempDir::new("sources");
        let manifest = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"target/hello.wasm\"\nfiles = [\"static/*.css\", \"notes.txt\", {{ source = \"data\", destination = \"/data\" }}]\n[component.hello.build]\ncommand = \"make\"\n[component.plain]\nsource = \"plain.wasm\"\n"
        );
        tmp.write("spin.toml", &manifest);
        let path = tmp.0.join("spin.toml");
        let m = match Manifest::load(&path) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(m.dir, tmp.0);

        let e = match m.check_sources() {
            Ok(()) => panic!("hello.wasm is missing"),
            Err(e) => e,
        };
        assert_eq!(e.file, path);
        assert_eq!(e.key.as_deref(), Some("component.hello.source"));
        assert_eq!(
            e.message,
            "file `target/hello.wasm` does not exist; run `estore build`?"
        );
        assert!(
            e.to_string()
                .contains("component.hello.source: file `target/hello.wasm` does not exist")
        );

        tmp.write("target/hello.wasm", "\0asm");
        let source_error = || m.check_sources().err().map(|e| e.to_string()).unwrap_or_default();
        let e = source_error();
        assert!(
            e.contains("component.hello.files[1]: `notes.txt` does not exist"),
            "{e}"
        );
        tmp.write("notes.txt", "n");
        let e = source_error();
        assert!(
            e.contains("component.hello.files[2].source: `data` does not exist"),
            "{e}"
        );
        let _ = std::fs::create_dir_all(tmp.0.join("data"));
        let e = source_error();
        assert!(e.contains("component.plain.source: file `plain.wasm` does not exist (and the component has no build command)"), "{e}");
        let _ = std::fs::create_dir_all(tmp.0.join("plain.wasm"));
        let e = source_error();
        assert!(e.contains("is a directory"), "{e}");
        let _ = std::fs::remove_dir_all(tmp.0.join("plain.wasm"));
        tmp.write("plain.wasm", "\0asm");
        // The glob `static/*.css` may match nothing.
        assert_eq!(m.check_sources(), Ok(()));

        let missing = tmp.0.join("nope.toml");
        let e = match Manifest::load(&missing) {
            Ok(_) => panic!("no such file"),
            Err(e) => e,
        };
        assert_eq!((e.file, e.key), (missing, None));
        assert!(
            e.message.starts_with("cannot read the manifest"),
            "{}",
            e.message
        );
    }

    #[test]
    fn never_panics_on_damaged_input() {
        // Every prefix of a rich manifest, and a few mangled variants: each must
        // parse or fail cleanly.
        let mut inputs: Vec<String> = FULL
            .char_indices()
            .map(|(i, _)| FULL[..i].to_string())
            .collect();
        inputs.push(FULL.replace('"', "'"));
        inputs.push(FULL.replace('=', "= ["));
        inputs.push(FULL.replace("[[", "["));
        inputs.push(FULL.replace('\n', "\r\n"));
        inputs.push("\u{feff}".to_string() + FULL);
        inputs.push("é = 1\n".repeat(3));
        for input in &inputs {
            let result = std::panic::catch_unwind(|| parse(input).map(|_| ()));
            assert!(result.is_ok(), "panicked on:\n{input}");
            if let Ok(Err(e)) = result {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }
