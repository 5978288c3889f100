//! Input limits: sizes, depth, control characters and resource-id formats, checked before any
//! tool runs. A refusal names the argument and the limit, so an assistant can fix the call.

use serde_json::Value;

use crate::inventory::id::grammar;

/// Bounds on tool arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The whole argument object, serialised.
    pub max_argument_bytes: usize,
    /// Each string (and each object key).
    pub max_string_bytes: usize,
    /// Each list.
    pub max_list_items: usize,
    /// Objects and lists nested inside each other.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_argument_bytes: 64 * 1024,
            max_string_bytes: 2 * 1024,
            max_list_items: 1000,
            max_depth: 8,
        }
    }
}

/// Argument names whose values are resource ids (a string or a list of strings).
const ID_ARGUMENTS: &[&str] = &["resource_id", "resource_ids"];

/// The serialised size of the arguments when it is over the limit.
pub(crate) fn oversized(limits: &Limits, args: &Value) -> Option<usize> {
    let size = serde_json::to_vec(args)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    (size > limits.max_argument_bytes).then_some(size)
}

/// Checks the arguments of a tool call; the error is the refusal text.
pub(crate) fn check(limits: &Limits, args: &Value) -> Result<(), String> {
    if let Some(size) = oversized(limits, args) {
        return Err(format!(
            "the arguments are {size} bytes; the limit is {} bytes for a whole call \
             (TAGWARDEN_MAX_ARGUMENT_BYTES). Send fewer items per call and page through them.",
            limits.max_argument_bytes
        ));
    }
    walk(limits, args, "", 0)
}

