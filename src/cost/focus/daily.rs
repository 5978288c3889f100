//! FOCUS files read as daily series: each (resource, service) line's usage per day, for cost
//! anomalies.
//!
//! Rows stream as in the period reader (one entry per line and day is kept, never the rows),
//! with the same checks and the same skipped-row reports. Only usage is kept: a row whose
//! `ChargeCategory` is not `Usage` (Purchase, Tax, Credit, Adjustment) or whose
//! `ChargeFrequency` is `One-Time` is counted in `non_usage_rows` and left out. Exports without
//! a `ChargeCategory` column are read whole, with a note saying so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use csv::ByteRecord;
use rustc_hash::FxHashMap;

use super::{
    Columns, DEFAULT_CURRENCY, MAX_PROBLEMS, clipped, describe_files, display_name, field, open,
    optional_field, parse_tags, resource_template, row_provider, start_line, text_field,
    text_or_empty, valid_day,
};
use crate::cost::daily::{DailyCosts, DailyLine, settle_days};
use crate::cost::{CostError, CostLine, CostMetric, CostReport, Magnitude, Period, RowProblem};
use crate::inventory::{Provider, id};

/// Running state of a daily read over one or more files.
struct DailyAggregate {
    index: FxHashMap<Box<[u8]>, usize>,
    lines: Vec<DailyLine>,
    key: Vec<u8>,
    days: BTreeSet<[u8; 10]>,
    currency: Option<String>,
    magnitude: Magnitude,
    non_usage_rows: u64,
    without_category: bool,
    report: CostReport,
}

/// Reads FOCUS files into daily lines (rows of all files are summed together).
pub(crate) fn read_focus_daily(
    paths: &[PathBuf],
    metric: CostMetric,
    period: Option<Period>,
) -> Result<DailyCosts, CostError> {
    if paths.is_empty() {
        return Err(CostError::Invalid(
            "no FOCUS files to read; name at least one CSV cost export".to_string(),
        ));
    }
    let amount_column = match metric {
        CostMetric::BilledCost => "BilledCost",
        CostMetric::EffectiveCost => "EffectiveCost",
        other => {
            return Err(CostError::Invalid(format!(
                "argument `metric`: {} is not in FOCUS files; use BilledCost or EffectiveCost",
                other.as_str()
            )));
        }
    };
    let mut agg = DailyAggregate {
        index: FxHashMap::default(),
        lines: Vec::new(),
        key: Vec::new(),
        days: BTreeSet::new(),
        currency: None,
        magnitude: Magnitude::default(),
        non_usage_rows: 0,
        without_category: false,
        report: CostReport::default(),
    };
    for path in paths {
        read_file(path, amount_column, period, &mut agg)?;
    }
    Ok(agg.finish(metric, period, describe_files(paths)))
}

fn read_file(
    path: &Path,
    amount_column: &'static str,
    period: Option<Period>,
    agg: &mut DailyAggregate,
) -> Result<(), CostError> {
    let name = display_name(path);
    let file = open(path, &name)?;
    let read_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) => CostError::FileRead {
            file: name.clone(),
            reason: io.to_string(),
        },
        _ => CostError::FileFormat {
            file: name.clone(),
            reason: e.to_string(),
        },
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(1 << 18)
        .from_reader(file);
    let header = csv.byte_headers().map_err(read_error)?;
    let columns = Columns::find(header, &name, amount_column)?;
    if columns.charge_category.is_none() {
        agg.without_category = true;
    }
    let mut row = ByteRecord::new();
    while csv.read_byte_record(&mut row).map_err(read_error)? {
        if row.len() == 1 && field(&row, 0).trim_ascii().is_empty() {
            continue;
        }
        agg.report.rows_read += 1;
        match agg.add_row(&row, &columns, amount_column, period) {
            Ok(()) => {}
            Err(Some(reason)) => {
                let line = start_line(&row, csv.position());
                agg.report.rows_skipped += 1;
                if agg.report.problems.len() < MAX_PROBLEMS {
                    agg.report.problems.push(RowProblem {
                        file: name.clone(),
                        line,
                        reason,
                    });
                }
            }
            Err(None) => {
                let line = start_line(&row, csv.position());
                return Err(CostError::TooLarge(format!(
                    "cost file {name}: {amount_column} amounts add up (in absolute value) \
                     beyond the largest total kept exactly, at line {line}; check the column \
                     for a unit or decimal-point error, or read a shorter period"
                )));
            }
        }
    }
    Ok(())
}

