//! Output sanitisation: nothing a tool returns or an error says may carry credentials,
//! secret-looking tokens, the server's own file paths or stack traces. Applied to every string of
//! every result and error — object keys included (a tag *key* can hold a secret as well as a
//! value) — and to the arguments written to the audit log.
//!
//! Redaction must not break the names it passes through: an answer's resource ids are the next
//! call's arguments. So a resource id (an ARN, an Azure id, a GCP name: `id::grammar::check`)
//! is left whole except for an explicit `password=…`-style assignment inside it, and an
//! access-key-shaped word counts as a key only when it stands alone, not when it is part of a
//! longer name (`bucket-AKIA…`, `role/AKIA…`). AWS key ids are upper case (`AKIA` + 16 upper-case
//! letters and digits), so the match is case-sensitive: `bucket-akia-…` is not a key.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

use crate::inventory::id::grammar;

pub(crate) struct Sanitizer {
    /// Quick test: does any rule apply to this string at all?
    any: RegexSet,
    rules: Vec<Rule>,
    trace: RegexSet,
}

struct Rule {
    re: Regex,
    replace: Replace,
    scope: Scope,
}

#[derive(Clone, Copy)]
enum Replace {
    /// Replace the whole match.
    Whole(&'static str),
    /// Replace the whole match when it stands alone (see `stands_alone`).
    Standalone(&'static str),
    /// Keep capture group 1 (a label such as `password=`), replace the rest.
    KeepLabel(&'static str),
    /// A 40-character base64 token: replace only when it mixes upper case, lower case and
    /// digits the way generated secrets do (plain words and hex digests stay).
    MixedSecret,
}

/// Where a rule applies: in free text, inside a resource id, or both.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Everywhere,
    OutsideIds,
    InsideIds,
}

const TRACE_MARKERS: &[&str] = &[
    r"Traceback \(most recent call last\)",
    r"stack backtrace:",
    r"panicked at [^\s]+\.rs:\d+",
    r"(?m)^\s+at \S.*\(.*:\d+(:\d+)?\)\s*$",
    r"(?m)^\s+\d+: [\w:<>]+::[\w<>]+",
];

/// Labels whose value is a secret: (label, what the value looks like).
const LABELS: &[(&str, &str)] = &[
    (
        r"(?:aws_?)?(?:secret_?access_?key|session_?token|security_?token)",
        r"[A-Za-z0-9/+=]{16,}",
    ),
    (
        r"\b(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|private[_-]?key|client[_-]?secret|x-api-key)",
        r"[^\s\x22',;}]{4,}",
    ),
];

/// Characters that end a word in free text (and so a resource id within it).
fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | ',' | ';' | '(' | ')' | '<' | '>' | '[' | ']' | '{' | '}' | '|'
        )
}

