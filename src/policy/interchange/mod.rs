//! Policy interchange: reading AWS Organizations tag policies into Tagwarden's policy model,
//! writing a Tagwarden policy back as an AWS tag policy, and generating Cloud Custodian
//! policies from it. All pure (text and structures in, text and structures out); fetching an
//! effective policy from AWS is the command line's job. Each direction says what it could not
//! carry over in a lossiness report instead of guessing silently.

pub(crate) mod aws_export;
pub(crate) mod aws_import;
pub(crate) mod c7n_types;
pub(crate) mod custodian;
mod custodian_filters;

#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use aws_export::export_aws_tag_policy;
pub(crate) use aws_import::{import_aws_tag_policy, import_aws_tag_policy_value};
pub(crate) use custodian::{
    CustodianAction, CustodianOptions, GeneratedPolicy, generate_custodian,
};

/// How much of a construct survived the conversion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LossKind {
    /// Not carried over at all: the target has no equivalent.
    Dropped,
    /// Carried over with a different (stated) meaning.
    Approximated,
    /// Kept as documentation only (e.g. in a description), without effect.
    Recorded,
}

/// One thing a conversion could not carry over exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct LossItem {
    pub kind: LossKind,
    /// Where in the source (a JSON path such as `tags.costcenter.enforced_for`, or a policy
    /// field such as `required_tags[1].validation_regex`).
    pub path: String,
    /// What happened and why, in one sentence.
    pub reason: String,
}

impl LossItem {
    pub(crate) fn new(kind: LossKind, path: impl Into<String>, reason: impl Into<String>) -> Self {
        LossItem {
            kind,
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// `dropped: tags.x.enforced_for: reason` — one line for stderr.
    pub(crate) fn line(&self) -> String {
        let kind = match self.kind {
            LossKind::Dropped => "dropped",
            LossKind::Approximated => "approximated",
            LossKind::Recorded => "recorded only",
        };
        format!("{kind}: {}: {}", self.path, self.reason)
    }
}

/// A refused input: the JSON path and the reason, like policy errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InterchangeError {
    #[error("not valid JSON at line {line}, column {column}: {reason}")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("`{path}`: {reason}")]
    Invalid { path: String, reason: String },
}

impl InterchangeError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        InterchangeError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn syntax(e: &serde_json::Error) -> Self {
        let text = e.to_string();
        let reason = match text.find(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        InterchangeError::Syntax {
            line: e.line(),
            column: e.column(),
            reason,
        }
    }
}
