//! MCP tools: one module per tool, each the same shape — an `Args` type (its doc comments become
//! the input schema), an `Output` type (the output schema) and one `run`. The registry below
//! turns them into the definitions the server lists and the calls it dispatches; no tool knows
//! about transports, budgets or audit.

mod answer_cache;
pub(crate) mod views;

/// Declares each tool's module and registers it, in one line per tool: adding a tool is its
/// module plus one line in the list below.
macro_rules! tools {
    ($($module:ident => $tool:ident,)*) => {
        $(pub(crate) mod $module;)*

        /// Every tool's entry, in the order `tools/list` shows them.
        fn registered() -> Vec<ToolEntry> {
            vec![$(ToolEntry::of::<$module::$tool>(),)*]
        }
    };
}

// The order is the order clients see: check_tag_compliance first (clients that walk the list
// take its snapshot before detect_tag_drift runs).
tools! {
    check_tag_compliance => CheckTagCompliance,
    find_untagged_resources => FindUntaggedResources,
    validate_resource_tags => ValidateResourceTags,
    get_cost_attribution_gap => GetCostAttributionGap,
    export_violations_csv => ExportViolationsCsv,
    get_cost_anomalies => GetCostAnomalies,
    suggest_tags => SuggestTags,
    apply_virtual_tag => ApplyVirtualTag,
    review_virtual_tags => ReviewVirtualTags,
    promote_virtual_tags => PromoteVirtualTags,
    manage_tag_rules => ManageTagRules,
    manage_allocation_rules => ManageAllocationRules,
    get_tagging_policy => GetTaggingPolicy,
    import_aws_tag_policy => ImportAwsTagPolicy,
    generate_custodian_policy => GenerateCustodianPolicy,
    generate_compliance_report => GenerateComplianceReport,
    get_violation_history => GetViolationHistory,
    detect_tag_drift => DetectTagDrift,
    schedule_compliance_audit => ScheduleComplianceAudit,
    get_audit_trail => GetAuditTrail,
}

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool as ToolDefinition, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) use crate::app::{Call, Principal, Role, ToolError};

