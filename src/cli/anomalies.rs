//! `tagwarden anomalies`: the cost anomalies of the estate's daily costs (FOCUS files with
//! `--cost`, or the demo's), as text for people or JSON for scripts (exactly what the
//! `get_cost_anomalies` tool returns). Decisions recorded in the data directory show as each
//! anomaly's status.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use super::SourceArgs;
use crate::app::Call;
use crate::service::anomalies::{AnomalyQuestion, AnomalyReport, anomalies, new_pending};

#[derive(Debug, clap::Args)]
pub struct AnomaliesArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Recent complete days to check.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub days: u32,
    /// Same-weekday history, in weeks (4 to 8).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(4..=8))]
    pub weeks: u32,
    /// Absolute floor: the rise must be at least this much (currency units).
    #[arg(long, default_value_t = 10.0)]
    pub min_impact: f64,
    /// Percentage floor: the rise must be at least this % of the expected cost.
    #[arg(long, default_value_t = 20.0)]
    pub min_impact_pct: f64,
    /// Resources listed per anomaly (the tool's default too).
    #[arg(long, default_value_t = 5)]
    pub top_resources: u32,
    /// Where decisions are kept (history.db); read when it exists.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub format: AnomalyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnomalyFormat {
    Text,
    Json,
}

pub(super) async fn run(args: AnomaliesArgs) -> anyhow::Result<u8> {
    let mut app = args.source.app()?;
    let stores = super::database::Stores::open(args.data_dir.as_deref(), &args.database).await?;
    if stores.exist() {
        app = app.with_anomalies(stores.anomalies().await?);
    }
    let question = AnomalyQuestion {
        days: args.days,
        weeks: args.weeks,
        min_impact: args.min_impact,
        min_impact_pct: args.min_impact_pct,
        top_resources: args.top_resources,
        ..AnomalyQuestion::default()
    };
    let report = anomalies(&Call::new(&app).with_trigger("cli"), question, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match args.format {
        AnomalyFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        AnomalyFormat::Text => print!("{}", render_text(&report)),
    }
    Ok(0)
}

fn render_text(r: &AnomalyReport) -> String {
    let mut out = String::new();
    let pending = new_pending(&r.anomalies, &HashSet::new()).len();
    let _ = writeln!(
        out,
        "Cost anomalies {} to {} (end not included), {} series, {} {}",
        r.checked.start,
        r.checked.end,
        r.series_checked,
        r.currency,
        r.metric.as_str()
    );
    if let Some(day) = r.last_day_skipped {
        let _ = writeln!(
            out,
            "  {day} left out: the data's last day is still accruing"
        );
    }
    let _ = writeln!(
        out,
        "  {} anomalies ({pending} pending); flagged when z > {} and the rise is at least {} \
         and {}%",
        r.anomalies_total, r.method.z_threshold, r.method.min_impact, r.method.min_impact_pct
    );
    for a in &r.anomalies {
        let pct = a
            .impact_pct
            .map_or_else(|| "new".to_string(), |p| format!("+{p:.1}%"));
        let _ = writeln!(
            out,
            "\n{} {} {}={}  actual {:.2} expected {:.2} impact {:.2} ({pct}) z {:.1}  [{}]",
            a.anomaly_id,
            a.day,
            a.dimension,
            a.value,
            a.actual,
            a.expected,
            a.impact,
            a.score,
            a.status
        );
        if let Some(share) = a.untagged_share_pct {
            let _ = writeln!(out, "  untagged share of the rise: {share:.1}%");
        }
        for d in &a.drivers {
            let who = if d.resource_id.is_empty() {
                format!("({} charge)", d.service)
            } else {
                d.resource_id.clone()
            };
            let _ = writeln!(
                out,
                "  +{:.2} {who} owner {}{}",
                d.impact,
                d.owner.as_deref().unwrap_or("(none)"),
                if d.untagged_keys.is_empty() {
                    String::new()
                } else {
                    format!(", lacks {}", d.untagged_keys.join(", "))
                }
            );
        }
    }
    let q = &r.cost_quality;
    let _ = writeln!(out, "\ncosts: {}", q.source);
    for note in &q.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}
