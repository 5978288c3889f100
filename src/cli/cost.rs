//! `tagwarden cost inspect`: reads FOCUS cost files and says what is in them (rows, period,
//! currency, totals per provider and service, and every skipped row), so an export can be
//! checked before the server is pointed at it. Prints its timing to stderr, for benchmarks.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use chrono::NaiveDate;
use clap::ValueEnum;

use crate::cost::focus::read_focus_files;
use crate::cost::money::format_amount;
use crate::cost::{CostMetric, LineCosts, Micros, Period, micros_to_amount};
use crate::util::thousands;

/// Services listed by name; the rest are summed as `others`.
const TOP_SERVICES: usize = 10;

#[derive(Debug, clap::Args)]
pub struct CostInspectArgs {
    /// FOCUS 1.x CSV exports; rows of all files are summed together.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The cost column to read.
    #[arg(long, value_enum, ignore_case = true, default_value = "BilledCost")]
    pub metric: MetricArg,
    /// First day included (YYYY-MM-DD). With --end; without both, every row is used.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "end", value_parser = parse_day)]
    pub start: Option<NaiveDate>,
    /// First day NOT included (YYYY-MM-DD), e.g. 2026-11-01 for October.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "start", value_parser = parse_day)]
    pub end: Option<NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: InspectFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// What was invoiced for each row.
    #[value(name = "BilledCost")]
    BilledCost,
    /// Amortized cost after discounts and commitments.
    #[value(name = "EffectiveCost")]
    EffectiveCost,
}

impl From<MetricArg> for CostMetric {
    fn from(m: MetricArg) -> CostMetric {
        match m {
            MetricArg::BilledCost => CostMetric::BilledCost,
            MetricArg::EffectiveCost => CostMetric::EffectiveCost,
        }
    }
}

/// Text for people, JSON for scripts (there is no Markdown form of this report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

pub(super) fn parse_day(s: &str) -> Result<NaiveDate, String> {
    // chrono accepts `2026-10-1`; the length check keeps the form exact.
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| format!("`{s}` is not a date such as 2026-10-01 (YYYY-MM-DD)"))
}

fn period(args: &CostInspectArgs) -> anyhow::Result<Option<Period>> {
    match (args.start, args.end) {
        (None, None) => Ok(None),
        (Some(start), Some(end)) if start < end => Ok(Some(Period { start, end })),
        (Some(start), Some(end)) => bail!(
            "--start {start} must be before --end {end} (the end day is not included: \
             October 2026 is --start 2026-10-01 --end 2026-11-01)"
        ),
        _ => bail!("give both --start and --end, or neither to use every row"),
    }
}

/// Reads the files and prints what is in them. Skipped rows are reported, not an error; an
/// unreadable file or a bad period is.
pub(super) fn inspect(args: &CostInspectArgs) -> anyhow::Result<u8> {
    let period = period(args)?;
    let started = Instant::now();
    let costs = read_focus_files(&args.files, args.metric.into(), period)?;
    let elapsed = started.elapsed();
    let summary = Summary::of(&costs);
    match args.format {
        InspectFormat::Text => print!("{}", render_text(&costs, &summary)),
        InspectFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render_json(&costs, &summary))?
        ),
    }
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        costs.report.rows_read as f64 / secs
    } else {
        0.0
    };
    eprintln!(
        "read {} rows in {:.1} ms ({:.0} rows/s)",
        costs.report.rows_read,
        secs * 1000.0,
        rate
    );
    Ok(0)
}

