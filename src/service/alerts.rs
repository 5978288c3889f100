//! Alerts after scheduled audits: compares a snapshot with the one before it in the same scope
//! (the pure comparison is `history::alerts`) and, when something regressed, sends one message
//! to each configured channel — a generic JSON webhook signed with HMAC-SHA256 and a Slack
//! incoming webhook (`http`), e-mail over SMTP (`email`) — with a per-request timeout and
//! bounded retries with exponential backoff. With `weekly_summary`, a summary of the week goes
//! to the same channels once every seven days (the last one's time is kept in history.db).
//!
//! A message still undelivered after the last attempt is logged as an error, reported in the
//! outcome (`delivered: false` with the last error) and kept as a dead letter in the history
//! store (channel, error and body; never a URL, an address list or a secret), listed by
//! `tagwarden alerts dead-letters` and sent again by `tagwarden alerts resend` (`resend`).

pub(crate) mod email;
mod http;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::app::ToolError;
pub(crate) use crate::app::audits::{ChannelInfo, SummaryOutcome};
use crate::history::SnapshotMeta;
use crate::history::alerts::weekly::{
    self, summary_due, summary_email, summary_slack_message, summary_webhook_body, weekly_summary,
};
pub(crate) use crate::history::alerts::{AlertOutcome, Sent};
use crate::history::alerts::{
    AlertThresholds, EmailText, Regression, regression_email, regressions, slack_message,
    webhook_body,
};
use crate::store::HistoryStore;
use crate::store::history::dead_letters::{DeadLetter, NewDeadLetter};
pub(crate) use email::Email;

/// A generic JSON webhook and the secret its requests are signed with.
#[derive(Clone)]
pub(crate) struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &http::host(&self.url))
            .finish_non_exhaustive()
    }
}

/// How hard to try each delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Timeout of each request (each SMTP read or write; three times it for a whole exchange).
    pub timeout: Duration,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 3,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
        }
    }
}

