//! The scheduled compliance audits of a `serve` process as tools see them: a trait the app
//! holds (`App::with_audits`) and `service::audits` implements, so the tool layer can ask for
//! the schedule's status or run an audit now without the app layer depending on services; and
//! the answers' types (built from the pure alert types of `history::alerts`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Call, ToolError};
use crate::history::alerts::weekly::WeeklySummary;
use crate::history::alerts::{AlertOutcome, Sent};

/// Scheduled audits with their alerting, as one `serve` process runs them.
#[async_trait]
pub(crate) trait ScheduledAudits: Send + Sync {
    /// The interval, last and next run, channels (kinds and hosts only), the last
    /// notifications' outcomes and the dead-letter count.
    async fn status(&self, call: &Call<'_>) -> Result<AuditStatus, ToolError>;
    /// Runs one audit now — snapshot, comparison, notifications — for the caller of `call`;
    /// refused when nothing is configured, when an audit is running, or within a minute of the
    /// previous manual run.
    async fn run_now(&self, call: &Call<'_>) -> Result<AuditRun, ToolError>;
}

/// A configured channel as a status answer shows it: its kind and host, never its URL,
/// addresses or secret.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ChannelInfo {
    /// `webhook`, `slack` or `email`.
    pub channel: &'static str,
    /// The receiving host (the SMTP server for e-mail).
    pub host: String,
    /// E-mail recipients (a count, not the addresses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<usize>,
}

/// What one weekly summary said and where it went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SummaryOutcome {
    pub summary: WeeklySummary,
    pub sent: Vec<Sent>,
}

/// One audit: the snapshot it stored, the comparison with the previous one and what was sent.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AuditRun {
    /// `schedule` or `tool` (run_now).
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The stored snapshot; none when the audit failed (see `error`).
    pub snapshot_id: Option<i64>,
    /// Effective compliance score of the snapshot, percent.
    pub score_pct: Option<f64>,
    /// The comparison with the previous snapshot and the alerts sent (none without channels).
    pub alert: Option<AlertOutcome>,
    /// The weekly summary, when one was due and sent.
    pub weekly_summary: Option<SummaryOutcome>,
    /// Why the audit or its alerting failed.
    pub error: Option<String>,
}

/// The schedule of this server.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AuditStatus {
    /// Whether this server audits on a schedule (`serve --audit-every`).
    pub scheduled: bool,
    /// The interval, e.g. `6h`, or `not scheduled`.
    pub interval: String,
    /// The interval in seconds.
    pub interval_seconds: Option<u64>,
    /// When the last audit of this process (scheduled or run_now) started.
    pub last_run: Option<DateTime<Utc>>,
    /// When the next scheduled audit is due (jitter included).
    pub next_run: Option<DateTime<Utc>>,
    /// Where alerts go: kinds and hosts, never URLs, addresses or secrets.
    pub channels: Vec<ChannelInfo>,
    /// Whether the weekly summary is on, and when the last one went out (from history.db).
    pub weekly_summary: bool,
    pub last_weekly_summary: Option<DateTime<Utc>>,
    /// The last audit of this process and what it sent.
    pub last_audit: Option<AuditRun>,
    /// Alerts kept undelivered (`tagwarden alerts resend` sends them again).
    pub dead_letters: u64,
    /// Whether `run_now` is accepted now (configured, nothing running, no manual run in the
    /// last minute), and why not.
    pub run_now_available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_now_refusal: Option<String>,
}
