//! `manage_tag_rules`: the ordered, first-match rules that derive virtual tags from resource
//! names, types, accounts, attributes and tags — list, create, update, delete, test (matches
//! without writing) and run (writes tags: approved for trusted rules, pending otherwise).

use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::quality::DataQuality;
use super::{Call, Principal, Role, Tool, ToolError};
use crate::app::Estate;
use crate::policy::Policy;
use crate::rules::{CompiledRules, RuleSpec, RunResult};
use crate::service::virtual_tags::{check_key_value, effective_now, require_store};
use crate::store::virtual_tags::{NewVirtualTag, RuleRow, TagQuery, TagSource, TagStatus};
use crate::store::{NewRule, RuleUpdate};

pub(crate) struct ManageTagRules;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// The rules in order, with their counters.
    #[default]
    List,
    /// Add `rule` (validated first).
    Create,
    /// Replace rule `id` with `rule`.
    Update,
    /// Delete rule `id` (kept in the history; its tags stay until reviewed).
    Delete,
    /// Show what the rules (or just `rule`, not yet stored, or rule `id`) would set; writes
    /// nothing.
    Test,
    /// Run every enabled rule and write its tags: approved for trusted rules, pending for
    /// review otherwise.
    Run,
}

fn default_limit() -> u32 {
    20
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default)]
    pub action: Action,
    /// The rule to create, replace with (update) or test.
    #[serde(default)]
    pub rule: Option<RuleSpec>,
    /// The stored rule to update, delete or test alone.
    #[serde(default)]
    pub id: Option<i64>,
    /// Matches listed as examples (test, run).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 0, max = 200))]
    pub limit: u32,
}

