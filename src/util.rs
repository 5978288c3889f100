//! Small helpers shared across layers.

use serde_json::Value;

/// JSON with object keys sorted and no whitespace: the same data always gives the same text, so
/// hashes over it identify content (policies, tool arguments), not formatting.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                write_canonical(&map[*key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Deepest nesting accepted in an incoming JSON message. serde_json (and so rmcp) stops at 128
/// and drops such a message without a reply; refusing earlier lets us answer it.
pub const MAX_JSON_DEPTH: usize = 100;

/// Whether a JSON text nests objects and arrays at most `max` deep. A byte scan (strings and
/// escapes skipped), so checking costs no allocation even for large messages.
pub fn json_depth_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// `1234567` → `"1,234,567"`, for text output.
pub fn thousands(n: impl std::fmt::Display) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_recursively() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn json_depth() {
        assert!(json_depth_within(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(!json_depth_within(br#"{"a": [1, {"b": 2}]}"#, 2));
        // Brackets inside strings, and escaped quotes, do not count.
        assert!(json_depth_within(br#"{"a": "[[[[\"[[["}"#, 1));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!json_depth_within(deep.as_bytes(), MAX_JSON_DEPTH));
    }

    #[test]
    fn canonical_escapes_strings() {
        assert_eq!(canonical_json(&json!({"k\"": "v\n"})), r#"{"k\"":"v\n"}"#);
    }
}
