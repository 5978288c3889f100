//! The compiled policy: the file's meaning, checked and turned into lookup tables so that
//! evaluation does no parsing, no regex compilation and almost no allocation.
//!
//! Every key the policy mentions (required, optional, aliased, used in a condition) becomes a
//! *canonical key* with a small integer id; evaluation resolves each tag on a resource to one of
//! them (exactly, as a case variant, or as an alias) or to a prohibited key.

use regex::Regex;
use rustc_hash::{FxHashMap, FxHashSet};

use super::loader::PolicyError;
use super::model::{Condition, KeyMatching, PolicyFile, Severity};
use super::pattern::{TypePatterns, Wildcard};

pub(crate) type KeyId = u16;

/// What a tag key on a resource means under this policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// Exactly the canonical key (or, in the folded table, a case variant of it).
    Canonical(KeyId),
    /// A listed alias of the canonical key.
    Alias(KeyId),
    /// A prohibited key (index into `prohibited`).
    Prohibited(u16),
}

impl KeyRef {
    /// Two entries may share a name when they mean the same canonical key (an alias listed
    /// that is only a case variant of its key, say); never when they mean different things.
    pub(crate) fn same_meaning(self, other: KeyRef) -> bool {
        match (self, other) {
            (KeyRef::Canonical(a) | KeyRef::Alias(a), KeyRef::Canonical(b) | KeyRef::Alias(b)) => {
                a == b
            }
            (KeyRef::Prohibited(a), KeyRef::Prohibited(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct KeyInfo {
    pub name: String,
    /// variant value → canonical value (values are case-sensitive).
    pub(crate) value_aliases: FxHashMap<Box<str>, Box<str>>,
}

/// The set of values a key may take: literals in a hash set, `*` patterns in a list.
#[derive(Debug, Clone)]
pub struct AllowedValues {
    literals: FxHashSet<Box<str>>,
    wildcards: Vec<Wildcard>,
    pub(crate) display: Vec<String>,
}

impl AllowedValues {
    fn new(values: &[String]) -> Self {
        let mut literals = FxHashSet::default();
        let mut wildcards = Vec::new();
        for v in values {
            let w = Wildcard::new(v);
            if w.is_literal() {
                literals.insert(v.as_str().into());
            } else {
                wildcards.push(w);
            }
        }
        AllowedValues {
            literals,
            wildcards,
            display: values.to_vec(),
        }
    }

    pub fn allows(&self, value: &str) -> bool {
        self.literals.contains(value) || self.wildcards.iter().any(|w| w.matches(value))
    }

    pub fn values(&self) -> &[String] {
        &self.display
    }
}

/// The checks on a present value: allowed values first, then the anchored regex.
#[derive(Debug, Clone, Default)]
pub struct ValueCheck {
    pub allowed: Option<AllowedValues>,
    pub regex: Option<Regex>,
    /// The regex as the user wrote it, for messages.
    pub regex_source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueProblem {
    NotAllowed,
    BadFormat,
}

impl ValueCheck {
    pub(crate) fn compile(
        allowed: Option<&Vec<String>>,
        regex: Option<&String>,
        path: &str,
    ) -> Result<Self, PolicyError> {
        let allowed = allowed
            .filter(|values| !values.is_empty())
            .map(|values| AllowedValues::new(values));
        let (regex, regex_source) = match regex.map(|r| r.trim()).filter(|r| !r.is_empty()) {
            None => (None, None),
            Some(source) => {
                // Anchored: the regex must match the whole value, whether or not the author
                // wrote ^...$ (the Python peer's files do).
                let anchored = format!("^(?:{source})$");
                let compiled = Regex::new(&anchored).map_err(|e| {
                    PolicyError::invalid(
                        format!("{path}.validation_regex"),
                        format!(
                            "not a valid regular expression: {}",
                            super::compile::first_line(&e.to_string())
                        ),
                    )
                })?;
                (Some(compiled), Some(source.to_string()))
            }
        };
        Ok(ValueCheck {
            allowed,
            regex,
            regex_source,
        })
    }

    pub(crate) fn check(&self, value: &str) -> Option<ValueProblem> {
        if let Some(allowed) = &self.allowed
            && !allowed.allows(value)
        {
            return Some(ValueProblem::NotAllowed);
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(value)
        {
            return Some(ValueProblem::BadFormat);
        }
        None
    }

    pub fn is_unconstrained(&self) -> bool {
        self.allowed.is_none() && self.regex.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ConditionTest {
    Equals(Box<str>),
    In(Vec<Box<str>>),
    Exists(bool),
}

#[derive(Debug, Clone)]
pub struct CompiledCondition {
    pub(crate) key: KeyId,
    pub(crate) test: ConditionTest,
    pub(crate) source: Condition,
}

impl CompiledCondition {
    /// A condition on an absent key is false, except `exists: false`.
    pub(crate) fn holds(&self, value: Option<&str>) -> bool {
        match (&self.test, value) {
            (ConditionTest::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (ConditionTest::Equals(expected), Some(v)) => **expected == *v,
            (ConditionTest::In(options), Some(v)) => options.iter().any(|o| **o == *v),
        }
    }

    pub fn describe(&self) -> String {
        let c = &self.source;
        if let Some(v) = &c.equals {
            format!("{}={}", c.key, v)
        } else if let Some(vs) = &c.in_values {
            format!("{} in [{}]", c.key, vs.join(", "))
        } else if c.exists == Some(false) {
            format!("{} is absent", c.key)
        } else {
            format!("{} is present", c.key)
        }
    }
}

#[derive(Debug)]
pub struct RequiredRule {
    pub key: KeyId,
    pub applies_to: TypePatterns,
    pub severity: Severity,
    pub when: Option<CompiledCondition>,
    pub check: ValueCheck,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct OptionalRule {
    pub key: KeyId,
    pub severity: Severity,
    pub check: ValueCheck,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct ProhibitedRule {
    pub name: String,
    pub severity: Severity,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct ConflictRule {
    pub conditions: Vec<CompiledCondition>,
    pub severity: Severity,
    pub description: String,
}

/// A checked, ready-to-evaluate policy.
#[derive(Debug)]
pub struct Policy {
    pub(crate) file: PolicyFile,
    pub(crate) hash: String,
    pub(crate) fail_at: Severity,
    pub(crate) key_matching: KeyMatching,
    pub(crate) keys: Vec<KeyInfo>,
    pub(crate) exact: FxHashMap<Box<str>, KeyRef>,
    /// Lower-cased names; empty in `exact` matching mode.
    pub(crate) folded: FxHashMap<Box<str>, KeyRef>,
    pub(crate) required: Vec<RequiredRule>,
    /// Optional rules indexed by key id (at most one per key).
    pub(crate) optional: Vec<OptionalRule>,
    pub(crate) prohibited: Vec<ProhibitedRule>,
    pub(crate) max_tags: Option<(u32, Severity)>,
    pub(crate) conflicts: Vec<ConflictRule>,
    pub(crate) max_key_length: Option<usize>,
    pub(crate) max_value_length: Option<usize>,
    /// Types in scope even without an applicable required rule (`scope` in the file).
    pub(crate) scope: Option<TypePatterns>,
}

impl Policy {
    /// Content hash of the policy, so answers say which policy they used.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// A resource fails at a violation of this severity or above.
    pub fn fail_at(&self) -> Severity {
        self.fail_at
    }

    /// How tag keys are matched (exact or case-insensitive).
    pub fn key_matching(&self) -> KeyMatching {
        self.key_matching
    }

    /// The policy as it was written.
    pub fn file(&self) -> &PolicyFile {
        &self.file
    }

    /// The canonical name of a governed key.
    pub fn key_name(&self, key: KeyId) -> &str {
        &self.keys[key as usize].name
    }

    /// Rules for keys that must be present.
    pub fn required_rules(&self) -> &[RequiredRule] {
        &self.required
    }

    /// Rules for keys that are checked when present.
    pub fn optional_rules(&self) -> &[OptionalRule] {
        &self.optional
    }

    /// Keys that must not be present.
    pub fn prohibited_rules(&self) -> &[ProhibitedRule] {
        &self.prohibited
    }

    /// Pairs of tags that must not disagree.
    pub fn conflict_rules(&self) -> &[ConflictRule] {
        &self.conflicts
    }

    /// The most tags a resource may carry, and the severity past it.
    pub fn max_tags(&self) -> Option<(u32, Severity)> {
        self.max_tags
    }

    /// Variants listed as aliases of a canonical key, in file order.
    pub fn aliases_of(&self, key: &str) -> &[String] {
        self.file.aliases.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The distinct required keys, in file order.
    pub fn required_key_names(&self) -> Vec<&str> {
        let mut seen = FxHashSet::default();
        self.required
            .iter()
            .map(|r| self.key_name(r.key))
            .filter(|k| seen.insert(*k))
            .collect()
    }

    /// The canonical key id for a name as the policy spells it.
    pub fn key_id(&self, name: &str) -> Option<KeyId> {
        match self.exact.get(name) {
            Some(KeyRef::Canonical(id)) => Some(*id),
            _ => None,
        }
    }

    /// Whether resources of this type are judged: a required rule applies to it (ignoring
    /// `when`), or the policy's `scope` names it.
    pub fn in_scope(&self, resource_type: &str) -> bool {
        self.required
            .iter()
            .any(|r| r.applies_to.matches(resource_type))
            || self.in_declared_scope(resource_type)
    }

    /// Whether the policy's `scope` names this type (false without a `scope`).
    pub(crate) fn in_declared_scope(&self, resource_type: &str) -> bool {
        self.scope
            .as_ref()
            .is_some_and(|s| s.matches(resource_type))
    }

    /// Required rules that apply to a resource type (ignoring `when`).
    pub fn rules_for_type(&self, resource_type: &str) -> Vec<u16> {
        self.required
            .iter()
            .enumerate()
            .filter(|(_, r)| r.applies_to.matches(resource_type))
            .map(|(i, _)| i as u16)
            .collect()
    }
}
