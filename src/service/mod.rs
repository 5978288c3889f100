//! Use cases shared by the MCP tools and the CLI, below the tool layer: each takes a question
//! in plain types and answers it, so the tools only translate arguments and answers.

pub mod compliance;
pub mod costs;
pub mod paging;
pub mod scope;
pub mod snapshot;
pub mod virtual_tags;
