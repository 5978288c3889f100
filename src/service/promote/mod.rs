//! Promoting approved virtual tags to real cloud tags, the one use-case that writes to the
//! cloud: `plan` (a dry run stored with an id: the diff per ARN, counts, the IAM actions
//! needed, and a fingerprint of its inputs) → `approve` (a person, recorded with the verified
//! principal) → `apply` (only an approved plan whose inputs are unchanged: batched
//! `TagResources`, 5xx entries retried, every write read back) → the virtual tags now held
//! natively marked `promoted` and one audit row per written ARN. `show` reads a plan back.
//!
//! The diff is pure (`plan`), the writes go through a `TagWriter` (`write`); this module only
//! reads the inputs, keeps the plan in the store and records the result. Single account: the
//! caller's own credentials write (a multi-account writer role is not built yet).

mod plan;
mod view;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::{Call, ToolError};
use crate::inventory::aws::writer::{LiveTags, MAX_ARNS_PER_READ, TagWriter};
use crate::service::virtual_tags::{MAX_RESOURCES, require_store};
use crate::store::VirtualTagStore;
use crate::store::audit::{Appended, AuditRecord};
use crate::store::virtual_tags::ActiveTag;
use crate::store::virtual_tags::promotion::{NewPlan, PlanRow};
use plan::{Entry, SkipReason};
pub(crate) use view::{Applied, PlanHeadline, PlanView};
use view::{Summary, decode, encode, view};
pub(crate) use write::Outcome;

/// The `tool` of the audit row written for each ARN a promotion wrote.
pub(crate) const AUDIT_TOOL: &str = "promote_virtual_tags/write";
/// First wait before retrying entries AWS failed with a 5xx status (doubles each round).
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Which approved virtual tags a plan promotes; empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Selection {
    /// Only virtual tags of these resources (ARNs).
    #[serde(default)]
    pub resource_ids: Vec<String>,
    /// Only virtual tags of these keys (canonical names).
    #[serde(default)]
    pub keys: Vec<String>,
}

fn require_writer(call: &Call<'_>) -> Result<Arc<dyn TagWriter>, ToolError> {
    call.tag_writer().cloned().ok_or_else(|| {
        ToolError::Unavailable(
            "promotion writes real tags to AWS, and this server has no writer: serve the live \
             AWS estate (--aws), and with several accounts (--aws-org, --aws-accounts) name the \
             role to write through in each with --aws-writer-role-name (the read role never \
             writes)"
                .into(),
        )
    })
}

/// The approved virtual tags `s` chooses.
async fn chosen(store: &dyn VirtualTagStore, s: &Selection) -> Result<Vec<ActiveTag>, ToolError> {
    let active = store.active().await?;
    Ok(active
        .into_iter()
        .filter(|t| s.resource_ids.is_empty() || s.resource_ids.contains(&t.resource_id))
        .filter(|t| s.keys.is_empty() || s.keys.contains(&t.key))
        .collect())
}

/// What AWS holds now on the ARNs of `tags`, read in calls of 100 per account and region.
async fn read_native(
    writer: &dyn TagWriter,
    tags: &[ActiveTag],
    accounts: &plan::Homes,
    default_region: &str,
) -> Result<LiveTags, ToolError> {
    let mut by_place: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for t in tags {
        let Some(place) = plan::place(&t.resource_id, accounts, default_region) else {
            continue;
        };
        let list = by_place.entry(place).or_default();
        if !list.contains(&t.resource_id) {
            list.push(t.resource_id.clone());
        }
    }
    let mut live = LiveTags::new();
    for ((account, region), arns) in by_place {
        for chunk in arns.chunks(MAX_ARNS_PER_READ) {
            let got = writer
                .read_tags(&account, &region, chunk)
                .await
                .map_err(|e| {
                    ToolError::Unavailable(format!("cannot read the current tags: {e}"))
                })?;
            live.extend(got);
        }
    }
    Ok(live)
}

/// The account and region of ARNs that carry neither (S3 buckets), from the inventory; empty
/// (no scan needed) when every ARN names both.
async fn homes_of(call: &Call<'_>, tags: &[ActiveTag]) -> Result<plan::Homes, ToolError> {
    let needed = tags.iter().any(|t| {
        plan::arn_parts(&t.resource_id)
            .is_some_and(|(_, region, account)| region.is_empty() || account.is_empty())
    });
    if !needed {
        return Ok(plan::Homes::new());
    }
    let estate = call.estate(false).await?;
    Ok(tags
        .iter()
        .filter_map(|t| {
            let i = crate::inventory::index_of(&estate.inventory.resources, &t.resource_id)?;
            let r = &estate.inventory.resources[i];
            // A listing that names no region (Resource Explorer's `global`) leaves it to the
            // writer's default.
            let region = match r.region.as_str() {
                crate::inventory::file::GLOBAL_REGION => String::new(),
                region => region.to_string(),
            };
            Some((t.resource_id.clone(), (r.account.to_string(), region)))
        })
        .collect())
}

