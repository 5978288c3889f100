//! The history store (`history.db`): compliance snapshots, kept compactly enough for 100k
//! resources × hundreds of snapshots.
//!
//! Resources, tag sets and violation sets are interned once (by SHA-256 fingerprint) and a
//! snapshot's members are a packed blob of references, 13 bytes per member. Resources and tag
//! sets, a million each for a million-resource estate, are kept in zstd-compressed chunks
//! (`chunks`); violation sets, a few hundred, one row each. Snapshot metadata
//! sits in columns before the blob, so listing snapshots never reads member data. Resource rows
//! are interned with their type, region, account and name, so a renamed resource gets a new row
//! and old snapshots keep showing what was true when they were taken. The writer keeps the
//! fingerprint maps between inserts, so a small snapshot in a large store costs little.

pub(crate) mod chunks;
pub(crate) mod dead_letters;
pub(super) mod schema;
pub(crate) mod summaries;

use std::borrow::Cow;

use arcstr::ArcStr;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::StoreError;
use super::history_db::MIGRATIONS;
use crate::history::{MemberRecord, NewSnapshot, SnapshotMeta, filters_hash};
use chunks::{ChunkMap, Collected, Dictionary, ResourceRow};

// `taken_at` keeps the exact instant (RFC 3339, nanoseconds); `taken_at_us` (Unix
// microseconds) is what filtering and ordering use.

/// Bytes per member in the packed blob: resource, tag set and violation set references
/// (little-endian u32) and a flags byte.
pub(crate) const MEMBER_BYTES: usize = 13;
pub(crate) const FLAG_IN_SCOPE: u8 = 0b01;
pub(crate) const FLAG_FAILING: u8 = 0b10;

/// Page cache for this store's connection (KiB, as SQLite's negative `cache_size`): interning
/// 100k rows inserts into unique indexes at random positions, which thrashes the 2 MiB default.
const CACHE_KIB: i64 = 32 * 1024;

/// Metadata columns, in `RawMeta::read` order; the member blob is deliberately not among them.
pub(crate) const META_COLUMNS: &str =
    "id, taken_at, trigger, source, policy_hash, filters, filters_hash,
    resources, in_scope, compliant, violations, score_pct, native_score_pct, spend_score_pct,
    counts, by_violation";
/// `META_COLUMNS` with the breakdowns replaced by empty JSON (see `list_headlines`).
pub(crate) const HEADLINE_COLUMNS: &str =
    "id, taken_at, trigger, source, policy_hash, filters, filters_hash,
    resources, in_scope, compliant, violations, score_pct, native_score_pct, spend_score_pct,
    'null', '{}'";

type Fingerprint = [u8; 32];

/// Compliance snapshots on disk. Calls block; run them off the async runtime.
pub struct HistoryDb {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Intern maps from earlier inserts, so the next insert reads only new intern rows (roughly
    /// 40–80 bytes of memory per interned row). Locked after `conn`.
    intern_cache: Mutex<Option<InternMaps>>,
}

impl HistoryDb {
    /// Opens (creating and migrating) the store for reading and writing.
    pub fn open(path: &Path) -> Result<HistoryDb, StoreError> {
        let mut conn = super::open(path, MIGRATIONS)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        convert_row_tables(&mut conn)?;
        Ok(Self::with(path, conn))
    }

