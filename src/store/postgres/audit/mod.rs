//! The audit log on PostgreSQL: the same rows and SHA-256 hash chain as `audit.db`, shared by
//! every replica. An append takes a transaction-level advisory lock, reads the chain's last
//! hash and inserts, so appends from several processes are serialised and form one chain.
//!
//! As with SQLite, rows go through one writer task fed by a bounded queue, grouped into
//! transactions of up to `BATCH` rows; each caller learns whether its row was committed
//! (`Appended`), and a clean shutdown drains the queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;

use super::{in_store, migrate};
use crate::store::audit::{
    Appended, AuditFilter, AuditRecord, BATCH, ChainCheck, GENESIS, Job, QUEUE, StoredRecord,
    Verification, chain_hash, enqueue,
};
use crate::store::{AuditStore, StoreError};

const STORE: &str = "audit log";

/// Advisory-lock class of appends (the second key is the schema's hash).
const APPEND_LOCK: i32 = 0x7467_0002;

/// Version 1 of the audit tables (the SQLite log's versions 1 and 2 in one).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE audit (
         seq            BIGINT PRIMARY KEY,
         ts             TEXT   NOT NULL,
         correlation_id TEXT   NOT NULL,
         session        TEXT   NOT NULL,
         client         TEXT   NOT NULL,
         transport      TEXT   NOT NULL,
         tool           TEXT   NOT NULL,
         arguments      TEXT   NOT NULL,
         arguments_hash TEXT   NOT NULL,
         outcome        TEXT   NOT NULL,
         duration_us    BIGINT NOT NULL,
         result_bytes   BIGINT NOT NULL,
         prev_hash      TEXT   NOT NULL,
         hash           TEXT   NOT NULL,
         principal      TEXT
     );
     CREATE INDEX audit_ts ON audit (ts);
     CREATE INDEX audit_tool ON audit (tool);
     CREATE INDEX audit_session ON audit (session);
     CREATE INDEX audit_principal ON audit (principal, seq);",
)];

const COLUMNS: &str = "seq, ts, correlation_id, session, client, transport, tool, arguments,
    arguments_hash, outcome, duration_us, result_bytes, prev_hash, hash, principal";

/// The audit log of a running server, on PostgreSQL.
pub(crate) struct PgAudit {
    pool: Pool,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    failing: Arc<Mutex<Option<String>>>,
}

impl PgAudit {
    /// Migrates the audit tables and starts the writer task.
    pub(crate) async fn open(pool: Pool) -> Result<PgAudit, StoreError> {
        in_store(STORE, migrate(&pool, "audit", MIGRATIONS).await)?;
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let failing = Arc::new(Mutex::new(None));
        let writer = tokio::spawn(write_loop(pool.clone(), rx, failing.clone()));
        Ok(PgAudit {
            pool,
            queue: Mutex::new(Some(tx)),
            writer: tokio::sync::Mutex::new(Some(writer)),
            failing,
        })
    }
}

async fn write_loop(pool: Pool, mut rx: mpsc::Receiver<Job>, failing: Arc<Mutex<Option<String>>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let records: Vec<&AuditRecord> = batch.iter().map(|j| &j.record).collect();
        let result = write_batch(&pool, &records)
            .await
            .map_err(|e| format!("database error: {e}"));
        if let Err(reason) = &result {
            tracing::error!(
                rows = batch.len(),
                "audit rows could not be written: {reason}"
            );
        }
        *failing.lock().unwrap_or_else(|e| e.into_inner()) = result.as_ref().err().cloned();
        for (i, job) in batch.into_iter().enumerate() {
            let answer = match &result {
                Ok(first_seq) => Ok(first_seq + i as i64),
                Err(reason) => Err(reason.clone()),
            };
            let _ = job.done.send(answer);
        }
    }
}

/// Appends rows in one transaction; returns the seq of the first. All or none are written.
/// The advisory lock serialises appenders across processes: the last hash read under it is
/// the chain's head until this transaction commits.
async fn write_batch(pool: &Pool, records: &[&AuditRecord]) -> Result<i64, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&APPEND_LOCK],
    )
    .await?;
    let last = tx
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await?;
    let (mut seq, mut prev) = match last {
        Some(row) => (row.get::<_, i64>(0), row.get::<_, String>(1)),
        None => (0, GENESIS.to_string()),
    };
    let first = seq + 1;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO audit ({COLUMNS}) VALUES
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .await?;
    for r in records {
        seq += 1;
        let hash = chain_hash(&prev, seq, r);
        let duration = i64::try_from(r.duration_us).unwrap_or(i64::MAX);
        let bytes = i64::try_from(r.result_bytes).unwrap_or(i64::MAX);
        tx.execute(
            &insert,
            &[
                &seq,
                &r.ts,
                &r.correlation_id,
                &r.session,
                &r.client,
                &r.transport,
                &r.tool,
                &r.arguments,
                &r.arguments_hash,
                &r.outcome,
                &duration,
                &bytes,
                &prev,
                &hash,
                &r.principal,
            ],
        )
        .await?;
        prev = hash;
    }
    tx.commit().await?;
    Ok(first)
}

