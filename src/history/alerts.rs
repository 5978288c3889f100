//! Alerts after scheduled audits: what regressed between two snapshots of the same scope (the
//! score fell by more than a threshold, critical violations grew, the share of spend on
//! non-compliant resources grew) and the messages that announce it — a generic JSON webhook
//! body, a Slack Block Kit message and a plain-text e-mail — plus what each delivery did
//! (`Sent`, `AlertOutcome`). The weekly summary is composed in `weekly`. Pure: the sending
//! lives in `service::alerts`.

pub(crate) mod weekly;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SnapshotMeta;

/// How much worse the newer snapshot must be before an alert is sent. Each comparison is
/// strict ("more than"), so a threshold of 0 alerts on any worsening.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AlertThresholds {
    /// Score fall, in percentage points.
    pub score_drop_pct_points: f64,
    /// Increase in the number of critical violations.
    pub critical_increase: usize,
    /// Growth of the unattributed share of spend (spend on non-compliant resources), in
    /// percentage points.
    pub unattributed_growth_pct_points: f64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            score_drop_pct_points: 1.0,
            critical_increase: 0,
            unattributed_growth_pct_points: 1.0,
        }
    }
}

/// One way the newer snapshot is worse than the older one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Regression {
    /// The compliance score fell.
    ScoreDrop {
        from_pct: f64,
        to_pct: f64,
        drop_pct_points: f64,
    },
    /// More critical violations than before.
    NewCriticalViolations {
        from: usize,
        to: usize,
        added: usize,
    },
    /// A larger share of spend sits on non-compliant resources (spend that cannot be
    /// attributed by its tags).
    UnattributedSpendGrowth {
        from_pct: f64,
        to_pct: f64,
        growth_pct_points: f64,
    },
    /// Cost anomalies found since the last alert that nobody has decided on yet.
    CostAnomalies {
        /// New pending anomalies in all.
        count: usize,
        /// Their rise above baseline, summed, in `currency`.
        impact: f64,
        currency: String,
        /// The largest, at most five.
        anomalies: Vec<AnnouncedAnomaly>,
    },
}

/// Anomalies listed in one alert (the count and impact cover them all).
pub(crate) const MAX_ANNOUNCED_LISTED: usize = 5;

/// One anomaly as an alert names it (`get_cost_anomalies` has the drivers).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct AnnouncedAnomaly {
    pub anomaly_id: String,
    pub dimension: String,
    pub value: String,
    /// YYYY-MM-DD.
    pub day: String,
    pub impact: f64,
}

