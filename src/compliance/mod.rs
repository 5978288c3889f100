//! Compliance over a whole inventory: evaluate every resource once, then answer filtered
//! questions (scores, counts by severity/kind/key/type/region/account, the worst violations
//! first) from those evaluations. Pure: no I/O, no clock.

pub(crate) mod capture;
pub(crate) mod export;
pub(crate) mod filter;
pub(crate) mod overlay;
pub(crate) mod summary;

pub(crate) use filter::{ResourceFilter, Scope, ViolationFilter};
pub(crate) use summary::{GroupCount, Score, SeverityCounts, Summary, pct, summarize};

use crate::inventory::Resource;
use crate::policy::{Evaluations, Policy};

/// Evaluates every resource against the policy (both views), in inventory order.
pub fn evaluate_inventory(policy: &Policy, resources: &[Resource]) -> Evaluations {
    let mut evaluator = policy.evaluator();
    let mut out = Evaluations::with_capacity(resources.len());
    for r in resources {
        evaluator.evaluate_into(&r.resource_type, &r.tags, &mut out);
    }
    out
}
