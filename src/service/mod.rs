//! Use cases shared by the MCP tools and the CLI, below the tool layer: each takes a question
//! in plain types and answers it, so the tools only translate arguments and answers.

pub(crate) mod compliance;
pub(crate) mod costs;
pub(crate) mod paging;
pub(crate) mod scope;
pub(crate) mod snapshot;
pub(crate) mod virtual_tags;