impl Sanitizer {
    /// Rules for secrets, plus this server's own paths (home, working directory, binary,
    /// temporary directory) and any home directory.
    pub(crate) fn new() -> Sanitizer {
        let mut paths: Vec<String> = Vec::new();
        let mut add = |p: Option<std::path::PathBuf>| {
            if let Some(p) = p {
                let s = p.to_string_lossy().trim_end_matches('/').to_string();
                if s.len() > 1 && s.starts_with('/') {
                    paths.push(s);
                }
            }
        };
        add(std::env::var_os("HOME").map(Into::into));
        add(std::env::current_dir().ok());
        add(std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)));
        add(Some(std::env::temp_dir()));
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        paths.dedup();
        Sanitizer::with_paths(&paths)
    }

    pub(crate) fn with_paths(paths: &[String]) -> Sanitizer {
        let mut rules: Vec<(String, Replace, Scope)> = vec![
            (
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"
                    .into(),
                Replace::Whole("[redacted: private key]"),
                Scope::Everywhere,
            ),
            (
                r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}"
                    .into(),
                Replace::Standalone("[redacted: AWS access key]"),
                Scope::OutsideIds,
            ),
        ];
        for (label, value) in LABELS {
            // In free text `secret: x` and `secret=x` both assign; inside an id `:` is the
            // id's own separator (`…:secret:prod/db` in a Secrets Manager ARN), `=` still
            // assigns.
            rules.push((
                format!(r"(?i)({label}[\x22'\s]*[:=]\s*[\x22']?){value}"),
                Replace::KeepLabel("[redacted]"),
                Scope::OutsideIds,
            ));
            rules.push((
                format!(r"(?i)({label}=){value}"),
                Replace::KeepLabel("[redacted]"),
                Scope::InsideIds,
            ));
        }
        rules.extend([
            (
                r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}".into(),
                Replace::KeepLabel("[redacted]"),
                Scope::Everywhere,
            ),
            (
                r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}".into(),
                Replace::Whole("[redacted: token]"),
                Scope::Everywhere,
            ),
            (
                r"(^|[^A-Za-z0-9/+=])([A-Za-z0-9/+]{40})($|[^A-Za-z0-9/+=])".into(),
                Replace::MixedSecret,
                Scope::OutsideIds,
            ),
            (
                r"(?:/home|/Users)/[^/\s\x22'<>]+(?:/[^\s\x22'<>,;)]*)?".into(),
                Replace::Whole("<server path>"),
                Scope::OutsideIds,
            ),
        ]);
        if !paths.is_empty() {
            let alternatives: Vec<String> = paths.iter().map(|p| regex::escape(p)).collect();
            rules.push((
                format!(
                    r"(?:{})(?:/[^\s\x22'<>,;)]*)?(?:\b|$)",
                    alternatives.join("|")
                ),
                Replace::Whole("<server path>"),
                Scope::OutsideIds,
            ));
        }
        let compiled: Vec<Rule> = rules
            .iter()
            .filter_map(|(p, replace, scope)| match Regex::new(p) {
                Ok(re) => Some(Rule {
                    re,
                    replace: *replace,
                    scope: *scope,
                }),
                Err(e) => {
                    tracing::error!(pattern = %p, error = %e, "sanitizer rule does not compile");
                    None
                }
            })
            .collect();
        let any = RegexSet::new(compiled.iter().map(|r| r.re.as_str()))
            .unwrap_or_else(|_| RegexSet::empty());
        let trace = RegexSet::new(TRACE_MARKERS).unwrap_or_else(|_| RegexSet::empty());
        Sanitizer {
            any,
            rules: compiled,
            trace,
        }
    }

    /// A clean version of `text` (borrowed when nothing had to change).
    pub(crate) fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        // Most keys and many values are short plain words, which no rule can match: each
        // needs 20 characters or more, or a character other than a letter, digit or `_`.
        if text.len() < 20 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Cow::Borrowed(text);
        }
        if self.trace.is_match(text) {
            return Cow::Borrowed("[removed: internal error details; see the server log]");
        }
        if !self.any.is_match(text) {
            return Cow::Borrowed(text);
        }
        let ids = resource_ids(text);
        if ids.is_empty() {
            return self.clean(text, false);
        }
        // Free text and ids alternate; each piece gets the rules of its kind.
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for id in ids {
            out.push_str(&self.clean(&text[at..id.start], false));
            out.push_str(&self.clean(&text[id.clone()], true));
            at = id.end;
        }
        out.push_str(&self.clean(&text[at..], false));
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }

    /// Applies the rules of one kind of piece: free text, or a resource id.
    fn clean<'a>(&self, text: &'a str, inside_id: bool) -> Cow<'a, str> {
        let matched = self.any.matches(text);
        if !matched.matched_any() {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for (i, rule) in self.rules.iter().enumerate() {
            let applies = match rule.scope {
                Scope::Everywhere => true,
                Scope::OutsideIds => !inside_id,
                Scope::InsideIds => inside_id,
            };
            if !applies || !matched.matched(i) {
                continue;
            }
            let replaced = match rule.replace {
                Replace::Whole(with) => rule.re.replace_all(&out, with).into_owned(),
                Replace::Standalone(with) => rule
                    .re
                    .replace_all(&out, |c: &Captures| {
                        let m = c.get(0).map_or(0..0, |m| m.range());
                        if stands_alone(&out, m.clone()) {
                            with.to_string()
                        } else {
                            out[m].to_string()
                        }
                    })
                    .into_owned(),
                Replace::KeepLabel(with) => rule
                    .re
                    .replace_all(&out, |c: &Captures| format!("{}{with}", &c[1]))
                    .into_owned(),
                Replace::MixedSecret => rule
                    .re
                    .replace_all(&out, |c: &Captures| {
                        let token = &c[2];
                        let mixed = token.chars().any(|c| c.is_ascii_uppercase())
                            && token.chars().any(|c| c.is_ascii_lowercase())
                            && token.chars().any(|c| c.is_ascii_digit());
                        if mixed {
                            format!("{}[redacted: secret]{}", &c[1], &c[3])
                        } else {
                            c[0].to_string()
                        }
                    })
                    .into_owned(),
            };
            out = replaced;
        }
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }

    /// Cleans every string in a JSON value in place, object keys included; returns how many
    /// strings changed. Two keys that redact to the same text stay distinct (` (2)`, ...).
    pub(crate) fn value(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => match self.text(s) {
                Cow::Borrowed(_) => 0,
                Cow::Owned(clean) => {
                    *s = clean;
                    1
                }
            },
            Value::Array(items) => items.iter_mut().map(|v| self.value(v)).sum(),
            Value::Object(map) => {
                let mut changed: usize = map.values_mut().map(|v| self.value(v)).sum();
                let clean_keys: Vec<Option<String>> = map
                    .keys()
                    .map(|k| match self.text(k) {
                        Cow::Borrowed(_) => None,
                        Cow::Owned(clean) => Some(clean),
                    })
                    .collect();
                if clean_keys.iter().all(Option::is_none) {
                    return changed;
                }
                // Keys that stay are taken first, so a redacted key never replaces one.
                let mut taken: HashSet<String> = map
                    .keys()
                    .zip(&clean_keys)
                    .filter(|(_, clean)| clean.is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                let old = std::mem::take(map);
                for ((key, item), clean) in old.into_iter().zip(clean_keys) {
                    let key = match clean {
                        None => key,
                        Some(clean) => {
                            changed += 1;
                            let mut unique = clean.clone();
                            let mut n = 2;
                            while taken.contains(&unique) {
                                unique = format!("{clean} ({n})");
                                n += 1;
                            }
                            taken.insert(unique.clone());
                            unique
                        }
                    };
                    map.insert(key, item);
                }
                changed
            }
            _ => 0,
        }
    }
}

