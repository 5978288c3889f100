//! Cost anomalies on daily series, as a pure function: which days cost markedly more than the
//! series' own robust baseline.
//!
//! The baseline of a day is the median of the same weekday over the previous weeks (default 8,
//! so weekly seasonality — quiet weekends — is the baseline, not an anomaly) or of the trailing
//! days (default 28). The spread is the median absolute deviation (MAD) of those same points,
//! and a day scores the modified z-score of Iglewicz and Hoaglin, 0.6745·(x − median)/MAD; it
//! is flagged above 3.5. Medians ignore a spike or two in the history, where a mean and
//! standard deviation would be dragged by them.
//!
//! A flat history has MAD 0, which would make any change infinitely unusual. The MAD used is
//! therefore never below a floor: 1% of the baseline's absolute value, and never below one
//! cent (`MAD_FLOOR_MICROS`). On a flat series the z-score then flags a rise of about 5.2% or
//! more, and the decision falls to the two impact floors below.
//!
//! A flagged day must also clear an absolute floor (impact = actual − expected, in the
//! currency) and a percentage floor (impact ÷ |expected|): a statistically unusual day that
//! costs a few cents more is not worth anyone's time, as AWS Cost Anomaly Detection's
//! thresholds also say. Only rises are anomalies (spend that fell is not a cost risk); a credit
//! that stops is a rise. When the expected amount is 0 or below, the percentage floor does not
//! apply (any rise from nothing is new spend) and the absolute floor decides.
//!
//! Days the source has no data for are `None`: they are neither checked nor part of a baseline.
//! A day with too few baseline points (short history) is not judged, and counted as such.

use chrono::{Duration, NaiveDate};

use super::Micros;

/// The MAD never counts as less than this (one cent), whatever the baseline.
pub(crate) const MAD_FLOOR_MICROS: Micros = 10_000;

/// The MAD never counts as less than this share of |baseline| (1%).
pub(crate) const MAD_FLOOR_SHARE: f64 = 0.01;

/// The modified z-score above which a day is unusual (Iglewicz–Hoaglin).
pub(crate) const DEFAULT_Z_THRESHOLD: f64 = 3.5;

/// How a day's expected cost is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Baseline {
    /// The median of the same weekday over the previous `weeks` weeks (4–8).
    SameWeekday { weeks: u32 },
    /// The median of the previous `days` days.
    Trailing { days: u32 },
}

impl Baseline {
    /// Fewest baseline points a day needs to be judged: 4 same weekdays, or half the trailing
    /// window.
    pub(crate) fn min_points(self) -> usize {
        match self {
            Baseline::SameWeekday { weeks } => weeks.clamp(1, 4) as usize,
            Baseline::Trailing { days } => (days as usize).div_ceil(2).max(1),
        }
    }
}

/// What counts as an anomaly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DetectConfig {
    pub baseline: Baseline,
    /// Flag above this modified z-score.
    pub z_threshold: f64,
    /// The impact (actual − expected) must be at least this.
    pub min_impact: Micros,
    /// And at least this % of |expected| (when expected > 0).
    pub min_impact_pct: f64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            baseline: Baseline::SameWeekday { weeks: 8 },
            z_threshold: DEFAULT_Z_THRESHOLD,
            min_impact: 10_000_000,
            min_impact_pct: 20.0,
        }
    }
}

/// A daily series: the amount of each day from `start`, `None` where the source has no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Series {
    pub start: NaiveDate,
    pub values: Vec<Option<Micros>>,
}

impl Series {
    pub(crate) fn day(&self, index: usize) -> NaiveDate {
        self.start + Duration::days(index as i64)
    }

    /// The index of `day`, when the series covers it.
    pub(crate) fn index(&self, day: NaiveDate) -> Option<usize> {
        let i = (day - self.start).num_days();
        (i >= 0 && (i as usize) < self.values.len()).then_some(i as usize)
    }
}