/// Where alerts go and when.
#[derive(Clone)]
pub(crate) struct AlertConfig {
    pub thresholds: AlertThresholds,
    pub webhook: Option<Webhook>,
    /// Slack incoming-webhook URL (a secret: never logged).
    pub slack: Option<String>,
    pub email: Option<Email>,
    /// Send the weekly summary after scheduled audits, once every seven days.
    pub weekly_summary: bool,
    pub delivery: Delivery,
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("thresholds", &self.thresholds)
            .field("webhook", &self.webhook)
            .field("slack", &self.slack.as_deref().map(http::host))
            .field("email", &self.email)
            .field("weekly_summary", &self.weekly_summary)
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl AlertConfig {
    /// Whether any channel is configured.
    pub(crate) fn has_channel(&self) -> bool {
        self.webhook.is_some() || self.slack.is_some() || self.email.is_some()
    }

    /// The channels, for status answers.
    pub(crate) fn channels(&self) -> Vec<ChannelInfo> {
        let mut out = Vec::new();
        if let Some(w) = &self.webhook {
            out.push(ChannelInfo {
                channel: "webhook",
                host: http::host(&w.url),
                recipients: None,
            });
        }
        if let Some(url) = &self.slack {
            out.push(ChannelInfo {
                channel: "slack",
                host: http::host(url),
                recipients: None,
            });
        }
        if let Some(e) = &self.email {
            out.push(ChannelInfo {
                channel: email::CHANNEL,
                host: e.host(),
                recipients: Some(e.recipients()),
            });
        }
        out
    }
}

/// Compares snapshot `current` (default: the latest) with the one before it in its scope and
/// notifies every channel once when something regressed.
/// `also` are regressions found elsewhere (new cost anomalies), sent with the comparison's.
pub(crate) async fn check_and_notify(
    history: &Arc<dyn HistoryStore>,
    current: Option<i64>,
    config: &AlertConfig,
    also: Vec<Regression>,
) -> Result<AlertOutcome, ToolError> {
    let newer = match current {
        Some(id) => history.get(id).await?.ok_or_else(|| {
            ToolError::invalid(format!(
                "there is no snapshot {id}; get_violation_history lists snapshot ids"
            ))
        })?,
        None => history.latest(None).await?.ok_or_else(|| {
            ToolError::Unavailable(
                "there are no snapshots yet; take them with `tagwarden check --snapshot` or \
                 `serve --snapshot-every 1d`"
                    .into(),
            )
        })?,
    };
    let Some(older) = history.before(newer.id).await? else {
        tracing::info!(
            snapshot = newer.id,
            "first snapshot of its scope; nothing to compare"
        );
        return Ok(AlertOutcome {
            previous: None,
            current: newer.id,
            regressions: Vec::new(),
            sent: Vec::new(),
        });
    };
    let mut found = regressions(&older, &newer, &config.thresholds);
    found.extend(also);
    let mut sent = Vec::new();
    if found.is_empty() {
        tracing::info!(
            previous = older.id,
            current = newer.id,
            "no regression; no alert"
        );
    } else {
        tracing::warn!(
            previous = older.id,
            current = newer.id,
            regressions = found.len(),
            "compliance regressed; alerting"
        );
        let messages = Messages {
            webhook: webhook_body(&older, &newer, &found),
            slack: slack_message(&older, &newer, &found),
            email: regression_email(&older, &newer, &found),
        };
        sent = notify(history, newer.id, messages, config).await;
    }
    Ok(AlertOutcome {
        previous: Some(older.id),
        current: newer.id,
        regressions: found,
        sent,
    })
}

/// One announcement in each channel's form.
struct Messages {
    webhook: Value,
    slack: Value,
    email: EmailText,
}

/// Sends the weekly summary of snapshot `current` when one is due at `now` (never sent, or the
/// last one seven days old or more), and records it. None when not due or not configured.
pub(crate) async fn weekly_summary_if_due(
    history: &Arc<dyn HistoryStore>,
    current: i64,
    config: &AlertConfig,
    now: DateTime<Utc>,
) -> Result<Option<SummaryOutcome>, ToolError> {
    if !config.weekly_summary || !config.has_channel() {
        return Ok(None);
    }
    if !summary_due(history.last_summary_at().await?, now) {
        return Ok(None);
    }
    let Some(newer) = history.get(current).await? else {
        return Ok(None);
    };
    // Candidates: the scope's snapshots of the last two weeks (headlines), then the chosen
    // one in full (its breakdowns carry the critical and per-key counts).
    let since = newer.taken_at - chrono::Duration::days(2 * weekly::SUMMARY_EVERY_DAYS);
    let candidates = history
        .list_headlines(since, Some(newer.filters_hash.clone()))
        .await?;
    let older: Option<SnapshotMeta> = match weekly::baseline(&candidates, &newer) {
        Some(id) => history.get(id).await?,
        None => None,
    };
    let summary = weekly_summary(&newer, older.as_ref());
    tracing::info!(snapshot = current, "sending the weekly summary");
    let messages = Messages {
        webhook: summary_webhook_body(&summary),
        slack: summary_slack_message(&summary),
        email: summary_email(&summary),
    };
    let sent = notify(history, current, messages, config).await;
    let delivered = sent.iter().filter(|s| s.delivered).count();
    // Recorded even when a channel failed: its dead letter is resent on demand, and the next
    // summary stays a week away rather than going out at every audit.
    history
        .record_summary(now, current, sent.len(), delivered)
        .await?;
    Ok(Some(SummaryOutcome { summary, sent }))
}

/// Sends one announcement to every configured channel; undelivered ones become dead letters.
async fn notify(
    history: &Arc<dyn HistoryStore>,
    snapshot_id: i64,
    messages: Messages,
    config: &AlertConfig,
) -> Vec<Sent> {
    let mut outgoing: Vec<(&'static str, Value)> = Vec::new();
    if config.webhook.is_some() {
        outgoing.push(("webhook", messages.webhook));
    }
    if config.slack.is_some() {
        outgoing.push(("slack", messages.slack));
    }
    if config.email.is_some() {
        outgoing.push((
            email::CHANNEL,
            serde_json::to_value(&messages.email).unwrap_or_default(),
        ));
    }
    let mut sent = Vec::new();
    for (channel, payload) in outgoing {
        let mut outcome = send(channel, &payload, config).await;
        if !outcome.delivered {
            outcome.dead_letter = keep(history, snapshot_id, &outcome, payload).await;
        }
        sent.push(outcome);
    }
    sent
}

/// Sends `payload` on `channel` as configured now (a channel no longer configured fails
/// without an attempt).
async fn send(channel: &str, payload: &Value, config: &AlertConfig) -> Sent {
    let delivery = config.delivery;
    match channel {
        "webhook" => match &config.webhook {
            Some(hook) => {
                http::post(
                    "webhook",
                    &hook.url,
                    payload,
                    Some(hook.secret.as_bytes()),
                    delivery,
                )
                .await
            }
            None => not_configured("webhook", "--notify-webhook"),
        },
        "slack" => match &config.slack {
            Some(url) => http::post("slack", url, payload, None, delivery).await,
            None => not_configured("slack", "--notify-slack"),
        },
        email::CHANNEL => match (
            &config.email,
            serde_json::from_value::<EmailText>(payload.clone()),
        ) {
            (Some(e), Ok(text)) => email::send(e, &text, delivery).await,
            (None, _) => not_configured(email::CHANNEL, "--notify-email"),
            (Some(_), Err(e)) => failed(
                email::CHANNEL,
                0,
                format!("the kept e-mail is unreadable: {e}"),
            ),
        },
        other => Sent {
            channel: "unknown",
            delivered: false,
            attempts: 0,
            error: Some(format!("unknown channel `{other}`")),
            dead_letter: None,
        },
    }
}

fn not_configured(channel: &'static str, flag: &str) -> Sent {
    Sent {
        channel,
        delivered: false,
        attempts: 0,
        error: Some(format!(
            "the {channel} channel is not configured: pass {flag}"
        )),
        dead_letter: None,
    }
}

/// Keeps an undelivered alert in the store; its id (none, logged, when that fails too).
async fn keep(
    history: &Arc<dyn HistoryStore>,
    snapshot_id: i64,
    outcome: &Sent,
    payload: Value,
) -> Option<i64> {
    let letter = NewDeadLetter {
        failed_at: chrono::Utc::now(),
        channel: outcome.channel.to_string(),
        snapshot_id,
        attempts: outcome.attempts,
        error: outcome.error.clone().unwrap_or_default(),
        payload,
    };
    match history.record_dead_letter(letter).await {
        Ok(id) => {
            tracing::warn!(
                dead_letter = id,
                channel = outcome.channel,
                "undelivered alert kept"
            );
            Some(id)
        }
        Err(e) => {
            tracing::error!(error = %e, channel = outcome.channel, "cannot keep the undelivered alert");
            None
        }
    }
}

pub(super) fn failed(channel: &'static str, attempts: u32, error: String) -> Sent {
    tracing::error!(channel, attempts, %error, "alert not delivered; giving up");
    Sent {
        channel,
        delivered: false,
        attempts,
        error: Some(error),
        dead_letter: None,
    }
}

/// What resending one dead letter did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Resent {
    /// The dead letter.
    pub id: i64,
    pub channel: String,
    pub delivered: bool,
    /// Attempts made now.
    pub attempts: u32,
    /// Attempts in all, when it stays kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_attempts: Option<u32>,
    pub error: Option<String>,
}

/// Sends dead letters again on the channels as configured now: the one `id`, or every kept
/// one (oldest first, at most `MAX_DEAD_LETTERS`). A delivered letter is removed; one failing
/// again stays, its attempts raised by those made now.
pub(crate) async fn resend(
    history: &Arc<dyn HistoryStore>,
    id: Option<i64>,
    config: &AlertConfig,
) -> Result<Vec<Resent>, ToolError> {
    let mut letters: Vec<DeadLetter> = match id {
        Some(id) => vec![history.dead_letter(id).await?.ok_or_else(|| {
            ToolError::invalid(format!(
                "there is no dead letter {id}; `tagwarden alerts dead-letters` lists them"
            ))
        })?],
        None => {
            let max = crate::store::history::dead_letters::MAX_DEAD_LETTERS;
            history
                .dead_letters(usize::try_from(max).unwrap_or(usize::MAX))
                .await?
        }
    };
    letters.sort_by_key(|l| l.id);
    let mut out = Vec::new();
    for letter in letters {
        let sent = send(&letter.channel, &letter.payload, config).await;
        let total_attempts = if sent.delivered {
            history.remove_dead_letter(letter.id).await?;
            tracing::info!(dead_letter = letter.id, "dead letter delivered and removed");
            None
        } else {
            history
                .dead_letter_failed_again(
                    letter.id,
                    sent.attempts,
                    sent.error.clone().unwrap_or_default(),
                    Utc::now(),
                )
                .await?;
            Some(letter.attempts.saturating_add(sent.attempts))
        };
        out.push(Resent {
            id: letter.id,
            channel: letter.channel,
            delivered: sent.delivered,
            attempts: sent.attempts,
            total_attempts,
            error: sent.error,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_show_the_host_only() {
        let c = AlertConfig {
            thresholds: AlertThresholds::default(),
            webhook: Some(Webhook {
                url: "http://127.0.0.1:9/hook?token=t0ken".into(),
                secret: "s3cret".into(),
            }),
            slack: Some("https://hooks.slack.com/services/T0/B0/xyz".into()),
            email: Some(
                Email::new(
                    &["ops@example.com".into()],
                    Some("tw@example.com"),
                    Some("smtps://bob@mail.example.com"),
                    Some("pw-s3cret".into()),
                    "V",
                )
                .unwrap(),
            ),
            weekly_summary: true,
            delivery: Delivery::default(),
        };
        let shown = format!("{c:?}");
        for secret in ["t0ken", "s3cret", "xyz", "/services", "bob", "ops@"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let channels = serde_json::to_string(&c.channels()).unwrap();
        assert_eq!(
            channels,
            r#"[{"channel":"webhook","host":"127.0.0.1"},{"channel":"slack","host":"hooks.slack.com"},{"channel":"email","host":"mail.example.com","recipients":1}]"#
        );
    }
}
