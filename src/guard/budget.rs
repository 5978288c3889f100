//! Call budgets (governor token buckets), keyed on who the server verified the caller to be —
//! never on a value the client chooses alone:
//! - per session, an hourly budget and a burst limit per minute, keyed on (principal, session),
//!   so a client that reconnects to its HTTP session keeps its budget and another principal
//!   cannot spend it;
//! - per principal, an hourly budget and a burst limit that every session of that principal
//!   draws from, so opening new sessions (or sending made-up session ids) never resets them;
//!   the hourly share is below the global budget, so one principal cannot lock out the others;
//! - a global hourly budget for the whole server.
//!
//! Governor cannot give a cell back, so the buckets are checked in an order where a refusal
//! costs as little as possible: bursts before hourly budgets (a burst refusal spends no hourly
//! budget), the session's before its principal's, and the global budget last (a principal over
//! its share never drains what the others share). A refusal says when the next call is allowed.
//! Keys of callers whose buckets are full again are forgotten now and then, which bounds memory
//! however many session ids a client makes up.
//!
//! This is the in-process store (`guard::state::LocalState`); `guard::shared` keeps the same
//! buckets (`Bucket`, `buckets`) in Redis for replicas and refuses with the same words.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Every session of one principal together, per hour.
    pub per_principal_per_hour: u32,
    /// Every session of one principal together, per minute.
    pub principal_burst_per_minute: u32,
    pub global_per_hour: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            per_session_per_hour: 100,
            burst_per_minute: 20,
            per_principal_per_hour: 500,
            principal_burst_per_minute: 20,
            global_per_hour: 2000,
        }
    }
}

/// One of the budgets a call draws from. The in-process budget and the shared one (in Redis)
/// check the same buckets in the same order and refuse with the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    SessionBurst,
    PrincipalBurst,
    SessionHourly,
    PrincipalHourly,
    Global,
}

impl Bucket {
    /// The order in which a call's buckets are checked (see the module's doc).
    pub(crate) const ORDER: [Bucket; 5] = [
        Bucket::SessionBurst,
        Bucket::PrincipalBurst,
        Bucket::SessionHourly,
        Bucket::PrincipalHourly,
        Bucket::Global,
    ];

    /// Kept per (principal, session); a stateless call has no such bucket.
    pub(crate) fn per_session(self) -> bool {
        matches!(self, Bucket::SessionBurst | Bucket::SessionHourly)
    }

    /// Kept per principal (all its sessions together).
    pub(crate) fn per_principal(self) -> bool {
        matches!(self, Bucket::PrincipalBurst | Bucket::PrincipalHourly)
    }

    /// The period over which the bucket's calls are counted.
    pub(crate) fn period(self) -> Duration {
        match self {
            Bucket::SessionBurst | Bucket::PrincipalBurst => MINUTE,
            _ => HOUR,
        }
    }

    /// Calls per period (0: this budget is off).
    pub(crate) fn size(self, config: &BudgetConfig) -> u32 {
        match self {
            Bucket::SessionBurst => config.burst_per_minute,
            Bucket::PrincipalBurst => config.principal_burst_per_minute,
            Bucket::SessionHourly => config.per_session_per_hour,
            Bucket::PrincipalHourly => config.per_principal_per_hour,
            Bucket::Global => config.global_per_hour,
        }
    }

