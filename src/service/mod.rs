//! Use cases shared by the MCP tools and the CLI, below the tool layer: each takes a question
//! in plain types and answers it, so the tools only translate arguments and answers.

pub mod costs;
pub mod scope;
