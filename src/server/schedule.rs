//! Scheduled compliance audits while serving (`serve --audit-every 6h`, alias
//! `--snapshot-every`) and retention of old snapshots (`--keep-days`).
//!
//! Each audit (`service::audits`) is a forced rescan of the whole estate stored through the same
//! path as `check_tag_compliance(store_snapshot=true)`, then — with alert channels — the
//! comparison with the previous snapshot, its alerts and the weekly summary when due. Start
//! times carry random jitter (up to a tenth of the interval, at most 5 minutes) so a fleet of
//! servers does not scan AWS in step; an audit still running when the next is due (a scheduled
//! one, or one run by `schedule_compliance_audit`) makes that one skip. Failures are logged and
//! the schedule goes on: a bad scan never takes the server down.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, Call};
use crate::service::audits::AuditScheduler;
use crate::service::snapshot::prune;

#[derive(Debug, Clone)]
pub(crate) struct SnapshotSchedule {
    pub keep_days: u32,
}

/// Prunes now, then (when `audits` has an interval) runs audits in the background.
pub(crate) fn spawn_snapshots(
    app: Arc<App>,
    schedule: SnapshotSchedule,
    audits: Arc<AuditScheduler>,
) {
    let Some(history) = app.history().cloned() else {
        return;
    };
    let keep = chrono::Duration::days(i64::from(schedule.keep_days));
    tokio::spawn(prune(history.clone(), keep));
    let Some(every) = audits.every() else {
        return;
    };
    tracing::info!(
        every_s = every.as_secs(),
        keep_days = schedule.keep_days,
        "scheduled audits on"
    );
    tokio::spawn(async move {
        loop {
            let wait = every + jitter(every);
            audits.set_next_run(
                chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
            );
            tokio::time::sleep(wait).await;
            let app = app.clone();
            let history = history.clone();
            let audits = audits.clone();
            tokio::spawn(async move {
                // In its own task, so a panic in the audit ends only that audit (its guard
                // clears the running mark as it unwinds).
                let audit = tokio::spawn({
                    let audits = audits.clone();
                    async move {
                        let Some(running) = audits.try_start() else {
                            tracing::warn!(
                                "the previous audit is still running; skipping this one"
                            );
                            return false;
                        };
                        let call = Call::new(&app).with_trigger("schedule");
                        audits.run(&call, &running).await;
                        true
                    }
                });
                match audit.await {
                    Ok(true) => prune(history, keep).await,
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "scheduled audit task failed"),
                }
            });
        }
    });
}

fn jitter(every: Duration) -> Duration {
    let max = (every / 10).min(Duration::from_secs(300));
    max.mul_f64(fastrand::f64())
}
