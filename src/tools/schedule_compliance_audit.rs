//! `schedule_compliance_audit`: the scheduled audits of this server — `status` (interval, last
//! and next run, channels by kind and host, the last notifications, dead letters) or `run_now`
//! (one audit now: snapshot, comparison, notifications; once a minute per server, and only
//! when a schedule and a channel are configured). The interval is set when the server starts
//! (`serve --audit-every`), not over MCP.

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Principal, Role, Tool, ToolError};
use crate::app::audits::{AuditRun, AuditStatus};

pub(crate) struct ScheduleComplianceAudit;

/// What to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// Report the schedule and the last audit's notifications.
    #[default]
    Status,
    /// Run one audit now (snapshot, comparison with the previous one, notifications).
    RunNow,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// `status` (default) or `run_now`.
    #[serde(default)]
    pub action: Action,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Output {
    pub action: Action,
    /// The schedule (after the run, for run_now).
    pub status: AuditStatus,
    /// The audit run now, for run_now: its snapshot, regressions and what was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<AuditRun>,
}

impl Tool for ScheduleComplianceAudit {
    const NAME: &'static str = "schedule_compliance_audit";
    const ROLE: Role = Role::Viewer;

    /// Reading the schedule is a viewer's; running an audit stores a snapshot and notifies
    /// people, as an approver's `store_snapshot` does.
    fn role(args: &Args, _caller: &Principal) -> Role {
        match args.action {
            Action::Status => Role::Viewer,
            Action::RunNow => Role::Approver,
        }
    }
    const TITLE: &'static str = "Scheduled compliance audits";
    const DESCRIPTION: &'static str = "The scheduled compliance audits of this server and their \
alerts. action=status (default) returns the audit interval (set when the server starts with \
--audit-every; `not scheduled` otherwise), the last and next run, the alert channels configured \
(kind and host only — never URLs, addresses or secrets), whether the weekly summary is on and \
when it last went out, the last audit's snapshot, regressions and notification outcomes, and \
how many undelivered alerts are kept as dead letters. action=run_now runs one audit now: a \
rescan stored as a snapshot, the comparison with the previous snapshot of the whole estate, \
and the alerts (and the weekly summary when due) sent to every channel; it returns what was \
found and sent. run_now is refused when the server has no schedule or no alert channel, while \
an audit is running, and more than once a minute per server. The interval cannot be changed \
over MCP.";

    type Args = Args;
    type Output = Output;

    fn annotations() -> ToolAnnotations {
        // run_now stores a snapshot and sends notifications to outside receivers; status only
        // reads. Hints describe the tool's worst case.
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(true)
    }

    fn example() -> Value {
        serde_json::json!({"action": "status"})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"action": "every_hour"}), "action")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let Some(audits) = call.audits().cloned() else {
            return Err(ToolError::Unavailable(
                "this process runs no scheduled audits (they belong to `tagwarden serve \
                 --audit-every`)"
                    .into(),
            ));
        };
        let run = match args.action {
            Action::Status => None,
            Action::RunNow => Some(audits.run_now(call).await?),
        };
        Ok(Output {
            action: args.action,
            status: audits.status(call).await?,
            run,
        })
    }
}