    /// Opens an existing store read-only (CLI queries); refuses a newer schema.
    pub fn open_read_only(path: &Path) -> Result<HistoryDb, StoreError> {
        let conn = super::open_read_only(path)?;
        let found: i64 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
        if found > known {
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found,
                known,
            });
        }
        if found < known || has_table(&conn, "resources")? {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: "written by an older Tagwarden; open it once for writing (for example \
                         `tagwarden check --snapshot`) to upgrade it"
                    .into(),
            });
        }
        Ok(Self::with(path, conn))
    }

    fn with(path: &Path, conn: Connection) -> HistoryDb {
        HistoryDb {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            intern_cache: Mutex::new(None),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a snapshot in one transaction and returns its id.
    pub fn insert(&self, s: &NewSnapshot) -> Result<i64, StoreError> {
        let mut conn = self.lock();
        let mut cache = self.intern_cache.lock().unwrap_or_else(|e| e.into_inner());
        // Taken out, and put back only on commit: a failed insert must not leave ids of
        // rolled-back rows in the cache.
        let mut maps = cache.take().unwrap_or_default();
        // IMMEDIATE: take the write lock before catching up, so another process cannot intern
        // rows between our read and our writes.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        maps.catch_up(&tx)?;
        let packed = pack_members(&tx, &mut maps, &s.members)?;
        let id = insert_snapshot_row(&tx, s, &packed.blob)?;
        tx.commit()?;
        packed.interned.commit_into(
            [&mut maps.resources, &mut maps.tag_sets],
            packed.last_chunk_rows,
        );
        *cache = Some(maps);
        Ok(id)
    }

    /// Snapshots taken at or after `since` (optionally of one filter set), oldest first (ties
    /// by id). Reads no member data.
    pub fn list(
        &self,
        since: DateTime<Utc>,
        filters_hash: Option<&str>,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        self.list_columns(META_COLUMNS, since, filters_hash)
    }

    /// As `list`, without the breakdowns (`counts` is null, `by_violation` empty): what a
    /// series of points needs. Parsing every snapshot's breakdowns dominated long windows.
    pub fn list_headlines(
        &self,
        since: DateTime<Utc>,
        filters_hash: Option<&str>,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        self.list_columns(HEADLINE_COLUMNS, since, filters_hash)
    }

    fn list_columns(
        &self,
        columns: &str,
        since: DateTime<Utc>,
        filters_hash: Option<&str>,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        let conn = self.lock();
        let scope = if filters_hash.is_some() {
            " AND filters_hash = ?2"
        } else {
            " AND ?2 IS NULL"
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns} FROM snapshots WHERE taken_at_us >= ?1{scope}
             ORDER BY taken_at_us, id"
        ))?;
        let raws = stmt
            .query_map(
                params![since.timestamp_micros(), filters_hash],
                RawMeta::read,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawMeta::parse).collect()
    }

    /// One snapshot's record, without its members.
    pub fn get(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError> {
        self.one("WHERE id = ?1", params![id])
    }

    /// The most recent snapshot (optionally of one filter set).
    pub fn latest(&self, filters_hash: Option<&str>) -> Result<Option<SnapshotMeta>, StoreError> {
        self.one(
            "WHERE (?1 IS NULL OR filters_hash = ?1) ORDER BY taken_at_us DESC, id DESC LIMIT 1",
            params![filters_hash],
        )
    }

    /// The snapshot taken just before `id` with the same filters: what `id` is compared with.
    pub fn before(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError> {
        self.one(
            "JOIN (SELECT filters_hash AS fh, taken_at_us AS t, id AS i FROM snapshots
                   WHERE id = ?1) AS this
             WHERE filters_hash = this.fh
               AND (taken_at_us < this.t OR (taken_at_us = this.t AND id < this.i))
             ORDER BY taken_at_us DESC, id DESC LIMIT 1",
            params![id],
        )
    }

    fn one(
        &self,
        rest: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<SnapshotMeta>, StoreError> {
        let conn = self.lock();
        let raw = conn
            .prepare_cached(&format!("SELECT {META_COLUMNS} FROM snapshots {rest}"))?
            .query_row(params, RawMeta::read)
            .optional()?;
        raw.map(RawMeta::parse).transpose()
    }

    /// The members of a snapshot, in the order they were stored. An unknown id or damaged
    /// member data is an error naming the snapshot.
    pub fn members(&self, id: i64) -> Result<Vec<MemberRecord>, StoreError> {
        let conn = self.lock();
        let blob: Option<Vec<u8>> = conn
            .prepare_cached("SELECT members FROM snapshots WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        let blob = blob.ok_or_else(|| StoreError::Sql(format!("no history snapshot {id}")))?;
        let packed = unpack(&blob).map_err(|why| corrupt(id, &why))?;
        let mut interned = Interned::load(&conn, &packed).map_err(|e| match e {
            Loaded::Unreadable(why) => corrupt(id, &why),
            Loaded::Store(e) => e,
        })?;
        packed
            .iter()
            .enumerate()
            .map(|(i, p)| interned.member(i, p).map_err(|why| corrupt(id, &why)))
            .collect()
    }

    /// Deletes snapshots taken before `older_than`; returns how many. Then deletes the interned
    /// resources and tag/violation sets no remaining snapshot references (see
    /// `collect_garbage`), so an estate whose tags churn does not grow the store for ever.
    /// SQLite reuses the freed pages; the file does not shrink.
    pub fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let deleted = {
            let conn = self.lock();
            conn.execute(
                "DELETE FROM snapshots WHERE taken_at_us < ?1",
                params![older_than.timestamp_micros()],
            )?
        };
        if deleted > 0 {
            let freed = self.collect_garbage()?;
            tracing::debug!(snapshots = deleted, interned_rows = freed, "history pruned");
        }
        Ok(deleted)
    }

    /// Deletes interned rows that no snapshot references; returns how many. Reads every
    /// remaining member list (13 bytes per member), in one write transaction. Each table's
    /// highest id is always kept, so SQLite never hands out a deleted id again; freeing
    /// anything moves `intern_epoch`, which makes every writer's in-memory maps reload.
    fn collect_garbage(&self) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut used: [FxHashSet<u32>; 3] = Default::default();
        {
            let mut stmt = tx.prepare("SELECT id, members FROM snapshots")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let blob: Vec<u8> = row.get(1)?;
                mark_used(&mut used, id, &blob)?;
            }
        }
        let mut freed = 0;
        for (dict, used) in Dictionary::ALL.iter().zip(&used) {
            freed += collect_chunks(&tx, *dict, used)?;
        }
        let table = "violation_sets";
        let ids: Vec<i64> = tx
            .prepare(&format!(
                "SELECT id FROM {table} WHERE id < (SELECT MAX(id) FROM {table})"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut delete = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
        for id in ids {
            if !u32::try_from(id).is_ok_and(|id| used[2].contains(&id)) {
                freed += delete.execute(params![id])?;
            }
        }
        drop(delete);
        if freed > 0 {
            tx.execute("UPDATE intern_epoch SET epoch = epoch + 1", [])?;
        }
        tx.commit()?;
        if freed > 0 {
            // The index would only be dropped at the next insert (the epoch moved); free it
            // now. When nothing was freed it stays valid: the next insert need not reload it.
            *self.intern_cache.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(freed)
    }

    /// Every filter set with history: its filters, hash and number of snapshots, most recently
    /// used first — so a tool can say which scopes have history when the asked one has none.
    pub fn filter_sets(&self) -> Result<Vec<(Value, String, usize)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT MIN(filters), filters_hash, COUNT(*) FROM snapshots
             GROUP BY filters_hash ORDER BY MAX(taken_at_us) DESC, filters_hash",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(filters, hash, n)| {
                let filters = serde_json::from_str(&filters).map_err(|e| {
                    StoreError::Sql(format!("stored filters of {hash} are unreadable: {e}"))
                })?;
                Ok((filters, hash, count(n)))
            })
            .collect()
    }

    /// Number of stored snapshots.
    pub fn count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))?;
        Ok(count(n))
    }
}