/// An access-key-shaped match is a key only when it stands alone: not glued to a letter or
/// digit, and not joined by `-`, `_`, `.` or `/` to a longer name (`bucket-AKIA…`,
/// `role/AKIA…`). Quotes, spaces, `=`, `:` and `,` separate: `key=AKIA…`, `"AKIA…"`,
/// `id:AKIA…` are keys; so is a key at the end of a sentence (`… AKIA….`).
fn stands_alone(text: &str, m: Range<usize>) -> bool {
    fn glued(next: Option<char>, beyond: Option<char>) -> bool {
        match next {
            Some(c) if c.is_alphanumeric() => true,
            Some('-' | '_' | '.' | '/') => beyond.is_some_and(char::is_alphanumeric),
            _ => false,
        }
    }
    let mut before = text[..m.start].chars().rev();
    let (b1, b2) = (before.next(), before.next());
    let mut after = text[m.end..].chars();
    let (a1, a2) = (after.next(), after.next());
    !glued(b1, b2) && !glued(a1, a2)
}

/// The spans of `text` that are whole resource ids: words (between delimiters, or after an
/// `=`) that pass the resource-id grammar the input limits apply.
fn resource_ids(text: &str) -> Vec<Range<usize>> {
    if !(text.contains("arn:") || text.contains("/subscriptions/") || text.contains("//")) {
        return Vec::new();
    }
    let mut spans = Vec::new();
    let mut prev: Option<char> = None;
    let mut skip_to = 0;
    for (i, c) in text.char_indices() {
        let starts_word = prev.is_none_or(|p| is_delimiter(p) || p == '=');
        prev = Some(c);
        if i < skip_to || !starts_word {
            continue;
        }
        let rest = &text[i..];
        if !(rest.starts_with("arn:")
            || rest.starts_with("/subscriptions/")
            || rest.starts_with("//"))
        {
            continue;
        }
        let end = rest.find(is_delimiter).map_or(text.len(), |n| i + n);
        if grammar::check(&text[i..end]).is_ok() {
            spans.push(i..end);
            skip_to = end;
        }
    }
    spans
}

