//! `*` wildcard patterns, as AWS tag policies and `applies_to` use them.
//!
//! A pattern is matched against the whole string; `*` matches any run of characters (including
//! none). No other character is special, so a value such as `dev-[1]` means itself. This is a
//! hand-rolled matcher rather than a regex because it sits on the evaluation hot path and the
//! language is tiny.

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    source: String,
    /// The literal pieces between stars.
    parts: Vec<String>,
    starts_with_star: bool,
    ends_with_star: bool,
}

impl Wildcard {
    pub(crate) fn new(pattern: &str) -> Self {
        Wildcard {
            source: pattern.to_string(),
            parts: pattern
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            starts_with_star: pattern.starts_with('*'),
            ends_with_star: pattern.ends_with('*'),
        }
    }

    /// True when the pattern has no `*`: callers use a hash set for those.
    pub(crate) fn is_literal(&self) -> bool {
        !self.source.contains('*')
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        if self.is_literal() {
            return self.source == text;
        }
        let mut rest = text;
        let last = self.parts.len();
        for (i, part) in self.parts.iter().enumerate() {
            let first = i == 0;
            let final_part = i + 1 == last;
            if first && !self.starts_with_star {
                match rest.strip_prefix(part.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
                if final_part && !self.ends_with_star {
                    return rest.is_empty();
                }
                continue;
            }
            if final_part && !self.ends_with_star {
                return rest.ends_with(part.as_str());
            }
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        // Only stars remain (or the pattern was all stars).
        true
    }
}

/// Matches canonical resource types (`service:kind`) against `applies_to` patterns.
///
/// Types are compared case-insensitively (`states:stateMachine` vs `states:statemachine`), and a
/// bare service name (`ec2`) means `ec2:*`.
#[derive(Debug, Clone)]
pub struct TypePatterns {
    /// Empty means every type.
    patterns: Vec<Wildcard>,
}

impl TypePatterns {
    pub fn new(patterns: &[String]) -> Self {
        let patterns = patterns
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .map(|p| {
                if p.contains(':') || p.contains('*') {
                    Wildcard::new(&p)
                } else {
                    Wildcard::new(&format!("{p}:*"))
                }
            })
            .collect();
        TypePatterns { patterns }
    }

    pub fn any() -> Self {
        TypePatterns { patterns: vec![] }
    }

    pub fn matches_all_types(&self) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.as_str() == "*")
    }

    pub fn matches(&self, resource_type: &str) -> bool {
        if self.matches_all_types() {
            return true;
        }
        let lowered = resource_type.to_ascii_lowercase();
        self.patterns.iter().any(|p| p.matches(&lowered))
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(Wildcard::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Wildcard::new(p).matches(t)
    }

    #[test]
    fn literal_matches_whole_string_only() {
        assert!(m("production", "production"));
        assert!(!m("production", "production2"));
        assert!(!m("production", "Production"));
        assert!(!m("production", ""));
        assert!(m("", ""));
    }

    #[test]
    fn star_positions() {
        assert!(m("dev-*", "dev-"));
        assert!(m("dev-*", "dev-alice"));
        assert!(!m("dev-*", "xdev-alice"));
        assert!(m("*-prod", "payments-prod"));
        assert!(!m("*-prod", "payments-prod2"));
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbcd"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("**", "x"));
        assert!(m("a*b*c", "a-b-c"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*mid*", "xxmidyy"));
        assert!(!m("*mid*", "xxmiyy"));
    }

    #[test]
    fn suffix_must_not_overlap_prefix() {
        // "ab*ba" must not accept "aba": the prefix and suffix would share the middle b.
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
    }

    #[test]
    fn other_characters_are_literal() {
        assert!(m("dev-[1]", "dev-[1]"));
        assert!(!m("dev-[1]", "dev-1"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
    }

    #[test]
    fn type_patterns() {
        let any = TypePatterns::new(&[]);
        assert!(any.matches("ec2:instance"));
        let p = TypePatterns::new(&["ec2:*".into(), "s3:bucket".into(), "rds".into()]);
        assert!(p.matches("ec2:instance"));
        assert!(p.matches("ec2:volume"));
        assert!(p.matches("s3:bucket"));
        assert!(p.matches("rds:db"));
        assert!(!p.matches("lambda:function"));
        assert!(!p.matches("ec2"));
        let star = TypePatterns::new(&["*".into()]);
        assert!(star.matches_all_types());
        let case = TypePatterns::new(&["states:stateMachine".into()]);
        assert!(case.matches("states:statemachine"));
        assert!(case.matches("states:stateMachine"));
    }
}
