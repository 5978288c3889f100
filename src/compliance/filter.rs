//! Which resources and which violations a question is about.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::inventory::{AccountDirectory, Resource};
use crate::policy::compiled::KeyRef;
use crate::policy::evaluate::RuleRef;
use crate::policy::pattern::TypePatterns;
use crate::policy::{KeyId, Policy, Severity, Violation, ViolationKind};

/// Which resources a question is about: type patterns, regions and accounts (empty lists
/// select everything). Serialized with the argument names the tools take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scope {
    #[serde(default)]
    pub resource_types: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
}

impl Scope {
    /// The matcher for this scope over an inventory whose accounts are `known`: an account
    /// may be given by id or by name (`prod`), as answers show them.
    pub(crate) fn filter_in(&self, known: &AccountDirectory) -> ResourceFilter {
        ResourceFilter::new(
            &self.resource_types,
            &self.regions,
            &known.resolve(&self.accounts),
        )
    }
}

/// Selects resources by type pattern, region and account (empty lists select everything).
#[derive(Debug, Clone)]
pub struct ResourceFilter {
    types: TypePatterns,
    regions: Vec<String>,
    accounts: Vec<String>,
}

impl Default for ResourceFilter {
    fn default() -> Self {
        ResourceFilter {
            types: TypePatterns::any(),
            regions: Vec::new(),
            accounts: Vec::new(),
        }
    }
}

impl ResourceFilter {
    /// Resources of these types (patterns), regions and accounts; an empty list selects all.
    pub fn new(types: &[String], regions: &[String], accounts: &[String]) -> Self {
        ResourceFilter {
            types: TypePatterns::new(types),
            regions: regions.to_vec(),
            accounts: accounts.to_vec(),
        }
    }

    /// Whether the resource is selected.
    pub fn matches(&self, r: &Resource) -> bool {
        (self.regions.is_empty() || self.regions.iter().any(|x| x == r.region.as_str()))
            && (self.accounts.is_empty() || self.accounts.iter().any(|x| x == r.account.as_str()))
            && self.types.matches(&r.resource_type)
    }
}

/// Selects violations by key, kind and minimum severity, and decides compliance under those
/// restrictions: a resource is compliant when no *selected* violation reaches the threshold
/// `max(policy fail_at, min_severity)`.
#[derive(Debug, Clone)]
pub struct ViolationFilter {
    keys: Option<FxHashSet<KeyId>>,
    prohibited: Option<FxHashSet<u16>>,
    kinds: Option<Vec<ViolationKind>>,
    /// Violations below this severity are not counted.
    pub min_severity: Severity,
}

impl Default for ViolationFilter {
    fn default() -> Self {
        ViolationFilter {
            keys: None,
            prohibited: None,
            kinds: None,
            min_severity: Severity::Low,
        }
    }
}

impl ViolationFilter {
    /// Builds a filter; returns the requested keys the policy does not know, if any.
    pub fn new(
        policy: &Policy,
        tag_keys: &[String],
        kinds: &[ViolationKind],
        min_severity: Severity,
    ) -> Result<Self, Vec<String>> {
        let mut filter = ViolationFilter {
            min_severity,
            kinds: (!kinds.is_empty()).then(|| kinds.to_vec()),
            ..ViolationFilter::default()
        };
        if tag_keys.is_empty() {
            return Ok(filter);
        }
        let mut keys = FxHashSet::default();
        let mut prohibited = FxHashSet::default();
        let mut unknown = Vec::new();
        for name in tag_keys {
            match policy.classify(name) {
                Some(KeyRef::Canonical(id) | KeyRef::Alias(id)) => {
                    keys.insert(id);
                }
                Some(KeyRef::Prohibited(i)) => {
                    prohibited.insert(i);
                }
                None => unknown.push(name.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        filter.keys = Some(keys);
        filter.prohibited = Some(prohibited);
        Ok(filter)
    }

    /// The violation concerns the selected keys and kinds (severity not considered).
    pub fn selects(&self, v: &Violation) -> bool {
        if let Some(kinds) = &self.kinds
            && !kinds.contains(&v.kind)
        {
            return false;
        }
        match (&self.keys, v.rule) {
            (None, _) => true,
            (Some(_), RuleRef::Prohibited(i)) => {
                self.prohibited.as_ref().is_some_and(|p| p.contains(&i))
            }
            (Some(keys), _) => keys.contains(&v.key),
        }
    }

    /// Selected and at or above `min_severity`: counted and listed.
    pub fn counts(&self, v: &Violation) -> bool {
        v.severity >= self.min_severity && self.selects(v)
    }

    /// Whether a resource's violations make it non-compliant under this filter.
    pub fn fails(&self, violations: &[Violation], fail_at: Severity) -> bool {
        let threshold = fail_at.max(self.min_severity);
        violations
            .iter()
            .any(|v| v.severity >= threshold && self.selects(v))
    }
}
