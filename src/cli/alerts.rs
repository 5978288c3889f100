//! Alert flags shared by `serve` (alerts after each scheduled snapshot) and
//! `tagwarden alerts check` (compare the latest snapshot with the one before it and notify
//! now — the same service the scheduler calls, for cron jobs and tests).
//!
//! `tagwarden alerts dead-letters` lists the alerts kept undelivered (newest first, JSON);
//! `tagwarden alerts resend` sends them again on the channels configured now.
//!
//! Exit codes of `alerts check`: 0 compared (regressed or not; the JSON outcome on stdout
//! says which) and every alert delivered; 1 an error, or an alert still undelivered after
//! its retries.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::parse_duration;
use crate::history::alerts::AlertThresholds;
use crate::service::alerts::{self, AlertConfig, Delivery, Email, Webhook};

/// Where alerts go and what counts as a regression.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// POST a JSON alert here when compliance regresses, signed with HMAC-SHA256
    /// (`X-Tagwarden-Signature: sha256=<hex>` over `<X-Tagwarden-Timestamp>.<body>`).
    #[arg(
        long,
        env = "TAGWARDEN_NOTIFY_WEBHOOK",
        value_name = "URL",
        hide_env_values = true
    )]
    pub notify_webhook: Option<String>,
    /// Name of the environment variable holding the webhook's signing secret (the secret
    /// itself never goes on the command line).
    #[arg(long, value_name = "VAR", default_value = "TAGWARDEN_NOTIFY_SECRET")]
    pub notify_secret_env: String,
    /// Post a Block Kit message to this Slack incoming-webhook URL when compliance regresses.
    #[arg(
        long,
        env = "TAGWARDEN_NOTIFY_SLACK",
        value_name = "URL",
        hide_env_values = true
    )]
    pub notify_slack: Option<String>,
    /// E-mail the alerts to these addresses (repeat the flag or separate with commas); needs
    /// --smtp-url and --smtp-from.
    #[arg(
        long,
        env = "TAGWARDEN_NOTIFY_EMAIL",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub notify_email: Vec<String>,
    /// The SMTP server, as a URL: smtp://HOST[:PORT] (no TLS), smtp://HOST?tls=required
    /// (STARTTLS), smtps://HOST[:PORT] (TLS); smtps://USER@HOST logs in as USER with the
    /// password from --smtp-password-env (a password in the URL is refused).
    #[arg(
        long,
        env = "TAGWARDEN_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// The sender of e-mail alerts, e.g. `Tagwarden <tagwarden@example.com>`.
    #[arg(long, env = "TAGWARDEN_SMTP_FROM", value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// Name of the environment variable holding the SMTP password (used when --smtp-url names
    /// a user).
    #[arg(long, value_name = "VAR", default_value = "TAGWARDEN_SMTP_PASSWORD")]
    pub smtp_password_env: String,
    /// Also send a weekly summary (score now vs 7 days ago, critical violations, unattributed
    /// spend, top regressing keys) to every channel, once every 7 days after a scheduled audit.
    #[arg(long, env = "TAGWARDEN_ALERT_WEEKLY_SUMMARY")]
    pub alert_weekly_summary: bool,
    /// Alert when the compliance score falls by more than this many percentage points.
    #[arg(
        long,
        env = "TAGWARDEN_ALERT_SCORE_DROP",
        value_name = "POINTS",
        default_value_t = 1.0
    )]
    pub alert_score_drop: f64,
    /// Alert when critical violations grow by more than this many (0: any new one).
    #[arg(
        long,
        env = "TAGWARDEN_ALERT_CRITICAL_INCREASE",
        value_name = "N",
        default_value_t = 0
    )]
    pub alert_critical_increase: usize,
    /// Alert when the share of spend on non-compliant resources (unattributed spend) grows
    /// by more than this many percentage points (needs a cost source when snapshots are taken).
    #[arg(
        long,
        env = "TAGWARDEN_ALERT_UNATTRIBUTED_GROWTH",
        value_name = "POINTS",
        default_value_t = 1.0
    )]
    pub alert_unattributed_growth: f64,
    /// Attempts per alert (1 = no retry); the wait doubles between attempts from --notify-backoff.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub notify_attempts: u32,
    /// Wait before the first retry.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub notify_backoff: Duration,
    /// Timeout of each alert request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub notify_timeout: Duration,
}

