//! The in-process cache: always there, bounded by entries and bytes, entries expire after their
//! TTL. When full, the least recently used entries go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    value: std::sync::Arc<[u8]>,
    expires: Instant,
    last_used: u64,
}

struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    clock: u64,
}

pub struct MemoryCache {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl MemoryCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> MemoryCache {
        MemoryCache {
            max_entries: max_entries.max(1),
            max_bytes,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                bytes: 0,
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-updated in a way that matters for a cache.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<std::sync::Arc<[u8]>> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let expired = match inner.entries.get_mut(key) {
            None => return None,
            Some(e) if e.expires <= now => true,
            Some(e) => {
                e.last_used = clock;
                return Some(e.value.clone());
            }
        };
        if expired && let Some(old) = inner.entries.remove(key) {
            inner.bytes -= old.value.len() + key.len();
        }
        None
    }

    /// Stores a value; one larger than the whole byte budget is not kept.
    pub fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let size = value.len() + key.len();
        if size > self.max_bytes || ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        if let Some(old) = inner.entries.remove(key) {
            inner.bytes -= old.value.len() + key.len();
        }
        // Expired entries first, then the least recently used, until the new one fits.
        if inner.entries.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            let expired: Vec<String> = inner
                .entries
                .iter()
                .filter(|(_, e)| e.expires <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                if let Some(old) = inner.entries.remove(&k) {
                    inner.bytes -= old.value.len() + k.len();
                }
            }
        }
        while inner.entries.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.bytes -= old.value.len() + oldest.len();
            }
        }
        inner.bytes += size;
        inner.entries.insert(
            key.to_string(),
            Entry {
                value: value.into(),
                expires: now + ttl,
                last_used: clock,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn stores_and_returns() {
        let c = MemoryCache::new(10, 1000);
        c.put("a", b"1", HOUR);
        assert_eq!(c.get("a").as_deref(), Some(&b"1"[..]));
        assert!(c.get("b").is_none());
        c.put("a", b"22", HOUR);
        assert_eq!(c.get("a").as_deref(), Some(&b"22"[..]));
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), 3);
    }

    #[test]
    fn expired_entries_are_gone() {
        let c = MemoryCache::new(10, 1000);
        c.put("a", b"1", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get("a").is_none());
        assert_eq!(c.bytes(), 0);
        c.put("z", b"1", Duration::ZERO);
        assert!(c.get("z").is_none(), "a zero TTL is not cached");
    }

    #[test]
    fn least_recently_used_goes_first_when_full() {
        let c = MemoryCache::new(2, 1000);
        c.put("a", b"1", HOUR);
        c.put("b", b"2", HOUR);
        assert!(c.get("a").is_some()); // b is now the least recently used
        c.put("c", b"3", HOUR);
        assert!(c.get("a").is_some());
        assert!(c.get("b").is_none());
        assert!(c.get("c").is_some());
    }

    #[test]
    fn byte_budget_is_kept() {
        let c = MemoryCache::new(100, 10);
        c.put("a", b"12345", HOUR); // 6 bytes with the key
        c.put("b", b"12345", HOUR); // would be 12: a goes
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some());
        assert!(c.bytes() <= 10);
        c.put("big", &[0u8; 64], HOUR);
        assert!(c.get("big").is_none(), "larger than the budget: not kept");
        assert!(c.get("b").is_some(), "and nothing evicted for it");
    }
}
