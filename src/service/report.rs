//! The compliance report as a use-case: one `ReportData` assembled from the other use-cases —
//! the compliance answer (so its figures are check_tag_compliance's), the cost attribution gap,
//! the snapshot history (trend and change), suggestions and data quality — plus the breakdowns
//! and the worst offenders by cost. `ReportData` is pure data (it *is* the `json` format);
//! `crate::report` renders it as Markdown, HTML or CSV. Callers: the
//! generate_compliance_report tool and `tagwarden report`.
//!
//! Size stays bounded whatever the estate: every list is a top N with the rest summed.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::costs::{Amount, CostQuality, ResourceCosts, amount};
use crate::app::quality::{DataQuality, DataStatus};
use crate::app::{Call, CostSource, Estate, ToolError};
use crate::compliance::{Scope, SeverityCounts};
use crate::cost::Period;
use crate::cost::attribution::{KeyJudge, KeyProblem};
use crate::history::{GroupBy, SnapshotMeta, filters_hash, series, snapshot_filters};
use crate::policy::{Severity, View};
use crate::service::allocation::{AllocationReport, RulesChoice, RulesSource};
use crate::service::compliance::{self, ComplianceQuestion, ComplianceReport, Scoped};
use crate::service::costs::{self, GapQuestion, GapReport};
use crate::suggest::Band;

/// Default and largest N of every top-N list.
pub(crate) const DEFAULT_TOP: u32 = 10;
pub(crate) const MAX_TOP: u32 = 100;
/// Days of history the score trend shows (one point per day).
const TREND_DAYS: i64 = 90;
/// Violations listed per offender (the rest are counted).
const VIOLATIONS_PER_OFFENDER: usize = 5;
/// Notes kept (the data quality block says the rest).
const MAX_NOTES: usize = 20;

/// A report question in plain types.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportQuestion {
    pub scope: Scope,
    /// N of every top-N list (offenders, groups).
    pub top: u32,
    /// The tag key whose values make the owner/team breakdown (default: the first required
    /// key named like `owner`, else `team`).
    pub owner_key: Option<String>,
    pub force_refresh: bool,
    /// Which allocation rules the unattributed spend is shown after (besides before).
    pub allocation: RulesChoice,
}

