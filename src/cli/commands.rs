//! What each command does.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{
    AlertsCommand, AuditCommand, CheckArgs, Cli, Command, CostCommand, DemoCommand, ExportCommand,
    Format, PolicyCommand, ServeArgs, ToolsCommand,
};
use crate::app::App;
use crate::compliance::Scope;
use crate::guard::{Guard, SharedState};
use crate::server::http::{
    HttpOptions, bind_metrics, default_origins, parse_tokens, serve_http, serve_metrics,
};
use crate::server::schedule::{SnapshotSchedule, spawn_snapshots};
use crate::server::stdio::serve_stdio;
use crate::server::{TagwardenServer, spawn_policy_watch, spawn_prewarm};
use crate::service::allocation::{RulesChoice, RulesSource};
use crate::service::audits::AuditScheduler;
use crate::service::compliance::{self, ComplianceQuestion};
use crate::service::costs::{self, GapQuestion, GapReport};
use crate::store::HistoryStore;
use crate::store::audit::{self, AuditOptions, Verification};
use crate::tools::{Call, Registry};

/// Runs a command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check(args).await,
        Command::Report(args) => super::report::report(args).await,
        Command::Serve(args) => serve(args).await.map(|()| 0),
        Command::Tools(cmd) => tools(cmd),
        Command::Demo(DemoCommand::Export {
            seed,
            size,
            estate,
            out,
        }) => demo_export(seed, size, estate, out.as_deref()).map(|()| 0),
        Command::Policy(PolicyCommand::Check { file }) => policy_check(&file),
        Command::Policy(PolicyCommand::Import(args)) => super::policy::import(&args).await,
        Command::Policy(PolicyCommand::Export(args)) => super::policy::export(&args),
        Command::Audit(cmd) => audit(cmd).await,
        Command::Cost(CostCommand::Inspect(args)) => super::cost::inspect(&args),
        Command::Suggest(args) => suggest(&args),
        Command::Anomalies(args) => super::anomalies::run(args).await,
        Command::Promote(args) => super::promote::run(args).await,
        Command::Export(ExportCommand::Violations(args)) => super::export::violations(args).await,
        Command::Alerts(AlertsCommand::Check(args)) => super::alerts::check(args).await,
        Command::Alerts(AlertsCommand::DeadLetters(args)) => {
            super::alerts::dead_letters(args).await
        }
        Command::Alerts(AlertsCommand::Resend(args)) => super::alerts::resend(args).await,
    }
}

/// The resources `check` is about.
fn scope(args: &CheckArgs) -> Scope {
    Scope {
        resource_types: args.resource_types.clone(),
        regions: args.only_regions.clone(),
        accounts: args.accounts.clone(),
    }
}

/// The dollar gap for `check`, when costs are configured; a failure is a warning (the
/// compliance result stands).
async fn cost_gap(
    app: &App,
    args: &CheckArgs,
    allocation: RulesChoice,
) -> anyhow::Result<Option<GapReport>> {
    let Some(source) = app.cost_source() else {
        return Ok(None);
    };
    let lines = matches!(source, crate::app::CostSource::Lines(_));
    let question = GapQuestion {
        top: 5,
        // Cost Explorer cannot filter by type; its figures cover the whole account.
        scope: if lines {
            scope(args)
        } else {
            Default::default()
        },
        allocation,
        ..Default::default()
    };
    let from_file = matches!(
        question.allocation,
        RulesChoice::Given {
            source: RulesSource::File,
            ..
        }
    );
    match costs::gap(&Call::new(app).with_trigger("cli"), question).await {
        Ok(gap) => Ok(Some(gap)),
        // Rules asked for by file must apply: a rule the policy refuses is the user's to fix.
        Err(e @ crate::app::ToolError::InvalidArgument(_)) if from_file => {
            Err(anyhow::anyhow!("{e}"))
        }
        Err(e) => {
            eprintln!("tagwarden: cost attribution gap unavailable: {e}");
            Ok(None)
        }
    }
}