fn read_row(r: &tokio_postgres::Row) -> Result<StoredRecord, StoreError> {
    let get = |i: usize| -> Result<String, StoreError> { Ok(r.try_get::<_, String>(i)?) };
    Ok(StoredRecord {
        seq: r.try_get(0)?,
        record: AuditRecord {
            ts: get(1)?,
            correlation_id: get(2)?,
            session: get(3)?,
            client: get(4)?,
            transport: get(5)?,
            tool: get(6)?,
            arguments: get(7)?,
            arguments_hash: get(8)?,
            outcome: get(9)?,
            duration_us: r.try_get::<_, i64>(10)?.max(0) as u64,
            result_bytes: r.try_get::<_, i64>(11)?.max(0) as u64,
            principal: r.try_get(14)?,
        },
        prev_hash: get(12)?,
        hash: get(13)?,
    })
}

/// Rows matching a filter, newest first, and the exact number that match.
async fn query(pool: &Pool, f: &AuditFilter) -> Result<(Vec<StoredRecord>, u64), StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut add = |column: &str, op: &str, value: String| {
        values.push(value);
        clauses.push(format!("{column} {op} ${}", values.len()));
    };
    if let Some(since) = &f.since {
        add("ts", ">=", since.clone());
    }
    if let Some(until) = &f.until {
        add("ts", "<=", until.clone());
    }
    if let Some(tool) = &f.tool {
        add("tool", "=", tool.clone());
    }
    if let Some(outcome) = &f.outcome {
        if outcome == "refused" || outcome == "error" {
            add("outcome", "LIKE", format!("{outcome}:%"));
        } else {
            add("outcome", "=", outcome.clone());
        }
    }
    if let Some(session) = &f.session {
        add("session", "=", session.clone());
    }
    if let Some(principal) = &f.principal {
        add("principal", "=", principal.clone());
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    let client = pool.get().await?;
    let total: i64 = client
        .query_one(&format!("SELECT COUNT(*) FROM audit{filter_sql}"), &params)
        .await?
        .get(0);
    let mut page_clauses = clauses.clone();
    let before = f.before_seq;
    let mut page_params = params.clone();
    if let Some(before) = &before {
        page_params.push(before);
        page_clauses.push(format!("seq < ${}", page_params.len()));
    }
    let page_sql = if page_clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", page_clauses.join(" AND "))
    };
    let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
    page_params.push(&limit);
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM audit{page_sql} ORDER BY seq DESC LIMIT ${}",
                page_params.len()
            ),
            &page_params,
        )
        .await?;
    let rows = rows.iter().map(read_row).collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total.max(0) as u64))
}

/// Recomputes every row's hash and link, in order, a page at a time; stops at the first
/// broken row. Migrates nothing: a database without the audit table is an error saying so.
pub(crate) async fn verify(pool: &Pool) -> Result<Verification, StoreError> {
    let client = pool.get().await?;
    let page = client
        .prepare(&format!(
            "SELECT {COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT 5000"
        ))
        .await
        .map_err(|e| no_log(&e))?;
    let mut check = ChainCheck::default();
    let mut after = 0i64;
    loop {
        let rows = client.query(&page, &[&after]).await?;
        let Some(last) = rows.last() else {
            return Ok(check.finish());
        };
        after = last.try_get(0)?;
        for row in &rows {
            if let Some(broken) = check.next(&read_row(row)?) {
                return Ok(broken);
            }
        }
    }
}

/// The last `n` rows, oldest first (for `tagwarden audit tail`).
pub(crate) async fn tail(pool: &Pool, n: usize) -> Result<Vec<StoredRecord>, StoreError> {
    let (mut rows, _) = query(
        pool,
        &AuditFilter {
            limit: n,
            ..AuditFilter::default()
        },
    )
    .await?;
    rows.reverse();
    Ok(rows)
}

fn no_log(e: &tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => StoreError::Refused(
            "this database has no audit log (no server has written one there yet; check \
             --database-url and its search_path)"
                .into(),
        ),
        _ => StoreError::Sql(super::pg_reason(e)),
    }
}

#[async_trait]
impl AuditStore for PgAudit {
    async fn append(&self, record: AuditRecord, wait: Duration) -> Appended {
        enqueue(&self.queue, record, wait, "slow database?").await
    }

    async fn query(&self, f: AuditFilter) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        in_store(STORE, query(&self.pool, &f).await)
    }

    async fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = self.writer.lock().await.take()
            && writer.await.is_err()
        {
            tracing::error!("the audit writer stopped abnormally while draining");
        }
    }

    fn failing(&self) -> Option<String> {
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
}

#[cfg(test)]
mod tests;