pub(crate) fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Adds the interned resource, tag-set and violation-set ids a snapshot's members use (for
/// pruning: what no snapshot uses any more is deleted).
pub(crate) fn mark_used(
    used: &mut [FxHashSet<u32>; 3],
    id: i64,
    blob: &[u8],
) -> Result<(), StoreError> {
    for p in unpack(blob).map_err(|why| corrupt(id, &why))? {
        used[0].insert(p.resource);
        used[1].insert(p.tag_set);
        used[2].insert(p.violation_set);
    }
    Ok(())
}

pub(crate) fn corrupt(id: i64, why: &str) -> StoreError {
    StoreError::Sql(format!("history snapshot {id} is corrupt: {why}"))
}

fn insert_snapshot_row(
    tx: &Transaction<'_>,
    s: &NewSnapshot,
    members: &[u8],
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO snapshots (taken_at, taken_at_us, trigger, source, policy_hash, filters,
             filters_hash, resources, in_scope, compliant, violations, score_pct,
             native_score_pct, spend_score_pct, counts, by_violation, members)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        s.taken_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        s.taken_at.timestamp_micros(),
        s.trigger,
        s.source,
        s.policy_hash,
        crate::util::canonical_json(&s.filters),
        filters_hash(&s.filters),
        stored_count(s.resources),
        stored_count(s.in_scope),
        stored_count(s.compliant),
        stored_count(s.violations),
        s.score_pct,
        s.native_score_pct,
        s.spend_score_pct,
        to_json(&s.counts)?,
        to_json(&s.by_violation)?,
        members,
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn stored_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Sql(format!("cannot encode a snapshot field: {e}")))
}

