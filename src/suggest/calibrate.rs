//! Calibration: how often suggestions of each confidence band are right, measured on generated
//! estates whose ground truth (the tags each resource *should* carry) is known: the demo, and an
//! irregular estate built differently (shared stacks, per-person sandboxes, mixed accounts and
//! VPCs, inconsistent names; `inventory::irregular`), so that the figures are not only those of
//! the estate the scoring was tuned on.
//!
//! Two kinds of labelled (resource, key) pairs are predicted:
//! - **hidden**: the resource carries a valid value; it is hidden (the key, its aliases and
//!   case variants are treated as absent, and the resource's own contribution is subtracted
//!   from every statistic) and predicted back from the rest of the estate;
//! - **damaged**: the demo's damage left the key missing or invalid; predicted as a user would
//!   see it (the invalid value itself is evidence).
//!
//! A prediction is the best candidate; it is correct when it equals the truth value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::score::round3;
use super::stats::NONE;
use super::{Band, Reliability, SuggestConfig, Suggester};
use crate::inventory::{Resource, Tags, demo, irregular};
use crate::policy::Policy;

/// Suggestions of one band and how many were right.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BandStats {
    pub band: Band,
    /// Pairs whose best candidate fell in this band.
    pub suggestions: usize,
    pub correct: usize,
    /// correct / suggestions (1 when there were none: no suggestion was wrong; shown as `-`).
    pub precision: f64,
    /// suggestions / evaluated pairs.
    pub coverage: f64,
}

/// The bands for one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct KeyCalibration {
    pub key: String,
    pub pairs: usize,
    pub bands: Vec<BandStats>,
}

/// Observed accuracy for a range of confidence: calibrated suggestions have an accuracy close
/// to their mean confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ConfidenceBucket {
    /// Confidence range [from, to).
    pub from: f64,
    pub to: f64,
    pub suggestions: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// The bands for the pairs of one key whose true value falls under one allowed-value pattern
/// (`production`, `sandbox-*`); keys with allowed values only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PatternCalibration {
    pub key: String,
    pub pattern: String,
    pub pairs: usize,
    pub bands: Vec<BandStats>,
}

/// The calibration report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CalibrationReport {
    /// `demo` or `irregular`.
    pub estate: String,
    pub seed: u64,
    pub size: usize,
    /// Evaluated (resource, key) pairs.
    pub pairs: usize,
    /// Of those: valid values hidden and predicted back.
    pub hidden_pairs: usize,
    /// Of those: values the damage left missing or invalid.
    pub damaged_pairs: usize,
    /// Pairs with no candidate at all.
    pub no_suggestion: usize,
    /// 1 when every labelled pair was evaluated; k when every k-th was.
    pub sampled_every: usize,
    pub bands: Vec<BandStats>,
    pub keys: Vec<KeyCalibration>,
    pub patterns: Vec<PatternCalibration>,
    pub curve: Vec<ConfidenceBucket>,
}

impl CalibrationReport {
    /// A small table: band, suggestions, correct, precision %, coverage %; then the high band
    /// per key and per pattern of the true value, and accuracy per range of confidence.
    pub(crate) fn render_text(&self) -> String {
        let mut out = format!(
            "{} estate seed {} size {}: {} pairs ({} hidden, {} damaged{}), {} without a \
             suggestion\n",
            self.estate,
            self.seed,
            self.size,
            self.pairs,
            self.hidden_pairs,
            self.damaged_pairs,
            if self.sampled_every > 1 {
                format!(", every {}th pair", self.sampled_every)
            } else {
                String::new()
            },
            self.no_suggestion
        );
        out.push_str("band     suggestions   correct  precision  coverage\n");
        for b in &self.bands {
            let precision = if b.suggestions == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", b.precision * 100.0)
            };
            out.push_str(&format!(
                "{:<8} {:>11} {:>9} {:>10} {:>8.1}%\n",
                b.band.as_str(),
                b.suggestions,
                b.correct,
                precision,
                b.coverage * 100.0
            ));
        }
        out.push_str("\nhigh band by key and true pattern  pairs   high  precision  coverage\n");
        for k in &self.keys {
            push_high_row(&mut out, &k.key, k.pairs, &k.bands[0]);
            for p in self.patterns.iter().filter(|p| p.key == k.key) {
                push_high_row(
                    &mut out,
                    &format!("  = {}", p.pattern),
                    p.pairs,
                    &p.bands[0],
                );
            }
        }
        out.push_str("\nconfidence    suggestions  mean confidence  accuracy\n");
        for c in self.curve.iter().filter(|c| c.suggestions > 0) {
            out.push_str(&format!(
                "{:.2}–{:<8.2} {:>11} {:>16.3} {:>9.3}\n",
                c.from, c.to, c.suggestions, c.mean_confidence, c.accuracy
            ));
        }
        out
    }
}

