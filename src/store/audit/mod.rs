//! The audit log (`audit.db`): one row per tool call — refusals and failures included — in a
//! SHA-256 hash chain, so that editing or removing a row is detectable (`tagwarden audit
//! verify`).
//!
//! Writes go through one writer thread fed by a bounded queue. Each row is committed (WAL,
//! synchronous FULL) before its call is answered; the caller learns whether it was (`Appended`)
//! and refuses to answer a call whose row is not on disk (the guard fails closed). The writer
//! groups queued rows into one transaction, and reads the chain's last hash inside that
//! transaction, so several processes can share a log without breaking the chain. A clean
//! shutdown drains the queue.
//!
//! The log can be bounded (`max_bytes`, SQLite's `max_page_count`): an operator's cap on its
//! disk use, and a full disk on demand for tests. The outcome of the last write is kept
//! (`failing`) for `/healthz` and for refusing calls that change data while rows cannot be
//! written.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE audit (
         seq            INTEGER PRIMARY KEY,
         ts             TEXT    NOT NULL,
         correlation_id TEXT    NOT NULL,
         session        TEXT    NOT NULL,
         client         TEXT    NOT NULL,
         transport      TEXT    NOT NULL,
         tool           TEXT    NOT NULL,
         arguments      TEXT    NOT NULL,
         arguments_hash TEXT    NOT NULL,
         outcome        TEXT    NOT NULL,
         duration_us    INTEGER NOT NULL,
         result_bytes   INTEGER NOT NULL,
         prev_hash      TEXT    NOT NULL,
         hash           TEXT    NOT NULL
     );
     CREATE INDEX audit_ts ON audit (ts);
     CREATE INDEX audit_tool ON audit (tool);
     CREATE INDEX audit_session ON audit (session);",
    ),
    // Who the server verified each caller to be. Rows written before have none (NULL), and
    // their hash does not cover it (see `chain_hash`).
    (
        2,
        "ALTER TABLE audit ADD COLUMN principal TEXT;
         CREATE INDEX audit_principal ON audit (principal, seq);",
    ),
];

/// The hash the first row chains from.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows the writer queues before callers wait for room.
pub(crate) const QUEUE: usize = 4096;
/// Rows written per transaction at most.
pub(crate) const BATCH: usize = 256;

/// One call, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    /// RFC 3339, UTC, microseconds.
    pub ts: String,
    pub correlation_id: String,
    pub session: String,
    /// Who the server verified the caller to be: `token:<12 hex of the token's SHA-256>`,
    /// `ip:<address>` (tokenless loopback HTTP) or `local` (stdio). Absent on rows written
    /// before Tagwarden recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// `name/version` of the MCP client, or `unknown`.
    pub client: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub tool: String,
    /// The arguments as canonical JSON with secrets redacted and long values shortened.
    pub arguments: String,
    /// SHA-256 of the canonical JSON of the arguments as received.
    pub arguments_hash: String,
    /// `ok`, `refused:<guard>` or `error:<class>`.
    pub outcome: String,
    pub duration_us: u64,
    pub result_bytes: u64,
}

/// A stored row: the record, its position and its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// What became of an append.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Committed to disk as row `seq`.
    Written(i64),
    /// Still queued when the caller's wait ran out (slow disk); it may yet be written.
    Pending,
    /// The log could not take it (writer stopped or a database error); logged loudly.
    Failed(String),
}

pub(crate) struct Job {
    pub(crate) record: AuditRecord,
    pub(crate) done: oneshot::Sender<Result<i64, String>>,
}

/// Queues a record for a backend's writer task and waits up to `wait` for it to be committed.
/// A full queue never drops the row: a task waits for room and the caller goes on after
/// `wait`. `why_full` is the likely cause named in the warning.
pub(crate) async fn enqueue(
    queue: &Mutex<Option<mpsc::Sender<Job>>>,
    record: AuditRecord,
    wait: Duration,
    why_full: &str,
) -> Appended {
    let Some(queue) = queue.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return Appended::Failed("the audit log is closed".into());
    };
    let (done, committed) = oneshot::channel();
    match queue.try_send(Job { record, done }) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(job)) => {
            tracing::warn!("audit queue full ({why_full}); the row waits for room");
            tokio::spawn(async move {
                if queue.send(job).await.is_err() {
                    tracing::error!("audit row lost: the writer stopped while it waited");
                }
            });
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return Appended::Failed("the audit writer has stopped".into());
        }
    }
    match tokio::time::timeout(wait, committed).await {
        Ok(Ok(Ok(seq))) => Appended::Written(seq),
        Ok(Ok(Err(e))) => Appended::Failed(e),
        Ok(Err(_)) => Appended::Failed("the audit writer dropped the row".into()),
        Err(_) => Appended::Pending,
    }
}