    /// A short stable name (part of the bucket's Redis key).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Bucket::SessionBurst => "session-burst",
            Bucket::PrincipalBurst => "principal-burst",
            Bucket::SessionHourly => "session-hour",
            Bucket::PrincipalHourly => "principal-hour",
            Bucket::Global => "global-hour",
        }
    }

    /// Why a call is refused when this bucket of `n` calls is empty, and when the next one is
    /// allowed.
    pub(crate) fn refusal(self, n: u32, wait: Duration) -> String {
        match self {
            Bucket::SessionBurst => format!(
                "too many calls at once: this session may make {n} calls per minute \
                 (TAGWARDEN_BUDGET_BURST); the next call is allowed in {}. Work with the \
                 answers you already have meanwhile.",
                human(wait)
            ),
            Bucket::PrincipalBurst => format!(
                "too many calls at once: this client may make {n} calls per minute, all its \
                 sessions together (TAGWARDEN_BUDGET_PRINCIPAL_BURST); the next call is allowed \
                 in {}. Work with the answers you already have meanwhile.",
                human(wait)
            ),
            Bucket::SessionHourly => format!(
                "call budget used up: this session may make {n} calls per hour \
                 (TAGWARDEN_BUDGET_PER_HOUR); the next call is allowed in {}, at {}. Work \
                 with the answers you already have meanwhile.",
                human(wait),
                at(wait)
            ),
            Bucket::PrincipalHourly => format!(
                "call budget used up: this client may make {n} calls per hour, all its \
                 sessions together (TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR); a new session does \
                 not reset it. The next call is allowed in {}, at {}. Work with the answers \
                 you already have meanwhile.",
                human(wait),
                at(wait)
            ),
            Bucket::Global => format!(
                "the server's call budget is used up: {n} calls per hour for all clients \
                 together (TAGWARDEN_BUDGET_GLOBAL_PER_HOUR); the next call is allowed in {}, \
                 at {}.",
                human(wait),
                at(wait)
            ),
        }
    }
}

