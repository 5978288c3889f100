//! `generate_compliance_report`: the compliance report as a document — Markdown, one
//! self-contained HTML file, CSV or JSON — with its headline figures alongside, so an assistant
//! can quote them without parsing the document.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Role, Tool, ToolError, read_only_annotations};
use crate::app::quality::DataQuality;
use crate::report::{ReportFormat, render};
use crate::service::report::{self, DEFAULT_TOP, ExecutiveSummary, ReportQuestion};
use crate::service::scope::{ScopeArgs, ScopeDocs};

pub(crate) struct GenerateComplianceReport;

fn default_top() -> u32 {
    DEFAULT_TOP
}

/// The document's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FormatArg {
    /// Markdown (default): tables and lists, for chat, tickets and pull requests.
    #[default]
    Markdown,
    /// One self-contained HTML file (inline CSS and SVG charts, no script, nothing loaded
    /// from the network).
    Html,
    /// One row per figure: `section,item,metric,value`.
    Csv,
    /// The report's data as JSON.
    Json,
}

impl From<FormatArg> for ReportFormat {
    fn from(f: FormatArg) -> ReportFormat {
        match f {
            FormatArg::Markdown => ReportFormat::Markdown,
            FormatArg::Html => ReportFormat::Html,
            FormatArg::Csv => ReportFormat::Csv,
            FormatArg::Json => ReportFormat::Json,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// `markdown` (default), `html`, `csv` or `json`.
    #[serde(default)]
    pub format: FormatArg,
    #[serde(flatten)]
    pub scope: ScopeArgs<ReportDocs>,
    /// How many offenders and groups per breakdown to list (the rest are summed).
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 100))]
    pub top: u32,
    /// The tag key whose values make the owner/team breakdown and each offender's owner
    /// (default: the first required key named like `owner`, else `team`).
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub owner_key: Option<String>,
    /// Rescan the source instead of using the cached inventory.
    #[serde(default)]
    pub force_refresh: bool,
}

/// The descriptions of the scope arguments in this tool's schema.
pub(crate) struct ReportDocs;

impl ScopeDocs for ReportDocs {
    const RESOURCE_TYPES: Option<&'static str> = Some(
        "Only resources whose canonical type matches one of these patterns (`ec2:*`, `s3:bucket`). Default: every type.",
    );
    const REGIONS: Option<&'static str> = Some("Only resources in these regions. Default: every region.");
    const ACCOUNTS: Option<&'static str> =
        Some("Only resources in these accounts, by id or name. Default: every account.");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub format: FormatArg,
    /// The document (HTML: one self-contained file to save as `.html`).
    pub content: String,
    /// Size of `content` in bytes.
    pub bytes: usize,
    /// The headline figures (the same as check_tag_compliance's for this scope).
    pub summary: ExecutiveSummary,
    pub policy_hash: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    pub data_quality: DataQuality,
}

impl Tool for GenerateComplianceReport {
    const NAME: &'static str = "generate_compliance_report";
    const TITLE: &'static str = "Generate compliance report";
    const DESCRIPTION: &'static str = "Writes a tag compliance report for people — Markdown (default), one \
self-contained HTML file (inline CSS and SVG charts, opens offline), CSV (section,item,metric,value) or JSON. \
It holds an executive summary (score on effective and native tags, spend-weighted score, unattributed spend and \
its share, change since the previous snapshot and since 30 days ago when history exists), coverage per required \
key by resources and by spend, breakdowns by account, resource type, region and owner/team, the most costly \
non-compliant resources with their owner, fixes and confident suggested values, data-quality notes, the policy \
hash and the cost period; with allocation rules stored (manage_allocation_rules), unattributed spend per key before \
and after shared-cost allocation. Figures equal check_tag_compliance's and get_cost_attribution_gap's for the same \
scope. Lists are a top N (`top`, default 10) with the rest summed, so the size stays bounded for any estate. \
Use it when someone asks for a report, a summary to share, or an export for a meeting.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    fn annotations() -> ToolAnnotations {
        read_only_annotations(true)
    }

    fn example() -> Value {
        serde_json::json!({"format": "markdown", "top": 5})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"format": "pdf"}), "format")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let data = report::report(
            call,
            ReportQuestion {
                scope: args.scope.scope,
                top: args.top,
                owner_key: args.owner_key,
                force_refresh: args.force_refresh,
                // The stored allocation rules, as get_cost_attribution_gap applies them.
                allocation: crate::service::allocation::RulesChoice::Stored,
            },
        )
        .await?;
        let content =
            render(&data, args.format.into()).map_err(|e| ToolError::Internal(e.to_string()))?;
        Ok(Output {
            format: args.format,
            bytes: content.len(),
            content,
            summary: data.summary,
            policy_hash: data.policy.hash,
            generated_at: data.generated_at,
            data_quality: data.data_quality,
        })
    }
}
