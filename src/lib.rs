//! Tagwarden: tag governance for cloud cost attribution, served to AI assistants over MCP.
//!
//! Data flows one way: providers (`inventory`) → normalise and evaluate (`policy`,
//! `compliance`) → present (`tools`, `cli`). The policy engine and the aggregation are pure; I/O
//! lives at the edges behind small traits.

pub mod policy;
pub mod util;
pub mod aws;
pub mod inventory;
pub mod compliance;
pub mod app;
pub mod tools;
pub mod server;
pub mod cli;
