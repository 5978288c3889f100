//! Loop detection, in-process (it needs no Redis and cannot silently stop working): the same
//! tool with the same canonical arguments more than N times in a window is refused, and so is an
//! A-B-A-B alternation of two identical calls. Refused calls are not remembered, so a refusal
//! never extends itself.
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
const HISTORY: usize = 256;
/// Principals remembered before those with no call in the window are forgotten.
const MAX_PRINCIPALS: usize = 10_000;

/// `sha256(tool, canonical arguments)`: identical calls, whatever the key order, spacing or
/// spelled-out defaults.
pub(crate) type Fingerprint = [u8; 32];

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
        let minutes = self.config.window.as_secs().div_ceil(60);
        let repeats = calls.iter().filter(|(_, f)| *f == call).count();
        if repeats >= self.config.max_repeats as usize {
            return Err(format!(
                "loop detected: {tool} was already called {repeats} times with these arguments \
                 (defaults included, in any session of this client) in the last {minutes} \
                 minutes (TAGWARDEN_LOOP_MAX_REPEATS). Reuse the earlier answer, or change the \
                 arguments (filters, cursor, limit, or force_refresh to rescan)."
            ));
        }
        let n = calls.len();
        if n >= 3 {
            let (a, b, c) = (calls[n - 3].1, calls[n - 2].1, calls[n - 1].1);
            if a == c && b == call && a != call {
                return Err(format!(
                    "loop detected: the last calls alternate between the same two requests \
                     (A, B, A and now B again, {tool}). Reuse the earlier answers instead of \
                     asking again, or change the arguments."
                ));
            }
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
