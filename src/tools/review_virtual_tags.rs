//! `review_virtual_tags`: lists virtual tags (pending ones by default, with exact totals) and
//! approves or denies pending ones by ids or by filter, recording who decided and why.
//! Decisions on suggested tags are the feedback that tunes later suggestions.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Principal, Role, Tool, ToolError, own_store_annotations};
use crate::service::virtual_tags::{MAX_RESOURCES, require_store};
use crate::store::virtual_tags::{Decision, TagQuery, TagSource, TagStatus, VirtualTag};

pub(crate) struct ReviewVirtualTags;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// List tags matching the filter (default: pending ones).
    #[default]
    List,
    /// Approve pending tags (by `ids`, or every pending tag matching the filter).
    Approve,
    /// Deny pending tags (by `ids`, or every pending tag matching the filter).
    Deny,
}

/// Which tags. Every condition given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagFilter {
    /// For `list` (default `["pending"]`); approve and deny act on pending tags only.
    #[serde(default)]
    pub statuses: Vec<TagStatus>,
    #[serde(default)]
    pub sources: Vec<TagSource>,
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub keys: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub resource_ids: Vec<String>,
    #[serde(default)]
    pub rule_id: Option<i64>,
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_confidence: Option<f64>,
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_confidence: Option<f64>,
}

fn default_limit() -> u32 {
    50
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default)]
    pub action: Action,
    /// Tags to approve or deny (ids from a list). Or use `filter`.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub ids: Vec<i64>,
    #[serde(default)]
    pub filter: Option<TagFilter>,
    /// Why (required to approve or deny; kept with the decision and in the audit log).
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    /// Who decides, when not the caller's own identity (e.g. the person the assistant acts
    /// for: "alice@example.com"). Stored as given; the principal the server verified is
    /// stored beside it (`decided_by_principal`).
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub decided_by: Option<String>,
    /// Tags listed per page (list).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 0, max = 500))]
    pub limit: u32,
    /// Tags to skip (list), for the next page.
    #[serde(default)]
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Skipped {
    pub id: i64,
    /// Its status: only pending tags can be decided.
    pub status: TagStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    pub action: Action,
    /// list: tags matching (exact); approve/deny: tags decided.
    pub total: usize,
    /// list: this page; approve/deny: the decided tags (first 100).
    pub tags: Vec<VirtualTag>,
    /// Ids that were not pending, left as they are.
    pub skipped: Vec<Skipped>,
    /// Pass as `offset` for the next page (list), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
}

impl Tool for ReviewVirtualTags {
    const NAME: &'static str = "review_virtual_tags";
    const TITLE: &'static str = "Review virtual tags";
    const DESCRIPTION: &'static str = "Lists virtual tags waiting for review (proposed by suggest_tags or by untrusted \
rules) — or any status via filter.statuses — with exact totals and paging, and approves or denies pending ones \
by ids or by filter (sources, keys, resource_ids, rule_id, confidence range), recording who decided (the caller, \
or decided_by) and why, and beside it the principal the server verified (decided_by_principal). Only approved virtual tags take effect in compliance and cost attribution. Decisions on \
suggested tags are feedback: evidence sources that keep being denied get lower confidence in later \
suggestions. Approving or denying by filter decides at most 10,000 tags per call.";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;
    const VIEW: Option<super::views::View> = Some(super::views::View::Review);

    /// Listing reads; approving and denying decide.
    fn role(args: &Args, _caller: &Principal) -> Role {
        match args.action {
            Action::List => Role::Viewer,
            Action::Approve | Action::Deny => Role::Approver,
        }
    }

    fn annotations() -> ToolAnnotations {
        // Decisions change Tagwarden's own store (recorded, never deleted), never the cloud.
        own_store_annotations()
    }