/// Whether a charge column holds `wanted` (ASCII, any case).
fn is(row: &ByteRecord, column: Option<usize>, wanted: &str) -> bool {
    optional_field(row, column)
        .trim_ascii()
        .eq_ignore_ascii_case(wanted.as_bytes())
}

impl DailyAggregate {
    /// Adds a row. `Err(Some(reason))`: skipped as malformed; `Err(None)`: too large to total.
    fn add_row(
        &mut self,
        row: &ByteRecord,
        c: &Columns,
        amount_column: &str,
        period: Option<Period>,
    ) -> Result<(), Option<String>> {
        c.check_width(row).map_err(Some)?;
        let day_bytes = c.day_bytes(row).map_err(Some)?;
        let day = valid_day(&day_bytes).ok_or_else(|| Some(c.bad_day(row)))?;
        if period.is_some_and(|p| day < p.start || day >= p.end) {
            return Ok(());
        }
        let category = optional_field(row, c.charge_category).trim_ascii();
        if (!category.is_empty() && !category.eq_ignore_ascii_case(b"Usage"))
            || is(row, c.charge_frequency, "One-Time")
        {
            self.non_usage_rows += 1;
            return Ok(());
        }
        let amount = c.amount(row, amount_column).map_err(Some)?;
        let currency = c.currency(row);
        if let Some(known) = &self.currency
            && !known.as_bytes().eq_ignore_ascii_case(currency)
        {
            return Err(Some(format!(
                "currency {} differs from {known} of earlier rows; convert the export or pass \
                 files of one currency",
                clipped(currency, 12)
            )));
        }
        let id = text_field(row, c.resource_id, "ResourceId")?;
        let service = text_field(row, c.service, "ServiceName")?;
        let magnitude = self.magnitude.plus(amount).map_err(|_| None)?;
        let at = self.line_index(row, c, id, service)?;
        let line = &mut self.lines[at];
        match line.days.last_mut() {
            Some((d, total)) if *d == day => *total = total.saturating_add(amount),
            _ => line.days.push((day, amount)),
        }
        self.magnitude = magnitude;
        if self.currency.is_none() {
            self.currency = Some(String::from_utf8_lossy(currency).to_ascii_uppercase());
        }
        self.days.insert(day_bytes);
        self.report.rows_used += 1;
        Ok(())
    }

    /// The line a row adds to: by resource and service, or for a resource-less charge by
    /// provider, account, region, service and tags (as the period reader keys them).
    fn line_index(
        &mut self,
        row: &ByteRecord,
        c: &Columns,
        id: &str,
        service: &str,
    ) -> Result<usize, Option<String>> {
        self.key.clear();
        let unowned = id.is_empty();
        let (provider, account, region, raw_tags) = if unowned {
            (
                row_provider(row, c).unwrap_or(Provider::File),
                optional_field(row, c.account).trim_ascii(),
                optional_field(row, c.region).trim_ascii(),
                optional_field(row, c.tags).trim_ascii(),
            )
        } else {
            (Provider::File, &b""[..], &b""[..], &b""[..])
        };
        if unowned {
            self.key.push(0);
            self.key.push(provider as u8);
            for part in [account, region, raw_tags] {
                self.key
                    .extend_from_slice(&(part.len() as u64).to_le_bytes());
                self.key.extend_from_slice(part);
            }
        } else {
            self.key.push(1);
            // Azure ids differ in case between exports: one resource whatever the case.
            let lower;
            let id_key = if id::azure::looks_like_azure_id(id) {
                lower = id.to_ascii_lowercase();
                lower.as_str()
            } else {
                id
            };
            self.key
                .extend_from_slice(&(id_key.len() as u64).to_le_bytes());
            self.key.extend_from_slice(id_key.as_bytes());
        }
        self.key.extend_from_slice(service.as_bytes());
        if let Some(&at) = self.index.get(self.key.as_slice()) {
            return Ok(at);
        }
        let mut line = if unowned {
            CostLine {
                resource_id: Default::default(),
                provider,
                account: text_or_empty(account),
                region: text_or_empty(region),
                service: Default::default(),
                resource_type: Default::default(),
                name: Default::default(),
                tags: parse_tags(raw_tags)?,
                amount: 0,
            }
        } else {
            resource_template(row, c, id)?
        };
        line.service = service.into();
        self.lines.push(DailyLine {
            line,
            days: Vec::new(),
            feeds: crate::cost::daily::Feeds::All,
        });
        self.index
            .insert(self.key.as_slice().into(), self.lines.len() - 1);
        Ok(self.lines.len() - 1)
    }

