//! Scan progress as MCP `notifications/progress`, for calls that carry a progress token.
//!
//! Quick answers send nothing: notifications start once the call has run for `after` (about a
//! second), then go out at most every `every`. They are forwarded in order by one task, so a
//! slow client never holds up the scan.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use tokio::sync::mpsc;

use crate::inventory::ScanProgress;

/// How long a call runs before progress is reported: `TAGWARDEN_PROGRESS_AFTER` (e.g. `0`,
/// `500ms`), default 1 s.
pub(crate) fn progress_after() -> Duration {
    std::env::var("TAGWARDEN_PROGRESS_AFTER")
        .ok()
        .and_then(|v| crate::util::parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(1))
}

pub(crate) struct McpProgress {
    started: Instant,
    after: Duration,
    every: Duration,
    last: Mutex<Option<(Instant, f64)>>,
    /// Taken (closed) by `flush`.
    sender: Mutex<Option<mpsc::UnboundedSender<ProgressNotificationParam>>>,
    forwarder: Mutex<Option<tokio::task::JoinHandle<()>>>,
    token: ProgressToken,
}

impl McpProgress {
    pub(crate) fn new(
        peer: Peer<RoleServer>,
        token: ProgressToken,
        after: Duration,
    ) -> McpProgress {
        let (sender, mut receiver) = mpsc::unbounded_channel::<ProgressNotificationParam>();
        let forwarder = tokio::spawn(async move {
            while let Some(param) = receiver.recv().await {
                if peer.notify_progress(param).await.is_err() {
                    break;
                }
            }
        });
        McpProgress {
            started: Instant::now(),
            after,
            every: Duration::from_millis(200),
            last: Mutex::new(None),
            sender: Mutex::new(Some(sender)),
            forwarder: Mutex::new(Some(forwarder)),
            token,
        }
    }

    /// Sends what is queued and stops: called before the call's result goes out, so no
    /// progress notification follows the response.
    pub(crate) async fn flush(&self) {
        drop(lock(&self.sender).take());
        let forwarder = lock(&self.forwarder).take();
        if let Some(f) = forwarder {
            let _ = f.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScanProgress for McpProgress {
    fn update(&self, done: u64, total: Option<u64>, message: &str) {
        let now = Instant::now();
        if now.duration_since(self.started) < self.after {
            return;
        }
        let progress = done as f64;
        let mut last = lock(&self.last);
        let due = match *last {
            None => true,
            // Progress must increase from one notification to the next.
            Some((at, sent)) => progress > sent && now.duration_since(at) >= self.every,
        };
        let finished = total.is_some_and(|t| done >= t);
        if !(due || finished && last.is_none_or(|(_, sent)| progress > sent)) {
            return;
        }
        *last = Some((now, progress));
        let mut param = ProgressNotificationParam::new(self.token.clone(), progress);
        if let Some(t) = total {
            param = param.with_total(t as f64);
        }
        param.message = Some(message.to_string());
        if let Some(sender) = lock(&self.sender).as_ref() {
            let _ = sender.send(param);
        }
    }
}
