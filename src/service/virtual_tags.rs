//! What the virtual-tag tools share, below the tool layer: the store, choosing resources by
//! ids or by a filter, checking a key and value against the policy, and measuring the effect of
//! new virtual tags on the compliance score and the cost gap before anything is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use regex::Regex;
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::costs::{ResourceCosts, amount};
use crate::app::{Call, Estate, ToolError};
use crate::compliance::ResourceFilter;
use crate::compliance::overlay::{VirtualValue, combine};
use crate::cost::attribution::{AttributionInput, GroupBy, KeyJudge, attribute, pct};
use crate::inventory::Tags;
use crate::policy::compiled::KeyRef;
use crate::policy::pattern::Wildcard;
use crate::policy::{Policy, View};
use crate::service::scope::{ScopeArgs, ScopeDocs};
use crate::store::VirtualTagStore;

/// Most resources one call may tag, review or propose for.
pub(crate) const MAX_RESOURCES: usize = 10_000;

/// The virtual-tag store, or an answer saying how to get one.
pub(crate) fn require_store(call: &Call<'_>) -> Result<Arc<dyn VirtualTagStore>, ToolError> {
    call.virtual_tags().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "no virtual-tag store is open; serve with a writable --data-dir \
             (TAGWARDEN_DATA_DIR), where history.db keeps virtual tags and rules, or with \
             --database-url (TAGWARDEN_DATABASE_URL) to keep them in PostgreSQL"
                .into(),
        )
    })
}

/// Which resources to act on, when not given by id. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceSelector {
    #[serde(flatten)]
    pub scope: ScopeArgs<SelectorDocs>,
    /// Name glob (`*`, `?`), e.g. `payments-*`.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub name_glob: Option<String>,
    /// Name regular expression (unanchored; use ^ and $), e.g. `^payments-.*-prod-`.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub name_regex: Option<String>,
    /// Effective tags that must have exactly these values, e.g. `{"Environment": "production"}`.
    #[serde(default)]
    pub tags_equal: BTreeMap<String, String>,
    /// Keys the resource must lack (absent or empty in its effective tags), e.g. `["Owner"]`.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tags_missing: Vec<String>,
}

/// The descriptions of the scope arguments in the selector's schema.
pub(crate) struct SelectorDocs;

impl ScopeDocs for SelectorDocs {
    const RESOURCE_TYPES: Option<&'static str> =
        Some("Canonical type patterns, e.g. `ec2:instance`, `ec2:*`.");
    const REGIONS: Option<&'static str> = None;
    const ACCOUNTS: Option<&'static str> = None;
}

impl ResourceSelector {
    fn is_empty(&self) -> bool {
        self == &ResourceSelector::default()
    }
}

/// Resource indices chosen by ids (in the order given; unknown ids returned apart) or by a
/// filter (inventory order). Exactly one way must be used.
pub(crate) fn select(
    estate: &Estate,
    ids: &[String],
    filter: Option<&ResourceSelector>,
    max: usize,
) -> Result<(Vec<usize>, Vec<String>), ToolError> {
    let resources = &estate.inventory.resources;
    let filter = filter.filter(|f| !f.is_empty());
    let (chosen, unknown) = match (ids.is_empty(), filter) {
        (false, Some(_)) => {
            return Err(ToolError::invalid(
                "give either `resource_ids` or `filter`, not both",
            ));
        }
        (true, None) => {
            return Err(ToolError::invalid(
                "give `resource_ids` (ARNs from check_tag_compliance or \
                 find_untagged_resources) or a `filter` (resource_types, regions, accounts, \
                 name_glob, name_regex, tags_equal, tags_missing)",
            ));
        }
        (false, None) => {
            let mut chosen = Vec::new();
            let mut unknown = Vec::new();
            for id in ids {
                match crate::inventory::index_of(resources, id) {
                    Some(i) if !chosen.contains(&i) => chosen.push(i),
                    Some(_) => {}
                    None => unknown.push(id.clone()),
                }
            }
            (chosen, unknown)
        }
        (true, Some(f)) => (select_by_filter(estate, f)?, Vec::new()),
    };
    if chosen.len() > max {
        return Err(ToolError::invalid(format!(
            "{} resources match, more than the {max} one call may act on; narrow the filter",
            chosen.len()
        )));
    }
    Ok((chosen, unknown))
}