    fn finish(self, metric: CostMetric, period: Option<Period>, source: String) -> DailyCosts {
        let days_with_data: Vec<NaiveDate> = self.days.iter().filter_map(valid_day).collect();
        let period = period.unwrap_or_else(|| {
            let today = chrono::Utc::now().date_naive();
            let start = days_with_data.first().copied().unwrap_or(today);
            let last = days_with_data.last().copied().unwrap_or(start);
            Period {
                start,
                end: last.checked_add_days(Days::new(1)).unwrap_or(last),
            }
        });
        let mut lines = self.lines;
        for l in &mut lines {
            settle_days(&mut l.days);
            l.line.amount = l.days.iter().map(|(_, a)| *a).sum();
        }
        lines.sort_by(|a, b| {
            (&a.line.resource_id, &a.line.service, &a.line.account).cmp(&(
                &b.line.resource_id,
                &b.line.service,
                &b.line.account,
            ))
        });
        let mut report = self.report;
        report.source = source;
        report.complete = report.rows_skipped == 0;
        if self.non_usage_rows > 0 {
            report.notes.push(format!(
                "{} rows that are not usage (ChargeCategory Purchase, Tax, Credit or \
                 Adjustment, or one-time charges) are left out of the daily series",
                self.non_usage_rows
            ));
        }
        if self.without_category {
            report
                .notes
                .push("a file has no ChargeCategory column: every row counts as usage".to_string());
        }
        DailyCosts {
            lines,
            currency: self
                .currency
                .unwrap_or_else(|| DEFAULT_CURRENCY.to_string()),
            period,
            metric,
            days_with_data,
            non_usage_rows: self.non_usage_rows,
            report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Micros;

    const HEADER: &str = "ResourceId,ServiceName,BilledCost,EffectiveCost,BillingCurrency,\
        ChargePeriodStart,ChargeCategory,ChargeFrequency,SubAccountId,Tags";

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
    }

    fn read(body: &str, period: Option<Period>) -> Result<DailyCosts, CostError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, format!("{HEADER}\n{body}")).unwrap();
        read_focus_daily(&[path], CostMetric::BilledCost, period)
    }

    /// Usage rows become per-day amounts per (resource, service); purchases, credits, tax and
    /// one-time fees are counted and left out; resource-less usage is its own line.
    #[test]
    fn usage_per_line_and_day() {
        let costs = read(
            "i-1,EC2,10,9,USD,2026-10-01T00:00:00Z,Usage,Usage-Based,a,\n\
             i-1,EC2,5,4,USD,2026-10-01T00:00:00Z,Usage,Usage-Based,a,\n\
             i-1,EC2,7,6,USD,2026-10-03T00:00:00Z,Usage,Usage-Based,a,\n\
             i-1,Transfer,1,1,USD,2026-10-03T00:00:00Z,usage,Usage-Based,a,\n\
             i-1,EC2,2,2,USD,2026-10-02T00:00:00Z,Usage,Usage-Based,a,\n\
             ,Support,100,100,USD,2026-10-02T00:00:00Z,Purchase,Recurring,a,\n\
             ,EC2,-50,-50,USD,2026-10-02T00:00:00Z,Credit,One-Time,a,\n\
             ,Tax,8,8,USD,2026-10-02T00:00:00Z,Tax,Recurring,a,\n\
             i-2,Route 53,30,30,USD,2026-10-02T00:00:00Z,Usage,One-Time,a,\n\
             ,Route 53,3,3,USD,2026-10-04T00:00:00Z,Usage,Usage-Based,b,\n",
            None,
        )
        .unwrap();
        type Row<'a> = (&'a str, &'a str, Vec<(NaiveDate, Micros)>, Micros);
        let lines: Vec<Row> = costs
            .lines
            .iter()
            .map(|l| {
                (
                    l.line.resource_id.as_str(),
                    l.line.service.as_str(),
                    l.days.clone(),
                    l.line.amount,
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                ("", "Route 53", vec![(day(4), 3_000_000)], 3_000_000),
                (
                    "i-1",
                    "EC2",
                    vec![
                        (day(1), 15_000_000),
                        (day(2), 2_000_000),
                        (day(3), 7_000_000)
                    ],
                    24_000_000
                ),
                ("i-1", "Transfer", vec![(day(3), 1_000_000)], 1_000_000),
            ]
        );
        assert_eq!(costs.non_usage_rows, 4);
        assert_eq!(costs.days_with_data, vec![day(1), day(2), day(3), day(4)]);
        assert_eq!(
            costs.period,
            Period {
                start: day(1),
                end: day(5)
            }
        );
        assert_eq!(costs.report.rows_read, 10);
        assert_eq!(costs.report.rows_used, 6);
        assert!(costs.report.complete);
        assert!(costs.report.notes[0].starts_with("4 rows that are not usage"));
    }

    /// The period narrows the rows; malformed rows are skipped with their line; another
    /// currency is refused row by row.
    #[test]
    fn periods_problems_and_currencies() {
        let costs = read(
            "i-1,EC2,10,9,USD,2026-09-30T00:00:00Z,Usage,,a,\n\
             i-1,EC2,ten,9,USD,2026-10-01T00:00:00Z,Usage,,a,\n\
             i-1,EC2,4,4,USD,2026-10-0x,Usage,,a,\n\
             i-1,EC2,4,4,USD,2026-10-01T00:00:00Z,Usage,,a,\n\
             i-1,EC2,4,4,EUR,2026-10-01T00:00:00Z,Usage,,a,\n",
            Some(Period {
                start: day(1),
                end: day(2),
            }),
        )
        .unwrap();
        assert_eq!(costs.lines.len(), 1);
        assert_eq!(costs.lines[0].days, vec![(day(1), 4_000_000)]);
        let lines: Vec<u64> = costs.report.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 4, 6]);
        assert!(!costs.report.complete);
        assert_eq!(costs.days_with_data, vec![day(1)]);
    }

    /// Without a ChargeCategory column every row is usage, and a note says so.
    #[test]
    fn exports_without_charge_category() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(
            &path,
            "ResourceId,ServiceName,BilledCost,ChargePeriodStart\n\
             i-1,EC2,2,2026-10-01\n,Support,100,2026-10-01\n",
        )
        .unwrap();
        let costs = read_focus_daily(&[path], CostMetric::BilledCost, None).unwrap();
        assert_eq!(costs.lines.len(), 2);
        assert_eq!(costs.non_usage_rows, 0);
        assert!(costs.report.notes[0].contains("no ChargeCategory column"));
        let e = read_focus_daily(&[], CostMetric::BilledCost, None).unwrap_err();
        assert!(matches!(e, CostError::Invalid(_)));
        let e = read("", None).map(|_| ());
        assert!(e.is_ok(), "a header alone is an empty series");
    }
}
