//! SQLite stores (rusqlite, bundled): one way to open a database — WAL, synchronous FULL, a busy
//! timeout — and apply versioned migrations, so every store is crash-safe the same way.

pub(crate) mod allocation_rules;
pub(crate) mod anomalies;
pub(crate) mod audit;
pub(crate) mod history;
mod history_db;
pub(crate) mod postgres;
pub(crate) mod sqlite;
pub(crate) mod virtual_tags;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::history::{MemberRecord, NewSnapshot, SnapshotMeta};
use audit::{Appended, AuditFilter, AuditRecord, StoredRecord};
use virtual_tags::promotion::{NewPlan, PlanRow};
use virtual_tags::{ActiveTag, Decided, Decision, NewVirtualTag, RuleRow, TagQuery, VirtualTag};

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open {path}: {reason} (set TAGWARDEN_DATA_DIR to a writable directory)")]
    Open { path: String, reason: String },
    #[error("cannot migrate {path} to schema version {version}: {reason}")]
    Migrate {
        path: String,
        version: i64,
        reason: String,
    },
    #[error(
        "{path} was written by a newer Tagwarden (schema version {found}, this binary knows {known}); upgrade Tagwarden"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sql(String),
    /// The request was refused as asked (unknown id, a name or priority taken, too many
    /// matches): the message says what to change.
    #[error("{0}")]
    Refused(String),
    /// The task running a store call stopped (panicked or was cancelled).
    #[error("{0}")]
    Stopped(String),
    /// A store call failed: which store, and why.
    #[error("{store}: {source}")]
    In {
        store: &'static str,
        source: Box<StoreError>,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e.to_string())
    }
}

