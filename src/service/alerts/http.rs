//! HTTP delivery of alerts: the signed JSON webhook and the Slack incoming webhook, with a
//! per-request timeout and retries of network errors, timeouts, 408, 429 and 5xx.
//!
//! Signing: `X-Tagwarden-Timestamp` carries the Unix time in seconds and
//! `X-Tagwarden-Signature` is `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`; a
//! receiver recomputes it over the raw body and rejects old timestamps, so a captured request
//! cannot be replayed later. URLs are never logged (Slack URLs are secrets themselves): logs
//! name the channel and the host only.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

use super::{Delivery, Sent, failed};

/// Header with the Unix time (seconds) the webhook request was signed at.
pub(crate) const TIMESTAMP_HEADER: &str = "X-Tagwarden-Timestamp";
/// Header with `sha256=<hex HMAC>` of `<timestamp>.<body>`.
pub(crate) const SIGNATURE_HEADER: &str = "X-Tagwarden-Signature";

/// Posts `payload` to `url` (signed with `secret` when given), with retries.
pub(super) async fn post(
    channel: &'static str,
    url: &str,
    payload: &Value,
    secret: Option<&[u8]>,
    delivery: Delivery,
) -> Sent {
    let client = match reqwest::Client::builder().timeout(delivery.timeout).build() {
        Ok(c) => c,
        Err(e) => return failed(channel, 0, format!("cannot build the HTTP client: {e}")),
    };
    deliver(
        &client,
        channel,
        url,
        &json_bytes(payload),
        secret,
        delivery,
    )
    .await
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

/// The host of a URL, for logs (never the path or query, which may carry a token).
pub(super) fn host(url: &str) -> String {
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
    fn host_is_all_a_log_shows() {
        assert_eq!(
            host("https://hooks.slack.com/services/T0/B0/secret"),
            "hooks.slack.com"
        );
        assert_eq!(host("not a url"), "?");
    }
}
