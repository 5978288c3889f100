//! The cache layer: an in-process cache that is always there, and Redis in front of it when
//! `REDIS_URL` is set, so several servers share scans and answers.
//!
//! Keys are content addresses (`{prefix}:v1:{kind}:{sha256 of what the value depends on}`):
//! a policy change, a virtual-tag change or a rescan changes the key, so nothing is ever
//! invalidated by scanning Redis. Values carry a format tag and the time they were stored; a
//! value written by another format version is ignored (a miss), never misread.
//!
//! Redis being down or slow never fails a call: the caller gets a miss, the in-process layer
//! keeps working, and `status()` says the shared cache is unavailable until it answers again.

pub(crate) mod memory;
pub(crate) mod redis;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::metrics::{CacheLayer, CacheResult, Metrics};
pub(crate) use memory::MemoryCache;
pub(crate) use redis::RedisCache;

/// Bumped when the layout of any cached value changes; part of every key and value.
pub(crate) const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"TWC1";

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CacheError {
    #[error("REDIS_URL {url} is not usable: {reason} (expected redis://host:port[/db])")]
    Config { url: String, reason: String },
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `redis://…`; None keeps everything in process.
    pub redis_url: Option<String>,
    /// Key prefix, so several deployments (or tests) can share one Redis.
    pub prefix: String,
    /// Longest wait for one Redis operation on a small value.
    pub timeout: Duration,
    /// How long Redis is left alone after a failure.
    pub retry_after: Duration,
    pub memory_max_entries: usize,
    pub memory_max_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            redis_url: None,
            prefix: "tagwarden".into(),
            timeout: Duration::from_millis(50),
            retry_after: Duration::from_secs(1),
            memory_max_entries: 1024,
            memory_max_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Where a cached value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    InProcess,
    Redis,
}

/// The state of the shared cache as of the last operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharedState {
    /// No REDIS_URL: everything is cached in this process only.
    NotConfigured,
    Available,
    /// Redis did not answer in time or refused; answers come from this process or a fresh scan.
    Unavailable,
}

/// A cached value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub value: Vec<u8>,
    pub layer: Layer,
    pub stored_at: DateTime<Utc>,
}

impl Hit {
    pub fn age(&self) -> Duration {
        (Utc::now() - self.stored_at).to_std().unwrap_or_default()
    }
}

pub struct Cache {
    prefix: String,
    memory: MemoryCache,
    shared: Option<RedisCache>,
    /// Where lookups are counted (by layer and result).
    metrics: Arc<Metrics>,
}

