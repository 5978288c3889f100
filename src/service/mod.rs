//! Use cases shared by the MCP tools and the CLI, below the tool layer: each takes a question
//! in plain types and answers it, so the tools only translate arguments and answers.

pub(crate) mod alerts;
pub(crate) mod allocation;
pub(crate) mod allocation_rules;
pub(crate) mod anomalies;
pub(crate) mod audits;
pub(crate) mod compliance;
pub(crate) mod costs;
pub(crate) mod export;
pub(crate) mod paging;
pub(crate) mod promote;
pub(crate) mod report;
pub(crate) mod scope;
pub(crate) mod snapshot;
pub(crate) mod suggestions;
pub(crate) mod virtual_tags;