/// Snapshot columns as stored, before the JSON and time fields are parsed.
pub(crate) struct RawMeta {
    pub id: i64,
    pub taken_at: String,
    pub trigger: String,
    pub source: String,
    pub policy_hash: String,
    pub filters: String,
    pub filters_hash: String,
    pub counts_of: [i64; 4],
    pub scores: [Option<f64>; 3],
    pub counts: String,
    pub by_violation: String,
}

impl RawMeta {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawMeta> {
        Ok(RawMeta {
            id: r.get(0)?,
            taken_at: r.get(1)?,
            trigger: r.get(2)?,
            source: r.get(3)?,
            policy_hash: r.get(4)?,
            filters: r.get(5)?,
            filters_hash: r.get(6)?,
            counts_of: [r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?],
            scores: [r.get(11)?, r.get(12)?, r.get(13)?],
            counts: r.get(14)?,
            by_violation: r.get(15)?,
        })
    }

    pub(crate) fn parse(self) -> Result<SnapshotMeta, StoreError> {
        let id = self.id;
        let unreadable = |field: &str, e: &dyn std::fmt::Display| {
            corrupt(id, &format!("its {field} is unreadable: {e}"))
        };
        let taken_at = DateTime::parse_from_rfc3339(&self.taken_at)
            .map_err(|e| unreadable("taken_at", &e))?
            .with_timezone(&Utc);
        let filters = serde_json::from_str(&self.filters).map_err(|e| unreadable("filters", &e))?;
        let counts = serde_json::from_str(&self.counts).map_err(|e| unreadable("counts", &e))?;
        let by_violation: BTreeMap<String, usize> =
            serde_json::from_str(&self.by_violation).map_err(|e| unreadable("by_violation", &e))?;
        let [resources, in_scope, compliant, violations] = self.counts_of.map(count);
        let [score_pct, native_score_pct, spend_score_pct] = self.scores;
        Ok(SnapshotMeta {
            id,
            taken_at,
            trigger: self.trigger,
            source: self.source,
            policy_hash: self.policy_hash,
            filters,
            filters_hash: self.filters_hash,
            resources,
            in_scope,
            compliant,
            violations,
            score_pct,
            native_score_pct,
            spend_score_pct,
            counts,
            by_violation,
        })
    }
}

// ---- Writing: interning and packing -------------------------------------------------------

/// Fingerprint → id maps of the three intern tables, kept between inserts so that members are
/// interned without a query each. Intern tables are append-only (ids only grow, rows never
/// change), so catching up with rows another process added reads only the ids above the
/// highest one seen; a row count that disagrees (rows removed by hand) reloads the table.
#[derive(Default)]
struct InternMaps {
    resources: ChunkMap,
    tag_sets: ChunkMap,
    violation_sets: InternMap,
}

impl InternMaps {
    fn catch_up(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let epoch: i64 = tx.query_row("SELECT epoch FROM intern_epoch", [], |r| r.get(0))?;
        for (map, dict) in [
            (&mut self.resources, Dictionary::Resources),
            (&mut self.tag_sets, Dictionary::TagSets),
        ] {
            map.follow_epoch(epoch);
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id, last_id, data FROM {} WHERE id > ?1 ORDER BY id",
                dict.table()
            ))?;
            let rows: Vec<(i64, u32, Vec<u8>)> = stmt
                .query_map(params![map.max_chunk], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            map.load_all(&rows)
                .map_err(|why| StoreError::Sql(format!("{}: {why}", dict.table())))?;
        }
        self.violation_sets.catch_up(tx, "violation_sets")
    }
}

