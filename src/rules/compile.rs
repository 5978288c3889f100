//! Validation and compilation of rule specs: fields resolved to an enum, regexes and globs
//! built once, value templates parsed, capture placeholders checked against the regexes that
//! can feed them. Every problem of every rule is reported at once, with a path into the rule.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};

use super::{Condition, RuleError, RuleSpec};
use crate::policy::pattern::Wildcard;

/// Rules ready to run: validated, sorted by (priority, id), regexes compiled.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// Evaluation order; disabled rules are kept (they never match).
    pub(super) rules: Vec<Rule>,
    /// Some enabled rule reads a tag: only then does `run` ask for effective tags.
    pub(super) uses_tags: bool,
    /// The distinct tag keys the rules read; `FieldRef::Tag` indexes this, so each key is
    /// looked up at most once per resource however many rules test it.
    pub(super) tag_keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) enabled: bool,
    pub(super) trusted: bool,
    pub(super) override_native: bool,
    pub(super) when: Node,
    /// Sorted by key (from the spec's map).
    pub(super) set: Vec<(String, Template)>,
    /// Regexes with capture groups outside any `not`, in the order they appear in the rule;
    /// bit i of the match mask says slot i matched.
    pub(super) slots: Vec<Slot>,
}

/// A regex that can provide captures; re-run with captures only when its rule matched.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) field: FieldRef,
    pub(super) regex: Regex,
}

/// At most this many capturing regexes per rule: their matched flags live in one `u64`, which
/// keeps evaluation free of allocation.
const MAX_SLOTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FieldRef {
    Type,
    Name,
    Id,
    Account,
    Region,
    Provider,
    Vpc,
    Subnet,
    Stack,
    Creator,
    /// Index into `CompiledRules::tag_keys`.
    Tag(usize),
}

const FIELDS: [&str; 10] = [
    "type", "name", "id", "account", "region", "provider", "vpc", "subnet", "stack", "creator",
];

