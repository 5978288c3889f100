//! Turning compact violations into what people read: the key, the current value, what was
//! expected and the smallest change that fixes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compiled::{KeyRef, Policy, ValueCheck};
use super::evaluate::{NO_KEY, NO_TAG, RuleRef, View, Violation, ViolationKind};
use super::model::Severity;

/// What the policy expected instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Expected {
    /// The canonical key the tag should use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Accepted values (`*` matches any run of characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    /// A regular expression the whole value must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The condition that makes the rule apply, or the conflict that must not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The largest number of user tags allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tags: Option<u32>,
    /// The largest key or value length allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

/// One violation, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ViolationDetail {
    pub resource_id: String,
    /// The canonical key concerned (absent for `too_many_tags`).
    pub tag_key: Option<String>,
    pub kind: ViolationKind,
    pub severity: Severity,
    /// The key as it appears on the resource, when it differs from `tag_key`.
    pub current_key: Option<String>,
    /// The value on the resource, when there is one.
    pub current_value: Option<String>,
    pub expected: Expected,
    /// The smallest change that fixes this violation.
    pub fix: String,
}

impl Policy {
    /// What a tag key on a resource means under this policy (allocates; not for hot loops).
    pub fn classify(&self, key: &str) -> Option<KeyRef> {
        self.exact.get(key).copied().or_else(|| {
            if self.folded.is_empty() {
                None
            } else {
                self.folded.get(key.to_lowercase().as_str()).copied()
            }
        })
    }

    /// Renders one violation of a resource's tags.
    pub fn render<K: AsRef<str>, V: AsRef<str>>(
        &self,
        resource_id: &str,
        tags: &[(K, V)],
        view: View,
        v: &Violation,
    ) -> ViolationDetail {
        let tag = (v.tag != NO_TAG)
            .then(|| tags.get(v.tag as usize))
            .flatten()
            .map(|(k, val)| (k.as_ref(), val.as_ref()));
        let canonical = (v.key != NO_KEY).then(|| self.key_name(v.key).to_string());
        let mut expected = Expected::default();
        let mut current_key = tag
            .map(|(k, _)| k.to_string())
            .filter(|k| Some(k) != canonical.as_ref());
        let current_value = tag.map(|(_, val)| val.to_string());
        let key = canonical.clone().unwrap_or_default();

        let fix = match (v.kind, v.rule) {
            (ViolationKind::MissingRequiredTag, RuleRef::Required(i))
            | (ViolationKind::ConditionalRequirement, RuleRef::Required(i)) => {
                let rule = &self.required[i as usize];
                describe_check(&rule.check, &mut expected);
                let because = rule.when.as_ref().map(|w| w.describe());
                expected.condition = because.clone();
                let variant = (view == View::Native)
                    .then(|| self.find_variant(tags, v.key))
                    .flatten();
                match variant {
                    Some(variant) => {
                        current_key = Some(variant.to_string());
                        format!("rename tag key `{variant}` to `{key}`")
                    }
                    None => {
                        let why = because
                            .map(|c| format!(" (required because {c})"))
                            .unwrap_or_default();
                        format!("add tag `{key}`{why}{}", value_hint(&rule.check, "with"))
                    }
                }
            }
            (ViolationKind::EmptyValue, RuleRef::Required(i)) => {
                let rule = &self.required[i as usize];
                describe_check(&rule.check, &mut expected);
                if rule.check.is_unconstrained() {
                    format!("set a value for `{key}`")
                } else {
                    format!("set `{key}`{}", value_hint(&rule.check, "to"))
                }
            }
            (ViolationKind::InvalidValue | ViolationKind::InvalidFormat, RuleRef::Required(i)) => {
                let check = &self.required[i as usize].check;
                describe_check(check, &mut expected);
                self.value_fix(&key, v.key, current_value.as_deref().unwrap_or(""), check)
            }
            (ViolationKind::InvalidValue | ViolationKind::InvalidFormat, RuleRef::Optional(i)) => {
                let check = &self.optional[i as usize].check;
                describe_check(check, &mut expected);
                self.value_fix(&key, v.key, current_value.as_deref().unwrap_or(""), check)
            }
            (ViolationKind::InvalidFormat, RuleRef::Naming) => {
                let (k, _) = tag.unwrap_or(("", ""));
                current_key = Some(k.to_string());
                match self.max_key_length.filter(|max| k.chars().count() > *max) {
                    Some(max) => {
                        expected.max_length = Some(max);
                        format!("shorten tag key `{k}` to at most {max} characters")
                    }
                    None => {
                        let max = self.max_value_length.unwrap_or(usize::MAX);
                        expected.max_length = Some(max);
                        format!("shorten the value of `{k}` to at most {max} characters")
                    }
                }
            }
            (ViolationKind::MisnamedKey, _) => {
                expected.key = canonical.clone();
                let variant = tag.map(|(k, _)| k).unwrap_or("");
                let exact_present = tags.iter().any(|(k, _)| k.as_ref() == key);
                if exact_present {
                    format!("remove the duplicate key `{variant}` (`{key}` is already set)")
                } else {
                    format!("rename tag key `{variant}` to `{key}`")
                }
            }
            (ViolationKind::ProhibitedTag, RuleRef::Prohibited(i)) => {
                let rule = &self.prohibited[i as usize];
                let found = tag.map(|(k, _)| k).unwrap_or(&rule.name);
                current_key = Some(found.to_string());
                let why = rule
                    .description
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                return ViolationDetail {
                    resource_id: resource_id.to_string(),
                    tag_key: Some(rule.name.clone()),
                    kind: v.kind,
                    severity: v.severity,
                    current_key,
                    current_value,
                    expected,
                    fix: format!("remove tag `{found}`{why}"),
                };
            }
            (ViolationKind::ConflictingTags, RuleRef::Conflict(i)) => {
                let rule = &self.conflicts[i as usize];
                let parts: Vec<String> = rule.conditions.iter().map(|c| c.describe()).collect();
                expected.condition = Some(rule.description.clone());
                current_key = None;
                format!(
                    "change or remove one of {} ({})",
                    parts.join(", "),
                    rule.description
                )
            }
            (ViolationKind::TooManyTags, _) => {
                let limit = self.max_tags.map(|(l, _)| l).unwrap_or(0);
                expected.max_tags = Some(limit);
                let count = self.user_key_count(tags, view);
                format!(
                    "remove at least {} tag(s): {count} user tags, the limit is {limit}",
                    count.saturating_sub(limit as usize)
                )
            }
            // Pairs that evaluation never produces; rendered plainly rather than panicking.
            (kind, _) => format!("review tag `{key}` ({})", kind.as_str()),
        };
        ViolationDetail {
            resource_id: resource_id.to_string(),
            tag_key: canonical,
            kind: v.kind,
            severity: v.severity,
            current_key,
            current_value,
            expected,
            fix,
        }
    }

