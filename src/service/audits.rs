//! Scheduled compliance audits of a `serve` process: one audit is a forced rescan stored as a
//! snapshot, the comparison with the previous snapshot of the same scope and its alerts, and —
//! when due — the weekly summary. The scheduler (`server::schedule`) runs them on its interval;
//! `schedule_compliance_audit` reads their status and runs one now (`run_now`), at most once a
//! minute per server and never while another audit runs.
//!
//! The state kept here (last and next run, the last audit's outcome) lives as long as the
//! process; the time of the last weekly summary and the dead letters live in history.db.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use std::collections::HashSet;

use super::alerts::{self, AlertConfig};
use super::anomalies::{self, AnomalyQuestion};
use super::compliance::{self, ComplianceQuestion};
use crate::app::audits::{AuditRun, AuditStatus, ScheduledAudits};
use crate::app::{Call, ToolError};
use crate::history::alerts::{AnnouncedAnomaly, MAX_ANNOUNCED_LISTED, Regression};

/// The shortest time between two `run_now` calls on one server.
pub(crate) const RUN_NOW_EVERY: Duration = Duration::from_secs(60);

/// The audits of one `serve` process.
pub(crate) struct AuditScheduler {
    every: Option<Duration>,
    alerts: Option<Arc<AlertConfig>>,
    /// An audit is running (scheduled or manual): the next one waits its turn or is refused.
    running: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_run: Option<DateTime<Utc>>,
    next_run: Option<DateTime<Utc>>,
    last_audit: Option<AuditRun>,
    last_manual: Option<Instant>,
}

