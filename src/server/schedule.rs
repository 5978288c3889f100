//! Scheduled compliance snapshots while serving (`serve --snapshot-every 6h`) and retention of
//! old ones (`--keep-days`).
//!
//! Each snapshot is a forced rescan of the whole estate stored through the same path as
//! `check_tag_compliance(store_snapshot=true)`. Start times carry random jitter (up to a tenth
//! of the interval, at most 5 minutes) so a fleet of servers does not scan AWS in step; a
//! snapshot still running when the next is due makes that one skip. Failures are logged and
//! the schedule goes on: a bad scan never takes the server down.
//!
//! With alert channels (`--notify-webhook`, `--notify-slack`), each stored snapshot is
//! compared with the one before it and a regression is announced (`service::alerts`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::app::{App, Call};
use crate::service::alerts::{self, AlertConfig};
use crate::service::compliance::{self, ComplianceQuestion};
use crate::service::snapshot::prune;
use crate::store::HistoryStore;

#[derive(Debug, Clone)]
pub(crate) struct SnapshotSchedule {
    pub every: Option<Duration>,
    pub keep_days: u32,
    /// Alerts after each snapshot, when channels are configured.
    pub alerts: Option<Arc<AlertConfig>>,
}

/// Prunes now, then (with `every`) takes snapshots in the background.
pub(crate) fn spawn_snapshots(app: Arc<App>, schedule: SnapshotSchedule) {
    let Some(history) = app.history().cloned() else {
        return;
    };
    let keep = chrono::Duration::days(i64::from(schedule.keep_days));
    tokio::spawn(prune(history.clone(), keep));
    let Some(every) = schedule.every.filter(|d| !d.is_zero()) else {
        return;
    };
    tracing::info!(
        every_s = every.as_secs(),
        keep_days = schedule.keep_days,
        "scheduled snapshots on"
    );
    let running = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every + jitter(every)).await;
            if running.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    "the previous scheduled snapshot is still running; skipping this one"
                );
                continue;
            }
            let app = app.clone();
            let running = running.clone();
            let history = history.clone();
            let alerting = schedule.alerts.clone();
            tokio::spawn(async move {
                // In its own task, so even a panic in it clears `running` below.
                let store = history.clone();
                let snapshot = tokio::spawn(async move {
                    let id = take_snapshot(&app).await;
                    if let (Some(id), Some(config)) = (id, alerting) {
                        alert(&store, id, &config).await;
                    }
                });
                if let Err(e) = snapshot.await {
                    tracing::error!(error = %e, "scheduled snapshot task failed");
                }
                prune(history, keep).await;
                running.store(false, Ordering::Release);
            });
        }
    });
}

fn jitter(every: Duration) -> Duration {
    let max = (every / 10).min(Duration::from_secs(300));
    max.mul_f64(fastrand::f64())
}

/// Compares snapshot `id` with the one before it and alerts on a regression; failures are
/// logged (the service logs each undelivered alert).
async fn alert(history: &Arc<dyn HistoryStore>, id: i64, config: &AlertConfig) {
    if let Err(e) = alerts::check_and_notify(history, Some(id), config).await {
        tracing::error!(error = %e, snapshot = id, "alert check failed");
    }
}

/// Takes one snapshot; its id when stored.
async fn take_snapshot(app: &App) -> Option<i64> {
    let question = ComplianceQuestion {
        force_refresh: true,
        store_snapshot: true,
        limit: 0,
        ..Default::default()
    };
    let call = Call::new(app).with_trigger("schedule");
    match compliance::check(&call, question).await {
        Ok(out) => {
            tracing::info!(
                snapshot = out.snapshot_id,
                score = out.score_pct,
                resources = out.resources,
                "scheduled snapshot stored"
            );
            out.snapshot_id
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled snapshot failed; the next one will try again");
            None
        }
    }
}