// The report, published as generate_compliance_report's `report` (no doc comment: it would
// become a schema description); also `tagwarden report --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ReportData {
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// What was scanned.
    pub source: String,
    pub policy: PolicyInfo,
    /// The resources the report covers (empty lists: everything).
    pub scope: ScopeInfo,
    /// The cost period, when costs are known.
    pub period: Option<Period>,
    pub summary: ExecutiveSummary,
    /// Score per day over the last 90 days, from stored snapshots of this scope (empty without
    /// history), oldest first.
    pub trend: Vec<TrendPoint>,
    /// Per required key: resources it is required of, with a valid value, missing, invalid;
    /// and spend attributable by it.
    pub coverage: Vec<KeyCoverage>,
    pub by_account: Breakdown,
    pub by_type: Breakdown,
    pub by_region: Breakdown,
    /// By the value of the owner/team key (`(missing)`, `(invalid)` without a valid one).
    pub by_owner: Breakdown,
    pub offenders: Offenders,
    /// Data-quality and coverage notes, in words.
    pub notes: Vec<String>,
    pub data_quality: DataQuality,
    pub cost_quality: Option<CostQuality>,
    /// When allocation rules apply (a rules file, else the stored rules): where they came
    /// from, what each split, and per key they allocate onto the unattributed spend before and
    /// after — exact, in micro-units beside the amounts (get_cost_attribution_gap's
    /// `allocation`).
    #[serde(default)]
    pub allocation: Option<AllocationReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct PolicyInfo {
    /// The policy file (or `built-in`).
    pub name: String,
    pub hash: String,
    /// A resource fails at a violation of this severity or above.
    pub fail_at: Severity,
    /// The required keys, in policy order.
    pub required_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ScopeInfo {
    pub resource_types: Vec<String>,
    pub regions: Vec<String>,
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ExecutiveSummary {
    /// % of in-scope resources compliant on effective tags (check_tag_compliance's
    /// `score_pct`).
    pub score_pct: Option<f64>,
    /// The same on native tags.
    pub native_score_pct: Option<f64>,
    /// Resources selected by the scope.
    pub resources: usize,
    pub in_scope: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    /// Effective-view violations.
    pub violations: usize,
    pub by_severity: SeverityCounts,
    pub spend: Option<SpendFigures>,
    /// Why spend is missing (no cost source, or it failed).
    pub spend_unavailable: Option<String>,
    /// Against the latest stored snapshot of this scope.
    pub since_previous: Option<Change>,
    /// Against the latest snapshot of this scope taken 30 days ago or earlier.
    pub since_30_days: Option<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct SpendFigures {
    pub currency: String,
    /// Spend of the in-scope resources (check_tag_compliance's `spend.in_scope_spend`).
    pub in_scope_spend: Amount,
    pub compliant_spend: Amount,
    /// in_scope_spend − compliant_spend.
    pub non_compliant_spend: Amount,
    pub spend_weighted_score_pct: Option<f64>,
    pub native_spend_weighted_score_pct: Option<f64>,
    /// All spend of the period in scope, charges tied to no resource included
    /// (get_cost_attribution_gap's `total`); absent when the gap could not be computed.
    pub total_spend: Option<Amount>,
    /// Spend that cannot be allocated because a required key is missing or invalid
    /// (get_cost_attribution_gap's `unattributable`).
    pub unattributed_spend: Option<Amount>,
    /// unattributed ÷ total, in %.
    pub unattributed_pct: Option<f64>,
}

/// How the headline moved since a stored snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Change {
    pub snapshot_id: i64,
    /// When that snapshot was taken (RFC 3339, UTC).
    pub taken_at: String,
    pub score_pct: Option<f64>,
    /// Now minus then, in percentage points.
    pub score_change_pct_points: Option<f64>,
    pub compliant_change: i64,
    pub violations_change: i64,
    /// The policy changed since: the scores are not strictly comparable.
    pub policy_changed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct TrendPoint {
    /// The day (UTC).
    pub period: String,
    pub score_pct: Option<f64>,
    pub spend_score_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct KeyCoverage {
    pub key: String,
    /// In-scope resources the key is required of.
    pub required: usize,
    pub valid: usize,
    pub missing: usize,
    pub invalid: usize,
    /// valid ÷ required, in %.
    pub coverage_pct: Option<f64>,
    /// Spend whose resource has a valid value for the key (get_cost_attribution_gap's
    /// `by_key`).
    pub attributable_spend: Option<Amount>,
    pub unattributable_spend: Option<Amount>,
    /// attributable ÷ (attributable + unattributable), in %.
    pub spend_coverage_pct: Option<f64>,
    /// Unattributable spend after the allocation rules that allocate onto this key (absent
    /// when none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributable_after_allocation: Option<Amount>,
}

/// The top groups of one breakdown and the rest summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Breakdown {
    /// What the groups are (`account`, `resource type`, `region`, or the owner key).
    pub dimension: String,
    /// Most non-compliant spend first (most non-compliant resources without costs).
    pub groups: Vec<GroupRow>,
    /// Groups in all.
    pub groups_total: usize,
    /// The groups not listed, summed (absent when all are listed).
    pub others: Option<GroupRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct GroupRow {
    pub name: String,
    /// The account's name, when known.
    pub label: Option<String>,
    pub in_scope: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub violations: usize,
    pub score_pct: Option<f64>,
    pub spend: Option<Amount>,
    pub non_compliant_spend: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Offenders {
    /// `cost` (most costly non-compliant resources first) or `severity` without costs.
    pub ranked_by: String,
    pub items: Vec<Offender>,
    /// Non-compliant resources in all.
    pub total: usize,
    /// Their spend in all, when costs are known.
    pub total_cost: Option<Amount>,
    /// Spend of the listed ones.
    pub listed_cost: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Offender {
    pub resource_id: String,
    pub name: String,
    pub resource_type: String,
    pub account: String,
    pub region: String,
    /// The owner/team key's value (`(missing)` when none).
    pub owner: String,
    pub cost: Option<Amount>,
    pub worst_severity: Severity,
    pub violations_total: usize,
    /// The first violations, worst first, each with its fix.
    pub violations: Vec<OffenderViolation>,
    /// Confident suggestions (≥ 0.9) for its missing or invalid required keys.
    pub suggestions: Vec<SuggestedValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct OffenderViolation {
    pub key: Option<String>,
    pub kind: String,
    pub severity: Severity,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct SuggestedValue {
    pub key: String,
    pub value: String,
    pub confidence: f64,
    pub reasoning: String,
}

/// Assembles the report.
pub(crate) async fn report(call: &Call<'_>, q: ReportQuestion) -> Result<ReportData, ToolError> {
    let top = q.top.clamp(1, MAX_TOP) as usize;
    let answer = compliance::check(
        call,
        ComplianceQuestion {
            scope: q.scope.clone(),
            limit: 0,
            force_refresh: q.force_refresh,
            ..Default::default()
        },
    )
    .await?;
    let estate = call.estate(false).await?;
    let policy = estate.policy();
    let owner_key = owner_key(&estate, q.owner_key.as_deref())?;
    // Why costs are missing is in the compliance answer's `spend_unavailable`.
    let costs: Option<ResourceCosts> = call
        .resource_costs(&estate, false)
        .await
        .unwrap_or_default();
    let mut notes = Vec::new();
    let gap = gap(call, &q, &mut notes).await?;
    let filters = snapshot_filters(
        &q.scope.resource_types,
        &q.scope.regions,
        &q.scope.accounts,
        &[],
        Severity::Low,
    );
    let history = history(call, &filters, &mut notes).await?;
    let scoped = Scoped::new(
        &estate,
        &crate::history::SnapshotFilters::from_stored(&filters),
    )
    .map_err(|k| ToolError::Internal(format!("unknown keys {k:?} without key filters")))?;
    let tally = tally(&estate, &scoped, costs.as_ref(), owner_key.as_deref());
    let inputs = super::suggestions::SuggestionInputs::read(call).await?;
    let offenders = {
        let suggester = inputs.suggester(call, &estate);
        let suggest = |i: usize| -> Vec<SuggestedValue> {
            suggester
                .suggest(i, &[])
                .into_iter()
                .filter_map(|s| {
                    let best = s.candidates.into_iter().next()?;
                    (best.band == Band::High).then_some(SuggestedValue {
                        key: s.key,
                        value: best.value,
                        confidence: best.confidence,
                        reasoning: best.reasoning,
                    })
                })
                .collect()
        };
        offenders(&estate, &scoped, &tally, costs.is_some(), top, &suggest)
    };
    let now = Utc::now();
    let summary = summary(&answer, gap.as_ref(), &history);
    notes.extend(quality_notes(
        &answer.data_quality,
        answer.spend.as_ref().map(|s| &s.cost_quality),
    ));
    if let Some(why) = &answer.spend_unavailable {
        notes.push(format!("Spend unknown: {why}"));
    }
    notes.truncate(MAX_NOTES);
    let coverage = coverage(&tally, gap.as_ref());
    let accounts = &estate.inventory.accounts;
    let with_costs = costs.is_some();
    let label_account = |name: &str| accounts.name(name).map(str::to_string);
    let no_label = |_: &str| None;
    Ok(ReportData {
        generated_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        source: answer.data_quality.source.clone(),
        policy: PolicyInfo {
            name: call.policy_holder().source().display(),
            hash: answer.policy_hash.clone(),
            fail_at: answer.fail_threshold,
            required_keys: policy
                .required_key_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        },
        scope: ScopeInfo {
            resource_types: q.scope.resource_types.clone(),
            regions: q.scope.regions.clone(),
            accounts: q.scope.accounts.clone(),
        },
        period: answer.spend.as_ref().map(|s| s.period),
        summary,
        trend: history.trend,
        coverage,
        by_account: breakdown("account", tally.by_account, top, with_costs, &label_account),
        by_type: breakdown("resource type", tally.by_type, top, with_costs, &no_label),
        by_region: breakdown("region", tally.by_region, top, with_costs, &no_label),
        by_owner: breakdown(
            owner_key
                .as_deref()
                .unwrap_or("owner (no owner key in the policy)"),
            tally.by_owner,
            top,
            with_costs,
            &no_label,
        ),
        offenders,
        notes,
        cost_quality: answer.spend.as_ref().map(|s| s.cost_quality.clone()),
        data_quality: answer.data_quality,
        allocation: gap.and_then(|g| g.allocation),
    })
}

/// The owner/team key: the one asked for (must be a policy key), else the first required key
/// named like `owner`, else like `team`.
fn owner_key(estate: &Estate, asked: Option<&str>) -> Result<Option<String>, ToolError> {
    let policy = estate.policy();
    let keys = policy.required_key_names();
    if let Some(asked) = asked {
        let canonical = policy.canonical_key(asked);
        return match keys.iter().find(|k| k.eq_ignore_ascii_case(canonical)) {
            Some(k) => Ok(Some((*k).to_string())),
            None => Err(ToolError::invalid(format!(
                "argument `owner_key`: the policy has no required key {asked}; its keys are: {}",
                keys.join(", ")
            ))),
        };
    }
    Ok(["owner", "team"].iter().find_map(|word| {
        keys.iter()
            .find(|k| k.to_ascii_lowercase().contains(word))
            .map(|k| (*k).to_string())
    }))
}

/// The cost gap for the report's scope; a failure becomes a note (the report stands), except
/// that rules given by file must apply (a rule the policy refuses is the caller's to fix).
async fn gap(
    call: &Call<'_>,
    q: &ReportQuestion,
    notes: &mut Vec<String>,
) -> Result<Option<GapReport>, ToolError> {
    let scope = &q.scope;
    let Some(source) = call.cost_source() else {
        return Ok(None);
    };
    let explorer = matches!(source, CostSource::Explorer(_));
    let scoped =
        !scope.resource_types.is_empty() || !scope.regions.is_empty() || !scope.accounts.is_empty();
    if explorer && scoped {
        notes.push(
            "Unattributed spend is not shown: Cost Explorer cannot narrow it to this scope \
             (give FOCUS cost files with --cost, or report on the whole estate)"
                .into(),
        );
        return Ok(None);
    }
    let question = GapQuestion {
        scope: scope.clone(),
        top: 0,
        allocation: q.allocation.clone(),
        ..Default::default()
    };
    let from_file = matches!(
        q.allocation,
        RulesChoice::Given {
            source: RulesSource::File,
            ..
        }
    );
    match costs::gap(call, question).await {
        Ok(g) => {
            if let Some(a) = &g.allocation {
                for skipped in &a.skipped {
                    notes.push(format!(
                        "Allocation rule {:?} is not applied: {}",
                        skipped.name, skipped.reason
                    ));
                }
            }
            notes.extend(
                g.cost_quality
                    .notes
                    .iter()
                    .filter(|n| n.contains("allocation"))
                    .cloned(),
            );
            Ok(Some(g))
        }
        Err(e @ ToolError::InvalidArgument(_)) if from_file => Err(e),
        Err(e) => {
            notes.push(format!("Unattributed spend is not shown: {e}"));
            Ok(None)
        }
    }
}

/// What the history says about this scope.
#[derive(Default)]
struct History {
    trend: Vec<TrendPoint>,
    previous: Option<SnapshotMeta>,
    month_ago: Option<SnapshotMeta>,
}

async fn history(
    call: &Call<'_>,
    filters: &serde_json::Value,
    notes: &mut Vec<String>,
) -> Result<History, ToolError> {
    let Some(store) = call.history() else {
        notes.push(
            "No history store: the trend and the change since earlier snapshots need \
             snapshots (`tagwarden check --snapshot`, check_tag_compliance \
             store_snapshot=true, or `serve --snapshot-every`)"
                .into(),
        );
        return Ok(History::default());
    };
    let hash = filters_hash(filters);
    let now = Utc::now();
    let all = store
        .list_headlines(now - Duration::days(400), Some(hash))
        .await?;
    Ok(history_of(&all, now, notes))
}

/// The trend and the two comparison snapshots among a scope's snapshots (pure).
fn history_of(all: &[SnapshotMeta], now: DateTime<Utc>, notes: &mut Vec<String>) -> History {
    if all.is_empty() {
        notes.push(
            "No snapshots of this scope yet: the trend and the change since earlier \
             snapshots appear once snapshots are stored"
                .into(),
        );
        return History::default();
    }
    let order = |s: &&SnapshotMeta| (s.taken_at, s.id);
    let previous = all.iter().max_by_key(order).cloned();
    let cutoff = now - Duration::days(30);
    let month_ago = all
        .iter()
        .filter(|s| s.taken_at <= cutoff)
        .max_by_key(order)
        .cloned();
    let since = now - Duration::days(TREND_DAYS);
    let recent: Vec<SnapshotMeta> = all
        .iter()
        .filter(|s| s.taken_at >= since)
        .cloned()
        .collect();
    let trend = series(&recent, GroupBy::Day)
        .into_iter()
        .map(|p| TrendPoint {
            period: p.period,
            score_pct: p.score_pct,
            spend_score_pct: p.spend_score_pct,
        })
        .collect();
    History {
        trend,
        previous,
        month_ago,
    }
}

fn change(now: &ComplianceReport, then: &SnapshotMeta) -> Change {
    let signed = |n: usize| n as i64;
    Change {
        snapshot_id: then.id,
        taken_at: then.taken_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        score_pct: then.score_pct,
        score_change_pct_points: now
            .score_pct
            .zip(then.score_pct)
            .map(|(a, b)| ((a - b) * 100.0).round() / 100.0),
        compliant_change: signed(now.effective.compliant) - signed(then.compliant),
        violations_change: signed(now.effective.violations) - signed(then.violations),
        policy_changed: now.policy_hash != then.policy_hash,
    }
}

fn summary(
    answer: &ComplianceReport,
    gap: Option<&GapReport>,
    history: &History,
) -> ExecutiveSummary {
    let spend = answer.spend.as_ref().map(|s| SpendFigures {
        currency: s.currency.clone(),
        in_scope_spend: s.in_scope_spend,
        compliant_spend: s.compliant_spend,
        non_compliant_spend: round6(s.in_scope_spend - s.compliant_spend),
        spend_weighted_score_pct: s.spend_weighted_score_pct,
        native_spend_weighted_score_pct: s.native_spend_weighted_score_pct,
        total_spend: gap.map(|g| g.total),
        unattributed_spend: gap.map(|g| g.figures.unattributable),
        unattributed_pct: gap.and_then(|g| g.figures.gap_pct),
    });
    ExecutiveSummary {
        score_pct: answer.score_pct,
        native_score_pct: answer.native_score_pct,
        resources: answer.resources,
        in_scope: answer.in_scope,
        compliant: answer.effective.compliant,
        non_compliant: answer.effective.non_compliant,
        violations: answer.effective.violations,
        by_severity: answer.by_severity.clone(),
        spend,
        spend_unavailable: answer.spend_unavailable.clone(),
        since_previous: history.previous.as_ref().map(|s| change(answer, s)),
        since_30_days: history.month_ago.as_ref().map(|s| change(answer, s)),
    }
}

/// Amounts to the millionth (a difference of two amounts can carry float noise).
fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// One pass over the selected in-scope resources: groups, key coverage, the non-compliant.
#[derive(Default)]
struct Tally {
    by_account: FxHashMap<String, GroupSums>,
    by_type: FxHashMap<String, GroupSums>,
    by_region: FxHashMap<String, GroupSums>,
    by_owner: FxHashMap<String, GroupSums>,
    /// Per required key, in policy order: (name, required, missing, invalid).
    keys: Vec<(String, usize, usize, usize)>,
    /// Non-compliant resources: (index, cost in micros, owner).
    failing: Vec<(usize, Option<i64>, String)>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GroupSums {
    in_scope: usize,
    compliant: usize,
    violations: usize,
    spend: i64,
    non_compliant_spend: i64,
}

impl GroupSums {
    fn add(&mut self, other: &GroupSums) {
        self.in_scope += other.in_scope;
        self.compliant += other.compliant;
        self.violations += other.violations;
        self.spend += other.spend;
        self.non_compliant_spend += other.non_compliant_spend;
    }
}

const MISSING: &str = "(missing)";
const INVALID: &str = "(invalid)";

fn tally(
    estate: &Estate,
    scoped: &Scoped,
    costs: Option<&ResourceCosts>,
    owner_key: Option<&str>,
) -> Tally {
    let policy = estate.policy();
    let fail_at = policy.fail_at();
    let judge = KeyJudge::new(policy);
    let key_names: Vec<&str> = judge.keys().collect();
    let owner_index = owner_key.and_then(|o| key_names.iter().position(|k| *k == o));
    let mut t = Tally {
        keys: key_names.iter().map(|k| (k.to_string(), 0, 0, 0)).collect(),
        ..Tally::default()
    };
    let resources = &estate.inventory.resources;
    for (i, (r, e)) in resources
        .iter()
        .zip(estate.evaluated.evaluations.iter())
        .enumerate()
    {
        if !e.in_scope || !scoped.resource_filter.matches(r) {
            continue;
        }
        let fails = scoped.violation_filter.fails(e.effective, fail_at);
        let violations = e
            .effective
            .iter()
            .filter(|v| scoped.violation_filter.counts(v))
            .count();
        let cost = costs.and_then(|c| c.of(&r.id));
        let weight = cost.unwrap_or(0).max(0);
        let effective = super::virtual_tags::effective_now(estate, i);
        let problems = judge.problems(&r.resource_type, &effective);
        for (k, problem) in problems.iter().enumerate() {
            if !judge.required(k, &r.resource_type, &effective) {
                continue;
            }
            let entry = &mut t.keys[k];
            entry.1 += 1;
            match problem {
                Some(KeyProblem::Missing) => entry.2 += 1,
                Some(KeyProblem::Invalid) => entry.3 += 1,
                None => {}
            }
        }
        let owner = match owner_index {
            None => MISSING.to_string(),
            Some(k) => match problems[k] {
                None => judge.value(k, &effective).unwrap_or(MISSING).to_string(),
                Some(KeyProblem::Missing) => MISSING.to_string(),
                Some(KeyProblem::Invalid) => INVALID.to_string(),
            },
        };
        let sums = GroupSums {
            in_scope: 1,
            compliant: usize::from(!fails),
            violations,
            spend: weight,
            non_compliant_spend: if fails { weight } else { 0 },
        };
        for (map, name) in [
            (&mut t.by_account, r.account.as_str()),
            (&mut t.by_type, r.resource_type.as_str()),
            (&mut t.by_region, r.region.as_str()),
            (&mut t.by_owner, owner.as_str()),
        ] {
            match map.get_mut(name) {
                Some(g) => g.add(&sums),
                None => {
                    map.insert(name.to_string(), sums);
                }
            }
        }
        if fails {
            t.failing.push((i, cost, owner));
        }
    }
    t
}

fn coverage(t: &Tally, gap: Option<&GapReport>) -> Vec<KeyCoverage> {
    t.keys
        .iter()
        .map(|(key, required, missing, invalid)| {
            let valid = required - missing - invalid;
            let spend = gap.and_then(|g| g.by_key.iter().find(|k| &k.key == key));
            KeyCoverage {
                key: key.clone(),
                required: *required,
                valid,
                missing: *missing,
                invalid: *invalid,
                coverage_pct: crate::compliance::pct(valid, *required),
                attributable_spend: spend.map(|s| s.figures.attributable),
                unattributable_spend: spend.map(|s| s.figures.unattributable),
                spend_coverage_pct: spend.and_then(|s| {
                    s.figures
                        .gap_pct
                        .map(|gap| ((100.0 - gap) * 100.0).round() / 100.0)
                }),
                unattributable_after_allocation: gap
                    .and_then(|g| g.allocation.as_ref())
                    .and_then(|a| a.by_key.iter().find(|k| &k.key == key))
                    .map(|k| k.unattributable_after),
            }
        })
        .collect()
}

/// The top groups (most non-compliant spend, then most non-compliant resources, then name)
/// and the rest summed.
fn breakdown(
    dimension: &str,
    groups: FxHashMap<String, GroupSums>,
    top: usize,
    with_costs: bool,
    label: &dyn Fn(&str) -> Option<String>,
) -> Breakdown {
    let mut groups: Vec<(String, GroupSums)> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        b.1.non_compliant_spend
            .cmp(&a.1.non_compliant_spend)
            .then((b.1.in_scope - b.1.compliant).cmp(&(a.1.in_scope - a.1.compliant)))
            .then_with(|| a.0.cmp(&b.0))
    });
    let groups_total = groups.len();
    let rest = groups.split_off(top.min(groups.len()));
    let row = |name: String, g: &GroupSums| GroupRow {
        label: label(&name),
        name,
        in_scope: g.in_scope,
        compliant: g.compliant,
        non_compliant: g.in_scope - g.compliant,
        violations: g.violations,
        score_pct: crate::compliance::pct(g.compliant, g.in_scope),
        spend: with_costs.then(|| amount(g.spend)),
        non_compliant_spend: with_costs.then(|| amount(g.non_compliant_spend)),
    };
    let others = (!rest.is_empty()).then(|| {
        let mut sum = GroupSums::default();
        for (_, g) in &rest {
            sum.add(g);
        }
        GroupRow {
            label: None,
            ..row(format!("{} others", rest.len()), &sum)
        }
    });
    Breakdown {
        dimension: dimension.to_string(),
        groups: groups.into_iter().map(|(n, g)| row(n, &g)).collect(),
        groups_total,
        others,
    }
}

fn offenders(
    estate: &Estate,
    scoped: &Scoped,
    t: &Tally,
    with_costs: bool,
    top: usize,
    suggest: &dyn Fn(usize) -> Vec<SuggestedValue>,
) -> Offenders {
    let policy = estate.policy();
    let resources = &estate.inventory.resources;
    let evaluations = &estate.evaluated.evaluations;
    let counted = |i: usize| {
        let mut v: Vec<_> = evaluations
            .get(i)
            .effective
            .iter()
            .filter(|v| scoped.violation_filter.counts(v))
            .collect();
        v.sort_by_key(|v| std::cmp::Reverse(v.severity));
        v
    };
    let worst = |i: usize| {
        evaluations
            .get(i)
            .effective
            .iter()
            .filter(|v| scoped.violation_filter.counts(v))
            .map(|v| v.severity)
            .max()
            .unwrap_or(Severity::Low)
    };
    let mut ranked: Vec<&(usize, Option<i64>, String)> = t.failing.iter().collect();
    ranked.sort_by(|a, b| {
        b.1.unwrap_or(0)
            .cmp(&a.1.unwrap_or(0))
            .then_with(|| worst(b.0).cmp(&worst(a.0)))
            .then_with(|| resources[a.0].id.cmp(&resources[b.0].id))
    });
    let total_cost: i64 = t.failing.iter().map(|f| f.1.unwrap_or(0).max(0)).sum();
    let listed: Vec<_> = ranked.into_iter().take(top).collect();
    let listed_cost: i64 = listed.iter().map(|f| f.1.unwrap_or(0).max(0)).sum();
    let items = listed
        .into_iter()
        .map(|(i, cost, owner)| {
            let r = &resources[*i];
            let all = counted(*i);
            let violations = all
                .iter()
                .take(VIOLATIONS_PER_OFFENDER)
                .map(|v| {
                    let d = policy.render(
                        &r.id,
                        estate.evaluated.effective_input(*i, &r.tags),
                        View::Effective,
                        v,
                    );
                    OffenderViolation {
                        key: d.tag_key,
                        kind: d.kind.as_str().to_string(),
                        severity: d.severity,
                        fix: d.fix,
                    }
                })
                .collect();
            Offender {
                resource_id: r.id.to_string(),
                name: r.name.to_string(),
                resource_type: r.resource_type.to_string(),
                account: r.account.to_string(),
                region: r.region.to_string(),
                owner: owner.clone(),
                cost: cost.map(amount),
                worst_severity: worst(*i),
                violations_total: all.len(),
                violations,
                suggestions: suggest(*i),
            }
        })
        .collect();
    Offenders {
        ranked_by: if with_costs { "cost" } else { "severity" }.to_string(),
        items,
        total: t.failing.len(),
        total_cost: with_costs.then(|| amount(total_cost)),
        listed_cost: with_costs.then(|| amount(listed_cost)),
    }
}

/// The data-quality and coverage notes, in words.
fn quality_notes(q: &DataQuality, costs: Option<&CostQuality>) -> Vec<String> {
    let mut notes = Vec::new();
    if q.status == DataStatus::Partial && !q.failures.is_empty() {
        notes.push(format!(
            "The scan is partial: {} of {} parts failed ({}).",
            q.failures.len(),
            q.parts_total,
            q.failures
                .iter()
                .take(3)
                .map(|f| f.scope.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    notes.extend(q.coverage.warnings.iter().cloned());
    if q.duplicates_dropped > 0 {
        notes.push(format!(
            "{} duplicate resource listings were dropped.",
            q.duplicates_dropped
        ));
    }
    notes.push(format!(
        "Inventory read {} ({} resources).",
        q.fetched_at, q.resources_scanned
    ));
    if let Some(c) = costs {
        notes.push(format!("Costs from {}.", c.source));
        if c.rows_skipped > 0 {
            notes.push(format!(
                "{} malformed cost rows were skipped; `tagwarden cost inspect` lists them.",
                c.rows_skipped
            ));
        }
        notes.extend(c.notes.iter().cloned());
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snapshot(id: i64, taken_at: DateTime<Utc>, score: f64) -> SnapshotMeta {
        SnapshotMeta {
            id,
            taken_at,
            trigger: "cli".into(),
            source: "demo".into(),
            policy_hash: "p".into(),
            filters: serde_json::json!({}),
            filters_hash: "h".into(),
            resources: 10,
            in_scope: 10,
            compliant: 5,
            violations: 7,
            score_pct: Some(score),
            native_score_pct: None,
            spend_score_pct: None,
            counts: serde_json::json!({}),
            by_violation: Default::default(),
        }
    }

    #[test]
    fn history_picks_the_latest_and_the_latest_a_month_old() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let days = |d: i64| now - Duration::days(d);
        let all = [
            snapshot(1, days(120), 10.0),
            snapshot(2, days(45), 20.0),
            snapshot(3, days(31), 30.0),
            snapshot(4, days(2), 40.0),
            snapshot(5, days(1), 50.0),
        ];
        let mut notes = Vec::new();
        let h = history_of(&all, now, &mut notes);
        assert_eq!(h.previous.map(|s| s.id), Some(5));
        assert_eq!(h.month_ago.map(|s| s.id), Some(3));
        // 120 days ago is outside the 90-day trend.
        let scores: Vec<Option<f64>> = h.trend.iter().map(|p| p.score_pct).collect();
        assert_eq!(scores, [Some(20.0), Some(30.0), Some(40.0), Some(50.0)]);
        assert!(notes.is_empty());
        let h = history_of(&all[3..], now, &mut notes);
        assert!(h.month_ago.is_none(), "nothing is 30 days old");
        let h = history_of(&[], now, &mut notes);
        assert!(h.previous.is_none() && h.trend.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    fn sums(in_scope: usize, compliant: usize, non_compliant_spend: i64) -> GroupSums {
        GroupSums {
            in_scope,
            compliant,
            violations: in_scope - compliant,
            spend: non_compliant_spend * 2,
            non_compliant_spend,
        }
    }

    #[test]
    fn breakdown_lists_the_costliest_groups_and_sums_the_rest() {
        let mut groups = FxHashMap::default();
        groups.insert("a".to_string(), sums(10, 5, 1_000_000));
        groups.insert("b".to_string(), sums(4, 0, 3_000_000));
        groups.insert("c".to_string(), sums(6, 3, 0));
        groups.insert("d".to_string(), sums(2, 1, 0));
        let label = |n: &str| (n == "b").then(|| "bee".to_string());
        let b = breakdown("account", groups.clone(), 2, true, &label);
        let names: Vec<&str> = b.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(b.groups[0].label.as_deref(), Some("bee"));
        assert_eq!(b.groups[0].non_compliant_spend, Some(3.0));
        assert_eq!(b.groups_total, 4);
        let others = b.others.unwrap();
        assert_eq!(others.name, "2 others");
        assert_eq!(
            (others.in_scope, others.compliant, others.non_compliant),
            (8, 4, 4)
        );
        assert_eq!(others.score_pct, Some(50.0));
        assert_eq!(others.spend, Some(0.0));
        // Without costs: by non-compliant resources, no spend shown; all listed, no others.
        let b = breakdown("account", groups, 10, false, &|_| None);
        let names: Vec<&str> = b.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "d"]);
        assert!(b.others.is_none() && b.groups[0].spend.is_none());
    }
}
