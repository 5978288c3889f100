//! Budgets and loop detection kept in Redis (`REDIS_URL`), so replicas behind one load balancer
//! enforce one budget and one loop detector per principal instead of one each.
//!
//! Each check is one Lua script, atomic in Redis, timed by Redis's own clock (replicas' clocks
//! may differ): the budget script checks every bucket of the call (GCRA, the rule governor
//! applies in process) and takes a cell from all of them only when none is empty, so a refusal
//! costs nothing; the loop script judges the call against the principal's remembered calls
//! (`loops::judge`'s rule) and remembers it only when admitted. Keys are
//! `{prefix}:guard:v1:{bucket}:{hash}`: the hash covers the verified principal (and, for a
//! session's bucket, the session id with it, so one principal cannot reach another's
//! buckets by naming its session). Every key expires when it no longer holds anything (a full
//! bucket, a call out of the loop window), so Redis never grows without bound.
//!
//! Redis down or slower than the timeout never fails a call: the replica falls back to its own
//! in-process limits (`LocalState`), logs it once, reports `local (redis unavailable)` on
//! `/healthz`, and uses Redis again once a probe sees it answer.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::budget::{self, Bucket, BudgetConfig};
use super::loops::{self, Fingerprint, LoopConfig, Verdict};
use super::state::{GuardState, Kept, LocalState};
use crate::cache::CacheError;
use crate::cache::redis::{RedisCache, Role};

const ROLE: Role = Role {
    name: "shared guard state",
    fallback: "this replica enforces its own budgets and loop detection until Redis answers",
};

/// Checks every bucket (KEYS, in order; ARGV: emission interval in ms and size, per key) and
/// takes one cell from each only if none is empty. A bucket's value is its theoretical arrival
/// time (GCRA): a call is allowed while it is at most (size - 1) intervals ahead of now.
/// Returns `{0, 0}`, or `{index of the empty bucket (1-based), ms until a call is allowed}`.
const BUDGET_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local next_tat = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local size = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local ahead = tat - now
  local allowed = (size - 1) * interval
  if ahead > allowed then
    return {i, ahead - allowed}
  end
  next_tat[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', next_tat[i]), 'PX', next_tat[i] - now)
end
return {0, 0}
";

/// Judges a call (ARGV[1], a fingerprint) against the principal's calls in the window (KEYS[1],
/// a list of `ms:fingerprint`, oldest first; ARGV: window ms, max repeats, calls kept) as
/// `loops::judge` does, and remembers it when admitted. Returns `{0, 0}`, `{1, repeats}` or
/// `{2, 0}` (alternation).
const LOOPS_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, call = KEYS[1], ARGV[1]
local window, max, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local calls, expired = {}, 0
for _, e in ipairs(redis.call('LRANGE', key, 0, -1)) do
  local sep = string.find(e, ':', 1, true)
  local at = sep and tonumber(string.sub(e, 1, sep - 1))
  if at and now - at < window and now >= at then
    calls[#calls + 1] = string.sub(e, sep + 1)
  elseif #calls == 0 then
    expired = expired + 1
  end
end
if expired > 0 then redis.call('LTRIM', key, expired, -1) end
local repeats = 0
for _, c in ipairs(calls) do
  if c == call then repeats = repeats + 1 end
end
if repeats >= max then return {1, repeats} end
local n = #calls
if n >= 3 and calls[n - 2] == calls[n] and calls[n - 1] == call and calls[n - 2] ~= call then
  return {2, 0}
end
redis.call('RPUSH', key, string.format('%.0f', now) .. ':' .. call)
redis.call('LTRIM', key, -keep, -1)
redis.call('PEXPIRE', key, window)
return {0, 0}
";

static BUDGET_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(BUDGET_LUA));
static LOOPS_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(LOOPS_LUA));

/// Budgets and loops in Redis, with this process's own as the fallback.
pub(crate) struct SharedState {
    redis: RedisCache,
    prefix: String,
    budget: BudgetConfig,
    loops: LoopConfig,
    local: LocalState,
}

impl SharedState {
    /// Prepares the connection without making it (a replica whose Redis is down still starts,
    /// with its own limits).
    pub(crate) fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        budget: &BudgetConfig,
        loops: &LoopConfig,
    ) -> Result<SharedState, CacheError> {
        let redis = RedisCache::new(url.trim(), timeout, Duration::from_secs(1))?.with_role(ROLE);
        Ok(SharedState {
            redis,
            prefix: prefix.to_string(),
            budget: budget.clone(),
            loops: loops.clone(),
            local: LocalState::new(budget, loops),
        })
    }

    /// Asks Redis once, so `/healthz` tells from the start whether the state is shared.
    pub(crate) async fn probe(&self) {
        if self.redis.ping().await.is_ok() {
            tracing::info!(redis = %self.redis.display(), "budgets and loop detection are shared in Redis");
        }
    }
}

