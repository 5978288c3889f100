//! `get_audit_trail`: who called which tool when, with what outcome — read from the
//! hash-chained audit log.
//!
//! A caller sees only its own principal's rows (its arguments and sessions are nobody else's
//! business); an administrator (the admin role: `--admin-tokens`, a `name:admin:token` entry,
//! the OAuth scope `tagwarden:admin`, or the local user over stdio) sees every row.

use serde_json::Value;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Call, Principal, Role, Tool, ToolError, read_only_annotations};
use crate::store::audit::{AuditFilter, StoredRecord};

pub(crate) struct GetAuditTrail;

fn default_limit() -> u32 {
    50
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Only calls at or after this time (RFC 3339, e.g. `2026-11-22T00:00:00Z`).
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub since: Option<String>,
    /// Only calls at or before this time (RFC 3339).
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub until: Option<String>,
    /// Only calls of this tool.
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub tool: Option<String>,
    /// `ok`, `refused` (any guard), `error` (any class), or an exact outcome such as
    /// `refused:budget` or `error:invalid_argument`.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub outcome: Option<String>,
    /// Only calls of this session (as shown in earlier rows).
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub session: Option<String>,
    /// Only calls of this principal (`token:<digest>`, `token:<name>`, `oauth:<issuer
    /// host>/<sub>`, `ip:<address>`, `local`); another principal's calls need the admin role,
    /// everyone else sees only their own calls.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub principal: Option<String>,
    /// Rows to return, newest first.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
    /// `next_cursor` from a previous answer, for older rows.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Output {
    /// Who you are to this server. Without administrator rights only this principal's calls
    /// are listed and counted.
    pub principal: String,
    /// Whether you may read every principal's calls (the admin role).
    pub admin: bool,
    /// Your role: viewer, approver or admin.
    pub role: Role,
    /// Matching calls, newest first.
    pub rows: Vec<StoredRecord>,
    /// All calls matching the filters (exact).
    pub total: u64,
    /// Pass as `cursor` for older rows; absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Tool for GetAuditTrail {
    const NAME: &'static str = "get_audit_trail";
    const TITLE: &'static str = "Get audit trail";
    const DESCRIPTION: &'static str = "Reads the audit log of tool calls made to this server: time, correlation id, \
session, principal, client, tool, redacted arguments, outcome (ok, refused:<guard> such as refused:budget or \
refused:loop or refused:role, or error:<class>), duration and result size, newest first. Only your own calls are \
listed (those of your principal: your token or OAuth identity, or your address without tokens) unless you have the \
admin role. Filter by time \
range (since/until, RFC 3339), tool, outcome, session and (administrators) principal; totals are exact and pages \
continue with next_cursor. Each row carries its place in the log's SHA-256 hash chain (`tagwarden audit \
verify` checks it).";

    type Args = Args;
    type Output = Output;

    const ROLE: Role = Role::Viewer;

    /// Your own calls are a viewer's to read; another principal's are an administrator's.
    fn role(args: &Args, caller: &Principal) -> Role {
        match &args.principal {
            Some(asked) if *asked != caller.id => Role::Admin,
            _ => Role::Viewer,
        }
    }

    fn annotations() -> ToolAnnotations {
        read_only_annotations(false)
    }

    fn example() -> Value {
        serde_json::json!({"limit": 5})
    }

    fn counter_example() -> (Value, &'static str) {
        (serde_json::json!({"limit": 0}), "limit")
    }

    async fn run(call: &Call<'_>, args: Args) -> Result<Output, ToolError> {
        let Some(log) = call.audit().cloned() else {
            return Err(ToolError::Unavailable(
                "this process keeps no audit log (it is written by `tagwarden serve`)".into(),
            ));
        };
        for (name, value) in [("since", &args.since), ("until", &args.until)] {
            if let Some(v) = value
                && chrono::DateTime::parse_from_rfc3339(v).is_err()
            {
                return Err(ToolError::invalid(format!(
                    "argument `{name}`: `{v}` is not an RFC 3339 time such as 2026-11-22T08:00:00Z"
                )));
            }
        }
        let before_seq = match &args.cursor {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ToolError::invalid(
                    "argument `cursor`: not a cursor from get_audit_trail; call again without it",
                )
            })?),
        };
        // Stored times are UTC with microseconds; normalise the bounds to compare as text.
        let normalise = |v: &Option<String>| {
            v.as_ref().and_then(|t| {
                chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                })
            })
        };
        let me = call.principal();
        // The guard refused another principal's rows to a non-administrator already (see
        // `role`); this keeps everyone else to their own rows when no principal is asked for.
        let principal = match (&args.principal, me.is_admin()) {
            (asked, true) => asked.clone(),
            (Some(asked), false) if *asked != me.id => {
                return Err(ToolError::invalid(format!(
                    "argument `principal`: you may read only your own calls ({}); reading \
                     other principals' calls needs the admin role",
                    me.id
                )));
            }
            (_, false) => Some(me.id.clone()),
        };
        let filter = AuditFilter {
            since: normalise(&args.since),
            until: normalise(&args.until),
            tool: args.tool.clone(),
            outcome: args.outcome.clone(),
            session: args.session.clone(),
            principal,
            before_seq,
            limit: args.limit as usize,
        };
        let (rows, total) = log.query(filter).await?;
        let next_cursor = (rows.len() == args.limit as usize)
            .then(|| rows.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(Output {
            principal: me.id.clone(),
            admin: me.is_admin(),
            role: me.role,
            rows,
            total,
            next_cursor,
        })
    }
}
