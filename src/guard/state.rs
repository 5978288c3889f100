//! Where budgets and loop detection keep what they remember: in this process (`LocalState`,
//! the default and the fallback), or in Redis shared by every replica (`guard::shared`). The
//! pipeline sees only the `GuardState` trait; both refuse with the same words.

use std::time::Instant;

use async_trait::async_trait;

use super::budget::{Budget, BudgetConfig};
use super::loops::{Fingerprint, LoopConfig, LoopDetector};

/// Where the guard's state is kept right now, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// In this process (no Redis configured).
    Local,
    /// In Redis, shared by every replica.
    Shared,
    /// Redis is configured but does not answer: this replica enforces its own limits.
    LocalFallback,
}

impl Kept {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kept::Local => "local",
            Kept::Shared => "shared",
            Kept::LocalFallback => "local (redis unavailable)",
        }
    }
}

/// Budgets and loop detection, keyed on the verified principal (and the session within it).
#[async_trait]
pub(crate) trait GuardState: Send + Sync {
    /// Takes one call from the budgets of this principal's session, of the principal, and of
    /// the server; or says which is used up and when the next call is allowed.
    async fn take(&self, principal: &str, session: &str) -> Result<(), String>;

    /// Admits the principal's call and remembers it, or refuses it as a loop.
    async fn admit(&self, principal: &str, tool: &str, call: Fingerprint) -> Result<(), String>;

    fn kept(&self) -> Kept;
}

/// Budgets and loops in this process.
pub(crate) struct LocalState {
    budget: Budget,
    loops: LoopDetector,
}

impl LocalState {
    pub(crate) fn new(budget: &BudgetConfig, loops: &LoopConfig) -> LocalState {
        LocalState {
            budget: Budget::new(budget),
            loops: LoopDetector::new(loops.clone()),
        }
    }
}

#[async_trait]
impl GuardState for LocalState {
    async fn take(&self, principal: &str, session: &str) -> Result<(), String> {
        self.budget.take(principal, session)
    }

    async fn admit(&self, principal: &str, tool: &str, call: Fingerprint) -> Result<(), String> {
        self.loops.admit(principal, tool, call, Instant::now())
    }

    fn kept(&self) -> Kept {
        Kept::Local
    }
}
