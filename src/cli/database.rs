//! `--database-url`: PostgreSQL instead of the SQLite files, for replicas sharing one
//! database. Which stores are on PostgreSQL is decided here, once: the audit log, the history
//! store and anomaly decisions; the store not ported yet (virtual tags, rules and promotion
//! plans) is not opened at all — never a silent SQLite fallback — and startup says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::store::postgres::{self, PgOptions};
use crate::store::{AnomalyStore, AuditStore, HistoryStore};

/// Where the stores live when not in the SQLite files.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL for the audit log, the history store and anomaly decisions, shared by
    /// several replicas
    /// (postgres://user[:password]@host[:port]/database; `?options=-csearch_path%3DNAME` picks
    /// a schema). Default: the SQLite files of --data-dir.
    #[arg(
        long,
        env = "TAGWARDEN_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections to PostgreSQL kept open at most.
    #[arg(
        long,
        env = "TAGWARDEN_DATABASE_POOL_SIZE",
        default_value_t = 8,
        value_name = "N"
    )]
    pub database_pool_size: usize,
    /// Longest time one PostgreSQL statement may run (e.g. 30s).
    #[arg(long, env = "TAGWARDEN_DATABASE_STATEMENT_TIMEOUT", default_value = "30s",
          value_name = "DURATION", value_parser = super::parse_duration)]
    pub database_statement_timeout: Duration,
}

/// The stores not on PostgreSQL yet, as startup names them.
pub(super) const UNPORTED: &str = "the virtual-tag store (virtual tags, tag rules, promotion \
     plans) and the shared-cost allocation rules are not available on PostgreSQL yet";

impl DatabaseArgs {
    /// The PostgreSQL settings, when a URL is given.
    pub(crate) fn options(&self) -> Option<PgOptions> {
        let url = self.database_url.as_deref()?;
        Some(PgOptions {
            pool_size: self.database_pool_size,
            statement_timeout: self.database_statement_timeout,
            ..PgOptions::new(url)
        })
    }

    /// A pool, when a URL is given.
    pub(super) async fn pool(&self) -> anyhow::Result<Option<deadpool_postgres::Pool>> {
        match self.options() {
            Some(options) => Ok(Some(postgres::connect(&options).await?)),
            None => Ok(None),
        }
    }
}

/// The history store: on PostgreSQL when a URL is given, else history.db in the data directory.
pub(super) async fn open_history(
    data_dir: Option<&Path>,
    database: &DatabaseArgs,
) -> anyhow::Result<Arc<dyn HistoryStore>> {
    match database.pool().await? {
        Some(pool) => open_history_pg(pool).await,
        None => super::commands::open_history(data_dir),
    }
}

pub(super) async fn open_history_pg(
    pool: deadpool_postgres::Pool,
) -> anyhow::Result<Arc<dyn HistoryStore>> {
    let store = postgres::history::PgHistory::open(pool).await?;
    tracing::info!("history store open on PostgreSQL");
    Ok(Arc::new(store))
}

pub(super) async fn open_audit_pg(
    pool: deadpool_postgres::Pool,
) -> anyhow::Result<Arc<dyn AuditStore>> {
    let log = postgres::audit::PgAudit::open(pool).await?;
    tracing::info!("audit log open on PostgreSQL");
    Ok(Arc::new(log))
}

pub(super) async fn open_anomalies_pg(
    pool: deadpool_postgres::Pool,
) -> anyhow::Result<Arc<dyn AnomalyStore>> {
    let store = postgres::anomalies::PgAnomalies::open(pool).await?;
    tracing::info!("anomaly-decision store open on PostgreSQL");
    Ok(Arc::new(store))
}
