//! Scheduled compliance snapshots while serving (`serve --snapshot-every 6h`) and retention of
//! old ones (`--keep-days`).
//!
//! Each snapshot is a forced rescan of the whole estate stored through the same path as
//! `check_tag_compliance(store_snapshot=true)`. Start times carry random jitter (up to a tenth
//! of the interval, at most 5 minutes) so a fleet of servers does not scan AWS in step; a
//! snapshot still running when the next is due makes that one skip. Failures are logged and
//! the schedule goes on: a bad scan never takes the server down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::app::{App, Call};
use crate::service::compliance::{self, ComplianceQuestion};
use crate::service::snapshot::prune;

#[derive(Debug, Clone, Copy)]
pub(crate) struct SnapshotSchedule {
    pub every: Option<Duration>,
    pub keep_days: u32,
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
            tokio::spawn(async move {
                // In its own task, so even a panic in it clears `running` below.
                let snapshot = tokio::spawn(async move { take_snapshot(&app).await });
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

async fn take_snapshot(app: &App) {
    let question = ComplianceQuestion {
        force_refresh: true,
        store_snapshot: true,
        limit: 0,
        ..Default::default()
    };
    let call = Call::new(app).with_trigger("schedule");
    match compliance::check(&call, question).await {
        Ok(out) => tracing::info!(
            snapshot = out.snapshot_id,
            score = out.score_pct,
            resources = out.resources,
            "scheduled snapshot stored"
        ),
        Err(e) => {
            tracing::error!(error = %e, "scheduled snapshot failed; the next one will try again")
        }
    }
}
