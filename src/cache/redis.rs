//! The shared cache in Redis, so several Tagwarden servers (or restarts) reuse one scan. The
//! guard's shared state (budgets, loop detection) uses the same connection handling with a
//! connection and health of its own (`with_role`, `invoke`).
//!
//! Redis is an accelerator, never a dependency: every operation is bounded by a short timeout
//! (50 ms by default, plus transfer time for large values), and after a failure Redis is left
//! alone for a moment (`retry_after`) instead of making every call wait for it again. The
//! connection manager reconnects by itself; a background probe PINGs Redis every `retry_after`
//! until it answers, so the reported state turns `available` again even while every answer is
//! served from this process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::CacheError;

pub(crate) struct RedisCache {
    manager: ConnectionManager,
    /// Where, for messages: the URL without credentials.
    display: String,
    timeout: Duration,
    retry_after: Duration,
    health: Arc<Mutex<Health>>,
    /// A probe is running (at most one).
    probing: Arc<AtomicBool>,
    /// What this connection is for, in the log lines on a failure and on recovery.
    role: Role,
}

/// What a Redis connection serves, and what happens without it (for the log).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Role {
    /// "shared cache"
    pub name: &'static str,
    /// What the server does while Redis is unavailable.
    pub fallback: &'static str,
}

const CACHE_ROLE: Role = Role {
    name: "shared cache",
    fallback: "using the in-process cache",
};

#[derive(Debug, Clone, Default)]
struct Health {
    /// Set after a failure; Redis is skipped until then.
    down_until: Option<Instant>,
    last_error: Option<String>,
}

/// Large values get extra time at this rate on top of the base timeout.
const TRANSFER_BYTES_PER_SEC: u64 = 50 * 1024 * 1024;

impl RedisCache {
    /// Prepares a client for `url` without connecting (the connection is made on first use, so
    /// a server that starts while Redis is down still starts).
    pub(crate) fn new(
        url: &str,
        timeout: Duration,
        retry_after: Duration,
    ) -> Result<RedisCache, CacheError> {
        let display = without_credentials(url);
        let client = redis::Client::open(url).map_err(|e| CacheError::Config {
            url: display.clone(),
            reason: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(10))))
            .set_number_of_retries(1)
            .set_max_delay(retry_after);
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            CacheError::Config {
                url: display.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(RedisCache {
            manager,
            display,
            timeout,
            retry_after,
            health: Arc::new(Mutex::new(Health::default())),
            probing: Arc::new(AtomicBool::new(false)),
            role: CACHE_ROLE,
        })
    }