#[derive(Default)]
struct InternMap {
    ids: FxHashMap<Fingerprint, u32>,
    /// The highest row id in `ids`.
    max_id: i64,
}

impl InternMap {
    fn catch_up(&mut self, tx: &Transaction<'_>, table: &str) -> Result<(), StoreError> {
        self.load_after(tx, table)?;
        let rows: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        if usize::try_from(rows).ok() != Some(self.ids.len()) {
            *self = InternMap::default();
            self.load_after(tx, table)?;
        }
        Ok(())
    }

    fn load_after(&mut self, tx: &Transaction<'_>, table: &str) -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id, fingerprint FROM {table} WHERE id > ?1"
        ))?;
        let mut rows = stmt.query(params![self.max_id])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let fp: Fingerprint = row.get::<_, Vec<u8>>(1)?.try_into().map_err(|_| {
                StoreError::Sql(format!("{table} row {rowid} has a damaged fingerprint"))
            })?;
            self.record(fp, rowid)?;
        }
        Ok(())
    }

    fn get(&self, fp: &Fingerprint) -> Option<u32> {
        self.ids.get(fp).copied()
    }

    fn record(&mut self, fp: Fingerprint, rowid: i64) -> Result<u32, StoreError> {
        let id = reference(rowid)?;
        self.ids.insert(fp, id);
        self.max_id = self.max_id.max(rowid);
        Ok(id)
    }
}

/// Sets are stored in canonical (sorted) order so equal sets share one row.
pub(crate) fn sorted<T: Ord + Clone>(items: &[T]) -> Cow<'_, [T]> {
    if items.is_sorted() {
        Cow::Borrowed(items)
    } else {
        let mut owned = items.to_vec();
        owned.sort();
        Cow::Owned(owned)
    }
}

fn intern_text(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    known: &mut InternMap,
    text: &str,
) -> Result<u32, StoreError> {
    let fp: Fingerprint = Sha256::digest(text.as_bytes()).into();
    if let Some(id) = known.get(&fp) {
        return Ok(id);
    }
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (fingerprint, {column}) VALUES (?1, ?2)"
    ))?
    .execute(params![&fp[..], text])?;
    known.record(fp, tx.last_insert_rowid())
}

/// Row ids as packed references; 4 billion interned rows is far beyond any estate.
pub(crate) fn reference(rowid: i64) -> Result<u32, StoreError> {
    u32::try_from(rowid)
        .map_err(|_| StoreError::Sql(format!("interned row id {rowid} does not fit 32 bits")))
}

/// A snapshot's packed member blob and what its insert added.
struct PackedMembers {
    blob: Vec<u8>,
    interned: chunks::Interned,
    /// The last chunk row inserted into each dictionary, if any.
    last_chunk_rows: [Option<i64>; 2],
}

fn pack_members(
    tx: &Transaction<'_>,
    maps: &mut InternMaps,
    members: &[MemberRecord],
) -> Result<PackedMembers, StoreError> {
    let mut interned = chunks::intern_members(&maps.resources, &maps.tag_sets, members)
        .map_err(StoreError::Sql)?;
    let [resources, tag_sets] = interned.seal().map_err(StoreError::Sql)?;
    let last_chunk_rows = [
        insert_chunks(tx, Dictionary::Resources, &resources)?,
        insert_chunks(tx, Dictionary::TagSets, &tag_sets)?,
    ];
    // Violation sets repeat across most members: each distinct one is hashed once.
    let mut violation_sets: FxHashMap<&[String], u32> = FxHashMap::default();
    let mut blob = Vec::with_capacity(members.len() * MEMBER_BYTES);
    for (m, [resource, tag_set]) in members.iter().zip(&interned.refs) {
        let violation_set = match violation_sets.get(m.violations.as_slice()) {
            Some(id) => *id,
            None => {
                let text = to_json(&sorted(&m.violations))?;
                let id = intern_text(
                    tx,
                    "violation_sets",
                    "labels",
                    &mut maps.violation_sets,
                    &text,
                )?;
                violation_sets.insert(&m.violations, id);
                id
            }
        };
        for r in [*resource, *tag_set, violation_set] {
            blob.extend_from_slice(&r.to_le_bytes());
        }
        let flags =
            if m.in_scope { FLAG_IN_SCOPE } else { 0 } | if m.failing { FLAG_FAILING } else { 0 };
        blob.push(flags);
    }
    Ok(PackedMembers {
        blob,
        interned,
        last_chunk_rows,
    })
}