/// A stored rule with its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct RuleView {
    pub id: i64,
    pub rule: RuleSpec,
    pub created_by: String,
    /// Who the server verified the rule's author to be; absent on rules made before it was
    /// recorded.
    pub created_by_principal: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Resources matched, summed over every run.
    pub matches: u64,
    pub last_run_at: Option<String>,
    pub last_run_matches: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct MatchItem {
    pub resource_id: String,
    pub rule_id: i64,
    pub rule_name: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct RuleCount {
    pub rule_id: i64,
    pub matches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub action: Action,
    /// The rules in evaluation order (list, and after create/update/delete).
    pub rules: Vec<RuleView>,
    /// The rule created, updated or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleView>,
    /// test/run: resources some rule matched (exact) and per-rule counts.
    pub matches_total: usize,
    pub per_rule: Vec<RuleCount>,
    /// test/run: the first matches.
    pub examples: Vec<MatchItem>,
    /// run: tags written as approved (trusted rules) and as pending.
    pub written_approved: usize,
    pub written_pending: usize,
    /// run: proposed values the policy would not accept (not written), and tags already in
    /// effect (not written again).
    pub rejected_values: usize,
    pub already_in_effect: usize,
    /// run: matches left alone because a person set or approved that key on that resource.
    pub kept_decided: usize,
    /// run: more than 10,000 tags to write; the first 10,000 were written, run again.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQuality>,
}

impl Output {
    fn empty(action: Action) -> Output {
        Output {
            action,
            rules: Vec::new(),
            rule: None,
            matches_total: 0,
            per_rule: Vec::new(),
            examples: Vec::new(),
            written_approved: 0,
            written_pending: 0,
            rejected_values: 0,
            already_in_effect: 0,
            kept_decided: 0,
            truncated: false,
            data_quality: None,
        }
    }
}

impl Tool for ManageTagRules {
    const NAME: &'static str = "manage_tag_rules";
    const TITLE: &'static str = "Manage virtual-tagging rules";
    const DESCRIPTION: &'static str = "Manages ordered, first-match rules that derive virtual tags by convention, e.g. \
'EC2 instances named <app>-prod-NN get Application=<app>'. A rule has a name, a priority (lower first; unique), \
a condition `when` over fields (type, name, id, account, region, provider, vpc, subnet, stack, creator, tag:KEY \
on effective tags) with eq, in, glob, regex (captures usable in values as {1} or {name}), exists, absent, not, \
all, any; `set` (key → value), trusted (its tags are approved at once; otherwise pending for review) and \
override_native. Actions: list; create and update (validated: bad regex, unknown field, conflicting priority, \
keys and values the policy would refuse); delete; test (what would be set, writes nothing); run (writes the tags \
and counts matches per rule).";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Listing and testing read; creating, updating, deleting and running write.
    fn role(args: &Args, _caller: &Principal) -> Role {
        match args.action {
            Action::List | Action::Test => Role::Viewer,
            Action::Create | Action::Update | Action::Delete | Action::Run => Role::Approver,
        }
    }

    fn annotations() -> ToolAnnotations {
        // Changes Tagwarden's own rules and tags (recorded, never the cloud); delete removes a
        // rule from use.
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false)
    }

    fn example() -> Value {
        serde_json::json!({"action": "list"})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"action": "explode"}), "action")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = require_store(call)?;
        let stored = store.rules().await?;
        let policy = call.policy();
        match args.action {
            Action::List => Ok(Output {
                rules: views(&stored)?,
                ..Output::empty(Action::List)
            }),
            Action::Create | Action::Update => {
                let spec = args.rule.clone().ok_or_else(|| {
                    ToolError::invalid(
                        "argument `rule`: give the rule (name, priority, when, set; see the \
                         tool description)",
                    )
                })?;
                let replacing = match (args.action, args.id) {
                    (Action::Update, Some(id)) => {
                        if !stored.iter().any(|r| r.id == id) {
                            return Err(unknown_rule(id, &stored));
                        }
                        Some(id)
                    }
                    (Action::Update, None) => {
                        return Err(ToolError::invalid(
                            "argument `id`: which rule to update (ids from action list)",
                        ));
                    }
                    _ => None,
                };
                validate(&policy, &stored, replacing, &spec)?;
                let text = serde_json::to_string(&spec)
                    .map_err(|e| ToolError::Internal(format!("rule not encodable: {e}")))?;
                let by = call.actor().to_string();
                let by_principal = call.principal().id.clone();
                let row = match replacing {
                    Some(id) => {
                        let update = RuleUpdate {
                            name: Some(spec.name.clone()),
                            priority: Some(spec.priority),
                            enabled: Some(spec.enabled),
                            trusted: Some(spec.trusted),
                            spec: Some(text),
                        };
                        store.update_rule(id, update).await?
                    }
                    None => {
                        let rule = NewRule {
                            name: spec.name.clone(),
                            priority: spec.priority,
                            enabled: spec.enabled,
                            trusted: spec.trusted,
                            spec: text,
                            by_name: by,
                            by_principal,
                        };
                        store.create_rule(rule).await?
                    }
                };
                let rules = store.rules().await?;
                Ok(Output {
                    rule: Some(view(&row)?),
                    rules: views(&rules)?,
                    ..Output::empty(args.action)
                })
            }
            Action::Delete => {
                let id = args
                    .id
                    .ok_or_else(|| ToolError::invalid("argument `id`: which rule to delete"))?;
                if !stored.iter().any(|r| r.id == id) {
                    return Err(unknown_rule(id, &stored));
                }
                let row = store.delete_rule(id).await?;
                let rules = store.rules().await?;
                Ok(Output {
                    rule: Some(view(&row)?),
                    rules: views(&rules)?,
                    ..Output::empty(Action::Delete)
                })
            }
            Action::Test | Action::Run => {
                let specs: Vec<(i64, RuleSpec)> = match (&args.rule, args.id, args.action) {
                    (Some(spec), _, Action::Test) => {
                        validate(&policy, &stored, None, spec)?;
                        vec![(0, spec.clone())]
                    }
                    (None, Some(id), Action::Test) => {
                        let row = stored
                            .iter()
                            .find(|r| r.id == id)
                            .ok_or_else(|| unknown_rule(id, &stored))?;
                        vec![(id, parse_spec(row)?)]
                    }
                    (Some(_), _, _) | (_, Some(_), _) => {
                        return Err(ToolError::invalid(
                            "run takes no `rule` or `id`: it runs every enabled stored rule; use \
                             test to try one",
                        ));
                    }
                    (None, None, _) => stored
                        .iter()
                        .map(|r| Ok((r.id, parse_spec(r)?)))
                        .collect::<Result<_, ToolError>>()?,
                };
                let compiled = CompiledRules::compile(&specs).map_err(rule_errors)?;
                let estate = call.estate(false).await?;
                let result = run_rules(&compiled, &estate);
                let mut out = Output {
                    matches_total: result.matches.len(),
                    per_rule: result
                        .per_rule
                        .iter()
                        .map(|(rule_id, matches)| RuleCount {
                            rule_id: *rule_id,
                            matches: *matches,
                        })
                        .collect(),
                    examples: examples(&estate, &result, args.limit as usize),
                    data_quality: Some(call.data_quality(&estate)),
                    ..Output::empty(args.action)
                };
                if args.action == Action::Run {
                    write_matches(call, &estate, &result, &mut out).await?;
                    let counts = result.per_rule.clone();
                    store.record_rule_run(counts).await?;
                    out.rules = views(&store.rules().await?)?;
                }
                Ok(out)
            }
        }
    }
}

