//! Tagwarden: tag governance for cloud cost attribution, served to AI assistants over MCP.
//!
//! Data flows one way: providers (`inventory`) → normalise and evaluate (`policy`,
//! `compliance`) → present (`tools`, `cli`). The policy engine and the aggregation are pure; I/O
//! lives at the edges behind small traits. `ARCHITECTURE.md` maps the layers.
//!
//! The crate is a binary first. Its modules are private; the items below are the deliberate
//! public surface: what the binary runs, the pure engine the benchmarks measure, and the few
//! types the integration tests drive directly (the tool registry, the history store). Anything
//! else may change without notice.

#![warn(unreachable_pub, missing_docs)]

mod app;
mod aws;
mod cache;
mod cli;
mod compliance;
mod cost;
mod guard;
mod history;
mod inventory;
mod metrics;
mod policy;
mod report;
mod rules;
mod server;
mod service;
mod store;
mod suggest;
mod tools;
mod util;

/// The command line: parse it with `Cli::parse()` and run it with [`run`].
pub use cli::{Cli, Command, run};

/// The registry of MCP tools: names, schemas, examples.
pub use tools::Registry;

/// The Streamable HTTP transport with its gates (auth, limits, sessions), for serving any MCP
/// handler the way `tagwarden serve --http` does (the conformance fixture uses it).
pub use server::http::{HttpError, HttpOptions, OAuthOptions, serve_handler};

/// The policy model: load a policy file or take the built-in one.
pub use policy::compiled::Policy;
pub use policy::loader::{default_policy, load_policy_file};
pub use policy::model::Severity;

/// The resource model and the generated demo estate.
pub use inventory::demo::{
    DEFAULT_SEED as DEMO_SEED, DemoEstate, generate as generate_demo_estate,
};
pub use inventory::{Resource, sort_and_dedupe};

/// The pure compliance engine: evaluate an inventory under a policy and summarise it.
pub use compliance::evaluate_inventory;
pub use compliance::filter::{ResourceFilter, ViolationFilter};
pub use compliance::summary::summarize;

/// Costs: FOCUS files, the demo estate's costs, periods and metrics.
pub use cost::demo::demo_line_costs;
pub use cost::focus::{FocusAggregate, read_focus};
pub use cost::{CostMetric, Period};

/// The virtual-tag rule engine.
pub use rules::{CompiledRules, RuleSpec};

/// Tag suggestions.
pub use suggest::{Reliability, SuggestConfig, Suggester};

/// The compliance history store (SQLite) and what a snapshot records.
pub use history::filters::snapshot_filters;
pub use history::{MemberRecord, NewSnapshot};
pub use store::history::HistoryDb;
