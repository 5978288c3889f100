//! What every AWS client here shares: one way to load SDK configuration (standard environment,
//! profiles and `AWS_ENDPOINT_URL`, with retries and timeouts set for scans), a call counter so
//! outputs can say exactly how many requests were made, and error summaries that tell the user
//! what to do instead of passing raw upstream text through.

mod calls;
mod errors;
pub(crate) mod organizations;
mod paging;

pub(crate) use calls::CallCounter;
pub(crate) use errors::summarise_sdk_error;
pub(crate) use paging::next_token;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Retry and timeout settings for AWS calls.
#[derive(Debug, Clone)]
pub struct AwsTuning {
    /// Attempts per request, the first included (throttling and transient errors are retried
    /// with exponential backoff and full jitter by the SDK's standard retry strategy).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    /// Where the server counts cloud requests (`/metrics`); None outside the server.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl AwsTuning {
    /// A call counter for clients built with these settings (counting into the metrics too).
    pub(crate) fn counter(&self) -> CallCounter {
        CallCounter::new(self.metrics.clone())
    }
}

impl Default for AwsTuning {
    fn default() -> Self {
        AwsTuning {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(30),
            metrics: None,
        }
    }
}

/// Loads the SDK configuration from the standard sources (environment, profile, SSO,
/// `AWS_ENDPOINT_URL`), with our retry and timeout settings.
pub(crate) async fn load_sdk_config(tuning: &AwsTuning) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(tuning.max_attempts)
                .with_initial_backoff(tuning.initial_backoff)
                .with_max_backoff(tuning.max_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(tuning.connect_timeout)
                .operation_attempt_timeout(tuning.attempt_timeout)
                .build(),
        )
        .load()
        .await
}
