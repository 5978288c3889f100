//! `tagwarden export violations`: every violation of the estate written as CSV (one row per
//! violation) or JUnit XML (one test case per resource), streamed to a file or stdout as the
//! resources are walked, so a million-resource estate never exists as one string.
//!
//! Exit codes: 0 when the file was written — whatever it contains, as `check` without
//! `--fail-under` (a CI job gates on the JUnit report's failures, or on `check --fail-under`);
//! 1 on an error (source unreadable, bad flags, a cost period the source refuses, output not
//! writable).

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::ValueEnum;

use super::{SeverityArg, SourceArgs};
use crate::app::Call;
use crate::compliance::Scope;
use crate::compliance::export::DEFAULT_OWNER_KEYS;
use crate::compliance::export::to_csv::CsvRows;
use crate::compliance::export::to_junit::JunitCases;
use crate::cost::{CostMetric, CostQuery, Period};
use crate::service::export::{Export, ExportQuestion, prepare};
use crate::suggest::SuggestConfig;
use crate::util::thousands;

#[derive(Debug, clap::Args)]
pub struct ExportViolationsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// `csv`: one row per violation (resource_id, account, region, type, name, key, kind,
    /// current, expected, severity, monthly_cost, suggested_value, suggestion_confidence,
    /// owner). `junit`: JUnit XML, each resource a test case, each violation a failure.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Output file (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only these resource types (patterns such as `ec2:*`, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub resource_types: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long = "only-regions", value_delimiter = ',', value_name = "REGIONS")]
    pub only_regions: Vec<String>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ACCOUNTS")]
    pub accounts: Vec<String>,
    /// Only violations of these keys (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub tag_keys: Vec<String>,
    /// Only violations at or above this severity.
    #[arg(long, value_enum)]
    pub min_severity: Option<SeverityArg>,
    /// The cost figure for monthly_cost: BilledCost or EffectiveCost (FOCUS files, the demo),
    /// UnblendedCost, AmortizedCost or NetAmortizedCost (Cost Explorer). Default: the source's.
    #[arg(long, value_name = "METRIC", value_parser = parse_metric)]
    pub metric: Option<CostMetric>,
    /// First day of the cost period (YYYY-MM-DD), with --end. Default: the last 30 complete
    /// days (demo, Cost Explorer), or every day the FOCUS files cover.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "end", value_parser = super::cost::parse_day)]
    pub start: Option<NaiveDate>,
    /// First day NOT in the cost period (YYYY-MM-DD), e.g. 2026-11-01 for October.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "start", value_parser = super::cost::parse_day)]
    pub end: Option<NaiveDate>,
    /// Lowest confidence a suggested value is exported with (0.7: the medium and high bands;
    /// 0.9: high only).
    #[arg(long, value_name = "0..1", default_value_t = SuggestConfig::default().medium, value_parser = parse_confidence)]
    pub min_confidence: f64,
    /// Leave suggested_value empty (skips building the suggestion statistics).
    #[arg(long)]
    pub no_suggestions: bool,
    /// Keys whose effective value fills the owner column, first present wins (comma-separated;
    /// policy keys are read through their aliases and case variants).
    #[arg(long, value_delimiter = ',', value_name = "KEYS", default_values_t = DEFAULT_OWNER_KEYS.map(String::from))]
    pub owner_keys: Vec<String>,
    /// Write text cells exactly as found. By default a cell starting with =, +, -, @, tab, CR
    /// or ' gets a leading ' so that spreadsheets do not run it as a formula.
    #[arg(long)]
    pub no_formula_guard: bool,
    /// Rescan instead of reusing a scan in the shared cache.
    #[arg(long)]
    pub force_refresh: bool,
    /// Directory of history.db, whose approved virtual tags count in the effective view (as
    /// for `check`).
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Junit,
}

fn parse_metric(s: &str) -> Result<CostMetric, String> {
    const ALL: [CostMetric; 5] = [
        CostMetric::BilledCost,
        CostMetric::EffectiveCost,
        CostMetric::UnblendedCost,
        CostMetric::AmortizedCost,
        CostMetric::NetAmortizedCost,
    ];
    ALL.into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|m| m.as_str()).collect();
            format!(
                "`{s}` is not a cost metric; use one of {}",
                names.join(", ")
            )
        })
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a confidence between 0 and 1")),
    }
}

fn period(args: &ExportViolationsArgs) -> anyhow::Result<Option<Period>> {
    match (args.start, args.end) {
        (Some(start), Some(end)) if start < end => Ok(Some(Period { start, end })),
        (Some(start), Some(end)) => anyhow::bail!(
            "--start {start} must be before --end {end} (the end day is not included: October \
             2026 is --start 2026-10-01 --end 2026-11-01)"
        ),
        _ => Ok(None),
    }
}

