//! Daily costs: each cost line's amount per day, for the questions that need the shape of
//! spend over time (anomalies) rather than its total.
//!
//! Sources fill it from usage charges only: purchases, taxes, credits, adjustments and
//! one-time fees are left out (they are not consumption, and their lumpy days would be false
//! anomalies). A day the source has no row for at all is a day without data (`days_with_data`),
//! not a day of zero spend; a day with data but no row for a line is zero for that line.

use chrono::{Duration, NaiveDate};

use super::anomaly::Series;
use super::{CostLine, CostMetric, CostReport, Micros, Period};

/// One line of spend (one resource in one service, or a charge tied to no resource) and its
/// amount per day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyLine {
    /// The line; its `amount` is the sum of `days`.
    pub line: CostLine,
    /// (day, amount), sorted by day, one entry per day with spend.
    pub days: Vec<(NaiveDate, Micros)>,
    /// Which series the line counts in.
    pub feeds: Feeds,
}

/// The series a line counts in. Resource-level sources give lines that count everywhere; a
/// grouped source (Cost Explorer) gives one set of lines per grouping — spend by service and
/// account, and spend by each tag key's values — and each set must count only in its own
/// series, or the same spend would be counted once per grouping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Feeds {
    /// Every series: the line is one resource's (or one resource-less charge's) spend.
    #[default]
    All,
    /// The service and account series only: its tags are unknown.
    ServiceAndAccount,
    /// Only the series of this tag key (canonical name); the line's `tags` hold its value.
    TagKey(String),
}

/// Daily costs for a period.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCosts {
    pub lines: Vec<DailyLine>,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The days covered: the period asked for, or the days of the rows read.
    pub period: Period,
    pub metric: CostMetric,
    /// Days of the period the source has any usage row for, sorted.
    pub days_with_data: Vec<NaiveDate>,
    /// Rows left out as not usage (ChargeCategory other than Usage, or one-time charges).
    pub non_usage_rows: u64,
    pub report: CostReport,
}

impl DailyCosts {
    /// The last day with data: a billing export's latest day is usually still accruing.
    pub(crate) fn last_day(&self) -> Option<NaiveDate> {
        self.days_with_data.last().copied()
    }

    /// The sum of the lines `pick` selects, per day of the period (`None` on days without
    /// data).
    pub(crate) fn series<'a>(&'a self, lines: impl Iterator<Item = &'a DailyLine>) -> Series {
        let days = self.period.days().max(0) as usize;
        let mut values: Vec<Option<Micros>> = vec![None; days];
        for day in &self.days_with_data {
            if let Some(slot) = index(self.period.start, days, *day) {
                values[slot] = Some(0);
            }
        }
        for line in lines {
            for (day, amount) in &line.days {
                if let Some(slot) = index(self.period.start, days, *day)
                    && let Some(v) = values[slot].as_mut()
                {
                    *v = v.saturating_add(*amount);
                }
            }
        }
        Series {
            start: self.period.start,
            values,
        }
    }
}

fn index(start: NaiveDate, days: usize, day: NaiveDate) -> Option<usize> {
    let i = (day - start).num_days();
    (i >= 0 && (i as usize) < days).then_some(i as usize)
}

/// Sorts a line's (day, amount) entries and merges entries of the same day.
pub(crate) fn settle_days(days: &mut Vec<(NaiveDate, Micros)>) {
    days.sort_by_key(|(d, _)| *d);
    days.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 = earlier.1.saturating_add(later.1);
            true
        } else {
            false
        }
    });
}

/// Every day of a period, in order.
pub(crate) fn days_of(period: Period) -> impl Iterator<Item = NaiveDate> {
    (0..period.days().max(0)).map(move |i| period.start + Duration::days(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Provider, Tags};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
    }

    fn line(days: Vec<(NaiveDate, Micros)>) -> DailyLine {
        DailyLine {
            line: CostLine {
                resource_id: "r".into(),
                provider: Provider::File,
                account: "a".into(),
                region: "x".into(),
                service: "s".into(),
                resource_type: Default::default(),
                name: Default::default(),
                tags: Tags::new(),
                amount: days.iter().map(|(_, a)| a).sum(),
            },
            days,
            feeds: Feeds::All,
        }
    }

    /// Days without data are None; days with data but no spend for the lines are 0.
    #[test]
    fn series_tell_missing_days_from_zero_days() {
        let costs = DailyCosts {
            lines: vec![
                line(vec![(day(1), 5), (day(3), 7)]),
                line(vec![(day(1), 1)]),
            ],
            currency: "USD".into(),
            period: Period {
                start: day(1),
                end: day(5),
            },
            metric: CostMetric::BilledCost,
            days_with_data: vec![day(1), day(2), day(3)],
            non_usage_rows: 0,
            report: CostReport::default(),
        };
        let s = costs.series(costs.lines.iter());
        assert_eq!(s.values, vec![Some(6), Some(0), Some(7), None]);
        assert_eq!(costs.last_day(), Some(day(3)));
    }

    #[test]
    fn days_are_settled() {
        let mut d = vec![(day(3), 1), (day(1), 2), (day(3), 4)];
        settle_days(&mut d);
        assert_eq!(d, vec![(day(1), 2), (day(3), 5)]);
        let p = Period {
            start: day(1),
            end: day(4),
        };
        assert_eq!(days_of(p).collect::<Vec<_>>(), vec![day(1), day(2), day(3)]);
    }
}