/// What a plan is made from, as it is now.
struct Inputs {
    tags: Vec<ActiveTag>,
    native: LiveTags,
    accounts: plan::Homes,
    default_region: String,
    fingerprint: String,
}

/// The inputs of a plan now: the tags chosen, what AWS holds, the fingerprint.
async fn inputs(
    call: &Call<'_>,
    store: &dyn VirtualTagStore,
    writer: &dyn TagWriter,
    selection: &Selection,
) -> Result<Inputs, ToolError> {
    let default_region = writer
        .default_region()
        .await
        .map_err(ToolError::Unavailable)?;
    let tags = chosen(store, selection).await?;
    let accounts = homes_of(call, &tags).await?;
    let native = read_native(writer, &tags, &accounts, &default_region).await?;
    let selection_json = encode(selection)?;
    let fingerprint = plan::fingerprint(&selection_json, &tags, &native);
    Ok(Inputs {
        tags,
        native,
        accounts,
        default_region,
        fingerprint,
    })
}

/// Makes and stores a plan (nothing is written to the cloud).
pub(crate) async fn make_plan(
    call: &Call<'_>,
    mut selection: Selection,
) -> Result<PlanView, ToolError> {
    let store = require_store(call)?;
    let writer = require_writer(call)?;
    let policy = call.policy();
    selection.keys = selection
        .keys
        .iter()
        .map(|k| policy.canonical_key(k).to_string())
        .collect();
    selection.keys.sort();
    selection.keys.dedup();
    selection.resource_ids.sort();
    selection.resource_ids.dedup();
    let Inputs {
        tags,
        native,
        accounts,
        default_region,
        fingerprint,
    } = inputs(call, store.as_ref(), writer.as_ref(), &selection).await?;
    if tags.is_empty() {
        return Err(ToolError::invalid(
            "no approved virtual tag matches; approve some first (review_virtual_tags, \
             apply_virtual_tag) or widen `resource_ids`/`keys`",
        ));
    }
    let diff = plan::diff(&tags, &native, &accounts, &default_region);
    if diff.entries.len() > MAX_RESOURCES {
        return Err(ToolError::invalid(format!(
            "{} resources would be written, more than the {MAX_RESOURCES} one plan may hold; \
             narrow it with `resource_ids` or `keys`",
            diff.entries.len()
        )));
    }
    let summary = Summary {
        iam_actions: plan::iam_actions(diff.entries.iter().map(|e| e.arn.as_str())),
        skipped: diff.skipped,
    };
    let new = NewPlan {
        fingerprint,
        selection: encode(&selection)?,
        summary: encode(&summary)?,
        entries: diff
            .entries
            .iter()
            .map(|e| Ok((e.arn.clone(), encode(e)?)))
            .collect::<Result<_, ToolError>>()?,
        by_name: call.actor().to_string(),
        by_principal: call.principal().id.clone(),
    };
    let id = store.create_plan(new).await?;
    show(call, id).await
}

/// Records the caller's approval of a plan. Only an administrator approves: approval is what
/// lets a plan change the cloud. (The guard refuses other roles before the tool runs; this
/// holds for every other way in too.)
pub(crate) async fn approve(
    call: &Call<'_>,
    id: i64,
    reason: String,
    approved_by: Option<String>,
) -> Result<PlanView, ToolError> {
    if !call.principal().is_admin() {
        return Err(ToolError::invalid(format!(
            "approving a promotion plan needs the admin role; principal `{}` has the {} role",
            call.principal().id,
            call.principal().role
        )));
    }
    let store = require_store(call)?;
    let by = approved_by
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| call.actor().to_string());
    let row = store
        .approve_plan(id, by, call.principal().id.clone(), reason)
        .await?;
    view(&row)
}

/// The newest plans, and how many there are.
pub(crate) async fn list(
    call: &Call<'_>,
    limit: usize,
) -> Result<(Vec<PlanHeadline>, usize), ToolError> {
    let store = require_store(call)?;
    let (rows, total) = store.list_plans(limit).await?;
    let plans = rows
        .into_iter()
        .map(|(r, resources)| PlanHeadline {
            plan_id: r.id,
            status: r.status,
            created_at: r.created_at,
            created_by_principal: r.created_by_principal,
            approved_by_principal: r.approved_by_principal,
            applied_at: r.applied_at,
            resources,
        })
        .collect();
    Ok((plans, total))
}