async fn check(args: CheckArgs) -> anyhow::Result<u8> {
    // A bad rules file is refused before any scan.
    let allocation = super::allocation::choice(args.allocation_rules.as_deref())?;
    let mut app = args.source.app()?;
    let stores = super::database::Stores::open(args.data_dir.as_deref(), &args.database).await?;
    if args.snapshot {
        app = app.with_history(stores.history().await?);
    }
    // Approved virtual tags count in the effective view wherever a store already exists (on
    // PostgreSQL, always).
    if args.snapshot || stores.exist() {
        app = app
            .with_virtual_tags(stores.virtual_tags().await?)
            .with_allocation_rules(stores.allocation_rules().await?);
    }
    let bar = super::progress::TerminalProgress::start();
    let question = ComplianceQuestion {
        scope: scope(&args),
        tag_keys: args.tag_keys.clone(),
        min_severity: args.min_severity.map(Into::into),
        force_refresh: args.force_refresh,
        limit: args.limit,
        cursor: None,
        store_snapshot: args.snapshot,
    };
    let call = Call::new(&app)
        .with_trigger("cli")
        .with_snapshot_time(args.taken_at)
        .with_progress(bar.as_ref().map(|b| b.sink()));
    let output = compliance::check(&call, question).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let output = output.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(id) = output.snapshot_id {
        eprintln!("tagwarden: stored snapshot {id} in the history");
    }
    let gap = match args.format {
        Format::Json => None,
        Format::Text | Format::Markdown => cost_gap(&app, &args, allocation).await?,
    };
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&output)? + "\n",
        Format::Text => {
            super::check::render_text(&output, &app.policy().source().display())
                + &gap
                    .as_ref()
                    .map(super::check::render_gap_text)
                    .unwrap_or_default()
        }
        Format::Markdown => {
            super::check::render_markdown(&output, &app.policy().source().display())
                + &gap
                    .as_ref()
                    .map(super::check::render_gap_markdown)
                    .unwrap_or_default()
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    app.release_estate_at_exit().await;
    if let (Some(threshold), Some(score)) = (args.fail_under, output.score_pct)
        && score < threshold
    {
        eprintln!("tagwarden: score {score:.2}% is below --fail-under {threshold}%");
        return Ok(2);
    }
    Ok(0)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Refuse a bad HTTP setup before anything starts (no scan, no watcher).
    let http = match args.http {
        Some(addr) => {
            let limits = &args.http_limits;
            let options = HttpOptions {
                api_tokens: args.identity.api_tokens(args.api_tokens)?,
                admin_tokens: parse_tokens(args.admin_tokens)?,
                oauth: args.identity.oauth(),
                rate_limit_per_minute: args.http_rate_limit,
                allowed_hosts: args.allowed_hosts,
                allowed_origins: if args.allowed_origins.is_empty() {
                    default_origins()
                } else {
                    args.allowed_origins
                },
                auth_failures_per_minute: limits.http_auth_failures_per_minute,
                request_timeout: limits.http_request_timeout,
                header_timeout: limits.http_header_timeout,
                idle_timeout: limits.http_idle_timeout,
                max_connections: limits.http_max_connections,
                max_connections_per_address: limits.http_max_connections_per_address,
                max_sessions: limits.http_max_sessions,
                max_sessions_per_principal: limits.http_max_sessions_per_principal,
                session_idle_timeout: limits.http_session_idle_timeout,
                console_session_idle: limits.console_session_idle,
                console_secure_cookie: limits.console_secure_cookie,
                trusted_proxies: limits.trusted_proxies.clone(),
                shutdown_timeout: limits.shutdown_timeout,
                ..HttpOptions::loopback(addr)
            };
            options.check()?;
            Some(options)
        }
        None => {
            if args.identity.oauth_issuer.is_some() || args.identity.api_tokens_file.is_some() {
                tracing::warn!(
                    "--oauth-issuer and --api-tokens-file apply to --http only; over stdio the \
                     local user is the one principal"
                );
            }
            None
        }
    };
    // Bound before anything starts: a refused or taken address stops the server here.
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(bind_metrics(addr).await?),
        None => None,
    };
    let alerts = args.alerts.config()?;
    if alerts.is_some() && args.snapshot_every.is_none() {
        tracing::warn!("alert channels are set but --snapshot-every is not: no alert will be sent");
    }
    if alerts.is_none() && args.alerts.alert_weekly_summary {
        tracing::warn!(
            "--alert-weekly-summary is set but no alert channel is: no summary will be sent"
        );
    }
    let audits = Arc::new(AuditScheduler::new(
        args.snapshot_every,
        alerts.map(Arc::new),
    ));
    let mut app = args.source.app()?.with_audits(audits.clone());
    // Every store from one place: all on PostgreSQL with --database-url, else all SQLite.
    let stores = super::database::Stores::open(args.data_dir.as_deref(), &args.database).await?;
    let audit = stores
        .audit(&AuditOptions {
            max_bytes: args.audit_max_bytes,
        })
        .await?;
    app = app
        .with_history(stores.history().await?)
        .with_virtual_tags(stores.virtual_tags().await?)
        .with_anomalies(stores.anomalies().await?)
        .with_allocation_rules(stores.allocation_rules().await?);
    let app = Arc::new(app.with_audit(audit.clone()));
    spawn_snapshots(
        app.clone(),
        SnapshotSchedule {
            keep_days: args.keep_days,
        },
        audits,
    );
    let mut guard = Guard::new(args.guard.config(), Some(audit.clone()));
    // Replicas behind one load balancer share budgets and loop detection through Redis. A
    // stdio server is one user's own process: its limits stay its own.
    if http.is_some()
        && let Some(url) = args.source.redis_url.as_deref()
        && !url.trim().is_empty()
    {
        let config = args.guard.config();
        let shared = SharedState::new(
            url,
            &args.source.cache_prefix,
            args.source.cache_timeout,
            &config.budget,
            &config.loops,
        )?;
        shared.probe().await;
        guard = guard.with_state(Arc::new(shared));
    }
    let guard = Arc::new(guard);
    let server = TagwardenServer::new(app.clone(), Registry::shared(), guard);
    let stop_metrics = CancellationToken::new();
    if let Some(listener) = metrics_listener {
        tokio::spawn(serve_metrics(listener, app.clone(), stop_metrics.clone()));
    }
    let served = serve_transport(server, app, http, args.no_prewarm).await;
    stop_metrics.cancel();
    // Every queued audit row is written before the process exits.
    audit.close().await;
    served
}