pub(super) async fn violations(args: ExportViolationsArgs) -> anyhow::Result<u8> {
    let mut app = args.source.app()?;
    // Approved virtual tags count in the effective view wherever a store already exists.
    let stores = super::database::Stores::open(args.data_dir.as_deref(), &args.database).await?;
    if stores.exist() {
        app = app.with_virtual_tags(stores.virtual_tags().await?);
    }
    let period = period(&args)?;
    let asked_for_costs = period.is_some() || args.metric.is_some();
    let question = ExportQuestion {
        scope: Scope {
            resource_types: args.resource_types.clone(),
            regions: args.only_regions.clone(),
            accounts: args.accounts.clone(),
        },
        tag_keys: args.tag_keys.clone(),
        min_severity: args.min_severity.map(Into::into),
        force_refresh: args.force_refresh,
        costs: CostQuery {
            period,
            metric: args.metric,
        },
        suggestions: !args.no_suggestions,
        min_confidence: args.min_confidence,
        owner_keys: args.owner_keys.clone(),
    };
    let bar = super::progress::TerminalProgress::start();
    let call = Call::new(&app)
        .with_trigger("cli")
        .with_progress(bar.as_ref().map(|b| b.sink()));
    let export = prepare(&call, question).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let export = export.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(why) = &export.cost_unavailable {
        if asked_for_costs {
            anyhow::bail!("costs unavailable for --metric/--start/--end: {why}");
        }
        eprintln!("tagwarden: costs unavailable, monthly_cost left empty: {why}");
    }
    let written = match write_to(&call, &export, &args) {
        Ok(written) => written,
        // A reader that stops early (`| head`) is not an error worth a message.
        Err(e) if broken_pipe(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    if let Some(path) = &args.out {
        let costs = match &export.costs {
            Some(c) => format!(
                "; monthly_cost = {} {} from {} to {} ({} days, end excluded)",
                c.costs.currency,
                c.costs.metric.as_str(),
                c.costs.period.start,
                c.costs.period.end,
                c.costs.period.days()
            ),
            None => String::new(),
        };
        eprintln!(
            "tagwarden: wrote {} violations of {} resources to {}{costs}",
            thousands(written.0 as u64),
            thousands(written.1 as u64),
            crate::inventory::file::display_name(path)
        );
    }
    app.release_estate_at_exit().await;
    Ok(0)
}

/// Writes to --out or stdout; returns (rows, resources) written.
fn write_to(
    call: &Call<'_>,
    export: &Export,
    args: &ExportViolationsArgs,
) -> anyhow::Result<(usize, usize)> {
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            write(call, export, args, BufWriter::with_capacity(1 << 16, file))
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout().lock();
            write(
                call,
                export,
                args,
                BufWriter::with_capacity(1 << 16, stdout),
            )
            .context("cannot write to stdout")
        }
    }
}

/// Whether writing failed because the reader went away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            match cause.downcast_ref::<::csv::Error>().map(::csv::Error::kind) {
                Some(::csv::ErrorKind::Io(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Streams the export in the chosen format; returns (rows, resources) written.
fn write<W: Write>(
    call: &Call<'_>,
    export: &Export,
    args: &ExportViolationsArgs,
    out: W,
) -> anyhow::Result<(usize, usize)> {
    let (mut rows, mut resources) = (0usize, 0usize);
    let mut out = match args.format {
        ExportFormat::Csv => {
            let mut csv = CsvRows::new(out, !args.no_formula_guard)?;
            export.walk(call, 0, false, |judged| -> anyhow::Result<_> {
                resources += 1;
                for row in &judged.rows {
                    csv.row(row)?;
                    rows += 1;
                }
                Ok(ControlFlow::Continue(()))
            })?;
            csv.finish()?
        }
        ExportFormat::Junit => {
            let policy = export.estate.policy();
            let properties = [
                ("policy_hash", policy.hash().to_string()),
                ("fail_at", export.fail_threshold().as_str().to_string()),
                ("source", export.estate.inventory.source.clone()),
                ("violations", export.total().to_string()),
            ];
            let mut junit = JunitCases::new(
                out,
                "tagwarden",
                export.junit_totals(),
                export.fail_threshold(),
                &properties,
            )?;
            export.walk(call, 0, true, |judged| -> anyhow::Result<_> {
                resources += 1;
                rows += judged.rows.len();
                let r = judged.resource;
                junit.case(&r.id, &r.resource_type, judged.in_scope, &judged.rows)?;
                Ok(ControlFlow::Continue(()))
            })?;
            junit.finish()?
        }
    };
    out.flush()?;
    Ok((rows, resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_confidences_parse() {
        assert_eq!(parse_metric("effectivecost"), Ok(CostMetric::EffectiveCost));
        assert_eq!(parse_metric("UnblendedCost"), Ok(CostMetric::UnblendedCost));
        assert!(parse_metric("cost").unwrap_err().contains("BilledCost"));
        assert_eq!(parse_confidence("0.9"), Ok(0.9));
        assert!(parse_confidence("1.5").is_err());
        assert!(parse_confidence("x").is_err());
    }
}