/// Clears `running` when the audit ends, even by a panic.
pub(crate) struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl AuditScheduler {
    pub(crate) fn new(every: Option<Duration>, alerts: Option<Arc<AlertConfig>>) -> AuditScheduler {
        AuditScheduler {
            every: every.filter(|d| !d.is_zero()),
            alerts,
            running: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// The interval of scheduled audits, if any.
    pub(crate) fn every(&self) -> Option<Duration> {
        self.every
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes when the next scheduled audit is due.
    pub(crate) fn set_next_run(&self, at: DateTime<Utc>) {
        self.state().next_run = Some(at);
    }

    /// Marks an audit as running; none when one already is.
    pub(crate) fn try_start(&self) -> Option<Running<'_>> {
        (!self.running.swap(true, Ordering::AcqRel)).then_some(Running(&self.running))
    }

    /// Runs one audit (the caller holds `try_start`'s guard): a forced rescan stored as a
    /// snapshot, then the alert check and the weekly summary when channels are configured.
    /// Failures are logged and reported in the outcome.
    pub(crate) async fn run(&self, call: &Call<'_>, _running: &Running<'_>) -> AuditRun {
        let started_at = Utc::now();
        self.state().last_run = Some(started_at);
        let question = ComplianceQuestion {
            force_refresh: true,
            store_snapshot: true,
            limit: 0,
            ..Default::default()
        };
        let mut run = AuditRun {
            trigger: call.trigger().to_string(),
            started_at,
            finished_at: started_at,
            snapshot_id: None,
            score_pct: None,
            alert: None,
            weekly_summary: None,
            error: None,
        };
        match compliance::check(call, question).await {
            Ok(out) => {
                tracing::info!(
                    snapshot = out.snapshot_id,
                    score = out.score_pct,
                    resources = out.resources,
                    trigger = call.trigger(),
                    "audit snapshot stored"
                );
                run.snapshot_id = out.snapshot_id;
                run.score_pct = out.score_pct;
            }
            Err(e) => {
                tracing::error!(error = %e, "audit failed; the next one will try again");
                run.error = Some(format!("the audit's scan failed: {e}"));
            }
        }
        if let (Some(id), Some(config), Some(history)) =
            (run.snapshot_id, &self.alerts, call.history())
        {
            let (also, announcing) = new_anomalies(call).await;
            match alerts::check_and_notify(history, Some(id), config, also).await {
                Ok(outcome) => {
                    // Announced once a comparison was made (the first audit of a scope has
                    // nothing to compare: its anomalies wait for the next one).
                    if outcome.previous.is_some()
                        && !announcing.is_empty()
                        && let Some(store) = call.anomalies()
                        && let Err(e) = store.mark_announced(announcing).await
                    {
                        tracing::error!(error = %e, "could not record the announced anomalies");
                    }
                    run.alert = Some(outcome)
                }
                Err(e) => {
                    tracing::error!(error = %e, snapshot = id, "alert check failed");
                    run.error = Some(format!("the alert check failed: {e}"));
                }
            }
            match alerts::weekly_summary_if_due(history, id, config, Utc::now()).await {
                Ok(summary) => run.weekly_summary = summary,
                Err(e) => {
                    tracing::error!(error = %e, snapshot = id, "weekly summary failed");
                    run.error = Some(format!("the weekly summary failed: {e}"));
                }
            }
        }
        run.finished_at = Utc::now();
        self.state().last_audit = Some(run.clone());
        run
    }

    /// Why `run_now` would be refused now, if it would.
    fn refusal(&self) -> Option<String> {
        if self.every.is_none() {
            return Some(
                "this server has no audit schedule: start it with --audit-every (e.g. 6h) and an \
                 alert channel (--notify-webhook, --notify-slack or --notify-email)"
                    .into(),
            );
        }
        if !self.alerts.as_ref().is_some_and(|a| a.has_channel()) {
            return Some(
                "this server has no alert channel: start it with --notify-webhook, \
                 --notify-slack or --notify-email"
                    .into(),
            );
        }
        if let Some(at) = self.state().last_manual {
            let since = at.elapsed();
            if since < RUN_NOW_EVERY {
                return Some(format!(
                    "an audit was run on demand {}s ago; run_now is accepted once a minute per \
                     server: try again in {}s",
                    since.as_secs(),
                    (RUN_NOW_EVERY - since).as_secs().max(1)
                ));
            }
        }
        if self.running.load(Ordering::Acquire) {
            return Some("an audit is running now; call status in a minute for its outcome".into());
        }
        None
    }
}

#[async_trait]
impl ScheduledAudits for AuditScheduler {
    async fn status(&self, call: &Call<'_>) -> Result<AuditStatus, ToolError> {
        let refusal = self.refusal();
        let (dead_letters, last_summary) = match call.history() {
            Some(h) => (h.dead_letter_count().await?, h.last_summary_at().await?),
            None => (0, None),
        };
        let state = self.state();
        Ok(AuditStatus {
            scheduled: self.every.is_some(),
            interval: self
                .every
                .map_or_else(|| "not scheduled".into(), crate::util::format_duration),
            interval_seconds: self.every.map(|d| d.as_secs()),
            last_run: state.last_run,
            next_run: state.next_run,
            channels: self
                .alerts
                .as_ref()
                .map(|a| a.channels())
                .unwrap_or_default(),
            weekly_summary: self.alerts.as_ref().is_some_and(|a| a.weekly_summary),
            last_weekly_summary: last_summary,
            last_audit: state.last_audit.clone(),
            dead_letters,
            run_now_available: refusal.is_none(),
            run_now_refusal: refusal,
        })
    }

    async fn run_now(&self, call: &Call<'_>) -> Result<AuditRun, ToolError> {
        if let Some(why) = self.refusal() {
            return Err(ToolError::invalid(why));
        }
        let Some(running) = self.try_start() else {
            return Err(ToolError::invalid(
                "an audit is running now; call status in a minute for its outcome",
            ));
        };
        {
            // Checked and set under one lock: two calls in the same instant run once.
            let mut state = self.state();
            if state
                .last_manual
                .is_some_and(|at| at.elapsed() < RUN_NOW_EVERY)
            {
                return Err(ToolError::invalid(
                    "an audit was just run on demand; run_now is accepted once a minute per server",
                ));
            }
            state.last_manual = Some(Instant::now());
        }
        Ok(self.run(call, &running).await)
    }
}

/// New pending cost anomalies (no decision, not announced before) as one regression, and
/// their ids; nothing when the server has no daily costs or no store to remember them in.
async fn new_anomalies(call: &Call<'_>) -> (Vec<Regression>, Vec<String>) {
    let Some(store) = call.anomalies() else {
        return (Vec::new(), Vec::new());
    };
    if call.cost_source().is_none() {
        return (Vec::new(), Vec::new());
    }
    let report = match anomalies::anomalies(call, AnomalyQuestion::default(), None).await {
        Ok(r) => r,
        Err(e) => {
            // A cost source without daily figures is not an audit failure.
            tracing::info!(error = %e, "no cost anomalies checked in this audit");
            return (Vec::new(), Vec::new());
        }
    };
    let ids: Vec<String> = report
        .anomalies
        .iter()
        .map(|a| a.anomaly_id.clone())
        .collect();
    let announced: HashSet<String> = match store.announced(ids).await {
        Ok(a) => a.into_iter().collect(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the announced anomalies");
            return (Vec::new(), Vec::new());
        }
    };
    let fresh = anomalies::new_pending(&report.anomalies, &announced);
    if fresh.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let impact = fresh.iter().map(|a| a.impact).sum::<f64>();
    let regression = Regression::CostAnomalies {
        count: fresh.len(),
        impact: (impact * 100.0).round() / 100.0,
        currency: report.currency.clone(),
        anomalies: fresh
            .iter()
            .take(MAX_ANNOUNCED_LISTED)
            .map(|a| AnnouncedAnomaly {
                anomaly_id: a.anomaly_id.clone(),
                dimension: a.dimension.clone(),
                value: a.value.clone(),
                day: a.day.to_string(),
                impact: a.impact,
            })
            .collect(),
    };
    let ids = fresh.iter().map(|a| a.anomaly_id.clone()).collect();
    (vec![regression], ids)
}