impl AlertArgs {
    /// The alert configuration, or none when no channel is set.
    pub(crate) fn config(&self) -> anyhow::Result<Option<AlertConfig>> {
        for (flag, v) in [
            ("--alert-score-drop", self.alert_score_drop),
            (
                "--alert-unattributed-growth",
                self.alert_unattributed_growth,
            ),
        ] {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "{flag} must be a number of percentage points ≥ 0, not {v}"
            );
        }
        let webhook =
            match &self.notify_webhook {
                None => None,
                Some(url) => {
                    check_url("--notify-webhook", url)?;
                    let var = &self.notify_secret_env;
                    let secret = std::env::var(var).ok().filter(|s| !s.is_empty()).with_context(|| {
                    format!(
                        "--notify-webhook needs a signing secret: set the environment variable \
                         {var} (or name another one with --notify-secret-env)"
                    )
                })?;
                    Some(Webhook {
                        url: url.clone(),
                        secret,
                    })
                }
            };
        if let Some(url) = &self.notify_slack {
            check_url("--notify-slack", url)?;
        }
        let recipients: Vec<String> = self
            .notify_email
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        let email = if recipients.is_empty() {
            anyhow::ensure!(
                self.smtp_url.is_none() && self.smtp_from.is_none(),
                "--smtp-url and --smtp-from need --notify-email ADDRESS (the recipients)"
            );
            None
        } else {
            let var = &self.smtp_password_env;
            let password = std::env::var(var).ok();
            Some(Email::new(
                &recipients,
                self.smtp_from.as_deref(),
                self.smtp_url.as_deref(),
                password,
                var,
            )?)
        };
        let config = AlertConfig {
            thresholds: AlertThresholds {
                score_drop_pct_points: self.alert_score_drop,
                critical_increase: self.alert_critical_increase,
                unattributed_growth_pct_points: self.alert_unattributed_growth,
            },
            webhook,
            slack: self.notify_slack.clone(),
            email,
            weekly_summary: self.alert_weekly_summary,
            delivery: Delivery {
                attempts: self.notify_attempts,
                timeout: self.notify_timeout,
                backoff: self.notify_backoff,
            },
        };
        Ok(config.has_channel().then_some(config))
    }
}

/// An http(s) URL; the message never repeats it (it may carry a token).
fn check_url(flag: &str, url: &str) -> anyhow::Result<()> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => anyhow::bail!("{flag} must be an http:// or https:// URL"),
    }
}

#[derive(Debug, clap::Args)]
pub struct AlertsCheckArgs {
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// The snapshot to judge (default: the latest); it is compared with the one before it
    /// in its scope.
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<i64>,
    /// Directory of history.db. Default: history/ if it exists here, else
    /// $XDG_DATA_HOME/tagwarden.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

/// `tagwarden alerts check`.
pub(super) async fn check(args: AlertsCheckArgs) -> anyhow::Result<u8> {
    let config = args.alerts.config()?.context(
        "no alert channel: pass --notify-webhook URL (with its secret in \
         TAGWARDEN_NOTIFY_SECRET), --notify-slack URL and/or --notify-email ADDRESS (with \
         --smtp-url and --smtp-from)",
    )?;
    let history = super::database::open_history(args.data_dir.as_deref(), &args.database).await?;
    let outcome = alerts::check_and_notify(&history, args.snapshot, &config, Vec::new()).await?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(if outcome.all_delivered() { 0 } else { 1 })
}

#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    /// How many to list, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Directory of history.db. Default: history/ if it exists here, else
    /// $XDG_DATA_HOME/tagwarden.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

/// `tagwarden alerts dead-letters`.
pub(super) async fn dead_letters(args: DeadLettersArgs) -> anyhow::Result<u8> {
    let history = super::database::open_history(args.data_dir.as_deref(), &args.database).await?;
    let letters = history.dead_letters(args.limit).await?;
    println!("{}", serde_json::to_string_pretty(&letters)?);
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ResendArgs {
    /// The channels to resend on (the same flags as `serve`): a dead letter goes to its own
    /// channel as configured now.
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// Resend only this dead letter (default: every kept one, oldest first).
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
    /// Directory of history.db. Default: history/ if it exists here, else
    /// $XDG_DATA_HOME/tagwarden.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

/// `tagwarden alerts resend`.
pub(super) async fn resend(args: ResendArgs) -> anyhow::Result<u8> {
    let config = args.alerts.config()?.context(
        "no alert channel: pass the channels the dead letters should go to (--notify-webhook, \
         --notify-slack, --notify-email), as for serve",
    )?;
    let history = super::database::open_history(args.data_dir.as_deref(), &args.database).await?;
    let resent = alerts::resend(&history, args.id, &config).await?;
    println!("{}", serde_json::to_string_pretty(&resent)?);
    Ok(if resent.iter().all(|r| r.delivered) {
        0
    } else {
        1
    })
}