/// One row of the high band by key or pattern: pairs, high suggestions, precision, coverage.
fn push_high_row(out: &mut String, label: &str, pairs: usize, high: &BandStats) {
    let precision = if high.suggestions == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", high.precision * 100.0)
    };
    out.push_str(&format!(
        "{label:<32} {pairs:>7} {:>6} {precision:>10} {:>8.1}%\n",
        high.suggestions,
        high.coverage * 100.0
    ));
}

#[derive(Default, Clone, Copy)]
struct Tally {
    suggestions: usize,
    correct: usize,
}

fn band_stats(tallies: &[Tally; 3], pairs: usize) -> Vec<BandStats> {
    [Band::High, Band::Medium, Band::Low]
        .iter()
        .zip(tallies)
        .map(|(&band, t)| BandStats {
            band,
            suggestions: t.suggestions,
            correct: t.correct,
            precision: if t.suggestions == 0 {
                1.0
            } else {
                t.correct as f64 / t.suggestions as f64
            },
            coverage: if pairs == 0 {
                0.0
            } else {
                t.suggestions as f64 / pairs as f64
            },
        })
        .collect()
}

const CURVE: &[f64] = &[0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001];

/// Generates the demo estate for (seed, size) and measures every band against its truth,
/// with no feedback. Every labelled pair is evaluated.
pub(crate) fn evaluate_demo(
    seed: u64,
    size: usize,
    policy: &Policy,
    config: SuggestConfig,
) -> CalibrationReport {
    evaluate_demo_with(seed, size, policy, config, &Reliability::new())
}

/// As `evaluate_demo`, with users' feedback applied (to see how it moves the bands).
pub(super) fn evaluate_demo_with(
    seed: u64,
    size: usize,
    policy: &Policy,
    config: SuggestConfig,
    reliability: &Reliability,
) -> CalibrationReport {
    let estate = demo::generate(seed, size);
    let mut report = evaluate_estate(
        policy,
        &estate.resources,
        &estate.truth,
        config,
        reliability,
        1,
    );
    report.seed = seed;
    report.size = size;
    report
}

/// As `evaluate_demo`, on the irregular estate (`inventory::irregular`).
pub(crate) fn evaluate_irregular(
    seed: u64,
    size: usize,
    policy: &Policy,
    config: SuggestConfig,
) -> CalibrationReport {
    let estate = irregular::generate(seed, size);
    let mut report = evaluate_estate(
        policy,
        &estate.resources,
        &estate.truth,
        config,
        &Reliability::new(),
        1,
    );
    report.estate = "irregular".to_string();
    report.seed = seed;
    report.size = size;
    report
}

