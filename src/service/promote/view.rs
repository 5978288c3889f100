//! What a promotion plan looks like to the tool and the command (`PlanView`, built from the
//! stored row), what an apply reports (`Applied`), and the stored plan's JSON parts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Selection;
use super::plan::{Entry, Skipped};
use super::write::Outcome;
use crate::app::ToolError;
use crate::store::virtual_tags::promotion::{PlanRow, PlanStatus};

/// Entries listed in an answer at most (counts are always whole).
const MAX_LISTED: usize = 500;

/// What a plan holds besides its entries (stored with it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Summary {
    pub skipped: Vec<Skipped>,
    pub iam_actions: Vec<String>,
}

/// What happened at apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Applied {
    /// ARNs written and verified by reading them back.
    pub promoted: usize,
    /// ARNs AWS refused (see each entry's outcome).
    pub failed: usize,
    /// ARNs AWS accepted whose read-back does not show the tags.
    pub unverified: usize,
    /// Virtual tags marked `promoted` (written here, or already held natively).
    pub virtual_tags_promoted: usize,
    /// Audit rows written (one per ARN AWS accepted a write for, `ok` or `error:unverified`;
    /// tool `promote_virtual_tags/write`).
    pub audit_rows: usize,
    /// AWS requests made by this apply (reads and writes, retries included).
    pub aws_requests: u64,
}

/// An entry and, once applied, what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct EntryView {
    #[serde(flatten)]
    pub entry: Entry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A plan as the tool and the command show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct PlanView {
    pub plan_id: i64,
    pub status: PlanStatus,
    /// SHA-256 of the inputs (approved virtual tags chosen, native tags of their ARNs): an
    /// apply refuses when it no longer matches.
    pub fingerprint: String,
    pub selection: Selection,
    pub created_by: String,
    pub created_by_principal: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Who the server verified the approver to be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_by_principal: Option<String>,
    /// ARNs to write.
    pub resources: usize,
    /// Tags to add (the key is absent natively) and to change (override_native).
    pub tags_to_add: usize,
    pub tags_to_change: usize,
    /// Per ARN, by ARN (the first 500; `resources` is the whole count).
    pub entries: Vec<EntryView>,
    /// Virtual tags not written, and why (the first 500).
    pub skipped: Vec<Skipped>,
    pub skipped_total: usize,
    /// IAM actions the writer needs for this plan.
    pub iam_actions: Vec<String>,
    /// Set by apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
}

/// A plan in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct PlanHeadline {
    pub plan_id: i64,
    pub status: PlanStatus,
    pub created_at: String,
    pub created_by_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// ARNs the plan writes.
    pub resources: usize,
}

pub(super) fn view(row: &PlanRow) -> Result<PlanView, ToolError> {
    let summary: Summary = decode(&row.summary)?;
    let mut entries = Vec::with_capacity(row.entries.len().min(MAX_LISTED));
    let (mut add, mut change) = (0, 0);
    for (_, entry, outcome) in &row.entries {
        let entry: Entry = decode(entry)?;
        change += entry.replaces.len();
        add += entry.tags.len() - entry.replaces.len();
        if entries.len() < MAX_LISTED {
            let outcome = outcome.as_deref().map(decode).transpose()?;
            entries.push(EntryView { entry, outcome });
        }
    }
    let skipped_total = summary.skipped.len();
    Ok(PlanView {
        plan_id: row.id,
        status: row.status,
        fingerprint: row.fingerprint.clone(),
        selection: decode(&row.selection)?,
        created_by: row.created_by.clone(),
        created_by_principal: row.created_by_principal.clone(),
        created_at: row.created_at.clone(),
        approved_by: row.approved_by.clone(),
        approved_by_principal: row.approved_by_principal.clone(),
        approved_at: row.approved_at.clone(),
        approval_reason: row.approval_reason.clone(),
        applied_at: row.applied_at.clone(),
        applied_by_principal: row.applied_by_principal.clone(),
        resources: row.entries.len(),
        tags_to_add: add,
        tags_to_change: change,
        entries,
        skipped: summary.skipped.into_iter().take(MAX_LISTED).collect(),
        skipped_total,
        iam_actions: summary.iam_actions,
        applied: None,
    })
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ToolError> {
    serde_json::from_str(text)
        .map_err(|e| ToolError::Internal(format!("a stored promotion plan is unreadable: {e}")))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<String, ToolError> {
    serde_json::to_string(value)
        .map_err(|e| ToolError::Internal(format!("cannot encode a promotion plan: {e}")))
}
