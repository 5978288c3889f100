//! `export_violations_csv`: the violations of the estate (or a filtered part) as CSV text, one
//! row per violation with its resource, cost, suggested value and owner, a page at a time.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::app::costs::CostQuality;
use crate::app::quality::DataQuality;
use crate::compliance::export::{COLUMNS, DEFAULT_OWNER_KEYS};
use crate::cost::{CostMetric, CostQuery, Period};
use crate::policy::Severity;
use crate::service::costs::{TimePeriodArg, period_arg};
use crate::service::export::{ExportQuestion, prepare};
use crate::service::scope::{ScopeArgs, ScopeDocs};
use crate::suggest::SuggestConfig;

pub(crate) struct ExportViolationsCsv;

/// Rows per page by default, and at most.
const DEFAULT_ROWS: u32 = 500;
const MAX_ROWS: u32 = 1000;

fn default_max_rows() -> u32 {
    DEFAULT_ROWS
}

fn default_min_confidence() -> f64 {
    SuggestConfig::default().medium
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(flatten)]
    pub scope: ScopeArgs<ExportDocs>,
    /// Only violations of these tag keys (policy names; aliases accepted, case-insensitive).
    /// Default: every key.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub tag_keys: Vec<String>,
    /// Only violations at or above this severity. Default: `low` (every violation).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Rows on this page (the CSV has a header row besides).
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_rows: u32,
    /// `next_cursor` from the previous page of the same export.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub cursor: Option<String>,
    /// The period `monthly_cost` covers. Default: the last 30 complete days; with FOCUS cost
    /// files, every day the files cover.
    #[serde(default)]
    pub time_period: Option<TimePeriodArg>,
    /// Cost figure (FOCUS files and the demo: BilledCost, the default, or EffectiveCost).
    #[serde(default)]
    pub metric: Option<CostMetric>,
    /// Lowest confidence a suggested value is exported with (default 0.7: the medium and
    /// high bands; 0.9 for the high band only).
    #[serde(default = "default_min_confidence")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_confidence: f64,
    /// Keys whose effective value fills `owner`, first present wins (policy keys are read
    /// through their aliases). Default: Owner, Team.
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub owner_keys: Vec<String>,
    /// Prefix text cells a spreadsheet would run as a formula (starting with =, +, -, @, tab,
    /// CR, or ') with `'`. Default true; drop one leading `'` to get the exact value back.
    #[serde(default = "default_true")]
    pub formula_guard: bool,
    /// Rescan the source and re-read costs instead of using cached ones.
    #[serde(default)]
    pub force_refresh: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            scope: ScopeArgs::default(),
            tag_keys: Vec::new(),
            min_severity: None,
            max_rows: DEFAULT_ROWS,
            cursor: None,
            time_period: None,
            metric: None,
            min_confidence: default_min_confidence(),
            owner_keys: Vec::new(),
            formula_guard: true,
            force_refresh: false,
        }
    }
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct ExportDocs;

impl ScopeDocs for ExportDocs {
    const RESOURCE_TYPES: Option<&'static str> =
        Some("Only resources whose type matches one of these patterns (`ec2:*`). Default: every type.");
    const REGIONS: Option<&'static str> = Some("Only resources in these regions. Default: every region.");
    const ACCOUNTS: Option<&'static str> =
        Some("Only resources in these accounts, by id or by name. Default: every account.");
}

/// The period and metric of the costs in `monthly_cost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct CostColumn {
    pub period: Period,
    pub metric: CostMetric,
    pub currency: String,
    pub cost_quality: CostQuality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// The CSV (RFC 4180, CRLF line ends): a header row of `columns`, then this page's rows,
    /// ordered by resource id, then key.
    pub csv: String,
    /// The header, in order.
    pub columns: Vec<String>,
    /// Rows on this page.
    pub rows: usize,
    /// Rows before this page.
    pub offset: usize,
    /// Violations matching the filters, all pages together (exact; equals
    /// check_tag_compliance's violations_total for the same filters).
    pub total_violations: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// What `monthly_cost` is: the resource's spend over this period, by this metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costs: Option<CostColumn>,
    /// Why `monthly_cost` is empty although a cost source is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costs_unavailable: Option<String>,
    pub data_quality: DataQuality,
}

impl Tool for ExportViolationsCsv {
    const NAME: &'static str = "export_violations_csv";
    const TITLE: &'static str = "Export violations as CSV";
    const DESCRIPTION: &'static str = "Exports tag-policy violations as CSV text, one row per violation: \
resource_id, account, region, type, name, key, kind, current, expected, severity, monthly_cost, \
suggested_value, suggestion_confidence, owner. Rows are the effective-view violations check_tag_compliance \
counts (same filters: resource_types, regions, accounts, tag_keys, min_severity), ordered by resource id then \
key; monthly_cost is the resource's spend over the cost period (see `costs`), suggested_value the best \
calibrated suggestion at or above min_confidence for a missing or invalid required key, owner the effective \
value of owner_keys (default Owner, then Team). Returns one page of up to max_rows rows (default 500, at most \
1,000) with a header, the exact total and next_cursor for the next page. Text cells that a spreadsheet would \
run as a formula are prefixed with ' (formula_guard). Use it to hand violations to a spreadsheet, a ticket \
import or another tool; for counts and scores use check_tag_compliance.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    // Not cached: suggested values also depend on reviewers' decisions and the rules, which
    // are not part of the answer-cache key; the suggestion statistics are kept instead.

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        serde_json::json!({"resource_types": ["ec2:*"], "tag_keys": ["Owner"], "max_rows": 50})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"max_rows": 100000}), "max_rows")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        // What shapes the rows: cursors are bound to it (page size and cursor excluded).
        let mut question = serde_json::to_value(&args)
            .map_err(|e| ToolError::Internal(format!("could not encode the arguments: {e}")))?;
        if let Some(map) = question.as_object_mut() {
            for name in ["cursor", "max_rows", "force_refresh"] {
                map.remove(name);
            }
        }
        let today = chrono::Utc::now().date_naive();
        let period = match &args.time_period {
            Some(p) => Some(period_arg(&p.start, &p.end, today)?),
            None => None,
        };
        let owner_keys = if args.owner_keys.is_empty() {
            DEFAULT_OWNER_KEYS.iter().map(|k| k.to_string()).collect()
        } else {
            args.owner_keys
        };
        let export = prepare(
            call,
            ExportQuestion {
                scope: args.scope.scope,
                tag_keys: args.tag_keys,
                min_severity: args.min_severity,
                force_refresh: args.force_refresh,
                costs: CostQuery {
                    period,
                    metric: args.metric,
                },
                suggestions: true,
                min_confidence: args.min_confidence,
                owner_keys,
            },
        )
        .await?;
        let page = export.csv_page(
            call,
            Self::NAME,
            &question,
            args.cursor.as_deref(),
            args.max_rows.clamp(1, MAX_ROWS) as usize,
            args.formula_guard,
        )?;
        let costs = export
            .costs
            .as_ref()
            .zip(export.cost_quality())
            .map(|(c, cost_quality)| CostColumn {
                period: c.costs.period,
                metric: c.costs.metric,
                currency: c.costs.currency.clone(),
                cost_quality,
            });
        Ok(Output {
            csv: page.csv,
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows: page.rows,
            offset: page.offset,
            total_violations: export.total(),
            next_cursor: page.next_cursor,
            costs,
            costs_unavailable: export.cost_unavailable.clone(),
            data_quality: call.data_quality(&export.estate),
        })
    }
}