/// A day's verdict figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub day: NaiveDate,
    pub actual: Micros,
    /// The baseline median.
    pub expected: Micros,
    /// actual − expected.
    pub impact: Micros,
    /// impact ÷ |expected| × 100; None when expected ≤ 0.
    pub impact_pct: Option<f64>,
    /// The modified z-score (with the MAD floor).
    pub score: f64,
    /// The MAD of the baseline points, before the floor.
    pub mad: Micros,
    pub baseline_points: usize,
}

/// The days of one series checked, and the anomalies among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Detection {
    pub anomalies: Vec<Scored>,
    /// Days with data in the window.
    pub days_checked: usize,
    /// Of those, days not judged for want of baseline points.
    pub days_short_history: usize,
}

/// The median of `values` (sorted in place); the mean of the two middle values, rounded
/// toward zero, when their count is even.
pub(crate) fn median(values: &mut [Micros]) -> Option<Micros> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        // Halves first: no overflow near the bounds.
        values[n / 2 - 1] / 2 + values[n / 2] / 2 + (values[n / 2 - 1] % 2 + values[n / 2] % 2) / 2
    })
}

/// The baseline points of day `index`: earlier days only, with data.
fn baseline_points(series: &Series, index: usize, baseline: Baseline) -> Vec<Micros> {
    match baseline {
        Baseline::SameWeekday { weeks } => (1..=weeks as usize)
            .filter_map(|k| index.checked_sub(7 * k))
            .filter_map(|i| series.values[i])
            .collect(),
        Baseline::Trailing { days } => (1..=days as usize)
            .filter_map(|k| index.checked_sub(k))
            .filter_map(|i| series.values[i])
            .collect(),
    }
}

/// Scores day `index` against its baseline; None when it has no data or too few points.
pub(crate) fn score_day(series: &Series, index: usize, baseline: Baseline) -> Option<Scored> {
    let actual = (*series.values.get(index)?)?;
    let mut points = baseline_points(series, index, baseline);
    if points.len() < baseline.min_points() {
        return None;
    }
    let baseline_points = points.len();
    let expected = median(&mut points)?;
    let mut deviations: Vec<Micros> = points
        .iter()
        .map(|p| p.saturating_sub(expected).saturating_abs())
        .collect();
    let mad = median(&mut deviations).unwrap_or(0);
    let floor = ((expected.unsigned_abs() as f64) * MAD_FLOOR_SHARE).max(MAD_FLOOR_MICROS as f64);
    let scale = (mad as f64).max(floor);
    let impact = actual.saturating_sub(expected);
    Some(Scored {
        day: series.day(index),
        actual,
        expected,
        impact,
        impact_pct: (expected > 0).then(|| impact as f64 / expected as f64 * 100.0),
        score: 0.6745 * impact as f64 / scale,
        mad,
        baseline_points,
    })
}

/// Whether a scored day is an anomaly under `config`: unusual AND above both floors.
pub(crate) fn is_anomaly(s: &Scored, config: &DetectConfig) -> bool {
    s.score > config.z_threshold
        && s.impact >= config.min_impact
        && s.impact_pct.is_none_or(|pct| pct >= config.min_impact_pct)
}

/// The anomalies of `series` on the days in `[from, to)`.
pub(crate) fn detect(
    series: &Series,
    from: NaiveDate,
    to: NaiveDate,
    config: &DetectConfig,
) -> Detection {
    let mut out = Detection::default();
    let mut day = from.max(series.start);
    while day < to {
        if let Some(i) = series.index(day) {
            if series.values[i].is_some() {
                out.days_checked += 1;
                match score_day(series, i, config.baseline) {
                    None => out.days_short_history += 1,
                    Some(s) if is_anomaly(&s, config) => out.anomalies.push(s),
                    Some(_) => {}
                }
            }
        } else {
            break;
        }
        day += Duration::days(1);
    }
    out
}

/// A stable id for the anomaly of `value` of `dimension` on `day`: the same anomaly gets the
/// same id on every run, so decisions stay attached to it.
pub(crate) fn anomaly_id(dimension: &str, value: &str, day: NaiveDate) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [dimension, value, &day.to_string()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("anm-{hex}")
}

#[cfg(test)]
mod tests;
