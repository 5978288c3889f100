//! `--database-url`: PostgreSQL instead of the SQLite files, for replicas sharing one
//! database. Where the stores live is decided here, once, for every subcommand (`Stores`):
//! with a URL every store — the audit log, the history store, anomaly decisions, virtual tags
//! with tag rules and promotion plans, shared-cost allocation rules — is on PostgreSQL and
//! none is opened from SQLite (never a silent fallback to a file of one replica's own);
//! without one, they are the SQLite files of the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::store::postgres::{self, PgOptions};
use crate::store::{AllocationRuleStore, AnomalyStore, AuditStore, HistoryStore, VirtualTagStore};

/// Where the stores live when not in the SQLite files.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL for every store (audit log, history, anomaly decisions, virtual tags, tag
    /// rules, promotion plans, allocation rules), shared by several replicas
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

/// The stores one command opens: all on PostgreSQL when a URL is given, else the SQLite
/// `history.db` of the data directory.
pub(super) struct Stores {
    pool: Option<deadpool_postgres::Pool>,
    data_dir: Option<PathBuf>,
}

impl Stores {
    /// Connects when a URL is given (a wrong URL or a server down fails here, with what to
    /// check); opens nothing yet.
    pub(super) async fn open(
        data_dir: Option<&Path>,
        database: &DatabaseArgs,
    ) -> anyhow::Result<Stores> {
        Ok(Stores {
            pool: database.pool().await?,
            data_dir: data_dir.map(Path::to_path_buf),
        })
    }

    pub(super) fn on_postgres(&self) -> bool {
        self.pool.is_some()
    }

    /// Whether there are stores to read without creating any: always on PostgreSQL (the
    /// tables are made on first use), on SQLite when `history.db` exists.
    pub(super) fn exist(&self) -> bool {
        self.on_postgres() || self.history_db().is_file()
    }

    fn history_db(&self) -> PathBuf {
        crate::store::data_dir(self.data_dir.as_deref()).join("history.db")
    }

    pub(super) async fn history(&self) -> anyhow::Result<Arc<dyn HistoryStore>> {
        match &self.pool {
            Some(pool) => open_history_pg(pool.clone()).await,
            None => super::commands::open_history(self.data_dir.as_deref()),
        }
    }

    pub(super) async fn virtual_tags(&self) -> anyhow::Result<Arc<dyn VirtualTagStore>> {
        match &self.pool {
            Some(pool) => {
                let store = postgres::virtual_tags::PgVirtualTags::open(pool.clone()).await?;
                tracing::info!("virtual-tag store open on PostgreSQL");
                Ok(Arc::new(store))
            }
            None => Ok(crate::store::open_virtual_tags(&self.history_db())?),
        }
    }

    pub(super) async fn allocation_rules(&self) -> anyhow::Result<Arc<dyn AllocationRuleStore>> {
        match &self.pool {
            Some(pool) => {
                let store =
                    postgres::allocation_rules::PgAllocationRules::open(pool.clone()).await?;
                tracing::info!("allocation-rule store open on PostgreSQL");
                Ok(Arc::new(store))
            }
            None => Ok(crate::store::open_allocation_rules(&self.history_db())?),
        }
    }

    pub(super) async fn anomalies(&self) -> anyhow::Result<Arc<dyn AnomalyStore>> {
        match &self.pool {
            Some(pool) => open_anomalies_pg(pool.clone()).await,
            None => Ok(crate::store::open_anomalies(&self.history_db())?),
        }
    }

    /// The audit log: on PostgreSQL, or `audit.db` beside `history.db`.
    pub(super) async fn audit(
        &self,
        options: &crate::store::audit::AuditOptions,
    ) -> anyhow::Result<Arc<dyn AuditStore>> {
        match &self.pool {
            Some(pool) => open_audit_pg(pool.clone()).await,
            None => {
                let path = crate::store::data_dir(self.data_dir.as_deref()).join("audit.db");
                let log = crate::store::open_audit(&path, options)?;
                tracing::info!(path = %path.display(), "audit log open");
                Ok(log)
            }
        }
    }
}