/// The figures both formats show.
struct Summary {
    resources: usize,
    by_provider: Vec<(&'static str, Micros)>,
    /// Largest spend first (by absolute amount: a large credit matters as much as a charge).
    by_service: Vec<(String, Micros)>,
    outside_period: u64,
}

impl Summary {
    fn of(costs: &LineCosts) -> Summary {
        let mut providers: HashMap<&'static str, Micros> = HashMap::new();
        let mut services: HashMap<&str, Micros> = HashMap::new();
        let mut resources = 0;
        let mut previous: Option<&str> = None;
        for line in &costs.lines {
            *providers.entry(line.provider.as_str()).or_default() += line.amount;
            *services.entry(line.service.as_str()).or_default() += line.amount;
            // Lines are sorted by resource id: a resource's lines are adjacent.
            if !line.resource_id.is_empty() && previous != Some(line.resource_id.as_str()) {
                resources += 1;
            }
            previous = Some(line.resource_id.as_str());
        }
        let mut by_provider: Vec<_> = providers.into_iter().collect();
        by_provider.sort_by(|a, b| b.1.abs().cmp(&a.1.abs()).then(a.0.cmp(b.0)));
        let mut by_service: Vec<(String, Micros)> = services
            .into_iter()
            .map(|(s, m)| (s.to_string(), m))
            .collect();
        by_service.sort_by(|a, b| b.1.abs().cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        let r = &costs.report;
        Summary {
            resources,
            by_provider,
            by_service,
            outside_period: r.rows_read.saturating_sub(r.rows_used + r.rows_skipped),
        }
    }
}

fn render_text(costs: &LineCosts, s: &Summary) -> String {
    let r = &costs.report;
    let mut out = String::new();
    let status = if r.complete {
        "complete".to_string()
    } else {
        format!("PARTIAL — {} rows skipped", thousands(r.rows_skipped))
    };
    let _ = writeln!(out, "{} — {status}", r.source);
    let _ = writeln!(
        out,
        "  rows       {} read, {} used, {} skipped, {} outside the period",
        thousands(r.rows_read),
        thousands(r.rows_used),
        thousands(r.rows_skipped),
        thousands(s.outside_period)
    );
    let _ = writeln!(
        out,
        "  period     {} to {} (end not included; {} days)",
        costs.period.start,
        costs.period.end,
        costs.period.days()
    );
    let _ = writeln!(out, "  metric     {}", costs.metric.as_str());
    let _ = writeln!(
        out,
        "  total      {} {}",
        costs.currency,
        format_amount(costs.total())
    );
    let _ = writeln!(
        out,
        "  resources  {} distinct, in {} cost lines",
        thousands(s.resources as u64),
        thousands(costs.lines.len() as u64)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:<44} {:>16}", "By provider", costs.currency);
    for (provider, amount) in &s.by_provider {
        let _ = writeln!(out, "  {provider:<44} {:>16}", format_amount(*amount));
    }
    let _ = writeln!(out);
    let shown = s.by_service.len().min(TOP_SERVICES);
    let _ = writeln!(
        out,
        "  {:<44} {:>16}",
        format!("Top services ({shown} of {})", s.by_service.len()),
        costs.currency
    );
    for (service, amount) in s.by_service.iter().take(TOP_SERVICES) {
        let _ = writeln!(
            out,
            "  {:<44} {:>16}",
            clip(service, 44),
            format_amount(*amount)
        );
    }
    if s.by_service.len() > TOP_SERVICES {
        let rest: Micros = s.by_service[TOP_SERVICES..].iter().map(|(_, m)| m).sum();
        let _ = writeln!(
            out,
            "  {:<44} {:>16}",
            format!("{} others", s.by_service.len() - TOP_SERVICES),
            format_amount(rest)
        );
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Skipped rows ({} of {})",
            r.problems.len(),
            thousands(r.rows_skipped)
        );
        for p in &r.problems {
            let _ = writeln!(out, "  {}:{}: {}", p.file, p.line, p.reason);
        }
    }
    for note in &r.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    out
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn render_json(costs: &LineCosts, s: &Summary) -> serde_json::Value {
    let r = &costs.report;
    serde_json::json!({
        "source": r.source,
        "complete": r.complete,
        "rows_read": r.rows_read,
        "rows_used": r.rows_used,
        "rows_skipped": r.rows_skipped,
        "rows_outside_period": s.outside_period,
        "period": costs.period,
        "metric": costs.metric.as_str(),
        "currency": costs.currency,
        "total": micros_to_amount(costs.total()),
        "resources": s.resources,
        "lines": costs.lines.len(),
        "by_provider": s.by_provider.iter()
            .map(|(p, m)| serde_json::json!({"provider": p, "amount": micros_to_amount(*m)}))
            .collect::<Vec<_>>(),
        "by_service": s.by_service.iter().take(TOP_SERVICES)
            .map(|(name, m)| serde_json::json!({"service": name, "amount": micros_to_amount(*m)}))
            .collect::<Vec<_>>(),
        "services": s.by_service.len(),
        "problems": r.problems,
        "notes": r.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/focus/multicloud.csv")
    }

    fn args(start: Option<&str>, end: Option<&str>) -> CostInspectArgs {
        CostInspectArgs {
            files: vec![fixture()],
            metric: MetricArg::BilledCost,
            start: start.map(|s| parse_day(s).unwrap()),
            end: end.map(|s| parse_day(s).unwrap()),
            format: InspectFormat::Text,
        }
    }

    #[test]
    fn the_fixture_summarises() {
        let a = args(Some("2026-10-01"), Some("2026-11-01"));
        let costs = read_focus_files(&a.files, a.metric.into(), period(&a).unwrap()).unwrap();
        let s = Summary::of(&costs);
        assert_eq!(s.resources, 10);
        assert_eq!(s.outside_period, 4);
        assert_eq!(
            s.by_provider,
            vec![
                ("aws", 810_795_678),
                ("azure", 423_400_000),
                ("gcp", 124_270_000)
            ]
        );
        assert_eq!(
            s.by_service[0],
            ("Amazon Relational Database Service".into(), 410_000_000)
        );
        let text = render_text(&costs, &s);
        assert!(text.contains("total      USD 1,358.47"), "{text}");
        assert!(
            text.contains("multicloud.csv:14: BilledCost \"n/a\""),
            "{text}"
        );
        assert!(
            text.contains("25 read, 19 used, 2 skipped, 4 outside"),
            "{text}"
        );
        let json = render_json(&costs, &s);
        assert_eq!(json["total"], 1358.465678);
        assert_eq!(json["problems"][1]["line"], 19);
        assert_eq!(json["period"]["start"], "2026-10-01");
        assert_eq!(inspect(&a).unwrap(), 0);
    }

    #[test]
    fn bad_periods_and_files_are_errors() {
        let err = period(&args(Some("2026-11-01"), Some("2026-10-01"))).unwrap_err();
        assert!(err.to_string().contains("must be before --end"), "{err}");
        assert!(period(&args(Some("2026-11-01"), None)).is_err());
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("2026-10-1").is_err());
        let mut a = args(None, None);
        a.files = vec![PathBuf::from("no-such-file.csv")];
        let err = inspect(&a).unwrap_err();
        assert!(err.to_string().contains("no-such-file.csv"), "{err}");
    }

    #[test]
    fn metric_names_parse_in_any_case() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: CostInspectArgs,
        }
        let t = T::try_parse_from(["t", "f.csv", "--metric", "effectivecost"]).unwrap();
        assert_eq!(t.a.metric, MetricArg::EffectiveCost);
        let t = T::try_parse_from(["t", "f.csv"]).unwrap();
        assert_eq!(t.a.metric, MetricArg::BilledCost);
        assert!(T::try_parse_from(["t", "f.csv", "--start", "2026-10-01"]).is_err());
        assert!(T::try_parse_from(["t"]).is_err());
    }
}