#[async_trait]
impl GuardState for SharedState {
    async fn take(&self, principal: &str, session: &str) -> Result<(), String> {
        let buckets = budget::buckets(&self.budget, session);
        if buckets.is_empty() {
            return Ok(());
        }
        let mut invocation = BUDGET_SCRIPT.prepare_invoke();
        for (bucket, n) in &buckets {
            invocation
                .key(bucket_key(&self.prefix, *bucket, principal, session))
                .arg(interval_ms(*bucket, *n))
                .arg(*n);
        }
        match self.redis.invoke::<(usize, u64)>(&invocation).await {
            Ok((0, _)) => Ok(()),
            Ok((index, wait_ms)) => match buckets.get(index.wrapping_sub(1)) {
                Some((bucket, n)) => Err(bucket.refusal(*n, Duration::from_millis(wait_ms))),
                // Not an answer the script gives: count it as Redis failing.
                None => self.local.take(principal, session).await,
            },
            Err(_) => self.local.take(principal, session).await,
        }
    }

    async fn admit(&self, principal: &str, tool: &str, call: Fingerprint) -> Result<(), String> {
        if self.loops.max_repeats == 0 {
            return Ok(());
        }
        let window = self.loops.window;
        let mut invocation = LOOPS_SCRIPT.prepare_invoke();
        invocation
            .key(loop_key(&self.prefix, principal))
            .arg(hex::encode(call))
            .arg(window.as_millis().max(1) as u64)
            .arg(self.loops.max_repeats)
            .arg(loops::HISTORY);
        match self.redis.invoke::<(u8, usize)>(&invocation).await {
            Ok((0, _)) => Ok(()),
            Ok((1, repeats)) => Err(Verdict::Repeated(repeats).refusal(tool, window)),
            Ok((2, _)) => Err(Verdict::Alternating.refusal(tool, window)),
            Ok(_) | Err(_) => self.local.admit(principal, tool, call).await,
        }
    }

    fn kept(&self) -> Kept {
        match self.redis.last_error() {
            None => Kept::Shared,
            Some(_) => Kept::LocalFallback,
        }
    }
}

/// The emission interval of a bucket of `n` calls per period, in ms (at least 1).
fn interval_ms(bucket: Bucket, n: u32) -> u64 {
    (bucket.period().as_millis() as u64 / u64::from(n.max(1))).max(1)
}

/// 128 bits of sha256 over the length-prefixed parts: fixed-length keys whatever a principal
/// id holds, and no two (principal, session) pairs that run together.
fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The Redis key of one bucket of this call.
fn bucket_key(prefix: &str, bucket: Bucket, principal: &str, session: &str) -> String {
    let name = bucket.name();
    if bucket.per_session() {
        format!("{prefix}:guard:v1:{name}:{}", digest(&[principal, session]))
    } else if bucket.per_principal() {
        format!("{prefix}:guard:v1:{name}:{}", digest(&[principal]))
    } else {
        format!("{prefix}:guard:v1:{name}")
    }
}

/// The Redis key of the principal's remembered calls.
fn loop_key(prefix: &str, principal: &str) -> String {
    format!("{prefix}:guard:v1:loops:{}", digest(&[principal]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_principals_own_and_bounded() {
        let k = |b, p, s| bucket_key("tw", b, p, s);
        // A session's bucket depends on the principal too: the same session id under another
        // principal is another key.
        assert_ne!(
            k(Bucket::SessionBurst, "token:a", "http:s1"),
            k(Bucket::SessionBurst, "token:b", "http:s1")
        );
        // A principal's bucket does not depend on the session.
        assert_eq!(
            k(Bucket::PrincipalBurst, "token:a", "http:s1"),
            k(Bucket::PrincipalBurst, "token:a", "stateless")
        );
        assert_eq!(k(Bucket::Global, "token:a", "s"), "tw:guard:v1:global-hour");
        // Boundaries between parts count: ("ab", "c") is not ("a", "bc").
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
        // Whatever the principal id holds, the key has one length.
        let long = "x".repeat(10_000);
        let key = k(Bucket::PrincipalHourly, &long, "s");
        assert_eq!(key.len(), "tw:guard:v1:principal-hour:".len() + 32);
        assert!(loop_key("tw", "token:a").starts_with("tw:guard:v1:loops:"));
        assert_ne!(loop_key("tw", "token:a"), loop_key("tw", "token:b"));
    }

    #[test]
    fn intervals_spread_a_bucket_over_its_period() {
        assert_eq!(interval_ms(Bucket::SessionBurst, 20), 3000);
        assert_eq!(interval_ms(Bucket::Global, 2000), 1800);
        assert_eq!(interval_ms(Bucket::PrincipalBurst, 1_000_000), 1);
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_this_process() {
        // Port 9 (discard) is not a Redis anywhere here.
        let budget = BudgetConfig {
            per_session_per_hour: 0,
            burst_per_minute: 0,
            per_principal_per_hour: 0,
            principal_burst_per_minute: 2,
            global_per_hour: 0,
        };
        let state = SharedState::new(
            "redis://127.0.0.1:9",
            "tw",
            Duration::from_millis(50),
            &budget,
            &LoopConfig::default(),
        )
        .unwrap();
        assert!(state.take("p", "s").await.is_ok());
        assert_eq!(state.kept(), Kept::LocalFallback);
        assert!(state.take("p", "s").await.is_ok());
        let refusal = state.take("p", "s").await.unwrap_err();
        assert!(
            refusal.contains("2 calls per minute, all its sessions together"),
            "{refusal}"
        );
        // Loops fall back too.
        let fp = [7; 32];
        for _ in 0..3 {
            assert!(state.admit("p", "t", fp).await.is_ok());
        }
        assert!(state.admit("p", "t", fp).await.is_err());
    }
}