/// One MCP tool.
pub(crate) trait Tool: Send + Sync + 'static {
    const NAME: &'static str;
    const TITLE: &'static str;
    const DESCRIPTION: &'static str;
    /// Whether the answer to these arguments depends only on them, the inventory, the policy
    /// and the virtual tags — so it can be cached under a key of those (see `cached_call`).
    /// Only answers that read the inventory are worth it (and need a scan to key them).
    fn caches_answer(_args: &Value) -> bool {
        false
    }
    type Args: DeserializeOwned + Serialize + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + 'static;

    /// The least role that may call the tool at all: what its reading actions need. Every
    /// tool says it (no default), so a new tool cannot be left open by omission.
    const ROLE: Role;
    /// The role a call with these arguments needs: `ROLE`, or more for the actions that write
    /// (a tool that both reads and writes decides per action). The guard checks it before
    /// the tool runs and refuses, naming the role, when the caller's is lower.
    fn role(_args: &Self::Args, _caller: &Principal) -> Role {
        Self::ROLE
    }

    /// True hints only: say what the tool really does.
    fn annotations() -> ToolAnnotations;

    /// Arguments of a valid call, for independent clients' tests (they call every tool with
    /// them); kept with the tool so a new tool cannot be left out.
    fn example() -> Value;
    /// Arguments the schema refuses, and the argument named in the refusal.
    fn counter_example() -> (Value, &'static str);

    /// The MCP App view that shows the tool's structured answer inline (`_meta.ui` in
    /// tools/list), for the few tools whose answer reads better as a picture.
    const VIEW: Option<views::View> = None;

    fn run(
        call: &Call<'_>,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

/// Annotations of a tool that only reads: never destructive, same answer for the same data.
/// `open_world` is true when it reads the cloud (or another outside system).
pub(crate) fn read_only_annotations(open_world: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(open_world)
}

/// Annotations of a tool that writes only Tagwarden's own store (append-only rows, never the
/// cloud): not read-only, not destructive, the same call twice changes nothing more.
pub(crate) fn own_store_annotations() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(false)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type CallFn = for<'a> fn(&'a Call<'a>, Value) -> BoxFuture<'a, Result<Value, ToolError>>;

/// A registered tool: its published definition, its argument validator and its handler.
pub struct ToolEntry {
    pub definition: ToolDefinition,
    /// `Tool::NAME`: a name no client chose (metrics label calls with it).
    static_name: &'static str,
    validator: jsonschema::Validator,
    call: CallFn,
    caches_answer: fn(&Value) -> bool,
    canonical: fn(&Value) -> Option<Value>,
    required_role: fn(&Value, &Principal) -> Role,
    example: fn() -> Value,
    counter_example: fn() -> (Value, &'static str),
}

impl ToolEntry {
    fn of<T: Tool>() -> ToolEntry {
        let input = match schema_for_input::<T::Args>() {
            Ok(schema) => schema,
            // Schemas derive from our own types; a broken one is caught by the tools test.
            Err(e) => unreachable!("input schema of {} is invalid: {e}", T::NAME),
        };
        let input = Arc::new(portable_schema(input.as_ref().clone()));
        let output = Arc::new(portable_schema(
            schema_for_output::<T::Output>().as_ref().clone(),
        ));
        let validator = match jsonschema::validator_for(&Value::Object(input.as_ref().clone())) {
            Ok(v) => v,
            Err(e) => unreachable!("input schema of {} does not compile: {e}", T::NAME),
        };
        let mut definition = ToolDefinition::new(T::NAME, T::DESCRIPTION, input)
            .with_title(T::TITLE)
            .with_raw_output_schema(output)
            .with_annotations(T::annotations().with_title_opt(T::TITLE));
        definition.name = Cow::Borrowed(T::NAME);
        definition.meta = T::VIEW.map(views::View::tool_meta);
        ToolEntry {
            definition,
            static_name: T::NAME,
            validator,
            call: |call, args| Box::pin(call_typed::<T>(call, args)),
            caches_answer: T::caches_answer,
            canonical: canonical_typed::<T>,
            required_role: role_typed::<T>,
            example: T::example,
            counter_example: T::counter_example,
        }
    }

    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The tool's name as compiled in, for labels that must come from a closed set.
    pub(crate) fn static_name(&self) -> &'static str {
        self.static_name
    }

    /// Arguments of a valid call (see [`Tool::example`]).
    pub fn example(&self) -> Value {
        (self.example)()
    }

    /// Arguments the schema refuses, and the argument the refusal names.
    pub fn counter_example(&self) -> (Value, &'static str) {
        (self.counter_example)()
    }

    /// The arguments as the tool reads them — every default applied, in one spelling — or
    /// None when they are not valid arguments of the tool. Two calls with the same canonical
    /// arguments do the same thing.
    pub fn canonical_args(&self, args: &Value) -> Option<Value> {
        (self.canonical)(args)
    }

    /// The role this call needs, per action. Arguments that are not the tool's get the
    /// tool's least role: such a call is refused by the schema check and never runs.
    pub(crate) fn required_role(&self, args: &Value, caller: &Principal) -> Role {
        (self.required_role)(args, caller)
    }

    /// Validates the arguments against the published input schema, then answers from the
    /// cache or runs the tool.
    pub async fn call(&self, call: &Call<'_>, args: Value) -> Result<Value, ToolError> {
        self.check_known_arguments(&args)?;
        let mut problems: Vec<String> = self
            .validator
            .iter_errors(&args)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    format!("arguments: {e}")
                } else {
                    format!(
                        "argument `{}`: {e}",
                        path.trim_start_matches('/').replace('/', ".")
                    )
                }
            })
            .collect();
        if !problems.is_empty() {
            problems.truncate(5);
            return Err(ToolError::invalid(format!(
                "{}. See the tool's inputSchema for the accepted arguments.",
                problems.join("; ")
            )));
        }
        if (self.caches_answer)(&args) {
            answer_cache::cached_call(self.name(), self.call, call, args).await
        } else {
            (self.call)(call, args).await
        }
    }
}