/// How the log is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AuditOptions {
    /// The most bytes audit.db may hold (rounded down to whole pages); when reached, rows
    /// cannot be written and the server stops answering. None: as much as the disk holds.
    pub max_bytes: Option<u64>,
}

/// The audit log of a running server.
pub(crate) struct AuditDb {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<Connection>,
    /// Why the last write failed; None after a write succeeded (and before any write).
    failing: Arc<Mutex<Option<String>>>,
}

impl AuditDb {
    /// Opens (creating and migrating) the log, unbounded, and starts its writer thread.
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> Result<AuditDb, StoreError> {
        AuditDb::open_with(path, &AuditOptions::default())
    }

    /// Opens (creating and migrating) the log and starts its writer thread.
    pub(crate) fn open_with(path: &Path, options: &AuditOptions) -> Result<AuditDb, StoreError> {
        let writer_conn = super::open(path, MIGRATIONS)?;
        let bound = match options.max_bytes {
            Some(bytes) => Some(set_max_bytes(&writer_conn, bytes)?),
            None => None,
        };
        let reader = super::open(path, MIGRATIONS)?;
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let failing = Arc::new(Mutex::new(None));
        let state = failing.clone();
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(writer_conn, rx, bound, &state))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: format!("cannot start the audit writer: {e}"),
            })?;
        Ok(AuditDb {
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(reader),
            failing,
        })
    }

    /// Rows queued that the writer has not taken yet (0 once it has stopped).
    pub(crate) fn queue_depth(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// Why rows cannot be written now (the last write failed, or the writer stopped); None
    /// when the last write succeeded.
    pub(crate) fn failing(&self) -> Option<String> {
        let stopped = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(mpsc::Sender::is_closed);
        if stopped {
            return Some("the audit writer has stopped".into());
        }
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues a record and waits up to `wait` for it to be committed.
    pub(crate) async fn append(&self, record: AuditRecord, wait: Duration) -> Appended {
        enqueue(&self.queue, record, wait, "slow disk?").await
    }

    /// Stops taking rows, writes every queued row, and waits for the writer to finish.
    pub(crate) fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
            && writer.join().is_err()
        {
            tracing::error!("the audit writer panicked while draining");
        }
    }

    /// Rows matching a filter, newest first, and the exact number that match.
    pub(crate) fn query(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        query(&conn, filter)
    }
}

impl Drop for AuditDb {
    fn drop(&mut self) {
        self.close();
    }
}

/// Caps the database at `bytes` (whole pages, at least what it holds now); returns the cap in
/// pages.
fn set_max_bytes(conn: &Connection, bytes: u64) -> Result<i64, StoreError> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages = i64::try_from(bytes / page_size.max(1) as u64)
        .unwrap_or(i64::MAX)
        .max(1);
    // SQLite never sets the cap below the current size; it answers with the cap it set.
    let set: i64 = conn.pragma_update_and_check(None, "max_page_count", pages, |r| r.get(0))?;
    Ok(set)
}

/// Why a batch could not be written, in words for an operator and an assistant (no paths).
fn failure_reason(conn: &Connection, error: &rusqlite::Error, bound: Option<i64>) -> String {
    if error.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) {
        return format!("database error: {error}");
    }
    let pages: Option<i64> = conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .ok();
    match (bound, pages) {
        // A row takes a few pages (the row and its index entries): near the cap is at it.
        (Some(max), Some(pages)) if pages + 16 >= max => {
            "the audit log is full: it reached its size bound (--audit-max-bytes)".into()
        }
        _ => "the disk holding the audit log is full".into(),
    }
}

fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    bound: Option<i64>,
    failing: &Mutex<Option<String>>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let records: Vec<&AuditRecord> = batch.iter().map(|j| &j.record).collect();
        let result =
            write_batch(&mut conn, &records).map_err(|e| (failure_reason(&conn, &e, bound), e));
        if let Err((reason, e)) = &result {
            tracing::error!(error = %e, rows = batch.len(), "audit rows could not be written: {reason}");
        }
        *failing.lock().unwrap_or_else(|e| e.into_inner()) =
            result.as_ref().err().map(|(reason, _)| reason.clone());
        for (i, job) in batch.into_iter().enumerate() {
            let answer = match &result {
                Ok(first_seq) => Ok(first_seq + i as i64),
                Err((reason, _)) => Err(reason.clone()),
            };
            let _ = job.done.send(answer);
        }
    }
}

/// Appends rows in one transaction; returns the seq of the first. All or none are written.
fn write_batch(conn: &mut Connection, records: &[&AuditRecord]) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_string()));
    let first = seq + 1;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit (seq, ts, correlation_id, session, client, transport, tool,
                 arguments, arguments_hash, outcome, duration_us, result_bytes, prev_hash, hash,
                 principal)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for r in records {
            seq += 1;
            let hash = chain_hash(&prev, seq, r);
            insert.execute(params![
                seq,
                r.ts,
                r.correlation_id,
                r.session,
                r.client,
                r.transport,
                r.tool,
                r.arguments,
                r.arguments_hash,
                r.outcome,
                r.duration_us as i64,
                r.result_bytes as i64,
                prev,
                hash,
                r.principal
            ])?;
            prev = hash;
        }
    }
    tx.commit()?;
    Ok(first)
}

/// `sha256(prev_hash || canonical row)`, the row being its fields in a fixed order as JSON.
/// The principal, when the row has one, is the last field; rows written before it was recorded
/// have none and hash as they always did, so old logs still verify. Removing a recorded
/// principal changes the hash like any other edit.
pub(crate) fn chain_hash(prev_hash: &str, seq: i64, r: &AuditRecord) -> String {
    let mut row = serde_json::json!([
        seq,
        r.ts,
        r.correlation_id,
        r.session,
        r.client,
        r.transport,
        r.tool,
        r.arguments,
        r.arguments_hash,
        r.outcome,
        r.duration_us,
        r.result_bytes
    ]);
    if let (Some(principal), Some(fields)) = (&r.principal, row.as_array_mut()) {
        fields.push(serde_json::Value::from(principal.as_str()));
    }
    let canonical = row.to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Inclusive bounds on `ts` (RFC 3339).
    pub since: Option<String>,
    pub until: Option<String>,
    pub tool: Option<String>,
    /// Exact outcome, or a prefix ending in `:` / the word `refused` or `error`.
    pub outcome: Option<String>,
    pub session: Option<String>,
    /// Only rows of this principal (rows without one never match).
    pub principal: Option<String>,
    /// Only rows with `seq` below this (paging backwards).
    pub before_seq: Option<i64>,
    pub limit: usize,
}

fn query(conn: &Connection, f: &AuditFilter) -> Result<(Vec<StoredRecord>, u64), StoreError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if let Some(since) = &f.since {
        clauses.push("ts >= ?");
        values.push(since.clone());
    }
    if let Some(until) = &f.until {
        clauses.push("ts <= ?");
        values.push(until.clone());
    }
    if let Some(tool) = &f.tool {
        clauses.push("tool = ?");
        values.push(tool.clone());
    }
    if let Some(outcome) = &f.outcome {
        if outcome == "refused" || outcome == "error" {
            clauses.push("outcome LIKE ?");
            values.push(format!("{outcome}:%"));
        } else {
            clauses.push("outcome = ?");
            values.push(outcome.clone());
        }
    }
    if let Some(session) = &f.session {
        clauses.push("session = ?");
        values.push(session.clone());
    }
    if let Some(principal) = &f.principal {
        clauses.push("principal = ?");
        values.push(principal.clone());
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM audit{filter_sql}"),
        rusqlite::params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    let mut page_clauses = clauses.clone();
    let mut page_values = values.clone();
    if let Some(before) = f.before_seq {
        page_clauses.push("seq < ?");
        page_values.push(before.to_string());
    }
    let page_sql = if page_clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", page_clauses.join(" AND "))
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, ts, correlation_id, session, client, transport, tool, arguments,
                arguments_hash, outcome, duration_us, result_bytes, prev_hash, hash, {}
         FROM audit{page_sql} ORDER BY seq DESC LIMIT {}",
        principal_column(conn)?,
        f.limit
    ))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(page_values.iter()), read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total.max(0) as u64))
}