/// Calibration over any estate with known truth; `every` > 1 evaluates every k-th pair.
pub(super) fn evaluate_estate(
    policy: &Policy,
    resources: &[Resource],
    truth: &[Tags],
    config: SuggestConfig,
    reliability: &Reliability,
    every: usize,
) -> CalibrationReport {
    let effective = |i: usize| -> BTreeMap<String, String> {
        resources
            .get(i)
            .map(|r| policy.effective_tags(&r.tags))
            .unwrap_or_default()
    };
    let suggester = Suggester::new(policy, resources, &effective, reliability, config);
    let every = every.max(1);
    let (mut pairs, mut hidden_pairs, mut damaged_pairs, mut none, mut seen) = (0, 0, 0, 0, 0);
    let mut totals = [Tally::default(); 3];
    let mut per_key: Vec<(usize, [Tally; 3])> =
        vec![(0, [Tally::default(); 3]); suggester.targets.len()];
    let mut curve = vec![(0usize, 0usize, 0.0f64); CURVE.len() - 1];
    // Per target and pattern of the true value (targets with several patterns only).
    let mut per_pattern: Vec<Vec<(usize, [Tally; 3])>> = suggester
        .targets
        .iter()
        .map(|t| {
            let n = if t.patterns.len() > 1 {
                t.patterns.len()
            } else {
                0
            };
            vec![(0, [Tally::default(); 3]); n]
        })
        .collect();
    for (i, truth_tags) in truth.iter().enumerate().take(resources.len()) {
        let truth_tags = policy.effective_tags(truth_tags);
        for (t, target) in suggester.targets.iter().enumerate() {
            let Some(rule) = suggester.applicable_rule(i, target) else {
                continue;
            };
            let key = &suggester.keys[target.key];
            let Some(truth_value) = truth_tags
                .get(&key.name)
                .filter(|v| suggester.passes_rule(rule, v))
            else {
                continue;
            };
            seen += 1;
            if seen % every != 0 {
                continue;
            }
            let cell = suggester.cell(i, target.key);
            let valid = cell != NONE && suggester.passes_rule(rule, key.values.name(cell));
            pairs += 1;
            if valid {
                hidden_pairs += 1;
            } else {
                damaged_pairs += 1;
            }
            let analysis = suggester.analyse(i, t, rule, valid);
            let pattern = target.patterns.classify(truth_value);
            let mut by_pattern = per_pattern[t].get_mut(pattern);
            per_key[t].0 += 1;
            if let Some((n, _)) = by_pattern.as_deref_mut() {
                *n += 1;
            }
            let Some((value, confidence)) = suggester.top_candidate(&analysis, t) else {
                none += 1;
                continue;
            };
            let right = value == *truth_value;
            let band = suggester.band(confidence) as usize;
            let mut tallies = vec![&mut totals[band], &mut per_key[t].1[band]];
            if let Some((_, p)) = by_pattern {
                tallies.push(&mut p[band]);
            }
            for tally in tallies {
                tally.suggestions += 1;
                tally.correct += usize::from(right);
            }
            if let Some(b) = CURVE
                .windows(2)
                .position(|w| confidence >= w[0] && confidence < w[1])
            {
                curve[b].0 += 1;
                curve[b].1 += usize::from(right);
                curve[b].2 += confidence;
            }
        }
    }
    let patterns = suggester
        .targets
        .iter()
        .zip(&per_pattern)
        .flat_map(|(target, rows)| {
            rows.iter()
                .enumerate()
                .filter(|(_, (n, _))| *n > 0)
                .map(|(p, (n, tallies))| PatternCalibration {
                    key: suggester.keys[target.key].name.clone(),
                    pattern: target.patterns.name(p).to_string(),
                    pairs: *n,
                    bands: band_stats(tallies, *n),
                })
        })
        .collect();
    CalibrationReport {
        estate: "demo".to_string(),
        seed: 0,
        size: resources.len(),
        pairs,
        hidden_pairs,
        damaged_pairs,
        no_suggestion: none,
        sampled_every: every,
        bands: band_stats(&totals, pairs),
        keys: suggester
            .targets
            .iter()
            .zip(&per_key)
            .map(|(target, (n, tallies))| KeyCalibration {
                key: suggester.keys[target.key].name.clone(),
                pairs: *n,
                bands: band_stats(tallies, *n),
            })
            .collect(),
        patterns,
        curve: CURVE
            .windows(2)
            .zip(&curve)
            .map(|(w, &(n, right, sum))| ConfidenceBucket {
                from: w[0],
                to: w[1].min(1.0),
                suggestions: n,
                mean_confidence: if n == 0 { 0.0 } else { round3(sum / n as f64) },
                accuracy: if n == 0 {
                    0.0
                } else {
                    round3(right as f64 / n as f64)
                },
            })
            .collect(),
    }
}