/// Reads a plan back.
pub(crate) async fn show(call: &Call<'_>, id: i64) -> Result<PlanView, ToolError> {
    let store = require_store(call)?;
    let row = store.plan(id).await?.ok_or_else(|| {
        ToolError::invalid(format!(
            "no promotion plan {id}; make one with action `plan`"
        ))
    })?;
    view(&row)
}

/// Applies an approved plan whose inputs are unchanged.
pub(crate) async fn apply(call: &Call<'_>, id: i64) -> Result<PlanView, ToolError> {
    let store = require_store(call)?;
    let writer = require_writer(call)?;
    let requests_before = writer.requests();
    // Taken first (atomically, approved → applying), so two applies cannot both write.
    store.start_apply(id).await?;
    // Any failure before the first write hands the plan back (applying → approved).
    let checked = async {
        let Some(row) = store.plan(id).await? else {
            return Err(ToolError::invalid(format!("no promotion plan {id}")));
        };
        let selection: Selection = decode(&row.selection)?;
        let now = inputs(call, store.as_ref(), writer.as_ref(), &selection).await?;
        if now.fingerprint != row.fingerprint {
            return Err(ToolError::invalid(format!(
                "promotion plan {id} is stale: the approved virtual tags it was made from, or \
                 the tags AWS holds on its resources, changed since it was made; nothing was \
                 written. Make a new plan (action `plan`) and have it approved"
            )));
        }
        let entries: Vec<Entry> = row
            .entries
            .iter()
            .map(|(_, e, _)| decode(e))
            .collect::<Result<_, _>>()?;
        let summary: Summary = decode(&row.summary)?;
        Ok((row, entries, summary))
    }
    .await;
    let (row, entries, summary) = match checked {
        Ok(v) => v,
        Err(e) => {
            store.abandon_apply(id).await?;
            return Err(e);
        }
    };
    let outcomes = write::execute(writer.as_ref(), &entries, RETRY_BACKOFF).await;
    let mut promoted_ids: Vec<i64> = summary
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::AlreadyNative)
        .map(|s| s.virtual_tag_id)
        .collect();
    let mut applied = Applied::default();
    let mut written = Vec::new();
    for e in &entries {
        match outcomes.get(&e.arn) {
            Some(Outcome::Promoted) => {
                applied.promoted += 1;
                promoted_ids.extend(&e.virtual_tag_ids);
                written.push((e, true));
            }
            Some(Outcome::Failed { .. }) => applied.failed += 1,
            // AWS accepted the write: it is recorded, as unverified.
            Some(Outcome::Unverified { .. }) => {
                applied.unverified += 1;
                written.push((e, false));
            }
            None => applied.unverified += 1,
        }
    }
    applied.audit_rows = audit_writes(call, &row, &written).await;
    let encoded: Vec<(String, String)> = outcomes
        .iter()
        .map(|(arn, o)| Ok((arn.clone(), encode(o)?)))
        .collect::<Result<_, ToolError>>()?;
    applied.virtual_tags_promoted = store
        .finish_apply(id, encoded, promoted_ids, call.principal().id.clone())
        .await?;
    applied.aws_requests = writer.requests().saturating_sub(requests_before);
    let mut out = show(call, id).await?;
    out.applied = Some(applied);
    Ok(out)
}

/// One audit row per ARN AWS accepted a write for: who, which plan (and who approved it),
/// which tags; outcome `ok` when the read-back verified it, `error:unverified` otherwise.
/// Returns the rows on disk; none without an audit log.
async fn audit_writes(call: &Call<'_>, row: &PlanRow, written: &[(&Entry, bool)]) -> usize {
    let Some(log) = call.audit() else {
        return 0;
    };
    let mut on_disk = 0;
    for (e, verified) in written {
        let arguments = crate::util::canonical_json(&serde_json::json!({
            "arn": e.arn,
            "plan_id": row.id,
            "tags": e.tags,
            "replaces": e.replaces,
            "approved_by": row.approved_by,
            "approved_by_principal": row.approved_by_principal,
        }));
        let record = AuditRecord {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            correlation_id: uuid::Uuid::new_v4().to_string(),
            session: format!("promotion plan {}", row.id),
            principal: Some(call.principal().id.clone()),
            client: call.actor().to_string(),
            transport: "aws".into(),
            tool: AUDIT_TOOL.into(),
            arguments_hash: hex::encode(Sha256::digest(arguments.as_bytes())),
            arguments,
            outcome: if *verified { "ok" } else { "error:unverified" }.into(),
            duration_us: 0,
            result_bytes: 0,
        };
        match log.append(record, Duration::from_secs(5)).await {
            Appended::Written(_) => on_disk += 1,
            Appended::Pending => {
                tracing::warn!(arn = %e.arn, "promotion audit row still queued");
            }
            Appended::Failed(why) => {
                tracing::error!(arn = %e.arn, error = %why, "promotion audit row not written");
            }
        }
    }
    on_disk
}
