//! Counting AWS requests: an SDK interceptor that sees every HTTP attempt, so reported call
//! counts include retries and cannot drift from what was actually sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_resourcegroupstagging::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

/// Counts attempts (HTTP requests) and retries made through clients that carry it. Cheap to clone: clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallCounter {
    attempts: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
}

impl CallCounter {
    pub(crate) fn new() -> Self {
        Self::default()
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
}