    fn example() -> Value {
        serde_json::json!({"limit": 5})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"action": "maybe"}), "action")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let store = require_store(call)?;
        let f = args.filter.clone().unwrap_or_default();
        let mut query = TagQuery {
            statuses: f.statuses,
            sources: f.sources,
            keys: f.keys,
            resource_ids: f.resource_ids,
            rule_id: f.rule_id,
            min_confidence: f.min_confidence,
            max_confidence: f.max_confidence,
        };
        match args.action {
            Action::List => {
                if !args.ids.is_empty() {
                    let mut ids = args.ids.clone();
                    ids.truncate(args.limit as usize);
                    let tags = store.get(ids).await?;
                    return Ok(Output {
                        action: Action::List,
                        total: tags.len(),
                        tags,
                        skipped: Vec::new(),
                        next_offset: None,
                    });
                }
                if query.statuses.is_empty() {
                    query.statuses = vec![TagStatus::Pending];
                }
                let (limit, offset) = (args.limit as usize, args.offset as usize);
                let (tags, total) = store.list(query, limit, offset).await?;
                let next = offset + tags.len();
                Ok(Output {
                    action: Action::List,
                    total,
                    next_offset: (next < total && !tags.is_empty()).then_some(next as u32),
                    tags,
                    skipped: Vec::new(),
                })
            }
            Action::Approve | Action::Deny => {
                let reason = args.reason.filter(|r| r.trim().len() >= 3).ok_or_else(|| {
                    ToolError::invalid(
                        "argument `reason`: say why (kept with the decision and in the \
                             audit log), e.g. \"confirmed with the payments team\"",
                    )
                })?;
                let decision = Decision {
                    approve: args.action == Action::Approve,
                    by: args
                        .decided_by
                        .filter(|d| !d.trim().is_empty())
                        .unwrap_or_else(|| call.actor().to_string()),
                    by_principal: call.principal().id.clone(),
                    reason,
                };
                let by_filter = args.filter.is_some();
                let (decided, skipped) = match (args.ids.is_empty(), by_filter) {
                    (false, false) => {
                        let ids = args.ids;
                        let asked = ids.clone();
                        let known = store.get(asked).await?;
                        let unknown: Vec<String> = ids
                            .iter()
                            .filter(|id| !known.iter().any(|t| t.id == **id))
                            .map(ToString::to_string)
                            .collect();
                        if !unknown.is_empty() {
                            return Err(ToolError::invalid(format!(
                                "argument `ids`: no virtual tag {}; list them first \
                                 (action list)",
                                unknown.join(", ")
                            )));
                        }
                        store.decide(ids, decision).await?
                    }
                    (true, true) => {
                        if !query.statuses.is_empty() {
                            return Err(ToolError::invalid(
                                "argument `filter.statuses`: only pending tags can be approved \
                                 or denied; remove statuses from the filter",
                            ));
                        }
                        let narrows = !query.sources.is_empty()
                            || !query.keys.is_empty()
                            || !query.resource_ids.is_empty()
                            || query.rule_id.is_some()
                            || query.min_confidence.is_some()
                            || query.max_confidence.is_some();
                        if !narrows {
                            return Err(ToolError::invalid(
                                "argument `filter`: say which pending tags to decide (sources, \
                                 keys, resource_ids, rule_id or a confidence range); an empty \
                                 filter would decide every pending tag",
                            ));
                        }
                        let decided = store
                            .decide_matching(query, decision, MAX_RESOURCES)
                            .await?;
                        (decided, Vec::new())
                    }
                    _ => {
                        return Err(ToolError::invalid(
                            "give either `ids` or `filter` to say which pending tags to decide",
                        ));
                    }
                };
                let total = decided.len();
                Ok(Output {
                    action: args.action,
                    total,
                    tags: decided.into_iter().take(100).collect(),
                    skipped: skipped
                        .into_iter()
                        .map(|(id, status)| Skipped { id, status })
                        .collect(),
                    next_offset: None,
                })
            }
        }
    }
}