    /// The first alias or case variant of `key` present on the resource.
    fn find_variant<'t, K: AsRef<str>, V: AsRef<str>>(
        &self,
        tags: &'t [(K, V)],
        key: u16,
    ) -> Option<&'t str> {
        tags.iter().map(|(k, _)| k.as_ref()).find(|k| {
            *k != self.key_name(key)
                && matches!(self.classify(k), Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) if id == key)
        })
    }

    /// Suggests the nearest accepted value: a value alias, or a case/whitespace correction.
    fn value_fix(&self, key: &str, key_id: u16, current: &str, check: &ValueCheck) -> String {
        let from_alias = self.keys[key_id as usize]
            .value_aliases
            .get(current)
            .map(|c| c.to_string());
        let candidates = from_alias.into_iter().chain([
            current.trim().to_string(),
            current.trim().to_lowercase(),
            current.trim().to_uppercase(),
        ]);
        let literal_match = check.allowed.as_ref().and_then(|a| {
            a.values()
                .iter()
                .find(|v| !v.contains('*') && v.eq_ignore_ascii_case(current.trim()))
                .cloned()
        });
        let suggestion = candidates
            .chain(literal_match)
            .find(|c| c != current && check.check(c).is_none());
        match suggestion {
            Some(s) => format!("change `{key}` from `{current}` to `{s}`"),
            None => format!("change `{key}` from `{current}`{}", value_hint(check, "to")),
        }
    }

    fn user_key_count<K: AsRef<str>, V: AsRef<str>>(&self, tags: &[(K, V)], view: View) -> usize {
        let user = tags.iter().filter(|(k, _)| !k.as_ref().starts_with("aws:"));
        match view {
            View::Native => user.count(),
            View::Effective => {
                let mut seen = std::collections::BTreeSet::new();
                let mut count = 0;
                for (k, _) in user {
                    match self.classify(k.as_ref()) {
                        Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) => {
                            if seen.insert(id) {
                                count += 1;
                            }
                        }
                        _ => count += 1,
                    }
                }
                count
            }
        }
    }
}

fn describe_check(check: &ValueCheck, expected: &mut Expected) {
    expected.allowed_values = check.allowed.as_ref().map(|a| a.values().to_vec());
    expected.pattern = check.regex_source.clone();
}

/// " with one of: a, b" / " to a value matching `re`", after a verb chosen by the caller.
fn value_hint(check: &ValueCheck, preposition: &str) -> String {
    match (&check.allowed, &check.regex_source) {
        (Some(allowed), _) => format!(" {preposition} one of: {}", allowed.values().join(", ")),
        (None, Some(pattern)) => format!(" {preposition} a value matching `{pattern}`"),
        (None, None) => String::new(),
    }
}