    /// The same connection handling for another use of Redis (its own connection and health,
    /// so one use failing does not switch the other off).
    pub(crate) fn with_role(mut self, role: Role) -> RedisCache {
        self.role = role;
        self
    }

    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        lock(&self.health)
    }

    /// `Err(reason)` while Redis is being left alone after a failure: until the probe has seen
    /// it answer (or, without a probe, for `retry_after`).
    pub(crate) fn check_available(&self) -> Result<(), CacheError> {
        let health = self.health();
        let probing = self.probing.load(Ordering::Acquire);
        match health.down_until {
            Some(until) if probing || Instant::now() < until => Err(CacheError::Unavailable(
                health
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not answering".into()),
            )),
            _ => Ok(()),
        }
    }

    /// The last failure, if Redis has not answered since.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.health().last_error.clone()
    }

    fn record<T>(&self, result: Result<T, CacheError>) -> Result<T, CacheError> {
        let mut health = self.health();
        match &result {
            Ok(_) => {
                if health.last_error.is_some() {
                    tracing::info!(redis = %self.display, "{} answers again", self.role.name);
                }
                *health = Health::default();
            }
            Err(e) => {
                if health.last_error.is_none() {
                    tracing::warn!(redis = %self.display, error = %e,
                        "{} unavailable; {}", self.role.name, self.role.fallback);
                }
                health.down_until = Some(Instant::now() + self.retry_after);
                health.last_error = Some(e.to_string());
                drop(health);
                self.start_probe();
            }
        }
        result
    }

    /// PINGs Redis every `retry_after` until it answers, then clears the failure.
    fn start_probe(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let manager = self.manager.clone();
        let health = self.health.clone();
        let probing = self.probing.clone();
        let (every, limit) = (self.retry_after, self.timeout);
        let shown = self.display.clone();
        let name = self.role.name;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let mut conn = manager.clone();
                let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
                if bounded(ping, limit).await.is_ok() {
                    let mut h = lock(&health);
                    if h.last_error.is_some() {
                        tracing::info!(redis = %shown, "{name} answers again");
                    }
                    *h = Health::default();
                    break;
                }
            }
            probing.store(false, Ordering::Release);
        });
    }

    fn budget(&self, bytes: usize) -> Duration {
        self.timeout + Duration::from_millis(bytes as u64 * 1000 / TRANSFER_BYTES_PER_SEC)
    }

    /// Reads a key. `expected_bytes` widens the timeout for values known to be large.
    pub(crate) async fn get(
        &self,
        key: &str,
        expected_bytes: usize,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        self.check_available()?;
        let mut conn = self.manager.clone();
        let op = async move { conn.get::<_, Option<Vec<u8>>>(key).await };
        let result = bounded(op, self.budget(expected_bytes)).await;
        self.record(result)
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.check_available()?;
        let mut conn = self.manager.clone();
        let seconds = ttl.as_secs().max(1);
        let op = async move { conn.set_ex::<_, _, ()>(key, value, seconds).await };
        let result = bounded(op, self.budget(value.len())).await;
        self.record(result)
    }
}

impl RedisCache {
    /// Runs a Lua script (atomic in Redis) within the base timeout.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, CacheError> {
        self.check_available()?;
        let mut conn = self.manager.clone();
        let op = async move { script.invoke_async::<T>(&mut conn).await };
        let result = bounded(op, self.timeout).await;
        self.record(result)
    }

    /// PINGs Redis now (at start-up, so the state reported is known before the first call).
    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        self.check_available()?;
        let mut conn = self.manager.clone();
        let op = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        let result = bounded(op, self.timeout).await.map(drop);
        self.record(result)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the health record is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn bounded<T>(
    op: impl Future<Output = redis::RedisResult<T>>,
    limit: Duration,
) -> Result<T, CacheError> {
    match tokio::time::timeout(limit, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CacheError::Unavailable(short_error(&e))),
        Err(_) => Err(CacheError::Unavailable(format!(
            "no answer within {} ms",
            limit.as_millis()
        ))),
    }
}

fn short_error(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".into()
    } else {
        e.to_string()
    }
}

/// `redis://user:secret@host:6379/0` → `redis://host:6379/0`; anything before the last `@`
/// is credentials, with or without a scheme.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_string();
    };
    match url.find("://") {
        Some(scheme_end) if scheme_end < at => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url[at + 1..].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            without_credentials("redis://:s3cret@cache.internal:6379/0"),
            "redis://cache.internal:6379/0"
        );
        assert_eq!(without_credentials("rediss://user:pw@h:1"), "rediss://h:1");
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(without_credentials(":s3cret@cache:6379"), "cache:6379");
    }

    #[test]
    fn a_bad_url_is_refused_with_the_reason() {
        let Err(e) = RedisCache::new(
            "http://nope",
            Duration::from_millis(50),
            Duration::from_secs(1),
        ) else {
            panic!("accepted");
        };
        assert!(e.to_string().contains("REDIS_URL"), "{e}");
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_quickly_then_skipped() {
        // Port 9 (discard) is not a Redis anywhere here.
        let cache = RedisCache::new(
            "redis://127.0.0.1:9",
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(cache.get("k", 0).await.is_err());
        assert!(cache.last_error().is_some());
        // Left alone now: fails without trying.
        assert!(matches!(
            cache.check_available(),
            Err(CacheError::Unavailable(_))
        ));
    }
}
