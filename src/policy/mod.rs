//! The tagging policy: its file format, loading with precise errors, compilation and the pure
//! evaluator. Nothing here does I/O except `loader::load_policy_file`.

mod compile;
pub(crate) mod compiled;
pub(crate) mod evaluate;
pub(crate) mod interchange;
pub(crate) mod loader;
mod lookup;
pub(crate) mod model;
pub(crate) mod pattern;
pub(crate) mod render;
mod summary;
mod violation;

#[cfg(test)]
mod tests;

pub(crate) use compiled::{KeyId, Policy};
pub(crate) use evaluate::{Evaluation, EvaluationRef, Evaluations, View, Violation, ViolationKind};
pub(crate) use loader::parse_policy;
pub(crate) use loader::{PolicyError, default_policy, load_policy_file};
pub(crate) use model::{KeyMatching, Severity};
pub(crate) use render::ViolationDetail;