/// Garbage-collects one chunked dictionary: entries no snapshot uses are dropped, chunks left
/// empty deleted (but the one with the highest ids, see `chunks`). Returns the entries freed.
fn collect_chunks(
    tx: &Transaction<'_>,
    dict: Dictionary,
    used: &FxHashSet<u32>,
) -> Result<usize, StoreError> {
    let table = dict.table();
    // Highest ids first: the first row is the one never deleted.
    let rows: Vec<(i64, i64, Vec<u8>)> = tx
        .prepare(&format!(
            "SELECT id, last_id, data FROM {table} ORDER BY last_id DESC, id DESC"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut freed = 0;
    for (i, (row, last_id, data)) in rows.into_iter().enumerate() {
        let last_id = reference(last_id)?;
        let outcome = chunks::collect(&data, last_id, used, i == 0)
            .map_err(|why| StoreError::Sql(format!("{table} row {row}: {why}")))?;
        match outcome {
            Collected::Keep => {}
            Collected::Delete(n) => {
                freed += n;
                tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), params![row])?;
            }
            Collected::Rewrite(chunk, n) => {
                freed += n;
                tx.execute(
                    &format!(
                        "UPDATE {table} SET first_id = ?1, last_id = ?2, data = ?3 WHERE id = ?4"
                    ),
                    params![chunk.first_id, chunk.last_id, chunk.data, row],
                )?;
            }
        }
    }
    Ok(freed)
}

/// Moves the rows of the version-1 intern tables (`resources`, `tag_sets`) into chunks, ids
/// kept, and drops the tables: done once, when a file written by an older Tagwarden (or just
/// created: the migrations still create the old tables first) is opened for writing.
fn convert_row_tables(conn: &mut Connection) -> Result<(), StoreError> {
    if !has_table(conn, "resources")? && !has_table(conn, "tag_sets")? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut moved = 0usize;
    if has_table(&tx, "resources")? {
        let mut entries = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT id, rid, type, region, account, name FROM resources ORDER BY id",
            )?;
            let mut rows = stmt.query([])?;
            let mut buf = Vec::new();
            while let Some(r) = rows.next()? {
                let fields: [String; 5] = [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?];
                chunks::resource_fields_entry(fields.each_ref().map(String::as_str), &mut buf);
                entries.push((reference(r.get(0)?)?, buf.clone()));
            }
        }
        moved += store_converted(&tx, Dictionary::Resources, &entries)?;
        tx.execute_batch("DROP TABLE resources")?;
    }
    if has_table(&tx, "tag_sets")? {
        let mut entries = Vec::new();
        {
            let mut stmt = tx.prepare("SELECT id, tags FROM tag_sets ORDER BY id")?;
            let mut rows = stmt.query([])?;
            let mut buf = Vec::new();
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let text: String = r.get(1)?;
                let tags: Vec<(String, String)> = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Sql(format!("tag_sets row {id} is unreadable: {e}"))
                })?;
                chunks::tag_set_entry(&tags, &mut buf);
                entries.push((reference(id)?, buf.clone()));
            }
        }
        moved += store_converted(&tx, Dictionary::TagSets, &entries)?;
        tx.execute_batch("DROP TABLE tag_sets")?;
    }
    tx.commit()?;
    if moved > 0 {
        tracing::info!(
            entries = moved,
            "history store upgraded to compressed chunks"
        );
    }
    Ok(())
}

fn store_converted(
    tx: &Transaction<'_>,
    dict: Dictionary,
    entries: &[(u32, Vec<u8>)],
) -> Result<usize, StoreError> {
    insert_chunks(
        tx,
        dict,
        &chunks::seal_all(entries).map_err(StoreError::Sql)?,
    )?;
    Ok(entries.len())
}