#[derive(Debug, Clone)]
pub(super) enum Node {
    /// `clear` holds the mask bits of the slots inside: a failed `all` forgets what its
    /// children captured, so an enclosing `any` takes captures only from the branch that held.
    All {
        children: Vec<Node>,
        clear: u64,
    },
    Any(Vec<Node>),
    Not(Box<Node>),
    Test {
        field: FieldRef,
        test: Test,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Test {
    Eq(String),
    /// Sorted and deduplicated, for binary search.
    In(Vec<String>),
    Glob(Glob),
    /// `slot` is the bit to set on a match, when the regex can provide captures.
    Regex {
        regex: Regex,
        slot: Option<u8>,
    },
    /// True: a non-empty value is required; false: none may be present.
    Exists(bool),
}

#[derive(Debug, Clone)]
pub(super) enum Glob {
    /// Only `*`: the policy's hand-rolled matcher.
    Star(Wildcard),
    /// With `?`: translated to an anchored regex.
    Regex(Regex),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Literal(String),
    /// `{n}`: group n of the first matched slot.
    Position(usize),
    /// `{name}`: candidate (slot, group index) pairs in slot order.
    Named(Vec<(usize, usize)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    pub(super) parts: Vec<Part>,
}

impl Template {
    /// The value when it has no placeholders (the common case: no capture work at match time).
    pub(super) fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }
}

/// Regex programs past this size are refused: rules come from users over MCP, and 50 rules
/// must stay cheap to hold and to compile.
const REGEX_SIZE_LIMIT: usize = 2 << 20;

impl CompiledRules {
    /// Validates and compiles rules given as (id, spec). Returns every problem found, each
    /// naming its rule and where in it; disabled rules are validated too, so enabling one
    /// later cannot fail.
    pub fn compile(rules: &[(i64, RuleSpec)]) -> Result<CompiledRules, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut tag_keys = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (id, spec) in rules {
            if let Some(rule) = compile_rule(*id, spec, &mut tag_keys, &mut errors) {
                compiled.push((spec.priority, rule));
            }
        }
        check_ids_and_priorities(rules, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        compiled.sort_by_key(|(priority, rule)| (*priority, rule.id));
        let rules: Vec<Rule> = compiled.into_iter().map(|(_, rule)| rule).collect();
        let uses_tags = rules.iter().any(|r| r.enabled && reads_tags(&r.when));
        Ok(CompiledRules {
            rules,
            uses_tags,
            tag_keys,
        })
    }

    /// Number of rules, disabled ones included.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn label(id: i64, spec: &RuleSpec) -> String {
    if spec.name.trim().is_empty() {
        format!("#{id}")
    } else {
        spec.name.clone()
    }
}

fn check_ids_and_priorities(rules: &[(i64, RuleSpec)], errors: &mut Vec<RuleError>) {
    let mut by_id: BTreeMap<i64, &RuleSpec> = BTreeMap::new();
    let mut by_priority: BTreeMap<i64, (i64, &RuleSpec)> = BTreeMap::new();
    for (id, spec) in rules {
        if let Some(first) = by_id.get(id) {
            errors.push(RuleError {
                rule: label(*id, spec),
                path: "id".into(),
                message: format!("id {id} is also used by rule `{}`", label(*id, first)),
            });
        } else {
            by_id.insert(*id, spec);
        }
        if !spec.enabled {
            continue;
        }
        if let Some((other_id, other)) = by_priority.get(&spec.priority) {
            errors.push(RuleError {
                rule: label(*id, spec),
                path: "priority".into(),
                message: format!(
                    "conflicting priority: {} is also the priority of enabled rule `{}` (id \
                     {other_id}); give each enabled rule its own priority so the order is clear",
                    spec.priority,
                    label(*other_id, other)
                ),
            });
        } else {
            by_priority.insert(spec.priority, (*id, spec));
        }
    }
}

fn reads_tags(node: &Node) -> bool {
    match node {
        Node::All { children, .. } | Node::Any(children) => children.iter().any(reads_tags),
        Node::Not(inner) => reads_tags(inner),
        Node::Test { field, .. } => matches!(field, FieldRef::Tag(_)),
    }
}

/// Compiles one rule, pushing its problems; `None` when it had any.
fn compile_rule(
    id: i64,
    spec: &RuleSpec,
    tag_keys: &mut Vec<String>,
    errors: &mut Vec<RuleError>,
) -> Option<Rule> {
    let mut ctx = RuleCtx {
        rule: label(id, spec),
        errors: Vec::new(),
        slots: Vec::new(),
        tag_keys,
    };
    if spec.name.trim().is_empty() {
        ctx.error("name", "the rule needs a name".into());
    }
    let when = ctx.node(&spec.when, "when", false);
    if spec.set.is_empty() {
        ctx.error(
            "set",
            "`set` is empty: a rule must set at least one tag, e.g. {\"Team\": \"payments\"}"
                .into(),
        );
    }
    let mut set = Vec::with_capacity(spec.set.len());
    for (key, value) in &spec.set {
        let path = format!("set.{key}");
        if key.trim().is_empty() {
            ctx.error("set", "a tag key is empty".into());
            continue;
        }
        if value.is_empty() {
            ctx.error(&path, "the value is empty".into());
            continue;
        }
        match ctx.template(value) {
            Ok(t) => set.push((key.clone(), t)),
            Err(message) => ctx.error(&path, message),
        }
    }
    let RuleCtx {
        errors: mine,
        slots,
        ..
    } = ctx;
    if !mine.is_empty() {
        errors.extend(mine);
        return None;
    }
    Some(Rule {
        id,
        name: spec.name.clone(),
        enabled: spec.enabled,
        trusted: spec.trusted,
        override_native: spec.override_native,
        when: when?,
        set,
        slots,
    })
}

struct RuleCtx<'k> {
    rule: String,
    errors: Vec<RuleError>,
    slots: Vec<Slot>,
    /// Shared by all rules (interning).
    tag_keys: &'k mut Vec<String>,
}

impl RuleCtx<'_> {
    fn error(&mut self, path: &str, message: String) {
        self.errors.push(RuleError {
            rule: self.rule.clone(),
            path: path.to_string(),
            message,
        });
    }