fn run_rules(compiled: &CompiledRules, estate: &Estate) -> RunResult {
    let effective = |i: usize| Cow::Owned(effective_now(estate, i));
    compiled.run(&estate.inventory.resources, &effective)
}

/// Writes each match's tags the policy accepts and that are not already in effect.
async fn write_matches(
    call: &Call<'_>,
    estate: &Estate,
    result: &RunResult,
    out: &mut Output,
) -> Result<(), ToolError> {
    let store = require_store(call)?;
    let policy = estate.policy();
    let resources = &estate.inventory.resources;
    // Tags people set or approved (manual, reviewed suggestions, imports) are never replaced
    // by a rule: a rule proposes where nobody has decided.
    let people = TagQuery {
        statuses: vec![TagStatus::Approved],
        sources: vec![TagSource::Manual, TagSource::Suggestion, TagSource::Import],
        ..TagQuery::default()
    };
    let decided_by_people: std::collections::HashSet<(String, String)> = store
        .list(people, usize::MAX, 0)
        .await?
        .0
        .into_iter()
        .map(|t| (t.resource_id, t.key))
        .collect();
    let (mut approved, mut pending) = (Vec::new(), Vec::new());
    for (i, m) in &result.matches {
        let effective = effective_now(estate, *i);
        for (key, value) in &m.tags {
            let Ok(key) = check_key_value(policy, key, value) else {
                out.rejected_values += 1;
                continue;
            };
            if effective.get(&key) == Some(value) {
                out.already_in_effect += 1;
                continue;
            }
            let id = resources[*i].id.to_string();
            if decided_by_people.contains(&(id, key.clone())) {
                out.kept_decided += 1;
                continue;
            }
            if approved.len() + pending.len() >= MAX_WRITES {
                out.truncated = true;
                continue;
            }
            let rows = if m.trusted {
                &mut approved
            } else {
                &mut pending
            };
            rows.push(NewVirtualTag {
                resource_id: resources[*i].id.to_string(),
                key,
                value: value.clone(),
                source: TagSource::Rule,
                confidence: 1.0,
                status: if m.trusted {
                    TagStatus::Approved
                } else {
                    TagStatus::Pending
                },
                rule_id: Some(m.rule_id),
                reason: format!("rule `{}`", m.rule_name),
                override_native: m.override_native,
                evidence: vec!["rule".to_string()],
                created_by: call.actor().to_string(),
                created_by_principal: call.principal().id.clone(),
            });
        }
    }
    // `add` skips what is already pending or approved with the same value: count what it wrote.
    if !approved.is_empty() {
        out.written_approved = store.add(approved).await?.1;
    }
    if !pending.is_empty() {
        out.written_pending = store.add(pending).await?.1;
    }
    Ok(())
}

