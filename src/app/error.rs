//! The one error type of a tool call or use-case, as the assistant sees it: an `isError` result
//! whose message says what to do. It lives beside `Call` so that the layers under the tools
//! (use-cases, the CLI, the scheduler) report the same way without reaching up into `tools`.

use crate::inventory::InventoryError;
use crate::store::StoreError;

/// An error a tool reports to the assistant as an `isError` result: the message says what to do.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ToolError {
    /// The arguments are wrong; the message names the argument and the fix.
    #[error("{0}")]
    InvalidArgument(String),
    /// The data needed is not available (cloud unreachable, file missing, ...).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected state; the message says so without internals.
    #[error("{0}")]
    Internal(String),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ToolError::InvalidArgument(message.into())
    }

    /// Short class for logs and audit (`invalid_argument`, `unavailable`, `internal`).
    pub fn class(&self) -> &'static str {
        match self {
            ToolError::InvalidArgument(_) => "invalid_argument",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::Internal(_) => "internal",
        }
    }
}

impl From<InventoryError> for ToolError {
    fn from(e: InventoryError) -> Self {
        ToolError::Unavailable(e.to_string())
    }
}

/// The one mapping of store failures: a refusal is the caller's to fix (its message says how);
/// a stopped task is a bug; anything else leaves the store unavailable ("<store>: <why>").
impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(why) => ToolError::InvalidArgument(why),
            StoreError::Stopped(e) => ToolError::Internal(format!("the store task stopped: {e}")),
            other => ToolError::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_one_kind_of_tool_error_each() {
        assert_eq!(
            ToolError::from(StoreError::Refused("priority 50 is taken".into())),
            ToolError::InvalidArgument("priority 50 is taken".into())
        );
        assert!(matches!(
            ToolError::from(StoreError::Stopped("boom".into())),
            ToolError::Internal(m) if m.starts_with("the store task stopped")
        ));
        assert!(matches!(
            ToolError::from(StoreError::Sql("disk I/O error".into())),
            ToolError::Unavailable(m) if m.contains("disk I/O error")
        ));
    }
}
