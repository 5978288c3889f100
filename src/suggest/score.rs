//! Gathering evidence for one (resource, key) and combining it into calibrated confidences.
//!
//! Every source gives an *opinion*: a distribution over the key's values (the valid values of
//! the other resources in a group, or a single asserted value). Opinions are combined as a
//! tempered naive Bayes over the key's values: start from the estate-wide frequency of each
//! value, multiply by each source's likelihood ratio (its smoothed share for the value over the
//! value's overall frequency) raised to the source's weight, normalise over all values. Unlike a
//! noisy-OR this lets sources *disagree*: a stack whose every resource says `sandbox-bob` beats
//! the name token `dev` (which fits both `development` and the sandboxes), and a broad group
//! (an account) moves nothing between values it holds in proportion.
//!
//! Two things keep it calibrated: each table's smoothing is fitted to how much its groups
//! really agree (`Table::fit`: a two-resource stack is decisive, a project is not), and
//! correlated opinions are tempered: the name's tokens, and the resource's other tags, each
//! share one source's weight; group sources that mostly restate the stack weigh less than 1.
//! Users' feedback scales the weights further.
//!
//! Agreement is measured per allowed-value pattern: a group's share of a value is its share of
//! the value's pattern (`sandbox-*`) times the value's share within the pattern, each smoothed
//! as much as groups of that kind disagree at that level. Two members of a stack saying
//! `sandbox-alice` then make a sandbox likely, but say little about whose it is when stacks
//! are usually shared by several people's sandboxes.

use super::stats::{NONE, Patterns, Smoothing, TOP, Table, insert_top};
use super::text;
use super::{Band, Candidate, Evidence, Reliability, Suggester, Target};

/// Pseudo-count the dictionary adds to an environment word (`prod` → production): enough to
/// suggest on an estate that has nothing to learn from, small next to learned counts.
const DICTIONARY: f64 = 4.0;
/// Candidates below this probability are not shown (except the best one).
const SHOWN: f64 = 0.01;
/// Evidence contributing less than this (weighted log likelihood ratio) is not listed.
const LISTED: f64 = 0.05;
/// Name tokens or related tags carrying less than this share of their source's information
/// are dropped.
const MIN_SHARE: f64 = 0.05;
/// Beta prior on a source's approval rate: 8 approvals and 2 denials' worth (0.8).
const PRIOR_APPROVED: f64 = 8.0;
const PRIOR_DENIED: f64 = 2.0;

/// Where a piece of evidence comes from; its name is what users approve or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    NameToken,
    SimilarStack,
    SimilarVpc,
    SimilarAccount,
    NamePrefix,
    RelatedTag,
    Rule,
    CurrentValue,
    SimilarKey,
    PolicyValues,
}

impl Source {
    pub(super) const COUNT: usize = 10;
    pub(super) const ALL: [Source; Source::COUNT] = [
        Source::NameToken,
        Source::SimilarStack,
        Source::SimilarVpc,
        Source::SimilarAccount,
        Source::NamePrefix,
        Source::RelatedTag,
        Source::Rule,
        Source::CurrentValue,
        Source::SimilarKey,
        Source::PolicyValues,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Source::NameToken => "name_token",
            Source::SimilarStack => "similar_stack",
            Source::SimilarVpc => "similar_vpc",
            Source::SimilarAccount => "similar_account",
            Source::NamePrefix => "name_prefix",
            Source::RelatedTag => "related_tag",
            Source::Rule => "rule",
            Source::CurrentValue => "current_value",
            Source::SimilarKey => "similar_key",
            Source::PolicyValues => "policy_values",
        }
    }

    /// The source's weight before feedback. Group sources that describe the same deployment
    /// as the stack (network, name prefix, account) count for less, since they mostly repeat
    /// it; name tokens and related tags likewise. Tuned on the demo estate's calibration,
    /// with sources switched off one by one (`calibrate.rs`).
    fn base_weight(self) -> f64 {
        match self {
            Source::SimilarStack => 1.0,
            Source::SimilarVpc => 0.5,
            Source::SimilarAccount => 0.5,
            Source::NamePrefix => 0.6,
            Source::NameToken => 0.7,
            Source::RelatedTag => 0.7,
            Source::Rule => 1.0,
            Source::CurrentValue => 0.9,
            Source::SimilarKey => 0.9,
            Source::PolicyValues => 1.0,
        }
    }

    /// Pseudo-count of an asserted value (a rule, the current value, a stray tag): how many
    /// agreeing neighbours it is worth.
    fn assertion_count(self) -> f64 {
        match self {
            Source::Rule | Source::SimilarKey => 10.0,
            _ => 6.0,
        }
    }

    fn attr(a: usize) -> Source {
        match a {
            0 => Source::SimilarStack,
            1 => Source::SimilarVpc,
            2 => Source::SimilarAccount,
            _ => Source::NamePrefix,
        }
    }
}

