use super::*;

const UNIT: Micros = 1_000_000;

fn start() -> NaiveDate {
    // A Monday.
    NaiveDate::from_ymd_opt(2026, 8, 3).unwrap()
}

fn series(values: Vec<Micros>) -> Series {
    Series {
        start: start(),
        values: values.into_iter().map(Some).collect(),
    }
}

/// Weekdays `weekday` units, weekends `weekend` units, for `days` days from a Monday.
fn seasonal(days: usize, weekday: Micros, weekend: Micros) -> Vec<Micros> {
    (0..days)
        .map(|i| if i % 7 >= 5 { weekend } else { weekday } * UNIT)
        .collect()
}

fn all_days(s: &Series) -> (NaiveDate, NaiveDate) {
    (s.start, s.day(s.values.len()))
}

fn config() -> DetectConfig {
    DetectConfig::default()
}

#[test]
fn medians_are_exact() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3, 1, 2]), Some(2));
    assert_eq!(median(&mut [4, 1, 2, 3]), Some(2));
    assert_eq!(median(&mut [5, 6]), Some(5));
    assert_eq!(median(&mut [-5, -6]), Some(-5));
    assert_eq!(median(&mut [i64::MAX, i64::MAX]), Some(i64::MAX));
}

#[test]
fn a_flat_series_has_no_anomalies() {
    let s = series(vec![100 * UNIT; 90]);
    let (from, to) = all_days(&s);
    for baseline in [
        Baseline::SameWeekday { weeks: 4 },
        Baseline::SameWeekday { weeks: 8 },
        Baseline::Trailing { days: 28 },
    ] {
        let d = detect(
            &s,
            from,
            to,
            &DetectConfig {
                baseline,
                ..config()
            },
        );
        assert!(d.anomalies.is_empty(), "{baseline:?}: {:?}", d.anomalies);
        assert_eq!(d.days_checked, 90);
    }
}

/// Quiet weekends are the baseline, not anomalies, with either method.
#[test]
fn weekly_seasonality_is_not_an_anomaly() {
    let s = series(seasonal(91, 200, 20));
    let (from, to) = all_days(&s);
    for baseline in [
        Baseline::SameWeekday { weeks: 8 },
        Baseline::Trailing { days: 28 },
    ] {
        let d = detect(
            &s,
            from,
            to,
            &DetectConfig {
                baseline,
                ..config()
            },
        );
        assert!(d.anomalies.is_empty(), "{baseline:?}: {:?}", d.anomalies);
    }
}

#[test]
fn planted_spikes_are_found_with_their_figures() {
    let mut values = seasonal(70, 200, 20);
    values[60] = 500 * UNIT; // a Friday: expected 200
    values[62] = 100 * UNIT; // a Sunday: expected 20
    let s = series(values);
    let d = detect(&s, s.day(56), s.day(70), &config());
    let found: Vec<(usize, Micros, Micros)> = d
        .anomalies
        .iter()
        .map(|a| ((a.day - s.start).num_days() as usize, a.expected, a.impact))
        .collect();
    assert_eq!(
        found,
        vec![(60, 200 * UNIT, 300 * UNIT), (62, 20 * UNIT, 80 * UNIT)]
    );
    let friday = d.anomalies[0];
    assert_eq!(friday.impact_pct, Some(150.0));
    assert_eq!(friday.mad, 0);
    assert_eq!(friday.baseline_points, 8);
    // MAD 0: the floor is 1% of 200 = 2 units; z = 0.6745 * 300 / 2.
    assert!(
        (friday.score - 0.6745 * 150.0).abs() < 1e-9,
        "{}",
        friday.score
    );
    assert_eq!(d.days_checked, 14);
}

/// A rise of 30% is unusual on a flat series (MAD floor 1%) but stays below a 40% floor; a
/// rise of 5 units clears the % floor but not a 10-unit absolute floor.
#[test]
fn both_floors_must_be_cleared() {
    let mut values = vec![100 * UNIT; 70];
    values[60] = 130 * UNIT;
    let s = series(values.clone());
    let strict = DetectConfig {
        min_impact_pct: 40.0,
        ..config()
    };
    assert!(
        detect(&s, s.day(56), s.day(70), &strict)
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect(&s, s.day(56), s.day(70), &config()).anomalies.len(),
        1
    );

    let mut small = vec![10 * UNIT; 70];
    small[60] = 15 * UNIT; // +50%, but only 5 units
    let s = series(small);
    assert!(
        detect(&s, s.day(56), s.day(70), &config())
            .anomalies
            .is_empty()
    );
    let loose = DetectConfig {
        min_impact: 5 * UNIT,
        ..config()
    };
    assert_eq!(detect(&s, s.day(56), s.day(70), &loose).anomalies.len(), 1);
}