fn select_by_filter(estate: &Estate, f: &ResourceSelector) -> Result<Vec<usize>, ToolError> {
    let policy = estate.policy();
    let base = f.scope.filter_in(&estate.inventory.accounts);
    let glob = f.name_glob.as_deref().map(Wildcard::new);
    let regex = match &f.name_regex {
        Some(r) => Some(Regex::new(r).map_err(|e| {
            ToolError::invalid(format!(
                "argument `filter.name_regex`: not a valid regular expression: {}",
                e.to_string().lines().last().unwrap_or_default()
            ))
        })?),
        None => None,
    };
    let needs_tags = !f.tags_equal.is_empty() || !f.tags_missing.is_empty();
    // Effective tags carry canonical keys and values: read the filter the same way (`env` →
    // `Environment`, `prod` → `production`).
    let tags_equal: Vec<(String, String)> = f
        .tags_equal
        .iter()
        .map(|(k, v)| {
            let key = policy.canonical_key(k).to_string();
            let value = policy
                .effective_tags(&[(key.as_str(), v.as_str())])
                .remove(&key)
                .unwrap_or_else(|| v.clone());
            (key, value)
        })
        .collect();
    let tags_missing: Vec<&str> = f
        .tags_missing
        .iter()
        .map(|k| policy.canonical_key(k))
        .collect();
    let resources = &estate.inventory.resources;
    let mut chosen = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        if !base.matches(r)
            || glob.as_ref().is_some_and(|g| !g.matches(&r.name))
            || regex.as_ref().is_some_and(|re| !re.is_match(&r.name))
        {
            continue;
        }
        if needs_tags {
            let effective = policy.effective_tags(estate.evaluated.effective_input(i, &r.tags));
            let equal = tags_equal
                .iter()
                .all(|(k, v)| effective.get(k.as_str()) == Some(v));
            let missing = tags_missing
                .iter()
                .all(|k| effective.get(*k).is_none_or(|v| v.trim().is_empty()));
            if !equal || !missing {
                continue;
            }
        }
        chosen.push(i);
    }
    Ok(chosen)
}

/// The canonical key for `key`, refusing keys the policy does not govern and values it would
/// not accept (with the accepted ones).
pub(crate) fn check_key_value(
    policy: &Policy,
    key: &str,
    value: &str,
) -> Result<String, ToolError> {
    let canonical = match policy.classify(key) {
        Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) => policy.key_name(id).to_string(),
        _ => {
            let mut keys: Vec<&str> = policy.required_key_names();
            keys.extend(
                policy
                    .optional_rules()
                    .iter()
                    .map(|r| policy.key_name(r.key)),
            );
            return Err(ToolError::invalid(format!(
                "argument `key`: the policy does not govern `{key}`; virtual tags are for its \
                 keys: {}",
                keys.join(", ")
            )));
        }
    };
    if value.trim().is_empty() {
        return Err(ToolError::invalid(format!(
            "argument `value`: an empty value does not attribute anything; give a value for \
             {canonical}"
        )));
    }
    let id = policy.key_id(&canonical);
    let check = policy
        .required_rules()
        .iter()
        .filter(|r| Some(r.key) == id)
        .map(|r| &r.check)
        .chain(
            policy
                .optional_rules()
                .iter()
                .filter(|r| Some(r.key) == id)
                .map(|r| &r.check),
        )
        .next();
    if let Some(check) = check
        && check.check(value).is_some()
    {
        let mut accepted = Vec::new();
        if let Some(allowed) = &check.allowed {
            accepted.push(format!("one of: {}", allowed.values().join(", ")));
        }
        if let Some(pattern) = &check.regex_source {
            accepted.push(format!("matching {pattern}"));
        }
        return Err(ToolError::invalid(format!(
            "argument `value`: `{value}` is not a valid {canonical}; use {}",
            accepted.join(", and ")
        )));
    }
    Ok(canonical)
}

/// Before → after of the compliance score (effective view, whole estate) and of the cost gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Effect {
    /// Compliance score (%) on effective tags, before and after.
    pub score_before_pct: Option<f64>,
    pub score_after_pct: Option<f64>,
    /// Resources that become compliant (or stop being compliant).
    pub resources_fixed: usize,
    pub resources_broken: usize,
    /// Resources whose effective tags change (a valid native value is kept unless
    /// `override_native`, so a virtual tag can have no effect).
    pub resources_changed: usize,
    /// The cost gap (% of spend unattributable) before and after, when costs are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_before_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_after_pct: Option<f64>,
    /// Spend that becomes attributable (in the costs' currency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_attributed: Option<f64>,
}