/// A source's smoothed approval rate relative to the prior rate: 1 with no feedback, towards
/// 0 as denials pile up, at most 1.25 (= 1 / prior rate) however many approvals.
pub(super) fn reliability_factor(approved: u64, denied: u64) -> f64 {
    let (a, d) = (approved as f64, denied as f64);
    let rate = (a + PRIOR_APPROVED) / (a + d + PRIOR_APPROVED + PRIOR_DENIED);
    rate / (PRIOR_APPROVED / (PRIOR_APPROVED + PRIOR_DENIED))
}

/// Each source's weight after feedback (unknown source names are ignored).
pub(super) fn weights(reliability: &Reliability) -> [f64; Source::COUNT] {
    Source::ALL.map(|s| {
        let (approved, denied) = reliability.get(s.name()).copied().unwrap_or((0, 0));
        s.base_weight() * reliability_factor(approved, denied)
    })
}

/// What an opinion is about, to describe it.
pub(super) enum Subject {
    /// Attribute index (stack, network, account, prefix) and group id.
    Group(usize, u32),
    Token {
        token: u32,
    },
    Related {
        key: usize,
        value: u32,
    },
    Asserted {
        raw: String,
    },
    StrayKey {
        key: String,
        raw: String,
    },
}

/// One source's distribution over the key's values.
pub(super) struct Opinion<'s> {
    pub(super) source: Source,
    pub(super) subject: Subject,
    table: Option<(&'s Table, u32)>,
    /// The resource's own value, subtracted from the table's counts.
    own: u32,
    /// An asserted value or dictionary word, with its pseudo-count.
    extra: Option<(u32, f64)>,
    n: f64,
    weight: f64,
}

impl Opinion<'_> {
    fn learned(&self, value: u32) -> f64 {
        match self.table {
            Some((table, group)) => {
                let c = table.count(group, value);
                f64::from(c.saturating_sub(u32::from(self.own == value && c > 0)))
            }
            None => 0.0,
        }
    }

    fn count(&self, value: u32) -> f64 {
        let extra = match self.extra {
            Some((v, c)) if v == value => c,
            _ => 0.0,
        };
        self.learned(value) + extra
    }

    /// Up to `TOP - 1` most supported values, best first.
    fn top(&self) -> Vec<(u32, f64)> {
        let mut top = [(NONE, 0u32); TOP + 1];
        if let Some((table, group)) = self.table {
            for &(v, c) in table.top(group) {
                let c = c.saturating_sub(u32::from(v == self.own));
                insert_top(&mut top, v, c);
            }
        }
        let mut out: Vec<(u32, f64)> = top
            .iter()
            .filter(|(v, c)| *c > 0 && *v != NONE)
            .map(|&(v, _)| (v, self.count(v)))
            .collect();
        if let Some((v, c)) = self.extra
            && !out.iter().any(|(o, _)| *o == v)
        {
            out.push((v, c + self.learned(v)));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(TOP - 1);
        out
    }

    /// The members of the opinion with a value of `pattern`, the resource itself excluded.
    fn pattern_count(&self, pattern: usize, prior: &Prior<'_>) -> f64 {
        let learned = match self.table {
            Some((table, group)) => {
                let c = table.pattern_total(group, pattern);
                let own = self.own != NONE && prior.patterns.of(self.own) == Some(pattern);
                f64::from(c.saturating_sub(u32::from(own && c > 0)))
            }
            None => 0.0,
        };
        let extra = match self.extra {
            Some((v, c)) if prior.patterns.of(v) == Some(pattern) => c,
            _ => 0.0,
        };
        learned + extra
    }

    /// The smoothed share of the value in this opinion: for a table of a key with several
    /// patterns, the share of the value's pattern times the value's share within it, each
    /// smoothed as fitted for the table (and within, for the pattern).
    fn share(&self, value: u32, prior: &Prior<'_>) -> f64 {
        let p = prior.of(value);
        let count = self.count(value);
        let Some((table, _)) = self.table else {
            return Smoothing::DEFAULT.share(count, self.n, p);
        };
        if table.patterns() == 1 {
            return table.smoothing(0).share(count, self.n, p);
        }
        let Some(pattern) = prior.patterns.of(value) else {
            // A value new to the estate: a pattern of its own.
            return table.pattern_smoothing.share(count, self.n, p);
        };
        let mass = prior.mass(pattern).max(p);
        let in_pattern = self.pattern_count(pattern, prior);
        table.pattern_smoothing.share(in_pattern, self.n, mass)
            * table.smoothing(pattern).share(count, in_pattern, p / mass)
    }

    /// How far this opinion is from the estate-wide frequencies (Kullback-Leibler divergence
    /// over its best values and the rest lumped): what it can tell about the resource.
    fn information(&self, prior: &Prior<'_>) -> f64 {
        let (mut kl, mut shares, mut priors) = (0.0, 0.0, 0.0);
        for (v, _) in self.top() {
            let p = prior.of(v);
            let q = self.share(v, prior);
            kl += q * (q / p).ln();
            shares += q;
            priors += p;
        }
        let (q, p) = ((1.0 - shares).max(1e-9), (1.0 - priors).max(1e-9));
        (kl + q * (q / p).ln()).max(0.0)
    }
}