/// Most tags one run writes (one transaction each for approved and pending); run again for the
/// rest.
const MAX_WRITES: usize = 10_000;

fn examples(estate: &Estate, result: &RunResult, limit: usize) -> Vec<MatchItem> {
    result
        .matches
        .iter()
        .take(limit)
        .map(|(i, m)| MatchItem {
            resource_id: estate.inventory.resources[*i].id.to_string(),
            rule_id: m.rule_id,
            rule_name: m.rule_name.clone(),
            tags: m.tags.iter().cloned().collect(),
        })
        .collect()
}

/// The rule compiles alongside the other stored rules (priorities), and every literal value
/// it sets is one the policy accepts (values with captures are checked when the rule runs).
fn validate(
    policy: &Policy,
    stored: &[RuleRow],
    replacing: Option<i64>,
    spec: &RuleSpec,
) -> Result<(), ToolError> {
    let mut all: Vec<(i64, RuleSpec)> = stored
        .iter()
        .filter(|r| Some(r.id) != replacing)
        .map(|r| Ok((r.id, parse_spec(r)?)))
        .collect::<Result<_, ToolError>>()?;
    if all.iter().any(|(_, s)| s.name == spec.name) {
        return Err(ToolError::invalid(format!(
            "argument `rule.name`: a rule named `{}` already exists; pick another name or update \
             it",
            spec.name
        )));
    }
    all.push((replacing.unwrap_or(i64::MAX), spec.clone()));
    CompiledRules::compile(&all).map_err(rule_errors)?;
    for (key, value) in &spec.set {
        let literal = !value.contains('{');
        let checked = if literal {
            check_key_value(policy, key, value)
        } else {
            check_key_value(policy, key, "x").or_else(|e| match e {
                // Only the key can be checked before captures are known.
                ToolError::InvalidArgument(m) if m.starts_with("argument `value`") => {
                    Ok(String::new())
                }
                other => Err(other),
            })
        };
        checked.map_err(|e| ToolError::invalid(format!("rule `{}`: set.{key}: {e}", spec.name)))?;
    }
    Ok(())
}

fn rule_errors(errors: Vec<crate::rules::RuleError>) -> ToolError {
    let text: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
    ToolError::invalid(text.join("; "))
}

fn unknown_rule(id: i64, stored: &[RuleRow]) -> ToolError {
    let ids: Vec<String> = stored
        .iter()
        .map(|r| format!("{} ({})", r.id, r.name))
        .collect();
    ToolError::invalid(format!(
        "argument `id`: no rule {id}; the rules are: {}",
        if ids.is_empty() {
            "none yet".to_string()
        } else {
            ids.join(", ")
        }
    ))
}

fn parse_spec(row: &RuleRow) -> Result<RuleSpec, ToolError> {
    serde_json::from_str(&row.spec).map_err(|e| {
        ToolError::Internal(format!(
            "stored rule {} ({}) is unreadable: {e}; update or delete it",
            row.id, row.name
        ))
    })
}

fn view(row: &RuleRow) -> Result<RuleView, ToolError> {
    Ok(RuleView {
        id: row.id,
        rule: parse_spec(row)?,
        created_by: row.created_by.clone(),
        created_by_principal: row.created_by_principal.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        matches: row.matches,
        last_run_at: row.last_run_at.clone(),
        last_run_matches: row.last_run_matches,
    })
}

fn views(rows: &[RuleRow]) -> Result<Vec<RuleView>, ToolError> {
    rows.iter().map(view).collect()
}
