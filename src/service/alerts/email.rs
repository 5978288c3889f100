//! E-mail delivery of alerts over SMTP (lettre on tokio, TLS by rustls): one plain-text message
//! to every recipient, with the same attempts, backoff and timeout as the webhooks.
//!
//! The server is a lettre connection URL — `smtp://host:port` (no TLS), `smtp://host?tls=required`
//! (STARTTLS required), `smtps://host` (TLS from the first byte) — whose user name, if any, logs
//! in with the password read from an environment variable: a password in the URL is refused, and
//! so is a login over a connection without TLS to anything but this machine. Logs name the host
//! only. Temporary failures (connection, timeout, 4xx replies) are retried; permanent ones (5xx
//! replies, TLS, a message the client cannot build) are not.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Delivery, Sent, failed};
use crate::history::alerts::EmailText;

/// The channel name in outcomes and dead letters.
pub(crate) const CHANNEL: &str = "email";
/// Recipients of one alert.
pub(crate) const MAX_RECIPIENTS: usize = 50;

/// Where e-mail alerts go and how they are sent.
#[derive(Clone)]
pub(crate) struct Email {
    to: Vec<Mailbox>,
    from: Mailbox,
    /// The lettre connection URL, without a password.
    url: String,
    /// The SMTP password (from the environment), used with the URL's user name.
    password: Option<String>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("recipients", &self.to.len())
            .field("host", &host(&self.url))
            .finish_non_exhaustive()
    }
}

/// Why an e-mail configuration is refused; the messages name the flag to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum EmailConfigError {
    #[error(
        "--notify-email `{0}` is not an e-mail address (write `name@example.com` or `Name <name@example.com>`)"
    )]
    BadRecipient(String),
    #[error("--notify-email: at most {MAX_RECIPIENTS} recipients")]
    TooManyRecipients,
    #[error("--smtp-from `{0}` is not an e-mail address (write `tagwarden@example.com`)")]
    BadSender(String),
    #[error("e-mail alerts need --smtp-from ADDRESS (the sender)")]
    NoSender,
    #[error(
        "e-mail alerts need --smtp-url (e.g. smtp://127.0.0.1:25, smtps://smtp.example.com, smtp://smtp.example.com?tls=required)"
    )]
    NoServer,
    #[error(
        "--smtp-url must be smtp://HOST[:PORT] or smtps://HOST[:PORT] (optionally ?tls=required|opportunistic)"
    )]
    BadUrl,
    #[error(
        "--smtp-url must not carry a password: put it in the environment variable named by --smtp-password-env"
    )]
    PasswordInUrl,
    #[error(
        "--smtp-url names user `{user}` but the environment variable {var} holding the password is not set"
    )]
    NoPassword { user: String, var: String },
    #[error(
        "a login over plain smtp:// to another machine would send the password in clear: use smtps:// or ?tls=required"
    )]
    CleartextLogin,
}

impl Email {
    /// Checks and keeps an e-mail configuration: recipients, sender, connection URL (no
    /// password in it) and the password (from the environment, for the URL's user).
    pub(crate) fn new(
        to: &[String],
        from: Option<&str>,
        url: Option<&str>,
        password: Option<String>,
        password_var: &str,
    ) -> Result<Email, EmailConfigError> {
        if to.len() > MAX_RECIPIENTS {
            return Err(EmailConfigError::TooManyRecipients);
        }
        let to = to
            .iter()
            .map(|a| {
                a.trim()
                    .parse::<Mailbox>()
                    .map_err(|_| EmailConfigError::BadRecipient(a.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let from = from.ok_or(EmailConfigError::NoSender)?;
        let from = from
            .trim()
            .parse::<Mailbox>()
            .map_err(|_| EmailConfigError::BadSender(from.to_string()))?;
        let url = url.ok_or(EmailConfigError::NoServer)?;
        let parsed = reqwest::Url::parse(url).map_err(|_| EmailConfigError::BadUrl)?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
            return Err(EmailConfigError::BadUrl);
        }
        if parsed.password().is_some() {
            return Err(EmailConfigError::PasswordInUrl);
        }
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        if !matches!(tls.as_deref(), None | Some("required" | "opportunistic")) {
            return Err(EmailConfigError::BadUrl);
        }
        let password = password.filter(|p| !p.is_empty());
        if !parsed.username().is_empty() {
            if password.is_none() {
                return Err(EmailConfigError::NoPassword {
                    user: parsed.username().to_string(),
                    var: password_var.to_string(),
                });
            }
            let encrypted = parsed.scheme() == "smtps" || tls.as_deref() == Some("required");
            let local = parsed.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            if !encrypted && !local {
                return Err(EmailConfigError::CleartextLogin);
            }
        }
        // lettre reads the same URL; refuse here what it would refuse at the first alert.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| EmailConfigError::BadUrl)?;
        Ok(Email {
            to,
            from,
            url: url.to_string(),
            password,
        })
    }

    /// The SMTP server's host, for status answers and logs.
    pub(crate) fn host(&self) -> String {
        host(&self.url)
    }

    /// How many recipients an alert goes to.
    pub(crate) fn recipients(&self) -> usize {
        self.to.len()
    }

    fn message(&self, text: &EmailText) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(text.subject.clone());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.text.clone())
            .map_err(|e| format!("cannot build the e-mail: {e}"))
    }

    fn transport(&self, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| format!("--smtp-url is not usable: {e}"))?
            .timeout(Some(timeout));
        let parsed = reqwest::Url::parse(&self.url).ok();
        if let (Some(u), Some(password)) = (&parsed, &self.password)
            && !u.username().is_empty()
        {
            let user = percent_decode(u.username());
            builder = builder.credentials(Credentials::new(user, password.clone()));
        }
        // EHLO with this machine's name unless the URL's path names one.
        if parsed
            .as_ref()
            .is_none_or(|u| u.path().trim_matches('/').is_empty())
            && let Some(name) = gethostname::gethostname()
                .into_string()
                .ok()
                .filter(|n| !n.is_empty() && n.is_ascii())
        {
            builder = builder.hello_name(ClientId::Domain(name));
        }
        Ok(builder.build())
    }
}