/// Lets several opinions of one source (the tokens of a name, the other tags of a resource)
/// share the source's weight in proportion to their information: they are far from
/// independent, so together they count as one source, led by the most telling of them.
fn share_weight<'s>(mut opinions: Vec<Opinion<'s>>, prior: &Prior<'_>) -> Vec<Opinion<'s>> {
    let info: Vec<f64> = opinions.iter().map(|o| o.information(prior)).collect();
    let total: f64 = info.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    for (o, i) in opinions.iter_mut().zip(&info) {
        o.weight *= i / total;
    }
    let keep: Vec<bool> = info.iter().map(|i| i / total >= MIN_SHARE).collect();
    let mut flags = keep.into_iter();
    opinions.retain(|_| flags.next().unwrap_or(false));
    opinions
}

/// The estate-wide frequency of each value, without the resource itself, smoothed so that
/// unseen values (and values never seen at all) keep a little mass.
pub(super) struct Prior<'s> {
    counts: &'s [u32],
    patterns: &'s Patterns,
    own: u32,
    denominator: f64,
}

impl Prior<'_> {
    /// The value's frequency (values new to the estate: as one never seen).
    pub(super) fn of(&self, value: u32) -> f64 {
        let c = self.counts.get(value as usize).copied().unwrap_or(0);
        let c = c.saturating_sub(u32::from(value == self.own && c > 0));
        (f64::from(c) + 0.5) / self.denominator
    }

    /// The frequency of a pattern's values: the sum of `of` over them.
    fn mass(&self, pattern: usize) -> f64 {
        let c = self.patterns.counts.get(pattern).copied().unwrap_or(0);
        let own = self.own != NONE && self.patterns.of(self.own) == Some(pattern);
        let c = c.saturating_sub(u32::from(own && c > 0));
        let d = self.patterns.distinct.get(pattern).copied().unwrap_or(0);
        (f64::from(c) + 0.5 * f64::from(d)) / self.denominator
    }
}

/// Everything gathered for one (resource, key).
pub(super) struct Analysis<'s> {
    pub(super) opinions: Vec<Opinion<'s>>,
    /// Values proposed by rules or stray tags that the estate has never used (ids from
    /// `base`).
    extras: Vec<String>,
    base: u32,
    pub(super) prior: Prior<'s>,
    /// Candidates and their probability, best first; empty when nothing gives evidence.
    pub(super) ranked: Vec<(u32, f64)>,
    key: usize,
}