impl Default for Sanitizer {
    fn default() -> Self {
        Sanitizer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Sanitizer {
        Sanitizer::with_paths(&["/srv/tagwarden".to_string(), "/opt/app".to_string()])
    }

    #[test]
    fn aws_keys_and_secrets_are_redacted() {
        let s = s();
        let t = s.text("AccessDenied for AKIAIOSFODNN7EXAMPLE with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(
            !t.contains("AKIAIOSFODNN7EXAMPLE") && !t.contains("wJalrXUtnFEMI"),
            "{t}"
        );
        assert!(t.contains("[redacted: AWS access key]"), "{t}");
        let t = s.text("aws_secret_access_key = abcdEFGH1234abcdEFGH1234abcdEFGH1234abcd");
        assert_eq!(t, "aws_secret_access_key = [redacted]");
        let t = s.text(r#"{"password": "hunter22", "api_key":"k-123456"}"#);
        assert!(!t.contains("hunter22") && !t.contains("k-123456"), "{t}");
        assert_eq!(s.text("pwd=abcd1"), "pwd=[redacted]");
        let t = s.text("Authorization: Bearer abc.def.ghijklmnop");
        assert_eq!(t, "Authorization: Bearer [redacted]");
        let t = s.text("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U here");
        assert!(t.contains("[redacted: token]"), "{t}");
        let t = s.text("-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----");
        assert_eq!(t, "[redacted: private key]");
    }

    #[test]
    fn ordinary_data_is_untouched() {
        let s = s();
        for ok in [
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc1234def567890",
            "822df730291d7908aa5c07adc8966bac189f4618ab305d6c0a419faecef85449",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "/aws/lambda/payments-worker-prod-settle",
            "change `CostCenter` from `cc-1001` to `CC-1001`",
            "payments-team@acme.example",
            "the secret sauce",
        ] {
            assert!(
                matches!(s.text(ok), Cow::Borrowed(_)),
                "{ok} -> {}",
                s.text(ok)
            );
        }
    }

    #[test]
    fn server_paths_and_home_directories_are_hidden() {
        let s = s();
        assert_eq!(
            s.text("cannot read /srv/tagwarden/policies/p.json"),
            "cannot read <server path>"
        );
        assert_eq!(
            s.text("see /home/alice/.aws/credentials now"),
            "see <server path> now"
        );
        assert_eq!(s.text("/opt/app"), "<server path>");
        // A longer name that merely starts like a server path is not one.
        assert!(matches!(s.text("/opt/application"), Cow::Borrowed(_)));
    }

    #[test]
    fn stack_traces_are_removed_whole() {
        let s = s();
        for trace in [
            "Traceback (most recent call last):\n  File \"x.py\", line 1",
            "thread 'main' panicked at src/main.rs:10:5:\nboom",
            "Error\n    at Object.<anonymous> (/app/index.js:10:15)",
        ] {
            assert!(s.text(trace).starts_with("[removed"), "{trace}");
        }
    }

    #[test]
    fn access_keys_are_caught_only_when_they_stand_alone() {
        let s = s();
        const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
        for alone in [
            KEY.to_string(),
            format!("key={KEY}"),
            format!("aws_access_key_id: {KEY}"),
            format!("id:{KEY}"),
            format!(r#"{{"k": "{KEY}"}}"#),
            format!("'{KEY}', next"),
            format!("creds {KEY}:wJalr"),
            format!("the key was {KEY}."),
            format!("-{KEY}-"),
            format!("_{KEY}"),
            "(ASIAY34FZKBOKMUTVV7A)".to_string(),
        ] {
            let t = s.text(&alone);
            assert!(
                !t.contains(KEY) && !t.contains("ASIAY34FZKBOKMUTVV7A"),
                "{alone} -> {t}"
            );
            assert!(t.contains("[redacted: AWS access key]"), "{alone} -> {t}");
        }
        for part in [
            format!("bucket-{KEY}"),
            format!("{KEY}-backup"),
            format!("role/{KEY}"),
            format!("logs.{KEY}.archive"),
            format!("x_{KEY}"),
            format!("X{KEY}"),
            format!("{KEY}9"),
            // AWS key ids are upper case: a lower-case look-alike is a name.
            "bucket-akia-0123456789abcdef".to_string(),
            "akiaiosfodnn7example".to_string(),
        ] {
            assert!(
                matches!(s.text(&part), Cow::Borrowed(_)),
                "{part} -> {}",
                s.text(&part)
            );
        }
    }

    #[test]
    fn resource_ids_survive_whole() {
        let s = s();
        for id in [
            "arn:aws:s3:::bucket-AKIAIOSFODNN7EXAMPLE",
            "arn:aws:s3:::bucket-akia-0123456789abcdef",
            "arn:aws:iam::111122223333:user/AKIAIOSFODNN7EXAMPLE",
            "arn:aws:iam::111122223333:AKIAIOSFODNN7EXAMPLE",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-password-AbCdEf",
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/api_key:3",
            "arn:aws:lambda:us-east-1:111122223333:function:w-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd",
            "arn:aws:s3:::home/alice/reports",
            "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg-AKIAIOSFODNN7EXAMPLE/providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/prod1/providers/Microsoft.KeyVault/vaults/secret:kv-prod",
            "//compute.googleapis.com/projects/p1/zones/us-central1-a/instances/AKIAIOSFODNN7EXAMPLE",
            "//storage.googleapis.com/projects/_/buckets/home/Users/x",
        ] {
            assert!(
                matches!(s.text(id), Cow::Borrowed(_)),
                "{id} -> {}",
                s.text(id)
            );
            // Inside a sentence, a JSON document or after `=`, too.
            for text in [
                format!("resource {id} lacks CostCenter"),
                format!(r#"{{"resource_id":"{id}"}}"#),
                format!("id={id}, fix it"),
                format!("`{id}`"),
            ] {
                assert!(
                    matches!(s.text(&text), Cow::Borrowed(_)),
                    "{text} -> {}",
                    s.text(&text)
                );
            }
        }
        // A key beside an id is still caught; an id is not a hiding place for an assignment.
        let t = s.text("arn:aws:s3:::bucket-AKIAIOSFODNN7EXAMPLE leaked AKIAI44QH8DHBEXAMPLE");
        assert_eq!(
            t,
            "arn:aws:s3:::bucket-AKIAIOSFODNN7EXAMPLE leaked [redacted: AWS access key]"
        );
        let t = s.text("arn:aws:iam::111122223333:role/x?password=hunter2xyz");
        assert_eq!(t, "arn:aws:iam::111122223333:role/x?password=[redacted]");
        // Words that only look like the start of an id are free text.
        let t = s.text("arn:nope AKIAIOSFODNN7EXAMPLE");
        assert_eq!(t, "arn:nope [redacted: AWS access key]");
    }

    #[test]
    fn object_keys_are_cleaned_and_stay_distinct() {
        let s = s();
        let mut v = serde_json::json!({
            "AKIAIOSFODNN7EXAMPLE": "a",
            "AKIAI44QH8DHBEXAMPLE": "b",
            "[redacted: AWS access key]": "c",
            "password=hunter2xyz": {"AKIAIOSFODNN7EXAMPLE": 1},
            "Environment": "prod",
        });
        assert_eq!(s.value(&mut v), 4);
        let text = v.to_string();
        assert!(
            !text.contains("AKIAIOSFODNN7EXAMPLE")
                && !text.contains("AKIAI44QH8DHBEXAMPLE")
                && !text.contains("hunter2xyz"),
            "{text}"
        );
        let map = v.as_object().unwrap();
        assert_eq!(map.len(), 5, "no key lost to a collision: {text}");
        assert_eq!(
            map["[redacted: AWS access key]"], "c",
            "an unchanged key keeps its value"
        );
        let mut redacted: Vec<&str> = [
            "[redacted: AWS access key] (2)",
            "[redacted: AWS access key] (3)",
        ]
        .into_iter()
        .map(|k| map[k].as_str().unwrap())
        .collect();
        redacted.sort();
        assert_eq!(redacted, ["a", "b"]);
        assert_eq!(map["password=[redacted]"]["[redacted: AWS access key]"], 1);
        assert_eq!(map["Environment"], "prod");
    }

    #[test]
    fn values_are_cleaned_in_place() {
        let s = s();
        let mut v = serde_json::json!({"a": ["AKIAIOSFODNN7EXAMPLE", "ok"], "b": {"c": "/srv/tagwarden/x"}, "n": 1});
        assert_eq!(s.value(&mut v), 2);
        assert_eq!(v["a"][1], "ok");
        assert_eq!(v["b"]["c"], "<server path>");
    }
}
