//! Cloud Custodian filter shapes and the regular expressions they carry.
//!
//! Custodian's value filter semantics (c7n/filters/core.py) decide the shapes: `"tag:K":
//! absent|present` test presence; `op: not-in` also matches a *missing* tag, so for a key that
//! need not be present it is joined with `present`; `op: regex-case` is Python's `re.match`
//! (anchored at the start only, case-sensitive) and is false for a missing tag. A value that
//! must *fail* a pattern is therefore matched by `^(?!(?:P)\Z)`: the negative lookahead holds
//! exactly when P does not match the whole value. Tagwarden's regexes are Rust syntax; the few
//! constructs Python's `re` reads differently are translated or refused, never passed through.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::policy::model::Condition;

/// One Custodian filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Filter {
    /// `{"tag:K": "absent"}` or `present`.
    Presence(BTreeMap<String, &'static str>),
    Value(ValueFilter),
    Or {
        or: Vec<Filter>,
    },
    And {
        and: Vec<Filter>,
    },
}

/// `{type: value, key, op, value}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ValueFilter {
    #[serde(rename = "type")]
    kind: &'static str,
    key: String,
    op: &'static str,
    value: FilterValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum FilterValue {
    One(String),
    Many(Vec<String>),
}

fn tag(key: &str) -> String {
    format!("tag:{key}")
}

impl Filter {
    pub(crate) fn absent(key: &str) -> Filter {
        Filter::Presence(BTreeMap::from([(tag(key), "absent")]))
    }

    pub(crate) fn present(key: &str) -> Filter {
        Filter::Presence(BTreeMap::from([(tag(key), "present")]))
    }

    fn value(key: &str, op: &'static str, value: FilterValue) -> Filter {
        Filter::Value(ValueFilter {
            kind: "value",
            key: tag(key),
            op,
            value,
        })
    }

    /// The value is empty or only whitespace (Tagwarden's `empty_value` on a required key).
    pub(crate) fn blank(key: &str) -> Filter {
        Filter::value(key, "regex-case", FilterValue::One(r"^\s*\Z".to_string()))
    }

    /// The value is not one of `values` (also true when the tag is missing).
    pub(crate) fn not_in(key: &str, values: &[String]) -> Filter {
        Filter::value(key, "not-in", FilterValue::Many(values.to_vec()))
    }

    /// The value does not match the Python regex `python` as a whole (false when missing).
    pub(crate) fn fails_regex(key: &str, python: &str) -> Filter {
        Filter::value(
            key,
            "regex-case",
            FilterValue::One(format!(r"^(?!(?:{python})\Z)")),
        )
    }

    /// Tagwarden's condition as Custodian sees it (on the tags as the cloud holds them).
    pub(crate) fn condition(c: &Condition) -> Filter {
        if let Some(v) = &c.equals {
            Filter::value(&c.key, "eq", FilterValue::One(v.clone()))
        } else if let Some(vs) = &c.in_values {
            Filter::value(&c.key, "in", FilterValue::Many(vs.clone()))
        } else if c.exists == Some(false) {
            Filter::absent(&c.key)
        } else {
            Filter::present(&c.key)
        }
    }

    /// `or` of several, or the one itself.
    pub(crate) fn any(mut filters: Vec<Filter>) -> Filter {
        if filters.len() == 1 {
            filters.remove(0)
        } else {
            Filter::Or { or: filters }
        }
    }
}

