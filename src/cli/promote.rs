//! `tagwarden promote plan|approve|apply|show|list`: the promotion of approved virtual tags to
//! real AWS tags from the command line, through the same use-case as the
//! `promote_virtual_tags` tool. The local user is the principal; an apply writes its per-ARN
//! audit rows to the data directory's audit.db, as a server would.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Format, SourceArgs};
use crate::service::promote::{self, PlanView, Selection};
use crate::store::audit::AuditOptions;
use crate::tools::{Call, ToolError};

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(subcommand)]
    pub action: PromoteAction,
}

/// The steps of a promotion.
#[derive(Debug, Subcommand)]
pub enum PromoteAction {
    /// Make and store a plan (dry run; nothing is written to AWS).
    Plan {
        #[command(flatten)]
        common: Common,
        /// Only the virtual tags of these resources (ARNs, comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "ARNS")]
        resource_ids: Vec<String>,
        /// Only these keys (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "KEYS")]
        keys: Vec<String>,
    },
    /// Approve a plan (recorded with who and why).
    Approve {
        #[command(flatten)]
        common: Common,
        /// The plan's id.
        plan_id: i64,
        /// Why it is approved.
        #[arg(long)]
        reason: String,
        /// Who approves (default: `cli`); the principal recorded is the local user.
        #[arg(long, value_name = "NAME")]
        approved_by: Option<String>,
    },
    /// Apply an approved plan whose inputs are unchanged: write, verify, record.
    Apply {
        #[command(flatten)]
        common: Common,
        /// The plan's id.
        plan_id: i64,
    },
    /// Show a plan and, once applied, each ARN's outcome.
    Show {
        #[command(flatten)]
        common: Common,
        /// The plan's id.
        plan_id: i64,
    },
}

/// What every step takes: the AWS source and where history.db (and audit.db) live.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Directory of the SQLite databases (history.db, audit.db), as for `serve`.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
    /// `text` or `json` (the tool's plan object); `markdown` prints the text form.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Runs one step; exit code 0, or 1 when an apply left ARNs failed or unverified.
pub(super) async fn run(args: PromoteArgs) -> anyhow::Result<u8> {
    let common = match &args.action {
        PromoteAction::Plan { common, .. }
        | PromoteAction::Approve { common, .. }
        | PromoteAction::Apply { common, .. }
        | PromoteAction::Show { common, .. } => common,
    };
    // Plans and tags (and, for apply, the audit log) where the server keeps them: PostgreSQL
    // with --database-url, else the data directory's files.
    let stores =
        super::database::Stores::open(common.data_dir.as_deref(), &common.database).await?;
    let mut app = common
        .source
        .app()?
        .with_virtual_tags(stores.virtual_tags().await?);
    let audit = if matches!(args.action, PromoteAction::Apply { .. }) {
        let log = stores.audit(&AuditOptions::default()).await?;
        app = app.with_audit(log.clone());
        Some(log)
    } else {
        None
    };
    let call = Call::new(&app).with_trigger("cli");
    let answer: Result<PlanView, ToolError> = match &args.action {
        PromoteAction::Plan {
            resource_ids, keys, ..
        } => {
            promote::make_plan(
                &call,
                Selection {
                    resource_ids: resource_ids.clone(),
                    keys: keys.clone(),
                },
            )
            .await
        }
        PromoteAction::Approve {
            plan_id,
            reason,
            approved_by,
            ..
        } => promote::approve(&call, *plan_id, reason.clone(), approved_by.clone()).await,
        PromoteAction::Apply { plan_id, .. } => promote::apply(&call, *plan_id).await,
        PromoteAction::Show { plan_id, .. } => promote::show(&call, *plan_id).await,
    };
    if let Some(log) = audit.as_ref().map(Arc::clone) {
        log.close().await;
    }
    let plan = answer.map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = match common.format {
        Format::Json => serde_json::to_string_pretty(&plan)? + "\n",
        Format::Text | Format::Markdown => render(&plan),
    };
    print!("{text}");
    let incomplete = plan
        .applied
        .as_ref()
        .is_some_and(|a| a.failed + a.unverified > 0);
    Ok(u8::from(incomplete))
}

/// A plan for a terminal: status, counts, one line per ARN, the tags left.
fn render(plan: &PlanView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = serde_json::to_value(plan.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "promotion plan {} ({status}): {} resources, {} tags to add, {} to change",
        plan.plan_id, plan.resources, plan.tags_to_add, plan.tags_to_change
    );
    if let (Some(by), Some(principal)) = (&plan.approved_by, &plan.approved_by_principal) {
        let _ = writeln!(out, "approved by {by} ({principal})");
    }
    for e in &plan.entries {
        let tags: Vec<String> = e
            .entry
            .tags
            .iter()
            .map(|(k, v)| match e.entry.replaces.get(k) {
                Some(old) => format!("{k}: {old} -> {v}"),
                None => format!("+{k}={v}"),
            })
            .collect();
        let outcome = e
            .outcome
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok())
            .map(|o| {
                let result = o["result"].as_str().unwrap_or_default().to_string();
                match o["error_code"].as_str() {
                    Some(code) => format!(
                        "  [{result}: {code} {}]",
                        o["message"].as_str().unwrap_or_default()
                    ),
                    None => format!("  [{result}]"),
                }
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {}  {}{outcome}", e.entry.arn, tags.join(", "));
    }
    for s in &plan.skipped {
        let reason = serde_json::to_value(s.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "  left {} {}={} ({reason})", s.arn, s.key, s.value);
    }
    let _ = writeln!(out, "IAM actions needed: {}", plan.iam_actions.join(", "));
    if let Some(a) = &plan.applied {
        let _ = writeln!(
            out,
            "applied: {} promoted, {} failed, {} unverified; {} virtual tags promoted, {} audit \
             rows, {} AWS requests",
            a.promoted,
            a.failed,
            a.unverified,
            a.virtual_tags_promoted,
            a.audit_rows,
            a.aws_requests
        );
    }
    out
}
