//! What evaluation produces: violation kinds, compact violation records, and the per-resource
//! results (one owned `Evaluation`, or many in an `Evaluations` arena).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compiled::KeyId;
use super::model::Severity;

/// The kinds of violation a policy check reports (see policies/README.md, "How a resource is
/// judged").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    MissingRequiredTag,
    EmptyValue,
    InvalidValue,
    InvalidFormat,
    MisnamedKey,
    ProhibitedTag,
    ConditionalRequirement,
    ConflictingTags,
    TooManyTags,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 9] = [
        ViolationKind::MissingRequiredTag,
        ViolationKind::EmptyValue,
        ViolationKind::InvalidValue,
        ViolationKind::InvalidFormat,
        ViolationKind::MisnamedKey,
        ViolationKind::ProhibitedTag,
        ViolationKind::ConditionalRequirement,
        ViolationKind::ConflictingTags,
        ViolationKind::TooManyTags,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::MissingRequiredTag => "missing_required_tag",
            ViolationKind::EmptyValue => "empty_value",
            ViolationKind::InvalidValue => "invalid_value",
            ViolationKind::InvalidFormat => "invalid_format",
            ViolationKind::MisnamedKey => "misnamed_key",
            ViolationKind::ProhibitedTag => "prohibited_tag",
            ViolationKind::ConditionalRequirement => "conditional_requirement",
            ViolationKind::ConflictingTags => "conflicting_tags",
            ViolationKind::TooManyTags => "too_many_tags",
        }
    }
}

/// Which view of a resource's tags is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Tags normalised by the policy (aliases and case variants renamed, value aliases applied).
    #[default]
    Effective,
    /// Tags exactly as the cloud holds them.
    Native,
}

/// The policy rule a violation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef {
    Required(u16),
    Optional(u16),
    Prohibited(u16),
    Conflict(u16),
    MaxTags,
    /// `tag_naming_rules` length limits.
    Naming,
    /// A misnamed key (no rule of its own: it belongs to the canonical key).
    Alias,
}

pub(crate) const NO_TAG: u16 = u16::MAX;
pub(crate) const NO_KEY: KeyId = KeyId::MAX;

/// One violation, compact: everything textual is looked up at render time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub severity: Severity,
    /// Canonical key id, or `NO_KEY` (prohibited, naming, too-many-tags).
    pub key: KeyId,
    /// Index of the resource's native tag involved, or `NO_TAG`.
    pub tag: u16,
    pub rule: RuleRef,
}

/// The result of evaluating one resource (owned; see `Evaluations` for many).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// At least one required rule's `applies_to` matches the resource's type.
    pub in_scope: bool,
    pub effective: Vec<Violation>,
    pub native: Vec<Violation>,
}

impl Evaluation {
    pub fn as_ref(&self) -> EvaluationRef<'_> {
        EvaluationRef {
            in_scope: self.in_scope,
            effective: &self.effective,
            native: &self.native,
        }
    }

    pub fn violations(&self, view: View) -> &[Violation] {
        self.as_ref().violations(view)
    }

    /// Compliant when in scope and no violation is at or above `fail_at`.
    pub fn is_compliant(&self, view: View, fail_at: Severity) -> bool {
        self.as_ref().is_compliant(view, fail_at)
    }
}

/// One resource's evaluation, borrowed from an `Evaluations` arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationRef<'a> {
    pub in_scope: bool,
    pub effective: &'a [Violation],
    pub native: &'a [Violation],
}

impl<'a> EvaluationRef<'a> {
    pub fn violations(&self, view: View) -> &'a [Violation] {
        match view {
            View::Effective => self.effective,
            View::Native => self.native,
        }
    }

    /// Compliant when in scope and no violation is at or above `fail_at`.
    pub fn is_compliant(&self, view: View, fail_at: Severity) -> bool {
        self.in_scope && !self.violations(view).iter().any(|v| v.severity >= fail_at)
    }
}

/// The evaluations of many resources in one arena: a 16-byte span per resource into a shared
/// violation list. When a resource's views cannot differ, both spans point at the same
/// violations, so most resources cost their span and nothing else.
#[derive(Debug, Clone, Default)]
pub struct Evaluations {
    pub(super) spans: Vec<Span>,
    pub(super) violations: Vec<Violation>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    pub(super) effective_start: u32,
    pub(super) native_start: u32,
    pub(super) effective_len: u16,
    pub(super) native_len: u16,
    pub(super) in_scope: bool,
}

impl Evaluations {
    pub fn with_capacity(resources: usize) -> Self {
        Evaluations {
            spans: Vec::with_capacity(resources),
            violations: Vec::with_capacity(resources),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The evaluation of the `index`-th resource evaluated.
    pub fn get(&self, index: usize) -> EvaluationRef<'_> {
        let s = self.spans[index];
        let eff = s.effective_start as usize;
        let nat = s.native_start as usize;
        EvaluationRef {
            in_scope: s.in_scope,
            effective: &self.violations[eff..eff + s.effective_len as usize],
            native: &self.violations[nat..nat + s.native_len as usize],
        }
    }

    /// Appends one resource's evaluation (made elsewhere, e.g. with virtual tags laid over).
    pub fn push_evaluation(&mut self, e: &Evaluation) {
        let effective_start = self.violations.len() as u32;
        self.violations.extend_from_slice(&e.effective);
        let native_start = self.violations.len() as u32;
        self.violations.extend_from_slice(&e.native);
        self.spans.push(Span {
            effective_start,
            native_start,
            effective_len: e.effective.len() as u16,
            native_len: e.native.len() as u16,
            in_scope: e.in_scope,
        });
    }

    /// Appends the evaluations of `later` (of the resources after this list's).
    pub fn append(&mut self, later: Evaluations) {
        let offset = self.violations.len() as u32;
        self.violations.extend_from_slice(&later.violations);
        self.spans.extend(later.spans.into_iter().map(|s| Span {
            effective_start: s.effective_start + offset,
            native_start: s.native_start + offset,
            ..s
        }));
    }

    pub fn iter(&self) -> impl Iterator<Item = EvaluationRef<'_>> {
        (0..self.spans.len()).map(|i| self.get(i))
    }

    /// Bytes held (for memory reporting).
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<Span>()
            + self.violations.capacity() * std::mem::size_of::<Violation>()
    }
}