impl Cache {
    pub fn new(config: &CacheConfig) -> Result<Cache, CacheError> {
        let shared = match config.redis_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => Some(RedisCache::new(
                url.trim(),
                config.timeout,
                config.retry_after,
            )?),
            None => None,
        };
        Ok(Cache {
            prefix: config.prefix.clone(),
            memory: MemoryCache::new(config.memory_max_entries, config.memory_max_bytes),
            shared,
            metrics: Arc::default(),
        })
    }

    /// Counts lookups into the server's metrics.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Cache {
        self.metrics = metrics;
        self
    }

    /// In-process only (the CLI and tests).
    pub fn in_process() -> Cache {
        Cache {
            prefix: "tagwarden".into(),
            memory: MemoryCache::new(256, 64 * 1024 * 1024),
            shared: None,
            metrics: Arc::default(),
        }
    }

    /// `{prefix}:v{FORMAT_VERSION}:{kind}:{hex sha256 of the parts}`.
    pub fn key(&self, kind: &str, parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        format!(
            "{}:v{FORMAT_VERSION}:{kind}:{}",
            self.prefix,
            hex::encode(h.finalize())
        )
    }

    /// Where the shared cache is, for `data_quality` (no credentials).
    pub fn shared_display(&self) -> Option<&str> {
        self.shared.as_ref().map(RedisCache::display)
    }

    pub fn status(&self) -> SharedState {
        match &self.shared {
            None => SharedState::NotConfigured,
            Some(r) if r.last_error().is_some() => SharedState::Unavailable,
            Some(_) => SharedState::Available,
        }
    }

    /// Why the shared cache is unavailable, when it is.
    pub fn shared_error(&self) -> Option<String> {
        self.shared.as_ref().and_then(RedisCache::last_error)
    }

    /// Looks in this process, then in Redis (keeping a Redis hit in process too).
    pub async fn get(&self, key: &str, ttl: Duration) -> Option<Hit> {
        if let Some(bytes) = self.memory.get(key)
            && let Some((stored_at, value)) = decode(&bytes)
        {
            self.metrics
                .cache_lookup(CacheLayer::InProcess, CacheResult::Hit);
            return Some(Hit {
                value: value.to_vec(),
                layer: Layer::InProcess,
                stored_at,
            });
        }
        self.metrics
            .cache_lookup(CacheLayer::InProcess, CacheResult::Miss);
        let hit = self.get_shared(key, 0).await?;
        self.memory
            .put(key, &encode(&hit.value, hit.stored_at), ttl);
        Some(hit)
    }

    /// Looks in Redis only: for values the application already keeps in process its own way
    /// (scanned inventories). `expected_bytes` widens the timeout for large values.
    pub async fn get_shared(&self, key: &str, expected_bytes: usize) -> Option<Hit> {
        let shared = self.shared.as_ref()?;
        let bytes = match shared.get(key, expected_bytes).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.metrics
                    .cache_lookup(CacheLayer::Redis, CacheResult::Miss);
                return None;
            }
            Err(_) => {
                self.metrics
                    .cache_lookup(CacheLayer::Redis, CacheResult::Error);
                return None;
            }
        };
        match decode(&bytes) {
            Some((stored_at, value)) => {
                self.metrics
                    .cache_lookup(CacheLayer::Redis, CacheResult::Hit);
                Some(Hit {
                    value: value.to_vec(),
                    layer: Layer::Redis,
                    stored_at,
                })
            }
            None => {
                self.metrics
                    .cache_lookup(CacheLayer::Redis, CacheResult::Miss);
                tracing::debug!(key, "cached value of another format version ignored");
                None
            }
        }
    }

    /// Stores in this process and in Redis.
    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let envelope = encode(value, Utc::now());
        self.memory.put(key, &envelope, ttl);
        if let Some(shared) = &self.shared {
            let _ = shared.put(key, &envelope, ttl).await;
        }
    }

    /// Stores in Redis only (see `get_shared`).
    pub async fn put_shared(
        &self,
        key: &str,
        value: &[u8],
        stored_at: DateTime<Utc>,
        ttl: Duration,
    ) {
        if let Some(shared) = &self.shared {
            let _ = shared.put(key, &encode(value, stored_at), ttl).await;
        }
    }

    pub fn memory(&self) -> &MemoryCache {
        &self.memory
    }
}

/// `MAGIC | format version u32 LE | stored_at unix ms i64 LE | payload`.
fn encode(value: &[u8], stored_at: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&stored_at.timestamp_millis().to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn decode(bytes: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (version, rest) = rest.split_at_checked(4)?;
    if u32::from_le_bytes(version.try_into().ok()?) != FORMAT_VERSION {
        return None;
    }
    let (millis, payload) = rest.split_at_checked(8)?;
    let stored_at = DateTime::from_timestamp_millis(i64::from_le_bytes(millis.try_into().ok()?))?;
    Some((stored_at, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_other_versions_are_ignored() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let bytes = encode(b"payload", at);
        assert_eq!(decode(&bytes), Some((at, &b"payload"[..])));
        let mut other = bytes.clone();
        other[4] = 99; // another format version
        assert_eq!(decode(&other), None);
        assert_eq!(decode(b"{\"json\":1}"), None);
        assert_eq!(decode(b"TWC1\x01"), None);
    }

    #[test]
    fn keys_depend_on_every_part_and_its_boundaries() {
        let c = Cache::in_process();
        let a = c.key("result", &[b"ab", b"c"]);
        assert!(a.starts_with("tagwarden:v1:result:"));
        assert_ne!(a, c.key("result", &[b"a", b"bc"]));
        assert_ne!(a, c.key("inventory", &[b"ab", b"c"]));
        assert_eq!(a, c.key("result", &[b"ab", b"c"]));
    }

    #[tokio::test]
    async fn in_process_only_hits_in_process() {
        let c = Cache::in_process();
        assert_eq!(c.status(), SharedState::NotConfigured);
        assert!(c.get("k", Duration::from_secs(60)).await.is_none());
        c.put("k", b"v", Duration::from_secs(60)).await;
        let hit = c.get("k", Duration::from_secs(60)).await.unwrap();
        assert_eq!(hit.value, b"v");
        assert_eq!(hit.layer, Layer::InProcess);
        assert!(hit.age() < Duration::from_secs(5));
        assert!(c.get_shared("k", 0).await.is_none());
    }
}
