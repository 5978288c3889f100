//! Listings shared between servers through the cache's Redis layer, for any provider.
//!
//! A provider scans in parts (AWS: a region, or a region × type filter). With a shared cache,
//! each part's listing is kept there for the inventory TTL under a key of the provider, the
//! credentials identity and the part, so another server (or a restart) reuses it without calling
//! the cloud; `force_refresh` reads the cloud regardless. Only parts that succeeded are kept.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ScanPart;
use crate::cache::Cache;

/// The size a listing read is given time for (≈ 100k resources with tags).
const LARGE_LISTING_BYTES: usize = 64 * 1024 * 1024;

/// Where partition listings are shared between servers, and for how long.
#[derive(Clone)]
pub(crate) struct SharedListings {
    cache: Arc<Cache>,
    ttl: Duration,
}

/// A partition's listing as kept in the shared cache.
#[derive(Serialize, Deserialize)]
pub(crate) struct Listing<T> {
    pub pages: u64,
    pub mappings: Vec<T>,
}

/// How one part of a scan went, with what it listed and when that was read from the cloud.
pub(crate) struct PartResult<T> {
    pub part: ScanPart,
    pub mappings: Vec<T>,
    pub fetched_at: DateTime<Utc>,
}

impl SharedListings {
    /// Keeps part listings in `cache` (its Redis layer) for `ttl`. None when the cache has no
    /// shared layer or `ttl` is zero: then nothing is shared.
    pub(crate) fn new(cache: Arc<Cache>, ttl: Duration) -> Option<Self> {
        (cache.shared_display().is_some() && !ttl.is_zero())
            .then_some(SharedListings { cache, ttl })
    }

    /// The key of one part: the provider (`b"aws"`), who is asking (a hash of the credentials)
    /// and what part (for AWS: region, type filter or "").
    pub(crate) fn key(&self, provider: &[u8], identity: &str, parts: &[&str]) -> String {
        let mut all: Vec<&[u8]> = vec![provider, identity.as_bytes()];
        all.extend(parts.iter().map(|p| p.as_bytes()));
        self.cache.key("inventory", &all)
    }

    /// The part's listing from the shared cache when a fresh one is there and `force` is false
    /// (`cached: true`, `fetched_at` = when it was stored); otherwise `scan`'s result, stored
    /// when the part succeeded.
    pub(crate) async fn through<T>(
        &self,
        key: &str,
        force: bool,
        scope: String,
        scan: impl Future<Output = PartResult<T>>,
    ) -> PartResult<T>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        if !force && let Some(cached) = self.get(key, scope).await {
            return cached;
        }
        let result = scan.await;
        if result.part.ok {
            self.put(key, &result).await;
        }
        result
    }

    async fn get<T: DeserializeOwned>(&self, key: &str, scope: String) -> Option<PartResult<T>> {
        // A listing of a large region is tens of MB: give the read time for that (a Redis that is
        // down fails fast, and one that timed out is then left alone until it answers a PING).
        let hit = self.cache.get_shared(key, LARGE_LISTING_BYTES).await?;
        let listing: Listing<T> = match serde_json::from_slice(&hit.value) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cached listing ignored");
                return None;
            }
        };
        tracing::debug!(part = %scope, age_s = hit.age().as_secs(), "listing from the shared cache");
        Some(PartResult {
            part: ScanPart {
                scope,
                ok: true,
                resources: listing.mappings.len(),
                pages: listing.pages,
                error: None,
                cached: true,
            },
            mappings: listing.mappings,
            fetched_at: hit.stored_at,
        })
    }

    async fn put<T: Serialize + Clone>(&self, key: &str, result: &PartResult<T>) {
        let listing = Listing {
            pages: result.part.pages,
            mappings: result.mappings.clone(),
        };
        match serde_json::to_vec(&listing) {
            Ok(bytes) => {
                self.cache
                    .put_shared(key, &bytes, result.fetched_at, self.ttl)
                    .await
            }
            Err(e) => tracing::warn!(error = %e, "listing not cached"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheConfig;
    use compact_str::CompactString;

    #[test]
    fn keys_and_listings_keep_the_bytes_other_servers_read() {
        let cache = Arc::new(Cache::new(&CacheConfig::default()).expect("an in-process cache"));
        // Without Redis nothing is shared.
        assert!(SharedListings::new(cache.clone(), Duration::from_secs(60)).is_none());
        let shared = SharedListings {
            cache: cache.clone(),
            ttl: Duration::from_secs(60),
        };
        assert_eq!(
            shared.key(b"aws", "id", &["us-east-1", ""]),
            cache.key("inventory", &[b"aws", b"id", b"us-east-1", b""])
        );
        let listing = Listing {
            pages: 2,
            mappings: vec![(
                CompactString::from("arn:aws:s3:::b"),
                vec![(CompactString::from("env"), CompactString::from("prod"))],
            )],
        };
        assert_eq!(
            serde_json::to_string(&listing).expect("serialisable"),
            r#"{"pages":2,"mappings":[["arn:aws:s3:::b",[["env","prod"]]]]}"#
        );
    }
}
