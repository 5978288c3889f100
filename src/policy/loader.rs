//! Reading a policy: bytes → `PolicyFile` → compiled `Policy`, with errors that name the JSON
//! path and the reason, so a user can fix a broken file without guessing.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::compiled::Policy;
use super::model::PolicyFile;

/// The policy shipped in the binary, used when no policy file is given or found.
pub(crate) const DEFAULT_POLICY_JSON: &str = include_str!("../../policies/tagging_policy.json");

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PolicyError {
    #[error("cannot read policy file {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("policy is not valid JSON at line {line}, column {column}: {reason}")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("policy field `{path}`: {reason}")]
    Invalid { path: String, reason: String },
}

impl PolicyError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        PolicyError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Parses and compiles a policy from JSON text.
pub(crate) fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
        line: e.line(),
        column: e.column(),
        reason: strip_position(&e.to_string()),
    })?;
    if !value.is_object() {
        return Err(PolicyError::invalid(
            "$",
            "the policy must be a JSON object with at least `required_tags`",
        ));
    }
    let hash = canonical_hash(&value);
    let cleaned = strip_comment_keys(value);
    let file: PolicyFile = serde_path_to_error::deserialize(&cleaned).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { "$".to_string() } else { path };
        PolicyError::invalid(path, e.into_inner().to_string())
    })?;
    Policy::compile(file, hash)
}

/// Reads and compiles a policy file.
pub fn load_policy_file(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
        file: path.display().to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no such file (check --policy / TAGWARDEN_POLICY)".into()
            }
            _ => e.to_string(),
        },
    })?;
    parse_policy(&text)
}

/// The built-in default policy.
pub fn default_policy() -> Policy {
    // The embedded file is checked by a unit test, so this cannot fail at run time.
    match parse_policy(DEFAULT_POLICY_JSON) {
        Ok(p) => p,
        Err(e) => unreachable!("embedded default policy is invalid: {e}"),
    }
}

/// SHA-256 over the policy's canonical JSON (keys sorted, no whitespace), so reformatting a
/// file does not change its identity but any change of content does.
fn canonical_hash(value: &serde_json::Value) -> String {
    let canonical = crate::util::canonical_json(value);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Keys starting with `_` (such as `_comment`) and `$schema` are documentation: dropped before
/// strict parsing so that unknown-field checks still catch typos.
fn strip_comment_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(k, _)| !k.starts_with('_') && k != "$schema")
                .map(|(k, v)| (k, strip_comment_keys(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(strip_comment_keys).collect())
        }
        other => other,
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_policy_is_valid() {
        let p = parse_policy(DEFAULT_POLICY_JSON).expect("default policy must compile");
        assert!(!p.required_key_names().is_empty());
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse_policy("{\n  \"required_tags\": [,]\n}").unwrap_err();
        match err {
            PolicyError::Syntax { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_field_is_refused_with_its_path() {
        let err = parse_policy(r#"{"requried_tags": []}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("requried_tags"), "{text}");
        let err =
            parse_policy(r#"{"required_tags": [{"name": "A", "severty": "low"}]}"#).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Invalid { path, .. } if path == "required_tags[0].severty"),
            "{err:?}"
        );
        assert!(err.to_string().contains("severty"));
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = parse_policy(r#"{"required_tags": [{"name": "A", "severity": "urgent"}]}"#)
            .unwrap_err();
        match &err {
            PolicyError::Invalid { path, reason } => {
                assert_eq!(path, "required_tags[0].severity");
                assert!(reason.contains("urgent"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn comment_keys_are_ignored() {
        let p = parse_policy(
            r#"{"_comment": "x", "$schema": "y", "required_tags": [{"name": "A", "_note": "z"}]}"#,
        )
        .expect("comments allowed");
        assert_eq!(p.required_key_names(), vec!["A"]);
    }

    #[test]
    fn hash_ignores_formatting_but_not_content() {
        let a = parse_policy(r#"{"required_tags":[{"name":"A"}],"version":"1"}"#).unwrap();
        let b = parse_policy("{ \"version\": \"1\",\n \"required_tags\": [ {\"name\": \"A\"} ] }")
            .unwrap();
        let c = parse_policy(r#"{"required_tags":[{"name":"B"}],"version":"1"}"#).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn not_an_object() {
        let err = parse_policy("[1,2]").unwrap_err();
        assert!(matches!(err, PolicyError::Invalid { ref path, .. } if path == "$"));
    }

    #[test]
    fn missing_file_says_which_flag() {
        let err = load_policy_file(Path::new("/nonexistent/policy.json")).unwrap_err();
        assert!(err.to_string().contains("--policy"), "{err}");
    }
}
