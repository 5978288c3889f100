//! Reading tags through the policy: the effective tag set (variants renamed to canonical keys,
//! value aliases applied) and the value of any key in either view. Used for display and for
//! questions about keys the policy may not govern; the evaluator has its own faster path.

use std::collections::BTreeMap;

use super::compiled::{KeyRef, Policy};
use super::evaluate::View;

impl Policy {
    /// Effective tags: aliases and case variants renamed to their canonical key (exact key
    /// first, then case variants, then aliases), value aliases applied; other keys unchanged.
    pub fn effective_tags<K: AsRef<str>, V: AsRef<str>>(
        &self,
        tags: &[(K, V)],
    ) -> BTreeMap<String, String> {
        // canonical key id → (precedence, value)
        let mut chosen: BTreeMap<u16, (u8, &str)> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (k, v) in tags {
            let (k, v) = (k.as_ref(), v.as_ref());
            let resolved = if k.starts_with("aws:") {
                None
            } else {
                match self.exact.get(k) {
                    Some(KeyRef::Canonical(id)) => Some((*id, 0u8)),
                    Some(KeyRef::Alias(id)) => Some((*id, 2)),
                    Some(KeyRef::Prohibited(_)) => None,
                    None => match self.classify(k) {
                        Some(KeyRef::Canonical(id)) => Some((id, 1)),
                        Some(KeyRef::Alias(id)) => Some((id, 2)),
                        _ => None,
                    },
                }
            };
            match resolved {
                Some((id, rank)) => {
                    let keep = chosen.get(&id).is_none_or(|(best, _)| rank < *best);
                    if keep {
                        chosen.insert(id, (rank, v));
                    }
                }
                None => {
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
        for (id, (_, value)) in chosen {
            let info = &self.keys[id as usize];
            let value = info
                .value_aliases
                .get(value)
                .map(|c| c.to_string())
                .unwrap_or_else(|| value.to_string());
            out.insert(info.name.clone(), value);
        }
        out
    }

    /// The canonical name of a policy key given as written (an alias or case variant), or the
    /// key unchanged when the policy does not govern it.
    pub fn canonical_key<'k>(&'k self, key: &'k str) -> &'k str {
        match self.classify(key) {
            Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) => self.key_name(id),
            _ => key,
        }
    }

    /// The value of `key` in a view. A policy key (or one of its aliases) is resolved as the
    /// evaluator does; any other key matches exactly, or ignoring case in the effective view
    /// when the policy matches keys case-insensitively.
    pub fn value_of<K: AsRef<str>, V: AsRef<str>>(
        &self,
        tags: &[(K, V)],
        key: &str,
        view: View,
    ) -> Option<String> {
        let canonical = match self.classify(key) {
            Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) => Some(self.key_name(id)),
            _ => None,
        };
        match (view, canonical) {
            (View::Native, Some(name)) => find(tags, |k| k == name),
            (View::Native, None) => find(tags, |k| k == key),
            (View::Effective, Some(name)) => self.effective_tags(tags).remove(name),
            (View::Effective, None) => {
                let exact = find(tags, |k| k == key);
                let folds = self.key_matching == super::model::KeyMatching::CaseInsensitive;
                exact.or_else(|| {
                    folds
                        .then(|| find(tags, |k| k.eq_ignore_ascii_case(key)))
                        .flatten()
                })
            }
        }
    }
}

fn find<K: AsRef<str>, V: AsRef<str>>(
    tags: &[(K, V)],
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    tags.iter()
        .find(|(k, _)| pred(k.as_ref()))
        .map(|(_, v)| v.as_ref().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::loader::parse_policy;
    use super::*;

    fn policy() -> Policy {
        parse_policy(
            r#"{"aliases":{"Environment":["env"]},
                "value_aliases":{"Environment":{"production":["prod"]}},
                "required_tags":[{"name":"Environment"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn effective_tags_rename_and_alias_values() {
        let p = policy();
        let t = p.effective_tags(&[("env", "prod"), ("Team", "a"), ("aws:x", "y")]);
        assert_eq!(t.get("Environment").map(String::as_str), Some("production"));
        assert_eq!(t.get("Team").map(String::as_str), Some("a"));
        assert_eq!(t.get("aws:x").map(String::as_str), Some("y"));
        assert!(!t.contains_key("env"));
        // Precedence: exact beats case variant beats alias.
        let t = p.effective_tags(&[("env", "a"), ("ENVIRONMENT", "b"), ("Environment", "c")]);
        assert_eq!(t.get("Environment").map(String::as_str), Some("c"));
        let t = p.effective_tags(&[("env", "a"), ("ENVIRONMENT", "b")]);
        assert_eq!(t.get("Environment").map(String::as_str), Some("b"));
    }

    #[test]
    fn value_of_in_both_views() {
        let p = policy();
        let tags = [("env", "prod"), ("team", "x")];
        assert_eq!(
            p.value_of(&tags, "Environment", View::Effective).as_deref(),
            Some("production")
        );
        assert_eq!(p.value_of(&tags, "Environment", View::Native), None);
        assert_eq!(
            p.value_of(&tags, "Team", View::Effective).as_deref(),
            Some("x")
        );
        assert_eq!(p.value_of(&tags, "Team", View::Native), None);
        assert_eq!(
            p.value_of(&tags, "team", View::Native).as_deref(),
            Some("x")
        );
    }
}