impl Regression {
    /// One line for people (Slack, logs).
    pub(crate) fn describe(&self) -> String {
        match self {
            Regression::ScoreDrop {
                from_pct,
                to_pct,
                drop_pct_points,
            } => format!("Compliance score fell {drop_pct_points} points: {from_pct}% → {to_pct}%"),
            Regression::NewCriticalViolations { from, to, added } => {
                format!("{added} new critical violations: {from} → {to}")
            }
            Regression::UnattributedSpendGrowth {
                from_pct,
                to_pct,
                growth_pct_points,
            } => format!(
                "Unattributed share of spend grew {growth_pct_points} points: {from_pct}% → {to_pct}%"
            ),
            Regression::CostAnomalies {
                count,
                impact,
                currency,
                anomalies,
            } => {
                let listed: Vec<String> = anomalies
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {} on {} (+{:.2})",
                            a.dimension, a.value, a.day, a.impact
                        )
                    })
                    .collect();
                format!(
                    "{count} new cost {} ({currency} {impact:.2} above baseline): {}{}",
                    if *count == 1 { "anomaly" } else { "anomalies" },
                    listed.join("; "),
                    if *count > anomalies.len() {
                        format!(
                            "; and {} more (get_cost_anomalies)",
                            count - anomalies.len()
                        )
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// What regressed from `older` to `newer`; empty when nothing did (or a figure is unknown on
/// either side: no score when nothing is in scope, no spend share without a cost source).
pub(crate) fn regressions(
    older: &SnapshotMeta,
    newer: &SnapshotMeta,
    t: &AlertThresholds,
) -> Vec<Regression> {
    let mut out = Vec::new();
    if let (Some(from_pct), Some(to_pct)) = (older.score_pct, newer.score_pct) {
        let drop = round2(from_pct - to_pct);
        if drop > t.score_drop_pct_points {
            out.push(Regression::ScoreDrop {
                from_pct,
                to_pct,
                drop_pct_points: drop,
            });
        }
    }
    if let (Some(from), Some(to)) = (critical(&older.counts), critical(&newer.counts)) {
        let added = to.saturating_sub(from);
        if added > t.critical_increase {
            out.push(Regression::NewCriticalViolations { from, to, added });
        }
    }
    if let (Some(from_pct), Some(to_pct)) = (unattributed_pct(older), unattributed_pct(newer)) {
        let growth = round2(to_pct - from_pct);
        if growth > t.unattributed_growth_pct_points {
            out.push(Regression::UnattributedSpendGrowth {
                from_pct,
                to_pct,
                growth_pct_points: growth,
            });
        }
    }
    out
}

/// Critical violations recorded in a snapshot's breakdowns (`counts.by_severity.critical`).
pub(crate) fn critical(counts: &Value) -> Option<usize> {
    counts
        .get("by_severity")?
        .get("critical")?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// Share of spend on non-compliant in-scope resources, in percent.
pub(crate) fn unattributed_pct(m: &SnapshotMeta) -> Option<f64> {
    m.spend_score_pct.map(|s| round2(100.0 - s))
}

/// Hundredths, so float noise (`97.3 - 96.2`) neither crosses nor misses a threshold.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The event type of the webhook body.
pub(crate) const EVENT: &str = "tagwarden.compliance_regression";

/// The generic webhook's JSON body.
pub(crate) fn webhook_body(
    older: &SnapshotMeta,
    newer: &SnapshotMeta,
    found: &[Regression],
) -> Value {
    let side = |m: &SnapshotMeta| {
        json!({
            "id": m.id,
            "taken_at": m.taken_at,
            "trigger": m.trigger,
            "source": m.source,
            "score_pct": m.score_pct,
            "spend_score_pct": m.spend_score_pct,
            "violations": m.violations,
            "critical_violations": critical(&m.counts),
        })
    };
    json!({
        "event": EVENT,
        "previous": side(older),
        "current": side(newer),
        "regressions": found,
    })
}

/// The Slack incoming-webhook message (Block Kit, with a plain-text fallback).
pub(crate) fn slack_message(
    older: &SnapshotMeta,
    newer: &SnapshotMeta,
    found: &[Regression],
) -> Value {
    let lines: Vec<String> = found
        .iter()
        .map(|r| format!("• {}", r.describe()))
        .collect();
    let title = format!(
        "Tagwarden: compliance regressed (snapshot {} → {})",
        older.id, newer.id
    );
    json!({
        "text": format!("{title}\n{}", lines.join("\n")),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
            {"type": "context", "elements": [{
                "type": "mrkdwn",
                "text": format!(
                    "Previous: {} · Current: {} · {}",
                    older.taken_at.to_rfc3339(),
                    newer.taken_at.to_rfc3339(),
                    newer.source
                ),
            }]},
        ],
    })
}

/// An e-mail's subject and plain-text body: what the SMTP channel sends and what its dead
/// letters keep (the recipients and the server come from the configuration when resending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmailText {
    pub subject: String,
    pub text: String,
}

/// The regression alert as an e-mail.
pub(crate) fn regression_email(
    older: &SnapshotMeta,
    newer: &SnapshotMeta,
    found: &[Regression],
) -> EmailText {
    let mut text = format!(
        "Compliance regressed between snapshot {} ({}) and snapshot {} ({}).\n\n",
        older.id,
        older.taken_at.to_rfc3339(),
        newer.id,
        newer.taken_at.to_rfc3339()
    );
    for r in found {
        text.push_str(&format!("- {}\n", r.describe()));
    }
    text.push_str(&format!(
        "\nSource: {}\n-- \nSent by Tagwarden after a scheduled compliance audit.\n",
        newer.source
    ));
    EmailText {
        subject: format!(
            "Tagwarden: compliance regressed (snapshot {} → {})",
            older.id, newer.id
        ),
        text,
    }
}

/// One message to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct Sent {
    /// `webhook`, `slack` or `email`.
    pub channel: &'static str,
    pub delivered: bool,
    pub attempts: u32,
    /// The last failure, when not delivered.
    pub error: Option<String>,
    /// The dead letter kept for it, when not delivered.
    pub dead_letter: Option<i64>,
}

/// What one alert check found and sent.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AlertOutcome {
    /// The snapshot compared with, none when the current one is the first of its scope.
    pub previous: Option<i64>,
    pub current: i64,
    pub regressions: Vec<Regression>,
    pub sent: Vec<Sent>,
}

impl AlertOutcome {
    /// Every message went out.
    pub(crate) fn all_delivered(&self) -> bool {
        self.sent.iter().all(|s| s.delivered)
    }
}

#[cfg(test)]
mod tests;
