//! `tagwarden report`: the compliance report over the same sources as `check` (inventory,
//! policy, costs), with the history and approved virtual tags of the data directory when it
//! has them, written to stdout or `--out`.

use std::io::Write;

use anyhow::Context;

use super::{ReportArgs, ReportFormatArg};
use crate::compliance::Scope;
use crate::report::{ReportFormat, render};
use crate::service::report::{self, ReportQuestion};
use crate::tools::Call;

pub(super) async fn report(args: ReportArgs) -> anyhow::Result<u8> {
    // A bad rules file is refused before any scan.
    let allocation = super::allocation::choice(args.allocation_rules.as_deref())?;
    let mut app = args.source.app()?;
    // The trend, the change and virtual tags come from an existing history.db; a report never
    // creates one.
    // (or from PostgreSQL with --database-url).
    let stores = super::database::Stores::open(args.data_dir.as_deref(), &args.database).await?;
    if stores.exist() {
        app = app
            .with_history(stores.history().await?)
            .with_virtual_tags(stores.virtual_tags().await?)
            .with_allocation_rules(stores.allocation_rules().await?);
    }
    let started = std::time::Instant::now();
    let bar = super::progress::TerminalProgress::start();
    let call = Call::new(&app)
        .with_trigger("cli")
        .with_progress(bar.as_ref().map(|b| b.sink()));
    let data = report::report(
        &call,
        ReportQuestion {
            scope: Scope {
                resource_types: args.resource_types.clone(),
                regions: args.only_regions.clone(),
                accounts: args.accounts.clone(),
            },
            top: args.top,
            owner_key: args.owner_key.clone(),
            force_refresh: args.force_refresh,
            allocation,
        },
    )
    .await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let data = data.map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = match args.format {
        ReportFormatArg::Markdown => ReportFormat::Markdown,
        ReportFormatArg::Html => ReportFormat::Html,
        ReportFormatArg::Csv => ReportFormat::Csv,
        ReportFormatArg::Json => ReportFormat::Json,
    };
    let text = render(&data, format)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "tagwarden: wrote the report to {} ({} bytes) in {} ms",
                path.display(),
                text.len(),
                started.elapsed().as_millis()
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(0)
}
