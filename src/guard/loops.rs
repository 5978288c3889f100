//! Loop detection, in process: the same tool with the same canonical arguments more than N
//! times in a window is refused, and so is an A-B-A-B alternation of two identical calls.
//! Refused calls are not remembered, so a refusal never extends itself. With Redis
//! (`guard::shared`) replicas apply the same rule (`judge`) to calls remembered in Redis, and
//! fall back to this detector while Redis does not answer.
//!
//! Calls are remembered per principal (who the server verified the caller to be), not per
//! session: a client that sends each call under a new session id is still the same client. The
//! fingerprint is taken over the arguments with the tool's defaults applied (see
//! `ToolEntry::canonical_args`), so spelling out a default value is not a different call.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Loop settings; `max_repeats` 0 turns detection off.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    pub max_repeats: u32,
    pub window: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_repeats: 3,
            window: Duration::from_secs(300),
        }
    }
}

/// Calls remembered per principal (a default window at the default burst rate holds 100).
pub(crate) const HISTORY: usize = 256;
/// Principals remembered before those with no call in the window are forgotten.
const MAX_PRINCIPALS: usize = 10_000;

/// `sha256(tool, canonical arguments)`: identical calls, whatever the key order, spacing or
/// spelled-out defaults.
pub(crate) type Fingerprint = [u8; 32];

/// Why a call is a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The same call was already made this many times in the window.
    Repeated(usize),
    /// A, B, A and now B again.
    Alternating,
}

impl Verdict {
    /// The refusal, the same whether the calls were remembered here or in Redis.
    pub(crate) fn refusal(self, tool: &str, window: Duration) -> String {
        let minutes = window.as_secs().div_ceil(60);
        match self {
            Verdict::Repeated(repeats) => format!(
                "loop detected: {tool} was already called {repeats} times with these arguments \
                 (defaults included, in any session of this client) in the last {minutes} \
                 minutes (TAGWARDEN_LOOP_MAX_REPEATS). Reuse the earlier answer, or change the \
                 arguments (filters, cursor, limit, or force_refresh to rescan)."
            ),
            Verdict::Alternating => format!(
                "loop detected: the last calls alternate between the same two requests \
                 (A, B, A and now B again, {tool}). Reuse the earlier answers instead of \
                 asking again, or change the arguments."
            ),
        }
    }
}

/// Judges a call against the principal's earlier admitted calls in the window (oldest first).
/// The shared state's Lua script applies the same rule in Redis.
pub(crate) fn judge(
    earlier: &[Fingerprint],
    call: &Fingerprint,
    max_repeats: u32,
) -> Option<Verdict> {
    let repeats = earlier.iter().filter(|f| *f == call).count();
    if repeats >= max_repeats as usize {
        return Some(Verdict::Repeated(repeats));
    }
    if let [.., a, b, c] = earlier
        && a == c
        && b == call
        && a != call
    {
        return Some(Verdict::Alternating);
    }
    None
}

pub(crate) struct LoopDetector {
    config: LoopConfig,
    principals: Mutex<HashMap<String, VecDeque<(Instant, Fingerprint)>>>,
}

impl LoopDetector {
    pub(crate) fn new(config: LoopConfig) -> Self {
        LoopDetector {
            config,
            principals: Mutex::new(HashMap::new()),
        }
    }

    /// Admits the principal's call and remembers it, or refuses it with a hint.
    pub(crate) fn admit(
        &self,
        principal: &str,
        tool: &str,
        call: Fingerprint,
        now: Instant,
    ) -> Result<(), String> {
        if self.config.max_repeats == 0 {
            return Ok(());
        }
        let mut principals = self.principals.lock().unwrap_or_else(|e| e.into_inner());
        if principals.len() > MAX_PRINCIPALS {
            let window = self.config.window;
            principals.retain(|_, calls| {
                calls
                    .back()
                    .is_some_and(|(t, _)| now.duration_since(*t) < window)
            });
        }
        let calls = principals.entry(principal.to_string()).or_default();
        while calls
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= self.config.window)
        {
            calls.pop_front();
        }
        let earlier: Vec<Fingerprint> = calls.iter().map(|(_, f)| *f).collect();
        if let Some(verdict) = judge(&earlier, &call, self.config.max_repeats) {
            return Err(verdict.refusal(tool, self.config.window));
        }
        calls.push_back((now, call));
        if calls.len() > HISTORY {
            calls.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        [n; 32]
    }

    #[test]
    fn fourth_identical_call_in_the_window_is_refused() {
        let d = LoopDetector::new(LoopConfig::default());
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                d.admit(
                    "s",
                    "check_tag_compliance",
                    fp(1),
                    t0 + Duration::from_secs(i)
                )
                .is_ok()
            );
        }
        let e = d
            .admit(
                "s",
                "check_tag_compliance",
                fp(1),
                t0 + Duration::from_secs(10),
            )
            .unwrap_err();
        assert!(
            e.contains("3 times") && e.contains("5 minutes") && e.contains("Reuse"),
            "{e}"
        );
        // Other arguments and other principals are unaffected.
        assert!(
            d.admit(
                "s",
                "check_tag_compliance",
                fp(2),
                t0 + Duration::from_secs(11)
            )
            .is_ok()
        );
        assert!(
            d.admit(
                "other",
                "check_tag_compliance",
                fp(1),
                t0 + Duration::from_secs(11)
            )
            .is_ok()
        );
    }

    #[test]
    fn the_window_expires() {
        let d = LoopDetector::new(LoopConfig::default());
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                d.admit("s", "t", fp(1), t0 + Duration::from_secs(i))
                    .is_ok()
            );
        }
        assert!(
            d.admit("s", "t", fp(1), t0 + Duration::from_secs(299))
                .is_err()
        );
        // 300 s after the first call it has left the window; the refused call was not counted.
        assert!(
            d.admit("s", "t", fp(1), t0 + Duration::from_secs(300))
                .is_ok()
        );
    }

    #[test]
    fn a_b_a_b_alternation_is_refused() {
        let d = LoopDetector::new(LoopConfig::default());
        let t = Instant::now();
        assert!(d.admit("s", "t", fp(1), t).is_ok());
        assert!(d.admit("s", "t", fp(2), t).is_ok());
        assert!(d.admit("s", "t", fp(1), t).is_ok());
        let e = d.admit("s", "t", fp(2), t).unwrap_err();
        assert!(e.contains("alternate"), "{e}");
        // A-B-A-C is not a loop.
        assert!(d.admit("s", "t", fp(3), t).is_ok());
    }

    #[test]
    fn judge_is_the_rule_for_both_stores() {
        let (a, b, c) = (fp(1), fp(2), fp(3));
        assert_eq!(judge(&[], &a, 3), None);
        assert_eq!(judge(&[a, b, a, c, a], &a, 3), Some(Verdict::Repeated(3)));
        assert_eq!(judge(&[c, a, b, a], &b, 3), Some(Verdict::Alternating));
        // A, A, A then A is a repeat, not an alternation; A, B, A then C is neither.
        assert_eq!(judge(&[a, a], &a, 3), None);
        assert_eq!(judge(&[a, b, a], &c, 3), None);
        let refusal = Verdict::Repeated(3).refusal("t", Duration::from_secs(300));
        assert!(refusal.contains("3 times") && refusal.contains("5 minutes"));
    }

    #[test]
    fn zero_turns_it_off() {
        let d = LoopDetector::new(LoopConfig {
            max_repeats: 0,
            window: Duration::from_secs(300),
        });
        let t = Instant::now();
        for _ in 0..100 {
            assert!(d.admit("s", "t", fp(1), t).is_ok());
        }
    }
}
