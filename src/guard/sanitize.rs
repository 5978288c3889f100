//! Output sanitisation: nothing a tool returns or an error says may carry credentials,
//! secret-looking tokens, the server's own file paths or stack traces. Applied to every string of
//! every result and error, and to the arguments written to the audit log.

use std::borrow::Cow;
use std::path::Path;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

pub struct Sanitizer {
    /// Quick test: does any rule apply to this string at all?
    any: RegexSet,
    rules: Vec<(Regex, Replace)>,
    trace: RegexSet,
}

#[derive(Clone, Copy)]
enum Replace {
    /// Replace the whole match.
    Whole(&'static str),
    /// Keep capture group 1 (a label such as `password=`), replace the rest.
    KeepLabel(&'static str),
    /// A 40-character base64 token: replace only when it mixes upper case, lower case and
    /// digits the way generated secrets do (plain words and hex digests stay).
    MixedSecret,
}

const TRACE_MARKERS: &[&str] = &[
    r"Traceback \(most recent call last\)",
    r"stack backtrace:",
    r"panicked at [^\s]+\.rs:\d+",
    r"(?m)^\s+at \S.*\(.*:\d+(:\d+)?\)\s*$",
    r"(?m)^\s+\d+: [\w:<>]+::[\w<>]+",
];

impl Sanitizer {
    /// Rules for secrets, plus this server's own paths (home, working directory, binary,
    /// temporary directory) and any home directory.
    pub fn new() -> Sanitizer {
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

    pub fn with_paths(paths: &[String]) -> Sanitizer {
        let mut rules: Vec<(String, Replace)> = vec![
            (
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)".into(),
                Replace::Whole("[redacted: private key]"),
            ),
            (
                r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b".into(),
                Replace::Whole("[redacted: AWS access key]"),
            ),
            (
                r"(?i)((?:aws_?)?(?:secret_?access_?key|session_?token|security_?token)[\x22'\s]*[:=]\s*[\x22']?)[A-Za-z0-9/+=]{16,}".into(),
                Replace::KeepLabel("[redacted]"),
            ),
            (
                r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}".into(),
                Replace::KeepLabel("[redacted]"),
            ),
            (
                r"(?i)(\b(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|private[_-]?key|client[_-]?secret|x-api-key)[\x22'\s]*[:=]\s*[\x22']?)[^\s\x22',;}]{4,}".into(),
                Replace::KeepLabel("[redacted]"),
            ),
            (
                r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}".into(),
                Replace::Whole("[redacted: token]"),
            ),
            (
                r"(^|[^A-Za-z0-9/+=])([A-Za-z0-9/+]{40})($|[^A-Za-z0-9/+=])".into(),
                Replace::MixedSecret,
            ),
            (
                r"(?:/home|/Users)/[^/\s\x22'<>]+(?:/[^\s\x22'<>,;)]*)?".into(),
                Replace::Whole("<server path>"),
            ),
        ];
        if !paths.is_empty() {
            let alternatives: Vec<String> = paths.iter().map(|p| regex::escape(p)).collect();
            rules.push((
                format!(
                    r"(?:{})(?:/[^\s\x22'<>,;)]*)?(?:\b|$)",
                    alternatives.join("|")
                ),
                Replace::Whole("<server path>"),
            ));
        }
        let compiled: Vec<(Regex, Replace)> = rules
            .iter()
            .filter_map(|(p, r)| match Regex::new(p) {
                Ok(re) => Some((re, *r)),
                Err(e) => {
                    tracing::error!(pattern = %p, error = %e, "sanitizer rule does not compile");
                    None
                }
            })
            .collect();
        let any = RegexSet::new(compiled.iter().map(|(re, _)| re.as_str()))
            .unwrap_or_else(|_| RegexSet::empty());
        let trace = RegexSet::new(TRACE_MARKERS).unwrap_or_else(|_| RegexSet::empty());
        Sanitizer {
            any,
            rules: compiled,
            trace,
        }
    }

    /// A clean version of `text` (borrowed when nothing had to change).
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.trace.is_match(text) {
            return Cow::Borrowed("[removed: internal error details; see the server log]");
        }
        let matched = self.any.matches(text);
        if !matched.matched_any() {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for (i, (re, replace)) in self.rules.iter().enumerate() {
            if !matched.matched(i) {
                continue;
            }
            out = match replace {
                Replace::Whole(with) => re.replace_all(&out, *with).into_owned(),
                Replace::KeepLabel(with) => re
                    .replace_all(&out, |c: &Captures| format!("{}{with}", &c[1]))
                    .into_owned(),
                Replace::MixedSecret => re
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
        }
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }

    /// Cleans every string in a JSON value in place; returns how many strings changed.
    pub fn value(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => match self.text(s) {
                Cow::Borrowed(_) => 0,
                Cow::Owned(clean) => {
                    *s = clean;
                    1
                }
            },
            Value::Array(items) => items.iter_mut().map(|v| self.value(v)).sum(),
            Value::Object(map) => map.values_mut().map(|v| self.value(v)).sum(),
            _ => 0,
        }
    }
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
    fn values_are_cleaned_in_place() {
        let s = s();
        let mut v = serde_json::json!({"a": ["AKIAIOSFODNN7EXAMPLE", "ok"], "b": {"c": "/srv/tagwarden/x"}, "n": 1});
        assert_eq!(s.value(&mut v), 2);
        assert_eq!(v["a"][1], "ok");
        assert_eq!(v["b"]["c"], "<server path>");
    }
}