/// The buckets a call draws from, in checking order, with their sizes: the ones switched off
/// (0) left out, and the per-session ones too for a stateless call.
pub(crate) fn buckets(config: &BudgetConfig, session: &str) -> Vec<(Bucket, u32)> {
    let (sessionful, bursty) = charged(session);
    Bucket::ORDER
        .into_iter()
        .filter(|b| sessionful || !b.per_session())
        .filter(|b| bursty || *b != Bucket::PrincipalBurst)
        .map(|b| (b, b.size(config)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Which budgets a call of `session` draws from: (the session's own, the principal's per-minute
/// one). A stateless request has no session of its own; the web console's calls (a person
/// reloading pages) are charged to the principal's hourly and the global budgets only.
fn charged(session: &str) -> (bool, bool) {
    match session {
        super::STATELESS_SESSION => (false, true),
        super::CONSOLE_SESSION => (false, false),
        _ => (true, true),
    }
}

/// Calls between two sweeps of forgotten keys.
const SWEEP_EVERY: u64 = 1024;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A principal and one of its sessions.
type SessionKey = (String, String);

pub(crate) struct Budget<C: Clock = DefaultClock> {
    clock: C,
    session_burst: Option<(Keyed<SessionKey, C>, u32)>,
    principal_burst: Option<(Keyed<String, C>, u32)>,
    session_hourly: Option<(Keyed<SessionKey, C>, u32)>,
    principal_hourly: Option<(Keyed<String, C>, u32)>,
    global: Option<(Direct<C>, u32)>,
    calls: AtomicU64,
}

impl Budget<DefaultClock> {
    pub(crate) fn new(config: &BudgetConfig) -> Self {
        Budget::with_clock(config, DefaultClock::default())
    }
}

/// A bucket of n cells refilled evenly over the period: at most n calls in any period.
fn quota(n: u32, period: Duration) -> Option<Quota> {
    NonZeroU32::new(n).and_then(|n| Quota::with_period(period / n.get()).map(|q| q.allow_burst(n)))
}

fn keyed<K: Hash + Eq + Clone, C: Clock + Clone>(
    n: u32,
    period: Duration,
    clock: &C,
) -> Option<(Keyed<K, C>, u32)> {
    quota(n, period).map(|q| (RateLimiter::dashmap_with_clock(q, clock.clone()), n))
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl<C: Clock + Clone> Budget<C> {
    pub(crate) fn with_clock(config: &BudgetConfig, clock: C) -> Self {
        Budget {
            session_burst: keyed(config.burst_per_minute, MINUTE, &clock),
            principal_burst: keyed(config.principal_burst_per_minute, MINUTE, &clock),
            session_hourly: keyed(config.per_session_per_hour, HOUR, &clock),
            principal_hourly: keyed(config.per_principal_per_hour, HOUR, &clock),
            global: quota(config.global_per_hour, HOUR).map(|q| {
                (
                    RateLimiter::direct_with_clock(q, clock.clone()),
                    config.global_per_hour,
                )
            }),
            clock,
            calls: AtomicU64::new(0),
        }
    }

    /// Takes one call from the budgets of this principal's session, of the principal, and of
    /// the server; or says which is used up and when the next call is allowed.
    pub(crate) fn take(&self, principal: &str, session: &str) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.forget_idle();
        }
        // A stateless request has no session of its own: its principal's budgets are its only
        // ones (a shared "stateless" session bucket would cap the principal below its share).
        let (sessionful, bursty) = charged(session);
        let session_key: SessionKey = (principal.to_string(), session.to_string());
        let principal_key = principal.to_string();
        let wait =
            |not_until: governor::NotUntil<C::Instant>| not_until.wait_time_from(self.clock.now());
        if sessionful
            && let Some((limiter, n)) = &self.session_burst
            && let Err(not_until) = limiter.check_key(&session_key)
        {
            return Err(Bucket::SessionBurst.refusal(*n, wait(not_until)));
        }
        if bursty
            && let Some((limiter, n)) = &self.principal_burst
            && let Err(not_until) = limiter.check_key(&principal_key)
        {
            return Err(Bucket::PrincipalBurst.refusal(*n, wait(not_until)));
        }
        if sessionful
            && let Some((limiter, n)) = &self.session_hourly
            && let Err(not_until) = limiter.check_key(&session_key)
        {
            return Err(Bucket::SessionHourly.refusal(*n, wait(not_until)));
        }
        if let Some((limiter, n)) = &self.principal_hourly
            && let Err(not_until) = limiter.check_key(&principal_key)
        {
            return Err(Bucket::PrincipalHourly.refusal(*n, wait(not_until)));
        }
        if let Some((limiter, n)) = &self.global
            && let Err(not_until) = limiter.check()
        {
            return Err(Bucket::Global.refusal(*n, wait(not_until)));
        }
        Ok(())
    }

    /// Forgets callers whose buckets are full again (as if never seen), so the key space stays
    /// bounded by the recent call rate, not by how many session ids clients invent.
    pub(crate) fn forget_idle(&self) {
        for (limiter, _) in [&self.session_burst, &self.session_hourly]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for (limiter, _) in [&self.principal_burst, &self.principal_hourly]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Callers remembered (sessions and principals), for tests of the bound.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        let sessions: usize = [&self.session_burst, &self.session_hourly]
            .into_iter()
            .flatten()
            .map(|(l, _)| l.len())
            .sum();
        let principals: usize = [&self.principal_burst, &self.principal_hourly]
            .into_iter()
            .flatten()
            .map(|(l, _)| l.len())
            .sum();
        sessions + principals
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

    fn with(config: BudgetConfig) -> (Budget<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Budget::with_clock(&config, clock.clone()), clock)
    }

    /// Only the per-session and global budgets (principal budgets off).
    fn budget(
        per_hour: u32,
        burst: u32,
        global: u32,
    ) -> (Budget<FakeRelativeClock>, FakeRelativeClock) {
        with(BudgetConfig {
            per_session_per_hour: per_hour,
            burst_per_minute: burst,
            per_principal_per_hour: 0,
            principal_burst_per_minute: 0,
            global_per_hour: global,
        })
    }

    fn off() -> BudgetConfig {
        BudgetConfig {
            per_session_per_hour: 0,
            burst_per_minute: 0,
            per_principal_per_hour: 0,
            principal_burst_per_minute: 0,
            global_per_hour: 0,
        }
    }

    #[test]
    fn the_101st_call_in_an_hour_is_refused_with_a_retry_time() {
        let (b, clock) = budget(100, 0, 0);
        for i in 0..100 {
            assert!(b.take("p", "s").is_ok(), "call {}", i + 1);
        }
        let refusal = b.take("p", "s").unwrap_err();
        assert!(
            refusal.contains("100 calls per hour") && refusal.contains("36 s"),
            "{refusal}"
        );
        // Another session has its own budget.
        assert!(b.take("p", "other").is_ok());
        // The bucket refills: one call every 36 seconds.
        clock.advance(Duration::from_secs(36));
        assert!(b.take("p", "s").is_ok());
        assert!(b.take("p", "s").is_err());
    }

    #[test]
    fn stateless_calls_draw_only_on_the_principals_budget() {
        // Stateless requests share no session: a per-session hourly cap of 2 must not cap a
        // principal whose own share is 5.
        let (b, _) = with(BudgetConfig {
            per_session_per_hour: 2,
            burst_per_minute: 2,
            per_principal_per_hour: 5,
            principal_burst_per_minute: 0,
            global_per_hour: 0,
        });
        for i in 0..5 {
            assert!(
                b.take("p", crate::guard::STATELESS_SESSION).is_ok(),
                "call {}",
                i + 1
            );
        }
        let refusal = b.take("p", crate::guard::STATELESS_SESSION).unwrap_err();
        assert!(refusal.contains("all its"), "{refusal}");
    }

    #[test]
    fn a_session_id_is_the_principals_own() {
        // The same session id under another principal is another budget: a client cannot
        // spend someone else's session by sending its id.
        let (b, _) = budget(2, 0, 0);
        assert!(b.take("token:a", "s").is_ok());
        assert!(b.take("token:a", "s").is_ok());
        assert!(b.take("token:a", "s").is_err());
        assert!(b.take("token:b", "s").is_ok());
    }

    #[test]
    fn burst_limit_per_minute() {
        let (b, clock) = budget(100, 20, 0);
        for _ in 0..20 {
            assert!(b.take("p", "s").is_ok());
        }
        let refusal = b.take("p", "s").unwrap_err();
        assert!(
            refusal.contains("20 calls per minute") && refusal.contains("3 s"),
            "{refusal}"
        );
        clock.advance(Duration::from_secs(3));
        assert!(b.take("p", "s").is_ok());
    }

    #[test]
    fn new_session_ids_do_not_escape_the_principals_burst() {
        let (b, clock) = with(BudgetConfig {
            principal_burst_per_minute: 20,
            ..BudgetConfig::default()
        });
        for i in 0..20 {
            assert!(b.take("token:a", &format!("random-{i}")).is_ok(), "{i}");
        }
        let refusal = b.take("token:a", "random-20").unwrap_err();
        assert!(
            refusal.contains("all its sessions together")
                && refusal.contains("TAGWARDEN_BUDGET_PRINCIPAL_BURST"),
            "{refusal}"
        );
        // Another principal is not affected.
        assert!(b.take("token:b", "random-20").is_ok());
        clock.advance(Duration::from_secs(3));
        assert!(b.take("token:a", "random-21").is_ok());
    }

    #[test]
    fn new_sessions_do_not_reset_the_principals_hourly_budget() {
        let (b, _) = with(BudgetConfig {
            per_principal_per_hour: 5,
            ..off()
        });
        for i in 0..5 {
            assert!(b.take("token:a", &format!("s{i}")).is_ok());
        }
        let refusal = b.take("token:a", "fresh").unwrap_err();
        assert!(
            refusal.contains("5 calls per hour") && refusal.contains("a new session"),
            "{refusal}"
        );
    }

    #[test]
    fn one_principal_cannot_use_up_the_global_budget() {
        // A (2,100 calls) exhausts its own share; B's first call still succeeds, and A's
        // refused calls took nothing from the global budget.
        let (b, _) = with(BudgetConfig {
            per_principal_per_hour: 500,
            global_per_hour: 2000,
            ..off()
        });
        let refused = (0..2100)
            .filter(|i| b.take("token:a", &format!("s{i}")).is_err())
            .count();
        assert_eq!(refused, 1600);
        assert!(b.take("token:b", "s").is_ok());
        // 501 of the 2,000 were used: the rest is there for the others.
        for p in ["token:c", "token:d"] {
            for _ in 0..500 {
                assert!(b.take(p, "s").is_ok(), "{p}");
            }
        }
        for _ in 0..499 {
            assert!(b.take("token:e", "s").is_ok());
        }
        assert!(
            b.take("token:e", "s")
                .unwrap_err()
                .contains("all clients together")
        );
    }

    #[test]
    fn global_budget_across_sessions() {
        let (b, _) = budget(0, 0, 5);
        for i in 0..5 {
            assert!(b.take("p", &format!("s{i}")).is_ok());
        }
        assert!(
            b.take("p", "s9")
                .unwrap_err()
                .contains("all clients together")
        );
    }

    #[test]
    fn made_up_session_ids_are_forgotten_once_their_buckets_refill() {
        let (b, clock) = with(BudgetConfig::default());
        for i in 0..1000 {
            let _ = b.take(&format!("ip:{}", i % 7), &format!("random-{i}"));
        }
        assert!(b.remembered() > 1000, "{}", b.remembered());
        // After an hour every bucket is full again: nothing needs remembering.
        clock.advance(HOUR);
        b.forget_idle();
        assert_eq!(b.remembered(), 0);
        // The sweep also runs by itself, every SWEEP_EVERY calls.
        let (b, clock) = with(BudgetConfig {
            principal_burst_per_minute: 0,
            ..BudgetConfig::default()
        });
        for i in 0..SWEEP_EVERY - 1 {
            let _ = b.take("p", &format!("random-{i}"));
        }
        // Each made-up session twice (burst, hourly), the principal once (hourly).
        assert_eq!(b.remembered(), 2 * (SWEEP_EVERY as usize - 1) + 1);
        clock.advance(HOUR);
        assert!(b.take("p", "one-more").is_ok());
        assert_eq!(
            b.remembered(),
            3,
            "only the last call's session and principal"
        );
    }

    #[test]
    fn a_stateless_call_draws_on_its_principals_and_the_global_buckets() {
        let all = buckets(&BudgetConfig::default(), "s-1");
        assert_eq!(
            all.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
            Bucket::ORDER.to_vec()
        );
        assert_eq!(all[0], (Bucket::SessionBurst, 20));
        let stateless = buckets(&BudgetConfig::default(), crate::guard::STATELESS_SESSION);
        assert_eq!(
            stateless,
            vec![
                (Bucket::PrincipalBurst, 20),
                (Bucket::PrincipalHourly, 500),
                (Bucket::Global, 2000)
            ]
        );
        // The console: the principal's hourly and the global budget only.
        assert_eq!(
            buckets(&BudgetConfig::default(), crate::guard::CONSOLE_SESSION),
            vec![(Bucket::PrincipalHourly, 500), (Bucket::Global, 2000)]
        );
        // Budgets switched off are not checked at all.
        assert!(buckets(&off(), "s-1").is_empty());
    }

    #[test]
    fn console_calls_skip_the_minute_budgets_but_use_up_the_principals_hour() {
        let config = BudgetConfig {
            per_principal_per_hour: 30,
            ..BudgetConfig::default()
        };
        let (b, _) = with(config);
        for i in 0..30 {
            assert!(
                b.take("p", crate::guard::CONSOLE_SESSION).is_ok(),
                "call {i}"
            );
        }
        let refusal = b.take("p", crate::guard::CONSOLE_SESSION).unwrap_err();
        assert!(
            refusal.contains("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR"),
            "{refusal}"
        );
        // The same principal over MCP is out of its hour too.
        assert!(b.take("p", "s-1").is_err());
        assert!(b.take("q", crate::guard::CONSOLE_SESSION).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let (b, _) = with(off());
        for _ in 0..10_000 {
            assert!(b.take("p", "s").is_ok());
        }
    }
}