impl<'a> Suggester<'a> {
    /// Gathers the opinions for target `t` on resource `index` and ranks the candidates.
    /// `hidden`: the resource's own value of the key is treated as absent (calibration).
    /// The resource's own value never counts: it is subtracted from every statistic.
    pub(super) fn analyse(
        &self,
        index: usize,
        t: usize,
        rule: usize,
        hidden: bool,
    ) -> Analysis<'_> {
        let target = &self.targets[t];
        let key = target.key;
        let kv = &self.keys[key];
        let cell = self.cell(index, key);
        let own = if cell != NONE && kv.usable.get(cell as usize) == Some(&true) {
            cell
        } else {
            NONE
        };
        let adj = u32::from(own != NONE);
        let prior = Prior {
            counts: &target.counts,
            patterns: &target.patterns,
            own,
            denominator: f64::from(target.valid.saturating_sub(adj))
                + 0.5 * f64::from(target.distinct + 1),
        };
        let base = kv.values.len() as u32;
        let mut extras = Vec::new();
        let mut opinions = Vec::new();

        // Groups: stack, network, account, name prefix.
        if let Some(groups) = self.groups.get(index) {
            for (a, &g) in groups.iter().enumerate() {
                if g == NONE {
                    continue;
                }
                let table = &target.attrs[a];
                let n = table.total(g).saturating_sub(adj);
                if n > 0 {
                    let source = Source::attr(a);
                    opinions.push(Opinion {
                        source,
                        subject: Subject::Group(a, g),
                        table: Some((table, g)),
                        own,
                        extra: None,
                        n: f64::from(n),
                        weight: self.weights[source as usize],
                    });
                }
            }
        }

        // Name tokens, with the environment dictionary's pseudo-counts, and the resource's
        // other tags: each set shares one source's weight.
        let tokens = match (self.token_start.get(index), self.token_start.get(index + 1)) {
            (Some(&s), Some(&e)) => self.token_ids.get(s as usize..e as usize).unwrap_or(&[]),
            _ => &[],
        };
        let token_opinions: Vec<Opinion> = tokens
            .iter()
            .filter_map(|&token| {
                let learned = target.tokens.total(token).saturating_sub(adj);
                let extra = target
                    .env
                    .get(self.tokens.name(token))
                    .map(|&v| (v, DICTIONARY));
                let n = f64::from(learned) + extra.map_or(0.0, |e| e.1);
                (n > 0.0).then(|| Opinion {
                    source: Source::NameToken,
                    subject: Subject::Token { token },
                    table: Some((&target.tokens, token)),
                    own,
                    extra,
                    n,
                    weight: self.weights[Source::NameToken as usize],
                })
            })
            .collect();
        opinions.extend(share_weight(token_opinions, &prior));
        let related_opinions: Vec<Opinion> = target
            .related
            .iter()
            .enumerate()
            .filter_map(|(j, table)| {
                let table = table.as_ref()?;
                let value = self.cell(index, j);
                if value == NONE || self.keys[j].usable.get(value as usize) != Some(&true) {
                    return None;
                }
                let n = table.total(value).saturating_sub(adj);
                (n > 0).then(|| Opinion {
                    source: Source::RelatedTag,
                    subject: Subject::Related { key: j, value },
                    table: Some((table, value)),
                    own,
                    extra: None,
                    n: f64::from(n),
                    weight: self.weights[Source::RelatedTag as usize],
                })
            })
            .collect();
        opinions.extend(share_weight(related_opinions, &prior));

        // Asserted values: a virtual-tagging rule, the current invalid value, a stray tag.
        let mut assert = |source: Source, subject: Subject, raw: &str, extras: &mut Vec<String>| {
            if let Some(v) = self.normalise(target, rule, raw, extras) {
                let c = source.assertion_count();
                opinions.push(Opinion {
                    source,
                    subject,
                    table: None,
                    own: NONE,
                    extra: Some((v, c)),
                    n: c,
                    weight: self.weights[source as usize],
                });
            }
        };
        if let Some(raw) = self.rule_values.as_ref().and_then(|f| f(index, &kv.name)) {
            let subject = Subject::Asserted { raw: raw.clone() };
            assert(Source::Rule, subject, &raw, &mut extras);
        }
        if !hidden && cell != NONE && own == NONE {
            let raw = kv.values.name(cell);
            if !raw.trim().is_empty() {
                let subject = Subject::Asserted {
                    raw: raw.to_string(),
                };
                assert(Source::CurrentValue, subject, raw, &mut extras);
            }
        }
        if let Some(resource) = self.resources.get(index) {
            let aliases = self.policy.aliases_of(&kv.name);
            let stray = resource.tags.iter().find(|(k, v)| {
                !k.starts_with("aws:")
                    && !v.trim().is_empty()
                    && self.policy.classify(k).is_none()
                    && (text::key_resembles(k, &kv.name)
                        || aliases.iter().any(|a| text::key_resembles(k, a)))
            });
            if let Some((k, v)) = stray {
                let subject = Subject::StrayKey {
                    key: k.to_string(),
                    raw: v.to_string(),
                };
                assert(Source::SimilarKey, subject, v, &mut extras);
            }
        }