/// Compliance snapshots over time (`history.db`), as the tools and the scheduler use them.
/// Arguments are owned so that a backend may move them to another thread or connection.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    async fn insert(&self, s: NewSnapshot) -> Result<i64, StoreError>;
    async fn list_headlines(
        &self,
        since: DateTime<Utc>,
        filters_hash: Option<String>,
    ) -> Result<Vec<SnapshotMeta>, StoreError>;
    async fn get(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError>;
    async fn latest(
        &self,
        filters_hash: Option<String>,
    ) -> Result<Option<SnapshotMeta>, StoreError>;
    async fn before(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError>;
    async fn members(&self, id: i64) -> Result<Vec<MemberRecord>, StoreError>;
    async fn filter_sets(&self) -> Result<Vec<(Value, String, usize)>, StoreError>;
    async fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Keeps an alert that could not be delivered.
    async fn record_dead_letter(
        &self,
        d: history::dead_letters::NewDeadLetter,
    ) -> Result<i64, StoreError>;
    /// The newest `limit` undelivered alerts, newest first.
    async fn dead_letters(
        &self,
        limit: usize,
    ) -> Result<Vec<history::dead_letters::DeadLetter>, StoreError>;
    /// One undelivered alert.
    async fn dead_letter(
        &self,
        id: i64,
    ) -> Result<Option<history::dead_letters::DeadLetter>, StoreError>;
    /// How many undelivered alerts are kept.
    async fn dead_letter_count(&self) -> Result<u64, StoreError>;
    /// Drops an undelivered alert that a resend delivered; whether it was there.
    async fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError>;
    /// A resend failed again: adds its attempts, keeps the new error and time.
    async fn dead_letter_failed_again(
        &self,
        id: i64,
        attempts: u32,
        error: String,
        failed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records a weekly summary sent about a snapshot.
    async fn record_summary(
        &self,
        sent_at: DateTime<Utc>,
        snapshot_id: i64,
        channels: usize,
        delivered: usize,
    ) -> Result<i64, StoreError>;
    /// When the last weekly summary was sent.
    async fn last_summary_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// A new tag rule and who creates it.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub priority: i64,
    pub enabled: bool,
    pub trusted: bool,
    pub spec: String,
    pub by_name: String,
    pub by_principal: String,
}

/// The fields of a rule to change (`None` keeps one).
#[derive(Debug, Clone, Default)]
pub struct RuleUpdate {
    pub name: Option<String>,
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
    pub trusted: Option<bool>,
    pub spec: Option<String>,
}

/// Virtual tags and tag rules (`history.db`), as the tools and the overlay use them.
#[async_trait]
pub trait VirtualTagStore: Send + Sync {
    async fn generation(&self) -> Result<u64, StoreError>;
    async fn active(&self) -> Result<Vec<ActiveTag>, StoreError>;
    async fn add(&self, tags: Vec<NewVirtualTag>) -> Result<(Vec<i64>, usize), StoreError>;
    async fn list(
        &self,
        q: TagQuery,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<VirtualTag>, usize), StoreError>;
    async fn get(&self, ids: Vec<i64>) -> Result<Vec<VirtualTag>, StoreError>;
    async fn decide(&self, ids: Vec<i64>, d: Decision) -> Result<Decided, StoreError>;
    async fn decide_matching(
        &self,
        q: TagQuery,
        d: Decision,
        max: usize,
    ) -> Result<Vec<VirtualTag>, StoreError>;
    async fn feedback(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError>;
    async fn rules(&self) -> Result<Vec<RuleRow>, StoreError>;
    async fn create_rule(&self, r: NewRule) -> Result<RuleRow, StoreError>;
    async fn update_rule(&self, id: i64, u: RuleUpdate) -> Result<RuleRow, StoreError>;
    async fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError>;
    async fn record_rule_run(&self, counts: Vec<(i64, u64)>) -> Result<(), StoreError>;
    /// Stores a promotion plan (planned); returns its id.
    async fn create_plan(&self, p: NewPlan) -> Result<i64, StoreError>;
    /// The newest promotion plans (without entries) with their entry counts, and the total.
    async fn list_plans(&self, limit: usize) -> Result<(Vec<(PlanRow, usize)>, usize), StoreError>;
    /// A promotion plan with its entries; None when there is none.
    async fn plan(&self, id: i64) -> Result<Option<PlanRow>, StoreError>;
    /// Records a person's approval (planned → approved); refuses any other state.
    async fn approve_plan(
        &self,
        id: i64,
        by_name: String,
        by_principal: String,
        reason: String,
    ) -> Result<PlanRow, StoreError>;
    /// Takes an approved plan for applying (approved → applying), once.
    async fn start_apply(&self, id: i64) -> Result<(), StoreError>;
    /// Gives back a taken plan that wrote nothing (applying → approved).
    async fn abandon_apply(&self, id: i64) -> Result<(), StoreError>;
    /// Records each ARN's outcome, marks the virtual tags now native `promoted` (returns how
    /// many) and the plan applied, in one transaction.
    async fn finish_apply(
        &self,
        id: i64,
        outcomes: Vec<(String, String)>,
        promoted: Vec<i64>,
        principal: String,
    ) -> Result<usize, StoreError>;
}

/// Decisions on cost anomalies (`history.db`), as `get_cost_anomalies` uses them.
#[async_trait]
pub trait AnomalyStore: Send + Sync {
    /// Records a decision (a new row; earlier ones stay).
    async fn record(
        &self,
        d: anomalies::NewAnomalyDecision,
    ) -> Result<anomalies::AnomalyDecisionRow, StoreError>;
    /// The latest decision of each of these anomalies that has one.
    async fn latest(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<anomalies::AnomalyDecisionRow>, StoreError>;
    /// Which of these anomalies an alert has announced already.
    async fn announced(&self, ids: Vec<String>) -> Result<Vec<String>, StoreError>;
    /// Records that an alert announced these anomalies.
    async fn mark_announced(&self, ids: Vec<String>) -> Result<(), StoreError>;
}

/// Shared-cost allocation rules (`history.db`), as `manage_allocation_rules` keeps them and the
/// cost gap, `check` and the report read them.
#[async_trait]
pub(crate) trait AllocationRuleStore: Send + Sync {
    /// The rules not removed, in the order they were added.
    async fn list(&self) -> Result<Vec<allocation_rules::AllocationRuleRow>, StoreError>;
    /// Adds a rule (refused when its name is taken), or with `replace` replaces the rule of
    /// that name in its place; records the change.
    async fn put(
        &self,
        r: allocation_rules::PutAllocationRule,
    ) -> Result<
        (
            allocation_rules::AllocationRuleRow,
            allocation_rules::RuleChange,
        ),
        StoreError,
    >;
    /// Removes the rule of this name (refused when there is none); records the change.
    async fn remove(
        &self,
        name: String,
        by_name: String,
        by_principal: String,
    ) -> Result<allocation_rules::AllocationRuleRow, StoreError>;
}

/// The audit log of tool calls, as the guard, the health check and get_audit_trail use it.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Queues a record and waits up to `wait` for it to be committed.
    async fn append(&self, r: AuditRecord, wait: Duration) -> Appended;
    /// Rows matching a filter, newest first, and the exact number that match.
    async fn query(&self, f: AuditFilter) -> Result<(Vec<StoredRecord>, u64), StoreError>;
    /// Stops taking rows, writes every queued row, and waits for the writer to finish.
    async fn close(&self);
    /// Why the last write failed, while the log is failing.
    fn failing(&self) -> Option<String>;
    /// Rows waiting for the writer, when the backend queues them (`/metrics`).
    fn queue_depth(&self) -> Option<usize> {
        None
    }
}

/// The history store at `path` (created if needed).
pub(crate) fn open_history(path: &Path) -> Result<Arc<dyn HistoryStore>, StoreError> {
    let db = history::HistoryDb::open(path)?;
    Ok(Arc::new(sqlite::Sqlite::new(Arc::new(db))))
}

/// The virtual-tag store at `path` (created if needed; it shares `history.db`).
pub(crate) fn open_virtual_tags(path: &Path) -> Result<Arc<dyn VirtualTagStore>, StoreError> {
    let db = virtual_tags::VirtualTagDb::open(path)?;
    Ok(Arc::new(sqlite::Sqlite::new(Arc::new(db))))
}

/// The anomaly-decision store at `path` (created if needed; it shares `history.db`).
pub(crate) fn open_anomalies(path: &Path) -> Result<Arc<dyn AnomalyStore>, StoreError> {
    let db = anomalies::AnomalyDb::open(path)?;
    Ok(Arc::new(sqlite::Sqlite::new(Arc::new(db))))
}

/// The allocation-rule store at `path` (created if needed; it shares `history.db`).
pub(crate) fn open_allocation_rules(
    path: &Path,
) -> Result<Arc<dyn AllocationRuleStore>, StoreError> {
    let db = allocation_rules::AllocationRuleDb::open(path)?;
    Ok(Arc::new(sqlite::Sqlite::new(Arc::new(db))))
}

/// The audit log at `path` (created if needed).
pub(crate) fn open_audit(
    path: &Path,
    options: &audit::AuditOptions,
) -> Result<Arc<dyn AuditStore>, StoreError> {
    let db = audit::AuditDb::open_with(path, options)?;
    Ok(Arc::new(sqlite::Sqlite::new(Arc::new(db))))
}

/// Where databases live: the given directory; else `history/` when it exists in the working
/// directory (the repository layout); else the user's data directory
/// (`$XDG_DATA_HOME/tagwarden` or `~/.local/share/tagwarden`), which works wherever an MCP
/// client starts the server.
pub(crate) fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    let local = Path::new("history");
    if local.is_dir() {
        return local.to_path_buf();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tagwarden")
}

/// Opens (creating if needed) a database for writing and brings its schema up to date.
pub(crate) fn open(path: &Path, migrations: &[(i64, &str)]) -> Result<Connection, StoreError> {
    let display = path.display().to_string();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
            path: display.clone(),
            reason: e.to_string(),
        })?;
    }
    let conn = Connection::open(path).map_err(|e| StoreError::Open {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    configure(&conn)?;
    migrate(&conn, &display, migrations)?;
    Ok(conn)
}

/// Opens an existing database read-only (for verification and queries from the CLI).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.display().to_string(),
            reason: "no such file".into(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers never block the writer. synchronous=FULL: a commit is on disk when it
    // returns, so an acknowledged write survives a crash or power loss.
    // Turning a new file into WAL needs a lock SQLite does not wait for (the busy timeout does
    // not apply): when several processes open a new database at once, retry briefly.
    let mut attempts = 0;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempts < 100 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Brings the schema up to date in one IMMEDIATE transaction: the version is read under the
/// write lock, so two processes opening a new database at once (two MCP servers started
/// together) cannot both apply the same migration; the second waits, then finds nothing to do.
fn migrate(conn: &Connection, path: &str, migrations: &[(i64, &str)]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL
         )",
    )?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match apply_pending(conn, path, migrations) {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            // Nothing of a failed migration is kept; the error says which one failed.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply_pending(
    conn: &Connection,
    path: &str,
    migrations: &[(i64, &str)],
) -> Result<(), StoreError> {
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = migrations.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if current > known {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found: current,
            known,
        });
    }
    for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
        let failed = |e: rusqlite::Error| StoreError::Migrate {
            path: path.to_string(),
            version: *version,
            reason: e.to_string(),
        };
        conn.execute_batch(sql).map_err(failed)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, chrono::Utc::now().to_rfc3339()],
        )
        .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_opened_at_once_by_many_migrate_once() {
        // Regression: two servers starting together both applied migration 1 to a new
        // history.db ("table resources already exists").
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("h{round}.db"));
            let m: &[(i64, &str)] = &[
                (1, "CREATE TABLE a (x INTEGER)"),
                (2, "CREATE TABLE b (y INTEGER)"),
            ];
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || open(&path, m).map(|_| ()))
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn migrations_apply_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let m1: &[(i64, &str)] = &[(1, "CREATE TABLE a (x INTEGER)")];
        open(&path, m1).unwrap();
        let m2: &[(i64, &str)] = &[
            (1, "CREATE TABLE a (x INTEGER)"),
            (2, "ALTER TABLE a ADD y TEXT"),
        ];
        let conn = open(&path, m2).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, vec![1, 2]);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // An older binary refuses a newer database instead of misreading it.
        let err = open(&path, m1).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unwritable_location_says_what_to_set() {
        let err = open(Path::new("/proc/no/such/dir/t.db"), &[]).unwrap_err();
        assert!(err.to_string().contains("TAGWARDEN_DATA_DIR"), "{err}");
    }
}