/// The effect of laying `additions` (resource index → virtual tags) over the virtual tags
/// already in effect. Pure computation on the estate: nothing is written.
pub(crate) fn effect(
    estate: &Estate,
    costs: Option<&ResourceCosts>,
    additions: &FxHashMap<usize, Vec<VirtualValue>>,
) -> Effect {
    let policy = estate.policy();
    let resources = &estate.inventory.resources;
    let evaluated = &estate.evaluated;
    let fail_at = policy.fail_at();
    let mut evaluator = policy.evaluator();
    let summary_before =
        evaluated
            .evaluations
            .iter()
            .filter(|e| e.in_scope)
            .fold((0usize, 0usize), |(n, ok), e| {
                (
                    n + 1,
                    ok + usize::from(e.is_compliant(View::Effective, fail_at)),
                )
            });
    let (mut fixed, mut broken, mut changed) = (0, 0, 0);
    let mut after_tags: FxHashMap<usize, Tags> = FxHashMap::default();
    for (&i, new) in additions {
        let r = &resources[i];
        let mut virtuals: Vec<VirtualValue> = evaluated
            .overlay
            .of(&r.id)
            .map(<[VirtualValue]>::to_vec)
            .unwrap_or_default();
        for v in new {
            virtuals.retain(|x| x.key != v.key);
            virtuals.push(v.clone());
        }
        let native_eval = evaluator.evaluate(&r.resource_type, &r.tags);
        let before_input = evaluated.effective_input(i, &r.tags);
        let after_input =
            combine(policy, &r.tags, &native_eval, &virtuals).unwrap_or_else(|| r.tags.clone());
        if &after_input != before_input {
            changed += 1;
        }
        let before = evaluated.evaluations.get(i);
        let after = evaluator.evaluate(&r.resource_type, &after_input);
        if before.in_scope {
            match (
                before.is_compliant(View::Effective, fail_at),
                after.is_compliant(View::Effective, fail_at),
            ) {
                (false, true) => fixed += 1,
                (true, false) => broken += 1,
                _ => {}
            }
        }
        after_tags.insert(i, after_input);
    }
    let (in_scope, compliant) = summary_before;
    let compliant_after = compliant + fixed - broken;
    let score = |ok: usize| crate::compliance::pct(ok, in_scope);
    let mut out = Effect {
        score_before_pct: score(compliant),
        score_after_pct: score(compliant_after),
        resources_fixed: fixed,
        resources_broken: broken,
        resources_changed: changed,
        gap_before_pct: None,
        gap_after_pct: None,
        spend_attributed: None,
    };
    if let Some(costs) = costs {
        let judge = KeyJudge::new(policy);
        let index_of = |id: &str| crate::inventory::index_of(resources, id);
        let current = |id: &str, tags: &mut BTreeMap<String, String>| {
            if let Some(i) = index_of(id)
                && let Some(c) = evaluated.combined.get(&(i as u32))
            {
                *tags = policy.effective_tags(c);
            }
        };
        let with_additions = |id: &str, tags: &mut BTreeMap<String, String>| match index_of(id)
            .and_then(|i| after_tags.get(&i))
        {
            Some(t) => *tags = policy.effective_tags(t),
            None => current(id, tags),
        };
        let filter = ResourceFilter::default();
        let run = |overlay: &dyn Fn(&str, &mut BTreeMap<String, String>)| {
            attribute(&AttributionInput {
                judge: &judge,
                lines: &costs.costs.lines,
                resources,
                filter: &filter,
                group_by: &GroupBy::Service,
                overlay,
            })
            .overall
        };
        let before = run(&current);
        let after = run(&with_additions);
        out.gap_before_pct = pct(before.unattributable, before.total());
        out.gap_after_pct = pct(after.unattributable, after.total());
        out.spend_attributed = Some(amount(after.attributable - before.attributable));
    }
    out
}

/// A resource's effective tags now (approved virtual tags included).
pub(crate) fn effective_now(estate: &Estate, index: usize) -> BTreeMap<String, String> {
    let r = &estate.inventory.resources[index];
    estate
        .policy()
        .effective_tags(estate.evaluated.effective_input(index, &r.tags))
}

/// `VirtualValue` from tool arguments.
pub(crate) fn virtual_value(key: &str, value: &str, override_native: bool) -> VirtualValue {
    VirtualValue {
        key: CompactString::from(key),
        value: CompactString::from(value),
        override_native,
    }
}