        // Candidates: each opinion's best values that the applicable rule accepts.
        let mut candidates: Vec<u32> = Vec::new();
        for o in &opinions {
            for (v, _) in o.top() {
                if candidates.contains(&v) {
                    continue;
                }
                let name = value_name(kv, &extras, base, v);
                if self.passes_rule(rule, name) {
                    candidates.push(v);
                }
            }
        }
        let ranked = rank(&opinions, &candidates, &prior);
        Analysis {
            opinions,
            extras,
            base,
            prior,
            ranked,
            key,
        }
    }

    /// Maps a raw value onto one the policy accepts for this rule, or gives up: as is, through
    /// the key's value aliases or a case variant of an allowed value, as a known value written
    /// differently (`PAYMENTS_API`, `CC1001`, `payments team`), as an environment word
    /// (`prod-eu`), or as the unique known value ending with it (`1001`).
    fn normalise(
        &self,
        target: &Target,
        rule: usize,
        raw: &str,
        extras: &mut Vec<String>,
    ) -> Option<u32> {
        let kv = &self.keys[target.key];
        let base = kv.values.len() as u32;
        let ok = |v: &str| self.passes_rule(rule, v);
        let known = |id: u32| (id != NONE && ok(kv.values.name(id))).then_some(id);
        let raw = raw.trim();
        if ok(raw) {
            return Some(match kv.values.get(raw) {
                Some(id) => id,
                None => extra_id(extras, base, raw),
            });
        }
        let aliases = &self.policy.keys[target.key].value_aliases;
        let mut alias_hits: Vec<&str> = aliases
            .iter()
            .filter(|(variant, _)| variant.eq_ignore_ascii_case(raw))
            .map(|(_, canonical)| &**canonical)
            .filter(|c| ok(c))
            .collect();
        alias_hits.sort_unstable();
        if let Some(c) = alias_hits.first() {
            return Some(match kv.values.get(c) {
                Some(id) => id,
                None => extra_id(extras, base, c),
            });
        }
        if let Some(&id) = target
            .allowed
            .iter()
            .find(|&&id| kv.values.name(id).eq_ignore_ascii_case(raw))
        {
            return known(id);
        }
        let squashed = text::squash(raw);
        if let Some(id) = target.squashed.get(&squashed).copied().and_then(known) {
            return Some(id);
        }
        if let Some(id) = target.local.get(&squashed).copied().and_then(known) {
            return Some(id);
        }
        if !target.env.is_empty() {
            let lower = raw.to_lowercase();
            let mut buffer = String::new();
            let mut hit = None;
            text::for_each_token(&lower, &mut buffer, |token| {
                if hit.is_none() {
                    hit = target.env.get(token).copied();
                }
            });
            if let Some(id) = hit.and_then(known) {
                return Some(id);
            }
        }
        if squashed.len() >= 3 && target.squashed.len() <= 5000 {
            let mut ends = target
                .squashed
                .iter()
                .filter(|(s, id)| **id != NONE && s.ends_with(squashed.as_str()))
                .map(|(_, &id)| id);
            if let (Some(id), None) = (ends.next(), ends.next()) {
                return known(id);
            }
        }
        None
    }

    /// The value's text (`base` and above: values new to the estate).
    pub(super) fn value_text<'s>(&'s self, a: &'s Analysis<'_>, value: u32) -> &'s str {
        value_name(&self.keys[a.key], &a.extras, a.base, value)
    }

    /// The best candidate and its (rounded) confidence, or the most frequent allowed value
    /// as a low-confidence option when nothing gives evidence.
    pub(super) fn top_candidate(&self, a: &Analysis<'_>, t: usize) -> Option<(String, f64)> {
        if let Some(&(v, p)) = a.ranked.first() {
            return Some((self.value_text(a, v).to_string(), round3(p)));
        }
        self.policy_options(a, t)
            .first()
            .map(|(v, p)| (self.value_text(a, *v).to_string(), *p))
    }

    /// The allowed values as options when nothing else gives evidence, most frequent first,
    /// their confidence capped well inside the low band.
    fn policy_options(&self, a: &Analysis<'_>, t: usize) -> Vec<(u32, f64)> {
        let target = &self.targets[t];
        let total: f64 = target.allowed.iter().map(|&v| a.prior.of(v)).sum();
        let cap = self.config.medium * 0.5;
        let mut options: Vec<(u32, f64)> = target
            .allowed
            .iter()
            .map(|&v| (v, round3((a.prior.of(v) / total.max(1e-9)).min(cap))))
            .collect();
        options.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        options
    }

    pub(super) fn band(&self, confidence: f64) -> Band {
        if confidence >= self.config.high {
            Band::High
        } else if confidence >= self.config.medium {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// The candidates of an analysis as shown to users.
    pub(super) fn render(&self, a: &Analysis<'_>, t: usize) -> Vec<Candidate> {
        let key_name = &self.keys[a.key].name;
        if a.ranked.is_empty() {
            return self
                .policy_options(a, t)
                .into_iter()
                .take(self.config.max_candidates)
                .map(|(v, confidence)| {
                    let value = self.value_text(a, v).to_string();
                    Candidate {
                        evidence: vec![Evidence {
                            source: Source::PolicyValues.name().to_string(),
                            detail: format!("`{value}` is an allowed value of {key_name}"),
                            support: 0,
                            weight: round3(self.weights[Source::PolicyValues as usize]),
                        }],
                        reasoning: format!(
                            "nothing on this resource or its neighbours points to a {key_name}; \
                             `{value}` is one of the values the policy allows"
                        ),
                        value,
                        confidence,
                        band: Band::Low,
                    }
                })
                .collect();
        }
        a.ranked
            .iter()
            .enumerate()
            .filter(|(i, (_, p))| *i == 0 || *p >= SHOWN)
            .take(self.config.max_candidates)
            .map(|(_, &(v, p))| {
                let value = self.value_text(a, v).to_string();
                let confidence = round3(p);
                let pi = a.prior.of(v);
                let mut support: Vec<(f64, &Opinion)> = a
                    .opinions
                    .iter()
                    .filter(|o| o.count(v) > 0.0)
                    .map(|o| (o.weight * (o.share(v, &a.prior) / pi).ln(), o))
                    .filter(|(strength, _)| *strength >= LISTED)
                    .collect();
                support.sort_by(|x, y| y.0.total_cmp(&x.0));
                let evidence = support
                    .iter()
                    .map(|(_, o)| self.evidence(a, o, v, &value))
                    .collect();
                let phrases: Vec<String> = support
                    .iter()
                    .take(3)
                    .map(|(_, o)| self.phrase(a, o, v))
                    .collect();
                let reasoning = if phrases.is_empty() {
                    format!("only weak evidence for {value}")
                } else {
                    let plural =
                        phrases.len() > 1 || phrases[0].starts_with(|c: char| c.is_ascii_digit());
                    let verb = if plural { "say" } else { "says" };
                    format!("{} {verb} {value}", join_phrases(&phrases))
                };
                Candidate {
                    value,
                    confidence,
                    band: self.band(confidence),
                    evidence,
                    reasoning,
                }
            })
            .collect()
    }

    fn evidence(&self, a: &Analysis<'_>, o: &Opinion<'_>, v: u32, value: &str) -> Evidence {
        let learned = o.learned(v);
        let support = if o.table.is_some() { learned as u32 } else { 1 };
        let (c, n) = (learned as u64, (o.n - o.extra.map_or(0.0, |e| e.1)) as u64);
        let key_name = &self.keys[a.key].name;
        let detail = match &o.subject {
            Subject::Group(attr, g) => {
                let name = self.group_names[*attr].name(*g);
                match attr {
                    0 => format!("{c} of {n} other resources in stack {name} have {value}"),
                    1 => format!("{c} of {n} other resources in {name} have {value}"),
                    2 => format!("{c} of {n} other resources in account {name} have {value}"),
                    _ => format!("{c} of {n} other resources named {name}-* have {value}"),
                }
            }
            Subject::Token { token } => {
                let token = self.tokens.name(*token);
                let dictionary = o.extra.is_some_and(|(e, _)| e == v);
                match (n, dictionary) {
                    (0, _) => format!("name token `{token}` means {value}"),
                    (_, true) => format!(
                        "name token `{token}` means {value}; {c} of {n} other resources \
                         named with it have {value}"
                    ),
                    (_, false) => format!(
                        "{c} of {n} other resources whose name contains `{token}` have {value}"
                    ),
                }
            }
            Subject::Related { key, value: other } => format!(
                "{c} of {n} other resources with {}={} have {value}",
                self.keys[*key].name,
                self.keys[*key].values.name(*other)
            ),
            Subject::Asserted { raw } if o.source == Source::Rule => {
                if raw == value {
                    format!("a virtual-tagging rule sets {key_name}={value}")
                } else {
                    format!("a virtual-tagging rule sets {key_name}=`{raw}`, read as {value}")
                }
            }
            Subject::Asserted { raw } => {
                format!("the current value `{raw}` is not valid but reads as {value}")
            }
            Subject::StrayKey { key, raw } => {
                format!("tag `{key}`=`{raw}` looks like a misnamed {key_name}")
            }
        };
        Evidence {
            source: o.source.name().to_string(),
            detail,
            support,
            weight: round3(o.weight),
        }
    }

    /// A short phrase for the reasoning line.
    fn phrase(&self, _a: &Analysis<'_>, o: &Opinion<'_>, v: u32) -> String {
        let (c, n) = (
            o.learned(v) as u64,
            (o.n - o.extra.map_or(0.0, |e| e.1)) as u64,
        );
        match &o.subject {
            Subject::Group(attr, g) => {
                let name = self.group_names[*attr].name(*g);
                match attr {
                    0 => format!("{c} of {n} resources in stack {name}"),
                    1 => format!("{c} of {n} resources in {name}"),
                    2 => format!("{c} of {n} resources in account {name}"),
                    _ => format!("{c} of {n} resources named {name}-*"),
                }
            }
            Subject::Token { token } => format!("name token `{}`", self.tokens.name(*token)),
            Subject::Related { key, value } => format!(
                "{}={} ({c} of {n})",
                self.keys[*key].name,
                self.keys[*key].values.name(*value)
            ),
            Subject::Asserted { .. } if o.source == Source::Rule => {
                "a virtual-tagging rule".to_string()
            }
            Subject::Asserted { raw } => format!("the current value `{raw}`"),
            Subject::StrayKey { key, .. } => format!("tag `{key}`"),
        }
    }
}

fn extra_id(extras: &mut Vec<String>, base: u32, raw: &str) -> u32 {
    let at = match extras.iter().position(|e| e == raw) {
        Some(at) => at,
        None => {
            extras.push(raw.to_string());
            extras.len() - 1
        }
    };
    base + at as u32
}

fn value_name<'s>(kv: &'s super::KeyValues, extras: &'s [String], base: u32, v: u32) -> &'s str {
    if v >= base {
        extras
            .get((v - base) as usize)
            .map(String::as_str)
            .unwrap_or("")
    } else {
        kv.values.name(v)
    }
}

/// Tempered naive Bayes over the key's values: `prior(v) · Π (share_s(v) / prior(v))^w_s`,
/// normalised over the candidates plus one lump for every other value (each opinion's
/// remaining share against the remaining prior), so a candidate is never more certain than
/// the evidence against all the values not listed allows.
fn rank(opinions: &[Opinion<'_>], candidates: &[u32], prior: &Prior<'_>) -> Vec<(u32, f64)> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let priors: Vec<f64> = candidates.iter().map(|&v| prior.of(v)).collect();
    let rest_prior = (1.0 - priors.iter().sum::<f64>()).max(1e-6);
    let mut logs: Vec<f64> = priors.iter().map(|p| p.ln()).collect();
    let mut lump = rest_prior.ln();
    for o in opinions {
        let mut shares = 0.0;
        for (k, &v) in candidates.iter().enumerate() {
            let share = o.share(v, prior);
            shares += share;
            logs[k] += o.weight * (share.ln() - priors[k].ln());
        }
        let rest_share = (1.0 - shares).max(1e-9);
        lump += o.weight * (rest_share.ln() - rest_prior.ln());
    }
    let max = logs.iter().copied().fold(lump, f64::max);
    let total: f64 = logs.iter().map(|l| (l - max).exp()).sum::<f64>() + (lump - max).exp();
    let mut ranked: Vec<(u32, f64)> = candidates
        .iter()
        .zip(&logs)
        .map(|(&v, l)| (v, (l - max).exp() / total))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn join_phrases(phrases: &[String]) -> String {
    match phrases {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
