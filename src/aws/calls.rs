//! Counting AWS requests: an SDK interceptor that sees every HTTP attempt, so reported call
//! counts include retries and cannot drift from what was actually sent. When the server keeps
//! metrics, each attempt is also counted there by operation and outcome (the operation name
//! mapped onto a closed set, never an ARN or a parameter).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_resourcegroupstagging::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use crate::metrics::{CloudOperation, CloudOutcome, CloudProvider, Metrics};

/// Counts attempts (HTTP requests) and retries made through clients that carry it. Cheap to clone: clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallCounter {
    attempts: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
    /// The server's metrics, where every attempt is counted too.
    metrics: Option<Arc<Metrics>>,
}

impl CallCounter {
    /// A counter that also records each attempt in `metrics` (when given).
    pub(crate) fn new(metrics: Option<Arc<Metrics>>) -> Self {
        CallCounter {
            metrics,
            ..Self::default()
        }
    }

    /// HTTP requests sent, retries included.
    pub(crate) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Of those, attempts after the first of their call (throttling, transient errors).
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "tagwarden-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1)
        {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metrics) = &self.metrics {
            let operation = cfg.load::<Metadata>().map_or(CloudOperation::Other, |m| {
                CloudOperation::from_sdk(m.name())
            });
            let status = context.response().map(|r| r.status().as_u16());
            metrics.cloud_request(
                CloudProvider::Aws,
                operation,
                CloudOutcome::of_status(status),
            );
        }
        Ok(())
    }
}
