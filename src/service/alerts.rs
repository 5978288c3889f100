//! Alerts after scheduled audits: compares a snapshot with the one before it in the same scope
//! (the pure comparison is `history::alerts`) and, when something regressed, posts one message
//! to each configured channel — a generic JSON webhook signed with HMAC-SHA256 and a Slack
//! incoming webhook — with a per-request timeout and bounded retries with exponential backoff.
//!
//! Signing: `X-Tagwarden-Timestamp` carries the Unix time in seconds and
//! `X-Tagwarden-Signature` is `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`; a
//! receiver recomputes it over the raw body and rejects old timestamps, so a captured request
//! cannot be replayed later. Webhook URLs and the secret are never logged (Slack URLs are
//! secrets themselves): logs name the channel and the host only.
//!
//! A message still undelivered after the last attempt is logged as an error, reported in the
//! outcome (`delivered: false` with the last error) and kept as a dead letter in the history
//! store (channel, error and body; not the URL), listed by `tagwarden alerts dead-letters`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::Value;

use crate::app::ToolError;
use crate::history::SnapshotMeta;
use crate::history::alerts::{
    AlertThresholds, Regression, regressions, slack_message, webhook_body,
};
use crate::store::HistoryStore;
use crate::store::history::dead_letters::NewDeadLetter;

/// Header with the Unix time (seconds) the webhook request was signed at.
pub(crate) const TIMESTAMP_HEADER: &str = "X-Tagwarden-Timestamp";
/// Header with `sha256=<hex HMAC>` of `<timestamp>.<body>`.
pub(crate) const SIGNATURE_HEADER: &str = "X-Tagwarden-Signature";

/// A generic JSON webhook and the secret its requests are signed with.
#[derive(Clone)]
pub(crate) struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &host(&self.url))
            .finish_non_exhaustive()
    }
}

/// How hard to try each delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Timeout of each request.
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
    pub delivery: Delivery,
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("thresholds", &self.thresholds)
            .field("webhook", &self.webhook)
            .field("slack", &self.slack.as_deref().map(host))
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl AlertConfig {
    /// Whether any channel is configured.
    pub(crate) fn has_channel(&self) -> bool {
        self.webhook.is_some() || self.slack.is_some()
    }
}

/// One message to one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Sent {
    /// `webhook` or `slack`.
    pub channel: &'static str,
    pub delivered: bool,
    pub attempts: u32,
    /// The last failure, when not delivered.
    pub error: Option<String>,
    /// The dead letter kept for it, when not delivered.
    pub dead_letter: Option<i64>,
}

/// What one alert check found and sent.
#[derive(Debug, Clone, Serialize)]
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

/// Compares snapshot `current` (default: the latest) with the one before it in its scope and
/// notifies every channel once when something regressed.
pub(crate) async fn check_and_notify(
    history: &Arc<dyn HistoryStore>,
    current: Option<i64>,
    config: &AlertConfig,
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
    let found = regressions(&older, &newer, &config.thresholds);
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
        sent = notify(history, &older, &newer, &found, config).await;
    }
    Ok(AlertOutcome {
        previous: Some(older.id),
        current: newer.id,
        regressions: found,
        sent,
    })
}

async fn notify(
    history: &Arc<dyn HistoryStore>,
    older: &SnapshotMeta,
    newer: &SnapshotMeta,
    found: &[Regression],
    config: &AlertConfig,
) -> Vec<Sent> {
    let mut messages = Vec::new();
    if let Some(hook) = &config.webhook {
        let body = webhook_body(older, newer, found);
        messages.push((
            "webhook",
            hook.url.as_str(),
            body,
            Some(hook.secret.as_bytes()),
        ));
    }
    if let Some(url) = &config.slack {
        messages.push((
            "slack",
            url.as_str(),
            slack_message(older, newer, found),
            None,
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(config.delivery.timeout)
        .build();
    let mut sent = Vec::new();
    for (channel, url, body, secret) in messages {
        let bytes = json_bytes(&body);
        let mut outcome = match &client {
            Ok(client) => deliver(client, channel, url, &bytes, secret, config.delivery).await,
            Err(e) => failed(channel, 0, format!("cannot build the HTTP client: {}", e)),
        };
        if !outcome.delivered {
            outcome.dead_letter = keep(history, newer.id, &outcome, body).await;
        }
        sent.push(outcome);
    }
    sent
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

fn json_bytes(v: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail (its keys are strings).
    serde_json::to_vec(v).unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub(crate) fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; an empty signature would be refused.
    let Ok(mut mac) = Hmac::<sha2_hmac::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts `body`, retrying network errors, timeouts, 408, 429 and 5xx with exponential backoff.
async fn deliver(
    client: &reqwest::Client,
    channel: &'static str,
    url: &str,
    body: &[u8],
    secret: Option<&[u8]>,
    delivery: Delivery,
) -> Sent {
    let attempts = delivery.attempts.max(1);
    let mut wait = delivery.backoff;
    let mut last_error = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(secret) = secret {
            let ts = chrono::Utc::now().timestamp();
            request = request
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, sign(secret, ts, body));
        }
        let (retry, error) = match request.send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(channel, host = host(url), attempt, "alert delivered");
                return Sent {
                    channel,
                    delivered: true,
                    attempts: attempt,
                    error: None,
                    dead_letter: None,
                };
            }
            Ok(r) => {
                let s = r.status();
                let retry = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
                (retry, format!("the receiver answered HTTP {s}"))
            }
            Err(e) => (true, e.without_url().to_string()),
        };
        tracing::warn!(channel, host = host(url), attempt, %error, "alert delivery failed");
        last_error = error;
        if !retry {
            return failed(channel, attempt, last_error);
        }
    }
    failed(channel, attempts, last_error)
}

fn failed(channel: &'static str, attempts: u32, error: String) -> Sent {
    tracing::error!(channel, attempts, %error, "alert not delivered; giving up");
    Sent {
        channel,
        delivered: false,
        attempts,
        error: Some(error),
        dead_letter: None,
    }
}

/// The host of a URL, for logs (never the path or query, which may carry a token).
fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 (key "Jefe", data "what do ya want for nothing?") checks the
        // HMAC itself; the signature covers "<timestamp>.<body>" (value from Python's hmac).
        let mut mac = Hmac::<sha2_hmac::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign(b"Jefe", 1_700_000_000, b"what do ya want for nothing?"),
            "sha256=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
        // The timestamp is part of the signed content.
        assert_ne!(sign(b"k", 1, b"{}"), sign(b"k", 2, b"{}"));
        assert_ne!(sign(b"k", 1, b"{}"), sign(b"j", 1, b"{}"));
    }

    #[test]
    fn logs_show_the_host_only() {
        assert_eq!(
            host("https://hooks.slack.com/services/T0/B0/secret"),
            "hooks.slack.com"
        );
        assert_eq!(host("not a url"), "?");
        let c = AlertConfig {
            thresholds: AlertThresholds::default(),
            webhook: Some(Webhook {
                url: "http://127.0.0.1:9/hook?token=t0ken".into(),
                secret: "s3cret".into(),
            }),
            slack: Some("https://hooks.slack.com/services/T0/B0/xyz".into()),
            delivery: Delivery::default(),
        };
        let shown = format!("{c:?}");
        for secret in ["t0ken", "s3cret", "xyz", "/services"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