fn walk(limits: &Limits, value: &Value, path: &str, depth: usize) -> Result<(), String> {
    let name = if path.is_empty() { "arguments" } else { path };
    match value {
        Value::String(s) => check_string(limits, s, name),
        Value::Array(items) => {
            if depth >= limits.max_depth {
                return Err(too_deep(limits, name));
            }
            if items.len() > limits.max_list_items {
                return Err(format!(
                    "argument `{name}` has {} items; the limit is {} per list \
                     (TAGWARDEN_MAX_LIST_ITEMS). Split the call.",
                    items.len(),
                    limits.max_list_items
                ));
            }
            for (i, item) in items.iter().enumerate() {
                walk(limits, item, &format!("{name}[{i}]"), depth + 1)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            if depth >= limits.max_depth {
                return Err(too_deep(limits, name));
            }
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_string(limits, key, &format!("{child} (the key itself)"))?;
                if depth == 0 && ID_ARGUMENTS.contains(&key.as_str()) {
                    check_ids(item, &child)?;
                }
                walk(limits, item, &child, depth + 1)?;
            }
            Ok(())
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
    }
}

fn too_deep(limits: &Limits, name: &str) -> String {
    format!(
        "argument `{name}` is nested more than {} levels deep (TAGWARDEN_MAX_DEPTH); tool \
         arguments are flat objects and lists",
        limits.max_depth
    )
}

fn check_string(limits: &Limits, s: &str, name: &str) -> Result<(), String> {
    if s.len() > limits.max_string_bytes {
        return Err(format!(
            "argument `{name}` is {} bytes; the limit is {} bytes per string \
             (TAGWARDEN_MAX_STRING_BYTES)",
            s.len(),
            limits.max_string_bytes
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!(
            "argument `{name}` contains the control character U+{:04X}; remove it (tool \
             arguments are plain text)",
            c as u32
        ));
    }
    Ok(())
}

fn check_ids(value: &Value, name: &str) -> Result<(), String> {
    let ids: Vec<(String, &str)> = match value {
        Value::String(s) => vec![(name.to_string(), s.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_str().map(|s| (format!("{name}[{i}]"), s)))
            .collect(),
        _ => return Ok(()), // the schema check names the wrong type
    };
    for (name, id) in ids {
        if let Err(why) = grammar::check(id) {
            return Err(format!(
                "argument `{name}`: `{}` is not a resource id ({why}). Give an ARN \
                 (arn:aws:ec2:us-east-1:123456789012:instance/i-0abc), an Azure id \
                 (/subscriptions/<id>/resourceGroups/...) or a GCP name \
                 (//compute.googleapis.com/projects/...), as listed by the other tools.",
                shorten(id, 80)
            ));
        }
    }
    Ok(())
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn small() -> Limits {
        Limits {
            max_argument_bytes: 200,
            max_string_bytes: 20,
            max_list_items: 3,
            max_depth: 3,
        }
    }

    #[test]
    fn sizes_and_depth_name_the_argument_and_limit() {
        let l = small();
        assert!(check(&l, &json!({"a": "short", "b": [1, 2, 3]})).is_ok());
        let e = check(&l, &json!({"tag_keys": ["a", "b", "c", "d"]})).unwrap_err();
        assert!(e.contains("`tag_keys`") && e.contains("limit is 3"), "{e}");
        let e = check(&l, &json!({"name": "x".repeat(21)})).unwrap_err();
        assert!(
            e.contains("`name`") && e.contains("21 bytes") && e.contains("20 bytes"),
            "{e}"
        );
        let e = check(&l, &json!({"a": {"b": {"c": {"d": 1}}}})).unwrap_err();
        assert!(e.contains("`a.b.c`") && e.contains("3 levels"), "{e}");
        let e = check(&l, &json!({"a": "x".repeat(10), "b": "y".repeat(10), "d": "w".repeat(19), "e": "v".repeat(19), "f": "u".repeat(19), "g": "t".repeat(19), "h": "s".repeat(19), "i": "r".repeat(19), "j": "q".repeat(19)})).unwrap_err();
        assert!(e.contains("limit is 200 bytes"), "{e}");
        let e = check(&l, &json!({"k".repeat(25): 1})).unwrap_err();
        assert!(e.contains("the key itself"), "{e}");
    }

    #[test]
    fn control_characters_are_refused() {
        let l = Limits::default();
        for bad in [
            "a\u{0}b",
            "line\nbreak",
            "\u{1b}[31m",
            "tab\there",
            "\u{7f}",
        ] {
            let e = check(&l, &json!({"tags": {"Owner": bad}})).unwrap_err();
            assert!(
                e.contains("`tags.Owner`") && e.contains("control character"),
                "{e}"
            );
        }
        assert!(check(&l, &json!({"tags": {"Owner": "ünïcødé ✓ 名前"}})).is_ok());
    }

    #[test]
    fn resource_ids_are_checked_by_grammar() {
        let l = Limits::default();
        let ok = json!({"resource_ids": [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
            "arn:aws:s3:::my-bucket",
            "arn:aws-cn:rds:cn-north-1:123456789012:db:orders",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "/subscriptions/0000-1111/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "//compute.googleapis.com/projects/p/zones/z/instances/i"
        ]});
        assert!(check(&l, &ok).is_ok());
        for (bad, why) in [
            ("i-0abc", "not an ARN"),
            ("arn:aws:ec2:us-east-1:123:instance/i-1", "12 digits"),
            ("arn:aws:ec2:us-east-1:123456789012", "six parts"),
            ("arn:gcp:ec2:r:123456789012:x", "partition"),
            ("arn:aws:EC2:r:123456789012:x", "service"),
            ("arn:aws:ec2:us-east-1:123456789012:", "empty"),
            ("arn:aws:ec2:us-east-1:123456789012:instance/ i", "spaces"),
            ("//example.com/x", "GCP"),
            ("/subscriptions/", "Azure"),
        ] {
            let e = check(&l, &json!({"resource_ids": ["arn:aws:s3:::fine", bad]})).unwrap_err();
            assert!(
                e.contains("`resource_ids[1]`") && e.contains(why),
                "{bad}: {e}"
            );
        }
        // Only the id arguments are checked this way.
        assert!(check(&l, &json!({"tag_keys": ["i-0abc"]})).is_ok());
    }
}