    /// `negated`: inside a `not`, where a regex that holds makes the rule fail, so it can
    /// never provide captures and gets no slot.
    fn node(&mut self, c: &Condition, path: &str, negated: bool) -> Option<Node> {
        match c {
            Condition::All { all } => {
                let first_slot = self.slots.len();
                let children = self.list(all, &format!("{path}.all"), negated)?;
                let clear = mask_between(first_slot, self.slots.len());
                let mut children = children;
                // Cheap tests first: `all` short-circuits, and captures are numbered by
                // position in the rule, not by evaluation order, so this changes no result.
                children.sort_by_key(cost);
                Some(Node::All { children, clear })
            }
            Condition::Any { any } => Some(Node::Any(self.list(
                any,
                &format!("{path}.any"),
                negated,
            )?)),
            Condition::Not { not } => Some(Node::Not(Box::new(self.node(
                not,
                &format!("{path}.not"),
                true,
            )?))),
            Condition::Eq { field, eq } => {
                let field = self.field(field, path)?;
                Some(Node::Test {
                    field,
                    test: Test::Eq(eq.clone()),
                })
            }
            Condition::In { field, values } => {
                let field = self.field(field, path);
                if values.is_empty() {
                    self.error(
                        &format!("{path}.in"),
                        "the list is empty, so the test could never hold".into(),
                    );
                    return None;
                }
                let mut values = values.clone();
                values.sort();
                values.dedup();
                Some(Node::Test {
                    field: field?,
                    test: Test::In(values),
                })
            }
            Condition::Glob { field, glob } => {
                let field = self.field(field, path);
                let glob = self.glob(glob, &format!("{path}.glob"))?;
                Some(Node::Test {
                    field: field?,
                    test: Test::Glob(glob),
                })
            }
            Condition::Regex { field, regex } => {
                let field = self.field(field, path);
                let regex_path = format!("{path}.regex");
                let regex = match build_regex(regex) {
                    Ok(r) => r,
                    Err(message) => {
                        self.error(&regex_path, message);
                        return None;
                    }
                };
                let field = field?;
                let slot = if !negated && regex.captures_len() > 1 {
                    if self.slots.len() >= MAX_SLOTS {
                        self.error(
                            &regex_path,
                            format!(
                                "at most {MAX_SLOTS} regexes with capture groups per rule; \
                                 use non-capturing groups (?:...) where no capture is needed"
                            ),
                        );
                        return None;
                    }
                    self.slots.push(Slot {
                        field: field.clone(),
                        regex: regex.clone(),
                    });
                    u8::try_from(self.slots.len() - 1).ok()
                } else {
                    None
                };
                Some(Node::Test {
                    field,
                    test: Test::Regex { regex, slot },
                })
            }
            Condition::Exists { field, exists } => Some(Node::Test {
                field: self.field(field, path)?,
                test: Test::Exists(*exists),
            }),
            Condition::Absent { field, absent } => Some(Node::Test {
                field: self.field(field, path)?,
                test: Test::Exists(!*absent),
            }),
        }
    }

    fn list(&mut self, items: &[Condition], path: &str, negated: bool) -> Option<Vec<Node>> {
        if items.is_empty() {
            self.error(
                path,
                "the list is empty: give at least one condition (or drop the combinator)".into(),
            );
            return None;
        }
        let mut ok = true;
        let mut nodes = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match self.node(item, &format!("{path}[{i}]"), negated) {
                Some(n) => nodes.push(n),
                None => ok = false,
            }
        }
        ok.then_some(nodes)
    }

    fn field(&mut self, field: &str, path: &str) -> Option<FieldRef> {
        match parse_field(field) {
            Ok(Field::Fixed(f)) => Some(f),
            Ok(Field::Tag(key)) => {
                let index = match self.tag_keys.iter().position(|k| k == key) {
                    Some(i) => i,
                    None => {
                        self.tag_keys.push(key.to_string());
                        self.tag_keys.len() - 1
                    }
                };
                Some(FieldRef::Tag(index))
            }
            Err(message) => {
                self.error(&format!("{path}.field"), message);
                None
            }
        }
    }

    fn glob(&mut self, glob: &str, path: &str) -> Option<Glob> {
        if !glob.contains('?') {
            return Some(Glob::Star(Wildcard::new(glob)));
        }
        let mut pattern = String::from("(?s)^");
        for c in glob.chars() {
            match c {
                '*' => pattern.push_str(".*"),
                '?' => pattern.push('.'),
                c => pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        pattern.push('$');
        match build_regex(&pattern) {
            Ok(r) => Some(Glob::Regex(r)),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Parses a `set` value: literal text, `{n}` / `{name}` placeholders, `{{` / `}}` escapes.
    fn template(&self, value: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = value.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at byte {at}; write `}}}}` for a literal brace"
                    ));
                }
                '{' => {
                    let rest = &value[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed `{{` at byte {at}; write `{{{{` for a literal brace"
                        ));
                    };
                    let name = &rest[..end];
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(self.placeholder(name)?);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    fn placeholder(&self, name: &str) -> Result<Part, String> {
        if name.is_empty() || name.contains('{') {
            return Err(format!(
                "`{{{name}}}` is not a placeholder: use `{{1}}` for group 1 or `{{name}}` for a \
                 named group; `{{{{` is a literal brace"
            ));
        }
        let no_slots = "the rule has no regex with capture groups to take it from (regexes \
                        inside `not` never capture)";
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let n: usize = name
                .parse()
                .map_err(|_| format!("`{{{name}}}` is too large"))?;
            if n == 0 {
                return Err(
                    "placeholders start at `{1}`; wrap the whole pattern in a group to capture \
                     all of it"
                        .into(),
                );
            }
            let most = self.slots.iter().map(|s| s.regex.captures_len() - 1).max();
            return match most {
                None => Err(format!("`{{{n}}}`: {no_slots}")),
                Some(most) if n > most => Err(format!(
                    "`{{{n}}}` refers to group {n}, but the rule's regexes have at most {most} \
                     group{}",
                    if most == 1 { "" } else { "s" }
                )),
                Some(_) => Ok(Part::Position(n)),
            };
        }
        let candidates: Vec<(usize, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                s.regex
                    .capture_names()
                    .position(|n| n == Some(name))
                    .map(|group| (slot, group))
            })
            .collect();
        if !candidates.is_empty() {
            return Ok(Part::Named(candidates));
        }
        let known: Vec<String> = self
            .slots
            .iter()
            .flat_map(|s| s.regex.capture_names().flatten())
            .map(|n| format!("`{n}`"))
            .collect();
        Err(if self.slots.is_empty() {
            format!("`{{{name}}}`: {no_slots}")
        } else if known.is_empty() {
            format!(
                "`{{{name}}}`: no regex of the rule has a group named `{name}` (they have only \
                 numbered groups; name one with (?P<{name}>...))"
            )
        } else {
            format!(
                "`{{{name}}}`: no regex of the rule has a group named `{name}`; named groups: {}",
                known.join(", ")
            )
        })
    }
}

