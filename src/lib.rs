//! Tagwarden: tag governance for cloud cost attribution, served to AI assistants over MCP.
//!
//! Data flows one way: providers (`inventory`) → normalise and evaluate (`policy`,
//! `compliance`) → present (`tools`, `cli`). The policy engine and the aggregation are pure; I/O
//! lives at the edges behind small traits.

pub mod app;
pub mod aws;
pub mod cache;
pub mod cli;
pub mod compliance;
pub mod cost;
pub mod guard;
pub mod history;
pub mod inventory;
pub mod policy;
pub mod rules;
pub mod server;
pub mod service;
pub mod store;
pub mod suggest;
pub mod tools;
pub mod util;
