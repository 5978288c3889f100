//! Call budgets (governor token buckets): per session per hour, a per-session burst limit per
//! minute, and a global hourly budget for the whole server. A refusal says when the next call
//! will be allowed. Buckets are keyed by session id, so a client that reconnects to the same
//! HTTP session keeps its budget; stdio is one session.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Budget settings; 0 means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub per_session_per_hour: u32,
    pub burst_per_minute: u32,
    pub global_per_hour: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            per_session_per_hour: 100,
            burst_per_minute: 20,
            global_per_hour: 2000,
        }
    }
}

type Keyed<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct Budget<C: Clock = DefaultClock> {
    clock: C,
    burst: Option<(Keyed<C>, u32)>,
    hourly: Option<(Keyed<C>, u32)>,
    global: Option<(Direct<C>, u32)>,
}

impl Budget<DefaultClock> {
    pub fn new(config: &BudgetConfig) -> Self {
        Budget::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Budget<C> {
    pub fn with_clock(config: &BudgetConfig, clock: C) -> Self {
        // A bucket of n cells refilled evenly over the period: at most n calls in any period.
        let quota = |n: u32, period: Duration| {
            NonZeroU32::new(n)
                .and_then(|n| Quota::with_period(period / n.get()).map(|q| q.allow_burst(n)))
        };
        let keyed = |n: u32, period: Duration| {
            quota(n, period).map(|q| (RateLimiter::dashmap_with_clock(q, clock.clone()), n))
        };
        Budget {
            burst: keyed(config.burst_per_minute, Duration::from_secs(60)),
            hourly: keyed(config.per_session_per_hour, Duration::from_secs(3600)),
            global: quota(config.global_per_hour, Duration::from_secs(3600)).map(|q| {
                (
                    RateLimiter::direct_with_clock(q, clock.clone()),
                    config.global_per_hour,
                )
            }),
            clock,
        }
    }

    /// Takes one call from the session's budgets, or says when the next call is allowed.
    pub fn take(&self, session: &str) -> Result<(), String> {
        let key = session.to_string();
        if let Some((limiter, n)) = &self.burst
            && let Err(not_until) = limiter.check_key(&key)
        {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(format!(
                "too many calls at once: this session may make {n} calls per minute \
                 (TAGWARDEN_BUDGET_BURST); the next call is allowed in {}. Work with the \
                 answers you already have meanwhile.",
                human(wait)
            ));
        }
        if let Some((limiter, n)) = &self.hourly
            && let Err(not_until) = limiter.check_key(&key)
        {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(format!(
                "call budget used up: this session may make {n} calls per hour \
                 (TAGWARDEN_BUDGET_PER_HOUR); the next call is allowed in {}, at {}. Work \
                 with the answers you already have meanwhile.",
                human(wait),
                at(wait)
            ));
        }
        if let Some((limiter, n)) = &self.global
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(format!(
                "the server's call budget is used up: {n} calls per hour for all sessions \
                 together (TAGWARDEN_BUDGET_GLOBAL_PER_HOUR); the next call is allowed in {}, \
                 at {}.",
                human(wait),
                at(wait)
            ));
        }
        Ok(())
    }

    /// Forgets sessions whose buckets are full again (bounds memory on long-running servers).
    pub fn forget_idle(&self) {
        for (limiter, _) in [&self.burst, &self.hourly].into_iter().flatten() {
            limiter.retain_recent();
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match s {
        0 => "under a second".to_string(),
        1..=119 => format!("{s} s"),
        _ => format!("{} min {} s", s / 60, s % 60),
    }
}

fn at(d: Duration) -> String {
    let when = chrono::Utc::now()
        + chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero());
    when.format("%H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn budget(
        per_hour: u32,
        burst: u32,
        global: u32,
    ) -> (Budget<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let b = Budget::with_clock(
            &BudgetConfig {
                per_session_per_hour: per_hour,
                burst_per_minute: burst,
                global_per_hour: global,
            },
            clock.clone(),
        );
        (b, clock)
    }

    #[test]
    fn the_101st_call_in_an_hour_is_refused_with_a_retry_time() {
        let (b, clock) = budget(100, 0, 0);
        for i in 0..100 {
            assert!(b.take("s").is_ok(), "call {}", i + 1);
        }
        let refusal = b.take("s").unwrap_err();
        assert!(
            refusal.contains("100 calls per hour") && refusal.contains("36 s"),
            "{refusal}"
        );
        // Another session has its own budget.
        assert!(b.take("other").is_ok());
        // The bucket refills: one call every 36 seconds.
        clock.advance(Duration::from_secs(36));
        assert!(b.take("s").is_ok());
        assert!(b.take("s").is_err());
    }

    #[test]
    fn burst_limit_per_minute() {
        let (b, clock) = budget(100, 20, 0);
        for _ in 0..20 {
            assert!(b.take("s").is_ok());
        }
        let refusal = b.take("s").unwrap_err();
        assert!(
            refusal.contains("20 calls per minute") && refusal.contains("3 s"),
            "{refusal}"
        );
        clock.advance(Duration::from_secs(3));
        assert!(b.take("s").is_ok());
    }

    #[test]
    fn global_budget_across_sessions() {
        let (b, _) = budget(0, 0, 5);
        for i in 0..5 {
            assert!(b.take(&format!("s{i}")).is_ok());
        }
        assert!(b.take("s9").unwrap_err().contains("all sessions together"));
    }

    #[test]
    fn zero_means_unlimited() {
        let (b, _) = budget(0, 0, 0);
        for _ in 0..10_000 {
            assert!(b.take("s").is_ok());
        }
    }
}