impl ToolEntry {
    /// Unknown argument names get a message that lists the accepted ones (clearer for an
    /// assistant than a schema error).
    fn check_known_arguments(&self, args: &Value) -> Result<(), ToolError> {
        let Some(given) = args.as_object() else {
            return Ok(());
        };
        let no_properties = serde_json::Map::new();
        let known = self
            .definition
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_properties);
        let unknown: Vec<&str> = given
            .keys()
            .filter(|k| !known.contains_key(*k))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut accepted: Vec<&str> = known.keys().map(String::as_str).collect();
        accepted.sort_unstable();
        Err(ToolError::invalid(format!(
            "unknown argument{} {}; {} accepts {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.name(),
            if accepted.is_empty() {
                "no arguments".to_string()
            } else {
                accepted.join(", ")
            }
        )))
    }
}

/// Makes generated schemas portable across MCP clients:
/// - removes schemars' Rust-specific `format`s (`uint`, `int64`, `double`, ...), which are not
///   JSON Schema formats and make strict validators (AJV in the MCP Inspector) warn;
///   `minimum`/`maximum` still carry the bounds;
/// - rewrites nullable `"type": [T, "null"]` as `anyOf` with single-type branches, which clients
///   that map schemas onto single-`type` dialects accept.
fn portable_schema(mut schema: JsonObject) -> JsonObject {
    fn nullable_to_any_of(map: &mut JsonObject) {
        let Some(Value::Array(types)) = map.get("type") else {
            return;
        };
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if types.len() != 2 || non_null.len() != 1 {
            return;
        }
        let mut branch = JsonObject::new();
        for (key, value) in std::mem::take(map) {
            match key.as_str() {
                "description" | "default" | "title" | "examples" | "$schema" => {
                    map.insert(key, value);
                }
                "type" => {
                    branch.insert(key, non_null[0].clone());
                }
                _ => {
                    branch.insert(key, value);
                }
            }
        }
        map.insert(
            "anyOf".into(),
            Value::Array(vec![
                Value::Object(branch),
                serde_json::json!({"type": "null"}),
            ]),
        );
    }
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                nullable_to_any_of(map);
                let rust_format = map.get("format").and_then(Value::as_str).is_some_and(|f| {
                    f.starts_with("int") || f.starts_with("uint") || f == "double" || f == "float"
                });
                if rust_format {
                    map.remove("format");
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    schema.values_mut().for_each(strip);
    schema
}

trait AnnotationsExt {
    fn with_title_opt(self, title: &str) -> Self;
}

impl AnnotationsExt for ToolAnnotations {
    fn with_title_opt(mut self, title: &str) -> Self {
        self.title = Some(title.to_string());
        self
    }
}

async fn call_typed<T: Tool>(call: &Call<'_>, args: Value) -> Result<Value, ToolError> {
    let args: T::Args = serde_json::from_value(args)
        .map_err(|e| ToolError::invalid(format!("invalid arguments: {e}")))?;
    let output = T::run(call, args).await?;
    serde_json::to_value(output)
        .map_err(|e| ToolError::Internal(format!("could not encode the result: {e}")))
}

fn role_typed<T: Tool>(args: &Value, caller: &Principal) -> Role {
    match serde_json::from_value::<T::Args>(args.clone()) {
        Ok(typed) => T::role(&typed, caller).max(T::ROLE),
        Err(_) => T::ROLE,
    }
}

fn canonical_typed<T: Tool>(args: &Value) -> Option<Value> {
    let typed: T::Args = serde_json::from_value(args.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// All tools, in the order they are listed.
pub struct Registry {
    entries: Vec<ToolEntry>,
}

impl Registry {
    /// Every tool, in `tools/list` order.
    pub fn new() -> Registry {
        Registry {
            entries: registered(),
        }
    }

    /// The registry, shared.
    pub fn shared() -> Arc<Registry> {
        Arc::new(Registry::new())
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.entries.iter().find(|e| e.name() == name)
    }

    /// Every tool's MCP definition.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.entries.iter().map(|e| e.definition.clone()).collect()
    }

    /// Every tool's name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(ToolEntry::name).collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_valid_example_and_a_refused_one() {
        let registry = Registry::new();
        for name in registry.names() {
            let entry = registry.get(name).unwrap();
            let valid = entry.example();
            assert!(
                entry.check_known_arguments(&valid).is_ok(),
                "{name}: {valid}"
            );
            assert!(entry.validator.is_valid(&valid), "{name}: {valid}");
            let (invalid, named) = entry.counter_example();
            let refused = entry.check_known_arguments(&invalid).is_err()
                || !entry.validator.is_valid(&invalid);
            assert!(refused, "{name} accepts its counter-example {invalid}");
            assert!(
                invalid.get(named).is_some(),
                "{name}: {named} not in {invalid}"
            );
        }
    }

    #[test]
    fn writing_actions_need_more_than_reading_ones() {
        let registry = Registry::new();
        let me = Principal {
            id: "token:me".into(),
            role: Role::Viewer,
        };
        let role = |tool: &str, args: Value| registry.get(tool).unwrap().required_role(&args, &me);
        let j = |v: &str| serde_json::from_str::<Value>(v).unwrap();
        let cases = [
            ("check_tag_compliance", r#"{}"#, Role::Viewer),
            (
                "check_tag_compliance",
                r#"{"store_snapshot": true}"#,
                Role::Approver,
            ),
            ("review_virtual_tags", r#"{}"#, Role::Viewer),
            (
                "review_virtual_tags",
                r#"{"action": "deny"}"#,
                Role::Approver,
            ),
            (
                "apply_virtual_tag",
                r#"{"key": "k", "value": "v", "reason": "why", "resource_ids": ["a"]}"#,
                Role::Approver,
            ),
            (
                "apply_virtual_tag",
                r#"{"key": "k", "value": "v", "reason": "why", "resource_ids": ["a"], "dry_run": true}"#,
                Role::Viewer,
            ),
            ("manage_tag_rules", r#"{"action": "test"}"#, Role::Viewer),
            (
                "manage_tag_rules",
                r#"{"action": "delete", "id": 1}"#,
                Role::Approver,
            ),
            (
                "promote_virtual_tags",
                r#"{"action": "show", "plan_id": 1}"#,
                Role::Viewer,
            ),
            (
                "promote_virtual_tags",
                r#"{"action": "plan"}"#,
                Role::Approver,
            ),
            (
                "promote_virtual_tags",
                r#"{"action": "approve", "plan_id": 1}"#,
                Role::Admin,
            ),
            (
                "promote_virtual_tags",
                r#"{"action": "apply", "plan_id": 1}"#,
                Role::Admin,
            ),
            (
                "get_audit_trail",
                r#"{"principal": "token:me"}"#,
                Role::Viewer,
            ),
            (
                "get_audit_trail",
                r#"{"principal": "token:you"}"#,
                Role::Admin,
            ),
            (
                "import_aws_tag_policy",
                r#"{"tag_policy": {"tags": {}}}"#,
                Role::Viewer,
            ),
            // Arguments that are not the tool's: its least role (the schema refuses the call).
            (
                "promote_virtual_tags",
                r#"{"action": "push"}"#,
                Role::Viewer,
            ),
        ];
        for (tool, args, needed) in cases {
            assert_eq!(role(tool, j(args)), needed, "{tool} {args}");
        }
        // A tool's example calls are what independent clients make: all of them are a
        // viewer's or an approver's, never an administrator's only.
        for name in registry.names() {
            let entry = registry.get(name).unwrap();
            assert!(
                entry.required_role(&entry.example(), &me) < Role::Admin,
                "{name}"
            );
        }
    }

    #[test]
    fn the_tools_with_a_view_name_it_in_their_meta() {
        let with_view: Vec<(String, Value)> = Registry::new()
            .definitions()
            .into_iter()
            .filter_map(|d| {
                let ui = d.meta.as_ref()?.get("ui")?.clone();
                Some((d.name.to_string(), ui))
            })
            .collect();
        let names: Vec<&str> = with_view.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "check_tag_compliance",
                "get_cost_attribution_gap",
                "review_virtual_tags",
                "get_violation_history"
            ]
        );
        for (name, ui) in &with_view {
            let uri = ui["resourceUri"].as_str().unwrap_or_default();
            assert!(views::View::from_uri(uri).is_some(), "{name}: {uri}");
            assert_eq!(
                ui["visibility"],
                serde_json::json!(["model", "app"]),
                "{name}"
            );
        }
    }

    #[test]
    fn schemas_carry_no_rust_specific_formats() {
        for d in Registry::new().definitions() {
            let text = serde_json::to_string(&d).unwrap();
            assert!(!text.contains("\"format\":\"uint"), "{}", d.name);
            assert!(!text.contains("\"format\":\"int"), "{}", d.name);
            assert!(!text.contains("\"format\":\"double\""), "{}", d.name);
        }
    }

    #[test]
    fn canonical_arguments_apply_defaults() {
        let registry = Registry::new();
        let check = registry.get("check_tag_compliance").unwrap();
        let canon = |v: Value| {
            check
                .canonical_args(&v)
                .map(|c| crate::util::canonical_json(&c))
        };
        let plain = canon(serde_json::json!({"limit": 7}));
        assert!(plain.is_some());
        for same in [
            serde_json::json!({"limit": 7, "force_refresh": false}),
            serde_json::json!({"limit": 7, "accounts": []}),
            serde_json::json!({"accounts": [], "limit": 7, "cursor": null, "store_snapshot": false}),
        ] {
            assert_eq!(canon(same.clone()), plain, "{same}");
        }
        assert_eq!(
            canon(serde_json::json!({})),
            canon(serde_json::json!({
                "limit": check_tag_compliance::DEFAULT_LIMIT
            })),
            "the default limit"
        );
        for other in [
            serde_json::json!({"limit": 7, "force_refresh": true}),
            serde_json::json!({"limit": 7, "accounts": ["123456789012"]}),
            serde_json::json!({"limit": 8}),
        ] {
            assert_ne!(canon(other.clone()), plain, "{other}");
        }
        // Not arguments of the tool: no canonical form (the guard fingerprints them as sent).
        assert_eq!(canon(serde_json::json!({"limit": "seven"})), None);
        assert_eq!(canon(serde_json::json!({"nope": 1})), None);
    }

    #[test]
    fn canonical_arguments_are_stable_for_every_tool() {
        // Re-reading canonical arguments changes nothing: the form is a fixed point.
        for name in Registry::new().names() {
            let registry = Registry::new();
            let entry = registry.get(name).unwrap();
            if let Some(once) = entry.canonical_args(&serde_json::json!({})) {
                assert_eq!(entry.canonical_args(&once).as_ref(), Some(&once), "{name}");
            }
        }
    }

    #[test]
    fn every_tool_has_object_schemas_and_annotations() {
        let registry = Registry::new();
        // The registry is the one list of tools (the integration tests take theirs from it):
        // each name once, and exactly the tools whose schemas are exported to tools/*.json.
        let names = registry.names();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a tool registered twice: {names:?}"
        );
        let exported: std::collections::BTreeSet<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tools"))
                .expect("tools/ holds the exported schemas")
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    (path.extension()? == "json")
                        .then(|| path.file_stem()?.to_str().map(str::to_owned))?
                })
                .collect();
        assert_eq!(
            unique,
            exported.iter().map(String::as_str).collect(),
            "registered tools vs tools/*.json (run `tagwarden tools export tools`)"
        );
        // Listed first: clients that call every tool in list order (tests/clients) store a
        // snapshot with check_tag_compliance before detect_tag_drift compares snapshots.
        assert_eq!(names.first(), Some(&"check_tag_compliance"));
        for d in registry.definitions() {
            assert_eq!(
                d.input_schema.get("type"),
                Some(&Value::from("object")),
                "{}",
                d.name
            );
            let out = d.output_schema.as_ref().expect("output schema");
            assert_eq!(out.get("type"), Some(&Value::from("object")), "{}", d.name);
            let a = d.annotations.as_ref().expect("annotations");
            assert!(
                a.read_only_hint.is_some() && a.open_world_hint.is_some(),
                "{}",
                d.name
            );
            assert!(
                d.description.as_ref().is_some_and(|t| t.len() > 80),
                "{}",
                d.name
            );
            assert_eq!(
                d.input_schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{} refuses unknown arguments",
                d.name
            );
        }
    }
}