async fn serve_transport(
    server: TagwardenServer,
    app: Arc<App>,
    http: Option<HttpOptions>,
    no_prewarm: bool,
) -> anyhow::Result<()> {
    spawn_policy_watch(app.clone(), std::time::Duration::from_secs(2));
    if !no_prewarm {
        spawn_prewarm(app);
    }
    let Some(options) = http else {
        serve_stdio(server).await?;
        return Ok(());
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    serve_http(server, options, shutdown).await?;
    Ok(())
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) fn open_history(data_dir: Option<&Path>) -> anyhow::Result<Arc<dyn HistoryStore>> {
    let path = crate::store::data_dir(data_dir).join("history.db");
    let history = crate::store::open_history(&path)?;
    tracing::info!(path = %path.display(), "history store open");
    Ok(history)
}

/// `suggest --evaluate --demo`: the calibration report of tag suggestions.
fn suggest(args: &super::SuggestArgs) -> anyhow::Result<u8> {
    let estate = match (args.estate, args.demo) {
        (Some(estate), _) => Some(estate),
        (None, true) => Some(super::Estate::Demo),
        (None, false) => None,
    };
    let (true, Some(estate)) = (args.evaluate, estate) else {
        anyhow::bail!(
            "use `tagwarden suggest --evaluate --demo` (or `--estate irregular`) to measure \
             calibration on a generated estate; suggestions for your resources come from the \
             suggest_tags tool"
        );
    };
    let policy = crate::app::PolicyHolder::open(args.policy.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot use the policy: {e}"))?
        .current();
    let started = std::time::Instant::now();
    let evaluate = match estate {
        super::Estate::Demo => crate::suggest::evaluate_demo,
        super::Estate::Irregular => crate::suggest::evaluate_irregular,
    };
    let report = evaluate(
        args.demo_seed,
        args.demo_size,
        &policy,
        crate::suggest::SuggestConfig::default(),
    );
    let text = match args.format {
        super::Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        super::Format::Text | super::Format::Markdown => report.render_text(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    eprintln!(
        "tagwarden: evaluated in {} ms",
        started.elapsed().as_millis()
    );
    Ok(0)
}

/// The exact JSON of each tool definition, one file per tool.
pub(super) fn tool_files() -> Vec<(String, String)> {
    Registry::new()
        .definitions()
        .into_iter()
        .map(|d| {
            let text = serde_json::to_string_pretty(&d).unwrap_or_default() + "\n";
            (format!("{}.json", d.name), text)
        })
        .collect()
}

fn tools(cmd: ToolsCommand) -> anyhow::Result<u8> {
    match cmd {
        ToolsCommand::List => {
            for name in Registry::new().names() {
                println!("{name}");
            }
            Ok(0)
        }
        ToolsCommand::Export { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, text) in tool_files() {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            eprintln!(
                "wrote {} tool definitions to {}",
                tool_files().len(),
                dir.display()
            );
            Ok(0)
        }
        ToolsCommand::Check { dir } => {
            let mut stale = Vec::new();
            for (name, text) in tool_files() {
                let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
                if on_disk != text {
                    stale.push(name);
                }
            }
            if stale.is_empty() {
                Ok(0)
            } else {
                eprintln!(
                    "stale tool definitions in {}: {} — run `tagwarden tools export {}`",
                    dir.display(),
                    stale.join(", "),
                    dir.display()
                );
                Ok(1)
            }
        }
    }
}

fn demo_export(
    seed: u64,
    size: usize,
    which: super::Estate,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let estate = match which {
        super::Estate::Demo => crate::inventory::demo::generate(seed, size),
        super::Estate::Irregular => crate::inventory::irregular::generate(seed, size),
    };
    let page = crate::inventory::file::to_page(&estate.resources);
    match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut w, &page)?;
            w.flush()?;
            eprintln!(
                "wrote {} resources to {}",
                estate.resources.len(),
                path.display()
            );
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer(&mut w, &page)?;
            w.flush()?;
        }
    }
    Ok(())
}

fn policy_check(file: &Path) -> anyhow::Result<u8> {
    match crate::policy::load_policy_file(file) {
        Ok(policy) => {
            println!(
                "{}: valid policy, hash {}",
                crate::inventory::file::display_name(file),
                policy.hash()
            );
            for line in policy.summary_lines() {
                println!("- {line}");
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "tagwarden: {}: {e}",
                crate::inventory::file::display_name(file)
            );
            Ok(1)
        }
    }
}

async fn audit(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Verify { data_dir, database } => {
            let verdict = match database.pool().await? {
                Some(pool) => crate::store::postgres::audit::verify(&pool).await?,
                None => {
                    audit::verify(&crate::store::data_dir(data_dir.as_deref()).join("audit.db"))?
                }
            };
            match verdict {
                Verification::Intact { rows, last_hash } => {
                    println!(
                        "audit log intact: {rows} rows, chain head {}",
                        &last_hash[..16.min(last_hash.len())]
                    );
                    Ok(0)
                }
                Verification::Broken {
                    seq,
                    reason,
                    rows_checked,
                } => {
                    println!(
                        "audit log BROKEN at row {seq}: {reason} ({rows_checked} rows before it \
                         are intact)"
                    );
                    Ok(1)
                }
            }
        }
        AuditCommand::Tail {
            data_dir,
            database,
            rows,
            json,
        } => {
            let tail = match database.pool().await? {
                Some(pool) => crate::store::postgres::audit::tail(&pool, rows).await?,
                None => audit::tail(
                    &crate::store::data_dir(data_dir.as_deref()).join("audit.db"),
                    rows,
                )?,
            };
            for row in tail {
                if json {
                    println!("{}", serde_json::to_string(&row)?);
                } else {
                    let r = &row.record;
                    println!(
                        "{:>6} {} {:<24} {:<18} {:>9.1}ms {:>8}B {} {} {} {}",
                        row.seq,
                        r.ts,
                        r.tool,
                        r.outcome,
                        r.duration_us as f64 / 1000.0,
                        r.result_bytes,
                        r.principal.as_deref().unwrap_or("-"),
                        r.session,
                        r.client,
                        r.arguments
                    );
                }
            }
            Ok(0)
        }
    }
}
