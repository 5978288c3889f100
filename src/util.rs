//! Small helpers shared across layers.

use std::time::Duration;

use serde_json::Value;

/// JSON with object keys sorted and no whitespace: the same data always gives the same text, so
/// hashes over it identify content (policies, tool arguments), not formatting.
pub(crate) fn canonical_json(value: &Value) -> String {
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
pub(crate) const MAX_JSON_DEPTH: usize = 100;

/// Whether a JSON text nests objects and arrays at most `max` deep. A byte scan (strings and
/// escapes skipped), so checking costs no allocation even for large messages.
pub(crate) fn json_depth_within(bytes: &[u8], max: usize) -> bool {
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
pub(crate) fn thousands(n: impl std::fmt::Display) -> String {
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

/// `500ms`, `90s`, `30m`, `1h`, `2d`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (use e.g. 90s, 30m, 1h)"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m, h or d)"
            ));
        }
    })
}

/// The largest whole unit of `parse_duration` that writes `d` exactly: `6h`, `90s`, `1d`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Runs `work` on the two halves of `0..n`, the second half on a scoped thread, and returns
/// both results in order: CPU work over a million resources (hashing, copying, compressing) on
/// the machine's two cores. A panic in either half is resumed here.
pub(crate) fn on_two_halves<R: Send>(
    n: usize,
    work: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> (R, R) {
    let mid = n / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| work(mid..n));
        let first = work(0..mid);
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first, second)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_format_back_to_what_parses() {
        for text in ["6h", "90s", "1d", "30m", "1500ms", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }

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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