/// With MAD 0 the floor decides: a 5% rise on a flat series scores below 3.5, 6% above.
#[test]
fn the_mad_floor_is_one_percent_of_the_baseline() {
    let mut values = vec![1000 * UNIT; 64];
    values[57] = 1050 * UNIT;
    values[58] = 1060 * UNIT;
    let s = series(values);
    let s57 = score_day(&s, 57, Baseline::SameWeekday { weeks: 8 }).unwrap();
    let s58 = score_day(&s, 58, Baseline::SameWeekday { weeks: 8 }).unwrap();
    assert!(
        s57.score < 3.5 && s58.score > 3.5,
        "{} {}",
        s57.score,
        s58.score
    );
    let loose = DetectConfig {
        min_impact: 0,
        min_impact_pct: 0.0,
        ..config()
    };
    let d = detect(&s, s.day(56), s.day(64), &loose);
    assert_eq!(d.anomalies.len(), 1);
    assert_eq!(d.anomalies[0].day, s.day(58));

    // A series of zeros: the floor is one cent, and the absolute floor decides.
    let mut zeros = vec![0; 64];
    zeros[60] = 12 * UNIT;
    zeros[61] = UNIT;
    let s = series(zeros);
    let d = detect(&s, s.day(56), s.day(64), &config());
    assert_eq!(d.anomalies.len(), 1);
    assert_eq!(d.anomalies[0].impact_pct, None, "no % of nothing");
}

#[test]
fn short_history_is_not_judged() {
    let mut values = vec![100 * UNIT; 20];
    values[19] = 900 * UNIT;
    let s = series(values);
    // Day 19 has two earlier same weekdays (12, 5): fewer than 4.
    let d = detect(&s, s.day(0), s.day(20), &config());
    assert!(d.anomalies.is_empty());
    assert_eq!(d.days_checked, 20);
    assert_eq!(d.days_short_history, 20);
    // Trailing 28 days needs 14 points: day 19 has 19.
    let trailing = DetectConfig {
        baseline: Baseline::Trailing { days: 28 },
        ..config()
    };
    let d = detect(&s, s.day(0), s.day(20), &trailing);
    assert_eq!(d.days_short_history, 14);
    assert_eq!(d.anomalies.len(), 1);
}

/// Days without data are neither checked nor baseline points.
#[test]
fn missing_days_are_skipped() {
    let mut s = series(vec![100 * UNIT; 70]);
    s.values[63] = None;
    s.values[56] = None;
    s.values[49] = None;
    s.values[42] = None;
    s.values[35] = None;
    let d = detect(&s, s.day(56), s.day(70), &config());
    assert_eq!(d.days_checked, 12);
    let scored = score_day(&s, 63, Baseline::SameWeekday { weeks: 8 });
    assert!(scored.is_none(), "no data that day");
    assert_eq!(
        score_day(&s, 62, Baseline::SameWeekday { weeks: 8 })
            .unwrap()
            .baseline_points,
        8
    );
}

/// Credits are negative: a deeper credit is a fall, never an anomaly; a credit that stops is a
/// rise from below zero, judged by the absolute floor alone.
#[test]
fn negative_credits() {
    let mut values = vec![-50 * UNIT; 70];
    values[60] = -200 * UNIT;
    values[65] = 0;
    let s = series(values);
    let d = detect(&s, s.day(56), s.day(70), &config());
    assert_eq!(d.anomalies.len(), 1);
    assert_eq!(d.anomalies[0].day, s.day(65));
    assert_eq!(d.anomalies[0].impact, 50 * UNIT);
    assert_eq!(d.anomalies[0].impact_pct, None);
}

/// The window's end is exclusive: the caller leaves the incomplete last day out by ending the
/// window before it.
#[test]
fn the_window_bounds_the_days_checked() {
    let mut values = vec![100 * UNIT; 70];
    values[69] = 900 * UNIT;
    let s = series(values);
    assert!(
        detect(&s, s.day(56), s.day(69), &config())
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect(&s, s.day(56), s.day(70), &config()).anomalies.len(),
        1
    );
    // A window past the series stops at its end.
    assert_eq!(
        detect(&s, s.day(56), s.day(200), &config()).days_checked,
        14
    );
}

#[test]
fn ids_are_stable_and_distinct() {
    let day = start();
    let a = anomaly_id("service", "Amazon EC2", day);
    assert_eq!(a, anomaly_id("service", "Amazon EC2", day));
    assert_eq!(a.len(), 20);
    assert!(a.starts_with("anm-"));
    assert_ne!(a, anomaly_id("account", "Amazon EC2", day));
    assert_ne!(
        a,
        anomaly_id("service", "Amazon EC2", day.succ_opt().unwrap())
    );
    // Length-prefixed parts: moving a character between parts changes the id.
    assert_ne!(anomaly_id("ab", "c", day), anomaly_id("a", "bc", day));
}

mod irregular;