/// `user%40example.com` → `user@example.com` (user names in URLs are percent-encoded).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `text` to every recipient, retrying temporary failures with exponential backoff.
pub(super) async fn send(email: &Email, text: &EmailText, delivery: Delivery) -> Sent {
    let message = match email.message(text) {
        Ok(m) => m,
        Err(e) => return failed(CHANNEL, 0, e),
    };
    let transport = match email.transport(delivery.timeout) {
        Ok(t) => t,
        Err(e) => return failed(CHANNEL, 0, e),
    };
    let attempts = delivery.attempts.max(1);
    let mut wait = delivery.backoff;
    let mut last_error = String::new();
    let host = email.host();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        // lettre's timeout bounds each read and write; this bounds the whole exchange (a server
        // that answers slowly but steadily).
        let exchange = tokio::time::timeout(
            delivery.timeout.saturating_mul(3),
            transport.send(message.clone()),
        );
        let (retry, error) = match exchange.await {
            Ok(Ok(_)) => {
                tracing::info!(channel = CHANNEL, host, attempt, "alert delivered");
                return Sent {
                    channel: CHANNEL,
                    delivered: true,
                    attempts: attempt,
                    error: None,
                    dead_letter: None,
                };
            }
            Ok(Err(e)) => (
                !(e.is_permanent() || e.is_client() || e.is_tls()),
                format!("the SMTP server: {e}"),
            ),
            Err(_) => (
                true,
                format!(
                    "the SMTP exchange took longer than {}s",
                    delivery.timeout.saturating_mul(3).as_secs()
                ),
            ),
        };
        tracing::warn!(channel = CHANNEL, host, attempt, %error, "alert delivery failed");
        last_error = error;
        if !retry {
            return failed(CHANNEL, attempt, last_error);
        }
    }
    failed(CHANNEL, attempts, last_error)
}

/// The host of the connection URL (never its user name).
fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(url: &str, password: Option<&str>) -> Result<Email, EmailConfigError> {
        Email::new(
            &["ops@example.com".into(), "Team <team@example.com>".into()],
            Some("tagwarden@example.com"),
            Some(url),
            password.map(str::to_string),
            "TAGWARDEN_SMTP_PASSWORD",
        )
    }

    #[test]
    fn configuration_is_checked() {
        assert!(email("smtp://127.0.0.1:2525", None).is_ok());
        assert!(email("smtps://smtp.example.com", None).is_ok());
        assert!(email("smtp://smtp.example.com?tls=required", None).is_ok());
        assert_eq!(
            email("http://smtp.example.com", None).unwrap_err(),
            EmailConfigError::BadUrl
        );
        assert_eq!(
            email("smtp://smtp.example.com?tls=sometimes", None).unwrap_err(),
            EmailConfigError::BadUrl
        );
        assert_eq!(
            email("smtps://u:pw@smtp.example.com", None).unwrap_err(),
            EmailConfigError::PasswordInUrl
        );
        assert!(matches!(
            email("smtps://u@smtp.example.com", None).unwrap_err(),
            EmailConfigError::NoPassword { .. }
        ));
        assert!(email("smtps://u@smtp.example.com", Some("pw")).is_ok());
        assert_eq!(
            email("smtp://u@smtp.example.com", Some("pw")).unwrap_err(),
            EmailConfigError::CleartextLogin
        );
        assert!(email("smtp://u@127.0.0.1:2525", Some("pw")).is_ok());
        let bad = Email::new(
            &["not an address".into()],
            Some("a@b.c"),
            Some("smtp://h"),
            None,
            "V",
        );
        assert!(matches!(bad, Err(EmailConfigError::BadRecipient(_))));
        let no_from = Email::new(&["a@b.c".into()], None, Some("smtp://h"), None, "V");
        assert_eq!(no_from.unwrap_err(), EmailConfigError::NoSender);
    }

    #[test]
    fn debug_shows_neither_password_nor_user() {
        let e = email("smtps://alice@smtp.example.com:465", Some("s3cret")).unwrap();
        let shown = format!("{e:?}");
        assert!(shown.contains("smtp.example.com"), "{shown}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
        assert_eq!(percent_decode("user%40example.com"), "user@example.com");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn the_message_goes_to_every_recipient_as_plain_text() {
        let e = email("smtp://127.0.0.1:2525", None).unwrap();
        let m = e
            .message(&EmailText {
                subject: "Tagwarden: compliance regressed (snapshot 1 → 2)".into(),
                text: "- Compliance score fell 15 points: 95% → 80%\n".into(),
            })
            .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("To: ops@example.com, Team <team@example.com>"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(raw.contains("From: tagwarden@example.com"), "{raw}");
    }
}