/// Allowed values with `*` wildcards as one Python alternation matching a whole value.
pub(crate) fn glob_alternation(values: &[String]) -> String {
    values
        .iter()
        .map(|v| {
            let mut out = String::with_capacity(v.len() + 4);
            for ch in v.chars() {
                if ch == '*' {
                    out.push_str(".*");
                } else {
                    push_literal(&mut out, ch);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// A character that means itself in Python's `re`: ASCII punctuation and whitespace escaped
/// (always allowed), letters, digits and non-ASCII as they are.
fn push_literal(out: &mut String, ch: char) {
    if ch.is_ascii_alphanumeric() || ch == '_' || !ch.is_ascii() {
        out.push(ch);
    } else if ch == '\n' {
        out.push_str(r"\n");
    } else if ch == '\t' {
        out.push_str(r"\t");
    } else {
        out.push('\\');
        out.push(ch);
    }
}

/// A Tagwarden (Rust `regex`) pattern in Python `re` syntax with the same meaning, or why it
/// has none we can vouch for.
///
/// Handled: a leading inline flag group `(?i)` (Python allows global flags only at the very
/// start, which the `^(?!(?:…)\Z)` wrapper is not) becomes a scoped `(?i:…)`; `\z` becomes
/// `\Z`; `(?<name>` becomes `(?P<name>`. Refused: Unicode classes `\p{..}`, POSIX and nested
/// classes and class set operations, `\x{..}`, inline flags elsewhere, flags Python lacks.
pub(crate) fn python_regex(rust: &str) -> Result<String, String> {
    let (flags, body) = leading_flags(rust)?;
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::with_capacity(body.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err("ends with a lone backslash".into());
                };
                match next {
                    'p' | 'P' => {
                        return Err(format!(
                            "`\\{next}` Unicode classes have no Python re equivalent"
                        ));
                    }
                    'x' if chars.get(i + 2) == Some(&'{') => {
                        return Err("`\\x{…}` escapes have no Python re equivalent".into());
                    }
                    'z' => out.push_str(r"\Z"),
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                i += 2;
                continue;
            }
            '[' if in_class => {
                return Err(
                    "nested or POSIX character classes (`[[:…:]]`, `[a[b]]`) read \
                            differently in Python re"
                        .into(),
                );
            }
            '[' => {
                in_class = true;
                out.push(c);
                // `[]…]` and `[^]…]`: a leading `]` is a literal in both dialects.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '&' | '-' | '~' if in_class && chars.get(i + 1) == Some(&c) => {
                return Err(format!(
                    "class set operation `{c}{c}` has no Python re equivalent"
                ));
            }
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..].iter().collect();
                if let Some(name) = rest.strip_prefix('<')
                    && !name.starts_with('=')
                    && !name.starts_with('!')
                {
                    out.push_str("(?P<");
                    i += 3;
                    continue;
                }
                let group_flags: String = rest
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphabetic() || *ch == '-')
                    .collect();
                if !group_flags.is_empty()
                    && rest[group_flags.len()..].starts_with(')')
                    && !group_flags.starts_with('P')
                {
                    return Err("inline flags in the middle of a pattern have no Python re \
                                equivalent (put them at the start)"
                        .into());
                }
                if !group_flags.is_empty() && rest[group_flags.len()..].starts_with(':') {
                    check_flags(&group_flags)?;
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err("an unclosed character class".into());
    }
    Ok(match flags {
        Some(f) => format!("(?{f}:{out})"),
        None => out,
    })
}

/// A leading `(?flags)` group, split from the rest.
fn leading_flags(rust: &str) -> Result<(Option<String>, &str), String> {
    let Some(rest) = rust.strip_prefix("(?") else {
        return Ok((None, rust));
    };
    let flags: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
        .collect();
    if flags.is_empty() || !rest[flags.len()..].starts_with(')') {
        return Ok((None, rust));
    }
    check_flags(&flags)?;
    Ok((Some(flags.clone()), &rest[flags.len() + 1..]))
}

fn check_flags(flags: &str) -> Result<(), String> {
    match flags
        .chars()
        .find(|c| !matches!(c, 'i' | 'm' | 's' | 'x' | '-'))
    {
        Some(f) => Err(format!("the inline flag `{f}` has no Python re equivalent")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_anchored_alternatives() {
        assert_eq!(
            glob_alternation(&["production".into(), "sandbox-*".into(), "a.b (c)".into()]),
            r"production|sandbox\-.*|a\.b\ \(c\)"
        );
        assert_eq!(
            glob_alternation(&["*@example.com".into()]),
            r".*\@example\.com"
        );
        assert_eq!(glob_alternation(&["café".into()]), "café");
    }

    #[test]
    fn regexes_are_translated_or_refused() {
        assert_eq!(python_regex(r"CC-[0-9]{4}").unwrap(), r"CC-[0-9]{4}");
        assert_eq!(python_regex(r"(?i)prod|dev").unwrap(), r"(?i:prod|dev)");
        assert_eq!(python_regex(r"^a\z").unwrap(), r"^a\Z");
        assert_eq!(
            python_regex(r"(?<team>[a-z]+)").unwrap(),
            r"(?P<team>[a-z]+)"
        );
        assert_eq!(python_regex(r"(?:a|b)").unwrap(), r"(?:a|b)");
        assert_eq!(python_regex(r"[]a-]").unwrap(), r"[]a-]");
        assert_eq!(python_regex(r"[^\]x]").unwrap(), r"[^\]x]");
        assert_eq!(python_regex(r"(?i:ab)c").unwrap(), r"(?i:ab)c");
        for bad in [
            r"\p{L}+",
            r"\PL",
            r"[[:alpha:]]",
            r"[a-z&&[^aeiou]]",
            r"a(?i)b",
            r"(?U)a+",
            r"\x{263a}",
            r"[abc",
            r"abc\",
        ] {
            assert!(python_regex(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn condition_filters() {
        let eq = Filter::condition(&Condition {
            key: "Environment".into(),
            equals: Some("production".into()),
            ..Condition::default()
        });
        assert_eq!(
            serde_json::to_value(&eq).unwrap(),
            serde_json::json!({"type": "value", "key": "tag:Environment", "op": "eq", "value": "production"})
        );
        let absent = Filter::condition(&Condition {
            key: "X".into(),
            exists: Some(false),
            ..Condition::default()
        });
        assert_eq!(
            serde_json::to_value(&absent).unwrap(),
            serde_json::json!({"tag:X": "absent"})
        );
    }
}