/// What to select for the principal: the column, or NULL in a log no server of this version
/// has opened yet (the command line reads logs without migrating them).
fn principal_column(conn: &Connection) -> Result<&'static str, StoreError> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('audit') WHERE name = 'principal'",
        [],
        |r| r.get(0),
    )?;
    Ok(if present { "principal" } else { "NULL" })
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        seq: r.get(0)?,
        record: AuditRecord {
            ts: r.get(1)?,
            correlation_id: r.get(2)?,
            session: r.get(3)?,
            principal: r.get(14)?,
            client: r.get(4)?,
            transport: r.get(5)?,
            tool: r.get(6)?,
            arguments: r.get(7)?,
            arguments_hash: r.get(8)?,
            outcome: r.get(9)?,
            duration_us: r.get::<_, i64>(10)?.max(0) as u64,
            result_bytes: r.get::<_, i64>(11)?.max(0) as u64,
        },
        prev_hash: r.get(12)?,
        hash: r.get(13)?,
    })
}

/// The result of checking a log's chain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verification {
    Intact {
        rows: u64,
        last_hash: String,
    },
    Broken {
        seq: i64,
        reason: String,
        rows_checked: u64,
    },
}

/// Recomputes every row's hash and link, in order; stops at the first broken row.
pub(crate) fn verify(path: &Path) -> Result<Verification, StoreError> {
    let conn = super::open_read_only(path)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, ts, correlation_id, session, client, transport, tool, arguments,
                arguments_hash, outcome, duration_us, result_bytes, prev_hash, hash, {}
         FROM audit ORDER BY seq",
        principal_column(&conn)?
    ))?;
    let mut rows = stmt.query([])?;
    let mut check = ChainCheck::default();
    while let Some(row) = rows.next()? {
        if let Some(broken) = check.next(&read_row(row)?) {
            return Ok(broken);
        }
    }
    Ok(check.finish())
}

/// Walks a chain row by row (in `seq` order), whatever backend holds it.
pub(crate) struct ChainCheck {
    expected_prev: String,
    expected_seq: i64,
    checked: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            expected_prev: GENESIS.to_string(),
            expected_seq: 1,
            checked: 0,
        }
    }
}

impl ChainCheck {
    /// Checks the next row; `Some` when it breaks the chain.
    pub(crate) fn next(&mut self, stored: &StoredRecord) -> Option<Verification> {
        let broken = |reason: String| {
            Some(Verification::Broken {
                seq: stored.seq,
                reason,
                rows_checked: self.checked,
            })
        };
        if stored.seq != self.expected_seq {
            return broken(format!(
                "expected row {} next, found row {}: rows were removed",
                self.expected_seq, stored.seq
            ));
        }
        if stored.prev_hash != self.expected_prev {
            return broken(
                "its prev_hash does not match the previous row's hash: a row before it was \
                 changed or removed"
                    .into(),
            );
        }
        let recomputed = chain_hash(&stored.prev_hash, stored.seq, &stored.record);
        if recomputed != stored.hash {
            return broken(
                "its content does not match its hash: the row was changed after it was written"
                    .into(),
            );
        }
        self.expected_prev.clone_from(&stored.hash);
        self.expected_seq += 1;
        self.checked += 1;
        None
    }

    /// The verdict after the last row.
    pub(crate) fn finish(self) -> Verification {
        Verification::Intact {
            rows: self.checked,
            last_hash: self.expected_prev,
        }
    }
}

/// The last `n` rows, oldest first (for `tagwarden audit tail`).
pub(crate) fn tail(path: &Path, n: usize) -> Result<Vec<StoredRecord>, StoreError> {
    let conn = super::open_read_only(path)?;
    let (mut rows, _) = query(
        &conn,
        &AuditFilter {
            limit: n,
            ..AuditFilter::default()
        },
    )?;
    rows.reverse();
    Ok(rows)
}

#[cfg(test)]
mod tests;