/// Mask bits for slots `from..to` (slot indexes are below `MAX_SLOTS`).
fn mask_between(from: usize, to: usize) -> u64 {
    (from..to.min(MAX_SLOTS)).fold(0, |m, i| m | (1u64 << i))
}

/// A rough evaluation cost, to try cheap tests of an `all` first.
fn cost(node: &Node) -> u32 {
    match node {
        Node::All { children, .. } | Node::Any(children) => children.iter().map(cost).sum(),
        Node::Not(inner) => cost(inner),
        Node::Test { field, test } => {
            let read = if matches!(field, FieldRef::Tag(_)) {
                2
            } else {
                0
            };
            let check = match test {
                Test::Exists(_) => 0,
                Test::Eq(_) => 1,
                Test::In(_) => 2,
                Test::Glob(Glob::Star(_)) => 3,
                Test::Glob(Glob::Regex(_)) | Test::Regex { .. } => 10,
            };
            read + check
        }
    }
}

enum Field<'a> {
    Fixed(FieldRef),
    Tag(&'a str),
}

fn parse_field(field: &str) -> Result<Field<'_>, String> {
    Ok(Field::Fixed(match field {
        "type" => FieldRef::Type,
        "name" => FieldRef::Name,
        "id" => FieldRef::Id,
        "account" => FieldRef::Account,
        "region" => FieldRef::Region,
        "provider" => FieldRef::Provider,
        "vpc" => FieldRef::Vpc,
        "subnet" => FieldRef::Subnet,
        "stack" => FieldRef::Stack,
        "creator" => FieldRef::Creator,
        _ => {
            if let Some(key) = field.strip_prefix("tag:") {
                if key.is_empty() {
                    return Err("`tag:` needs a key, e.g. `tag:Team`".into());
                }
                return Ok(Field::Tag(key));
            }
            let lower = field.to_ascii_lowercase();
            let hint = if FIELDS.contains(&lower.as_str()) {
                format!(" (did you mean `{lower}`, or the tag `tag:{field}`?)")
            } else if field.contains(':') {
                String::new()
            } else {
                format!(" (for a tag, write `tag:{field}`)")
            };
            return Err(format!(
                "unknown field `{field}`{hint}; known fields: {}, and tag:KEY for an effective \
                 tag (e.g. tag:Team)",
                FIELDS.join(", ")
            ));
        }
    }))
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex: {}", regex_message(&e)))
}

/// The gist of a regex error. Syntax errors span several lines (the pattern, a caret line,
/// then `error: ...`); the `error:` line is the part that says what is wrong.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("unknown error")
        .trim()
        .to_string()
}
