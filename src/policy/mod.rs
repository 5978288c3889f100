//! The tagging policy: its file format, loading with precise errors, compilation and the pure
//! evaluator. Nothing here does I/O except `loader::load_policy_file`.

mod compile;
pub mod compiled;
pub mod evaluate;
pub mod loader;
mod lookup;
pub mod model;
pub mod pattern;
pub mod render;
mod summary;
mod violation;

#[cfg(test)]
mod tests;

pub use compiled::{KeyId, Policy};
pub use evaluate::{
    Evaluation, EvaluationRef, Evaluations, Evaluator, View, Violation, ViolationKind,
};
pub use loader::{PolicyError, default_policy, load_policy_file, parse_policy};
pub use model::{KeyMatching, PolicyFile, Severity};
pub use render::{Expected, ViolationDetail};