/// Appends sealed chunks to a dictionary; returns the last chunk row added, if any.
fn insert_chunks(
    tx: &Transaction<'_>,
    dict: Dictionary,
    sealed: &[chunks::Chunk],
) -> Result<Option<i64>, StoreError> {
    let mut last = None;
    for chunk in sealed {
        tx.prepare_cached(&format!(
            "INSERT INTO {} (first_id, last_id, data) VALUES (?1, ?2, ?3)",
            dict.table()
        ))?
        .execute(params![chunk.first_id, chunk.last_id, chunk.data])?;
        last = Some(tx.last_insert_rowid());
    }
    Ok(last)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

// ---- Reading: unpacking -------------------------------------------------------------------

/// One member as packed: references into the intern tables and flags.
pub(crate) struct Packed {
    pub resource: u32,
    pub tag_set: u32,
    pub violation_set: u32,
    pub flags: u8,
}

pub(crate) fn unpack(blob: &[u8]) -> Result<Vec<Packed>, String> {
    if !blob.len().is_multiple_of(MEMBER_BYTES) {
        return Err(format!(
            "its member data is {} bytes, not a multiple of {MEMBER_BYTES}",
            blob.len()
        ));
    }
    blob.chunks_exact(MEMBER_BYTES)
        .enumerate()
        .map(|(i, c)| {
            let word = |at: usize| u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
            let flags = c[12];
            if flags & !(FLAG_IN_SCOPE | FLAG_FAILING) != 0 {
                return Err(format!("member {i} has unknown flags {flags:#04x}"));
            }
            Ok(Packed {
                resource: word(0),
                tag_set: word(4),
                violation_set: word(8),
                flags,
            })
        })
        .collect()
}

/// The intern rows one snapshot refers to.
struct Interned {
    resources: Shared<ResourceRow>,
    tag_sets: Shared<Vec<(ArcStr, ArcStr)>>,
    violation_sets: Shared<Vec<String>>,
}

/// Intern rows with the number of members still to be built from each: the last user takes
/// the row instead of a copy, which halves the allocations of a 100k-member read.
struct Shared<T> {
    rows: FxHashMap<u32, (T, u32)>,
}

impl<T: Clone> Shared<T> {
    fn new(mut rows: FxHashMap<u32, T>, uses: &FxHashMap<u32, u32>) -> Self {
        Shared {
            rows: rows
                .drain()
                .map(|(id, row)| (id, (row, uses.get(&id).copied().unwrap_or(0))))
                .collect(),
        }
    }

    fn take(&mut self, id: u32) -> Option<T> {
        let (row, left) = self.rows.get_mut(&id)?;
        if *left > 1 {
            *left -= 1;
            return Some(row.clone());
        }
        self.rows.remove(&id).map(|(row, _)| row)
    }
}

/// How many members refer to each row id.
pub(crate) fn uses(packed: &[Packed], pick: fn(&Packed) -> u32) -> FxHashMap<u32, u32> {
    let mut counts = FxHashMap::default();
    for p in packed {
        *counts.entry(pick(p)).or_insert(0) += 1;
    }
    counts
}

enum Loaded {
    /// An intern row that does not parse.
    Unreadable(String),
    Store(StoreError),
}

impl From<rusqlite::Error> for Loaded {
    fn from(e: rusqlite::Error) -> Self {
        Loaded::Store(e.into())
    }
}

impl Interned {
    fn load(conn: &Connection, packed: &[Packed]) -> Result<Interned, Loaded> {
        let resource_uses = uses(packed, |p| p.resource);
        let tag_set_uses = uses(packed, |p| p.tag_set);
        let violation_set_uses = uses(packed, |p| p.violation_set);
        let resources = load_chunked(
            conn,
            Dictionary::Resources,
            &resource_uses,
            chunks::decode_resource,
        )?;
        let tag_sets = load_chunked(
            conn,
            Dictionary::TagSets,
            &tag_set_uses,
            chunks::decode_tag_set,
        )?;
        let violation_sets = load_rows(
            conn,
            "violation_sets",
            "t.labels",
            &violation_set_uses,
            |r| json_column(r, "violation_sets"),
        )?;
        Ok(Interned {
            resources: Shared::new(resources, &resource_uses),
            tag_sets: Shared::new(tag_sets, &tag_set_uses),
            violation_sets: Shared::new(violation_sets, &violation_set_uses),
        })
    }

    /// Builds member `index`; call once per member, in order (rows are handed out by use).
    fn member(&mut self, index: usize, p: &Packed) -> Result<MemberRecord, String> {
        let missing = |what: &str, id: u32| {
            format!("member {index} refers to {what} {id}, which does not exist")
        };
        let r = self
            .resources
            .take(p.resource)
            .ok_or_else(|| missing("resource", p.resource))?;
        let tags = self
            .tag_sets
            .take(p.tag_set)
            .ok_or_else(|| missing("tag set", p.tag_set))?;
        let violations = self
            .violation_sets
            .take(p.violation_set)
            .ok_or_else(|| missing("violation set", p.violation_set))?;
        Ok(MemberRecord {
            resource_id: r.rid,
            resource_type: r.resource_type,
            region: r.region,
            account: r.account,
            name: r.name,
            tags,
            violations,
            failing: p.flags & FLAG_FAILING != 0,
            in_scope: p.flags & FLAG_IN_SCOPE != 0,
        })
    }
}

/// The rows of `table` with the given ids. A dense set (the usual case: a snapshot's rows were
/// mostly interned together) is read as one range scan; a sparse one by index lookups through
/// `json_each`, so a small snapshot in a large store reads only its own rows.
fn load_rows<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    ids: &FxHashMap<u32, u32>,
    read: impl Fn(&rusqlite::Row<'_>) -> Result<T, Loaded>,
) -> Result<FxHashMap<u32, T>, Loaded> {
    let (Some(&min), Some(&max)) = (ids.keys().min(), ids.keys().max()) else {
        return Ok(FxHashMap::default());
    };
    let span = u64::from(max - min) + 1;
    let mut stmt;
    let mut rows = if span <= 4 * ids.len() as u64 {
        stmt = conn.prepare_cached(&format!(
            "SELECT t.id, {columns} FROM {table} AS t WHERE t.id BETWEEN ?1 AND ?2"
        ))?;
        stmt.query(params![min, max])?
    } else {
        let list = Value::from(ids.keys().copied().collect::<Vec<u32>>()).to_string();
        stmt = conn.prepare_cached(&format!(
            "SELECT t.id, {columns} FROM json_each(?1) AS j JOIN {table} AS t ON t.id = j.value"
        ))?;
        stmt.query(params![list])?
    };
    let mut map = FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
    while let Some(row) = rows.next()? {
        let id: u32 = row.get(0)?;
        if ids.contains_key(&id) {
            map.insert(id, read(row)?);
        }
    }
    Ok(map)
}

/// The entries of a chunked dictionary with the given ids, from the chunks whose id ranges
/// overlap theirs.
fn load_chunked<T>(
    conn: &Connection,
    dict: Dictionary,
    ids: &FxHashMap<u32, u32>,
    decode: fn(&[u8]) -> Result<T, String>,
) -> Result<FxHashMap<u32, T>, Loaded> {
    let (Some(&min), Some(&max)) = (ids.keys().min(), ids.keys().max()) else {
        return Ok(FxHashMap::default());
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT data FROM {} WHERE last_id >= ?1 AND first_id <= ?2 ORDER BY id",
        dict.table()
    ))?;
    let data: Vec<Vec<u8>> = stmt
        .query_map(params![min, max], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    chunks::pick(data, ids, decode).map_err(Loaded::Unreadable)
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    table: &str,
) -> Result<T, Loaded> {
    let text: String = row.get(1)?;
    serde_json::from_str(&text).map_err(|e| {
        let id = row.get::<_, u32>(0).unwrap_or_default();
        Loaded::Unreadable(format!("{table} row {id} is unreadable: {e}"))
    })
}

#[cfg(test)]
pub(crate) mod tests;
