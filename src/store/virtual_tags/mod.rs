//! Virtual tags (in `history.db`): governed tags Tagwarden keeps on top of the cloud's own, set
//! by hand, by rules, by suggestions or by import, reviewed (pending → approved or denied), and
//! only in effect once approved.
//!
//! Rows are never overwritten. A change inserts a new row and marks the row it replaces
//! `superseded`, pointing at its successor, so the history of every tag stays readable; only the
//! status, decision and `superseded_by` columns of an existing row ever change. Each resource
//! and key has at most one approved and one pending row (unique partial indexes), so "the
//! current tag" is never ambiguous. A generation counter, bumped in the same transaction as
//! every change, tells holders of the overlay when to reload. The tag rules (their spec is
//! opaque here) and per-evidence-source review feedback live alongside.
//!
//! The tables belong to `history.db`'s migrations (`super::history::MIGRATIONS`), so this store
//! and the `HistoryStore` agree on the schema version of the file they share.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use rusqlite::{
    Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::history::MIGRATIONS;

/// Where a virtual tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    Manual,
    Rule,
    Suggestion,
    Import,
}

impl TagSource {
    pub const ALL: [TagSource; 4] = [
        TagSource::Manual,
        TagSource::Rule,
        TagSource::Suggestion,
        TagSource::Import,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TagSource::Manual => "manual",
            TagSource::Rule => "rule",
            TagSource::Suggestion => "suggestion",
            TagSource::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<TagSource> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where a virtual tag is in review. Only `Approved` takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    Pending,
    Approved,
    Denied,
    Superseded,
}

impl TagStatus {
    pub const ALL: [TagStatus; 4] = [
        TagStatus::Pending,
        TagStatus::Approved,
        TagStatus::Denied,
        TagStatus::Superseded,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Pending => "pending",
            TagStatus::Approved => "approved",
            TagStatus::Denied => "denied",
            TagStatus::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<TagStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for TagSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TagStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for TagSource {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl ToSql for TagStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for TagSource {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        TagSource::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown source {s:?}").into()))
    }
}

impl FromSql for TagStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        TagStatus::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown status {s:?}").into()))
    }
}

/// A tag to add. `status` is `Pending` (to be reviewed) or `Approved` (in effect at once).
#[derive(Debug, Clone, PartialEq)]
pub struct NewVirtualTag {
    pub resource_id: String,
    pub key: String,
    pub value: String,
    pub source: TagSource,
    /// 0–1.
    pub confidence: f64,
    pub status: TagStatus,
    pub rule_id: Option<i64>,
    pub reason: String,
    /// Whether the tag wins over a native tag of the same key.
    pub override_native: bool,
    /// Names of the evidence sources behind a suggestion (e.g. `name_token`).
    pub evidence: Vec<String>,
    /// Who says they made it (a client and session, a person, `cli`).
    pub created_by: String,
    /// Who the server verified the author to be (see `guard::Principal`).
    pub created_by_principal: String,
}

/// A stored row. `decided_*` are set only by a review (`decide`); a tag added as approved has
/// none. `superseded_by` is the row that replaced this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VirtualTag {
    pub id: i64,
    pub resource_id: String,
    pub key: String,
    pub value: String,
    pub source: TagSource,
    pub confidence: f64,
    pub status: TagStatus,
    pub rule_id: Option<i64>,
    pub reason: String,
    pub override_native: bool,
    pub evidence: Vec<String>,
    /// Who made it, as the caller put it.
    pub created_by: String,
    /// Who the server verified the author to be (`token:<digest>`, `ip:<address>`, `local`);
    /// absent on tags made before it was recorded.
    pub created_by_principal: Option<String>,
    /// RFC 3339, UTC, seconds.
    pub created_at: String,
    /// Who decided, as the caller put it (`decided_by`, or the client and session).
    pub decided_by: Option<String>,
    /// Who the server verified the decider to be, whatever `decided_by` says.
    pub decided_by_principal: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
    pub superseded_by: Option<i64>,
}

/// What `decide` did: the rows it decided (as they are now), and the ids it left alone because
/// they were not pending, with their status.
pub type Decided = (Vec<VirtualTag>, Vec<(i64, TagStatus)>);

/// An approved tag in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTag {
    pub id: i64,
    pub resource_id: String,
    pub key: String,
    pub value: String,
    pub override_native: bool,
}

/// Filters for `list` and `decide_matching`; an empty list or `None` matches anything, and a
/// row must match every filter given.
#[derive(Debug, Clone, Default)]
pub struct TagQuery {
    pub statuses: Vec<TagStatus>,
    pub sources: Vec<TagSource>,
    pub keys: Vec<String>,
    pub resource_ids: Vec<String>,
    pub rule_id: Option<i64>,
    /// Inclusive.
    pub min_confidence: Option<f64>,
    /// Inclusive.
    pub max_confidence: Option<f64>,
}

/// A review of pending tags.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approve: bool,
    /// Who decides, as the caller put it.
    pub by: String,
    /// Who the server verified the caller to be.
    pub by_principal: String,
    /// Stored as the decision reason; empty stores none.
    pub reason: String,
}

/// Who makes a change: the name the caller gives, and who the server verified it to be.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub name: &'a str,
    pub principal: &'a str,
}

/// A tag rule as stored (deleted rules are never returned by `rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    /// Lower runs first; unique among rules not deleted.
    pub priority: i64,
    pub enabled: bool,
    /// A trusted rule's tags are approved at once; others wait for review.
    pub trusted: bool,
    /// The rule's definition (JSON), opaque to the store.
    pub spec: String,
    pub created_by: String,
    /// Who the server verified the author to be; absent on rules made before it was recorded.
    pub created_by_principal: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Matches summed over every recorded run.
    pub matches: u64,
    pub last_run_at: Option<String>,
    pub last_run_matches: Option<u64>,
}

const TAG_COLUMNS: &str = "id, resource_id, key, value, source, confidence, status, rule_id,
    reason, override_native, evidence, created_by, created_at, decided_by, decided_at,
    decision_reason, superseded_by, created_by_principal, decided_by_principal";

const RULE_COLUMNS: &str = "id, name, priority, enabled, trusted, spec, created_by, created_at,
    updated_at, matches, last_run_at, last_run_matches, created_by_principal";

/// Virtual tags and tag rules on disk. Calls block; run them off the async runtime.
pub struct VirtualTagStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl VirtualTagStore {
    /// Opens (creating and migrating) `history.db` for reading and writing.
    pub fn open(path: &Path) -> Result<VirtualTagStore, StoreError> {
        let conn = super::open(path, MIGRATIONS)?;
        Ok(VirtualTagStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` in a write transaction that takes the write lock at once, so what it reads
    /// (the current rows, the next id) cannot change under it from another process; bumps the
    /// generation in the same transaction when `work` reports a change.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (out, changed) = work(&tx)?;
        if changed {
            tx.execute(
                "UPDATE vt_generation SET generation = generation + 1 WHERE id = 1",
                [],
            )?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Bumped by every change to tags or rules: a holder of the overlay reloads when it moves.
    pub fn generation(&self) -> Result<u64, StoreError> {
        let n: i64 = self.lock().query_row(
            "SELECT generation FROM vt_generation WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        Ok(unsigned(n))
    }

    /// Adds tags in one transaction; returns their ids in input order and how many rows were
    /// inserted.
    ///
    /// A new approved tag supersedes the resource's current approved and pending rows for the
    /// key; a new pending tag supersedes only the current pending one, so the approved tag stays
    /// in effect until the proposal is reviewed. Re-adding what is already current is a no-op
    /// that returns the existing id, so re-running a rule or a suggestion pass neither grows
    /// the history nor invalidates ids under review: a tag identical (value, override_native)
    /// to the current approved row, or a pending tag identical to the current pending row.
    pub fn add(&self, tags: &[NewVirtualTag]) -> Result<(Vec<i64>, usize), StoreError> {
        for (i, t) in tags.iter().enumerate() {
            validate(i, t)?;
        }
        self.write_tags(tags)
    }

    /// `add` without the input checks: the table's CHECK constraints still apply.
    fn write_tags(&self, tags: &[NewVirtualTag]) -> Result<(Vec<i64>, usize), StoreError> {
        self.write(|tx| {
            let now = now();
            // Ids are assigned here so a superseded row names its successor in the same
            // statement that retires it (the CHECK ties the two); the write lock makes it safe.
            let mut next_id: i64 =
                tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM vt_tags", [], |r| {
                    r.get(0)
                })?;
            let mut current = tx.prepare_cached(
                "SELECT id, status, value, override_native FROM vt_tags
                 WHERE resource_id = ?1 AND key = ?2 AND status IN ('pending', 'approved')",
            )?;
            let mut supersede = tx.prepare_cached(
                "UPDATE vt_tags SET status = 'superseded', superseded_by = ?2 WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO vt_tags (id, resource_id, key, value, source, confidence, status,
                     rule_id, reason, override_native, evidence, created_by, created_at,
                     created_by_principal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            let mut ids = Vec::with_capacity(tags.len());
            let mut inserted = 0;
            for t in tags {
                let rows = current
                    .query_map(params![t.resource_id, t.key], |r| {
                        Ok(Current {
                            id: r.get(0)?,
                            status: r.get(1)?,
                            value: r.get(2)?,
                            override_native: r.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let of = |status| rows.iter().find(|c| c.status == status);
                let (approved, pending) = (of(TagStatus::Approved), of(TagStatus::Pending));
                let same =
                    |c: &&Current| c.value == t.value && c.override_native == t.override_native;
                let existing = match t.status {
                    TagStatus::Approved => approved.filter(same),
                    _ => approved.filter(same).or(pending.filter(same)),
                };
                if let Some(c) = existing {
                    ids.push(c.id);
                    continue;
                }
                let id = next_id;
                next_id += 1;
                let replaced = match t.status {
                    TagStatus::Approved => [pending, approved],
                    _ => [pending, None],
                };
                for old in replaced.into_iter().flatten() {
                    supersede.execute(params![old.id, id])?;
                }
                insert.execute(params![
                    id,
                    t.resource_id,
                    t.key,
                    t.value,
                    t.source,
                    t.confidence,
                    t.status,
                    t.rule_id,
                    t.reason,
                    t.override_native,
                    json_list(&t.evidence)?,
                    t.created_by,
                    now,
                    t.created_by_principal,
                ])?;
                ids.push(id);
                inserted += 1;
            }
            Ok(((ids, inserted), inserted > 0))
        })
    }

    /// Every approved tag currently in effect, ordered by resource_id, key.
    pub fn active(&self) -> Result<Vec<ActiveTag>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, resource_id, key, value, override_native FROM vt_tags
             WHERE status = 'approved' ORDER BY resource_id, key",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ActiveTag {
                    id: r.get(0)?,
                    resource_id: r.get(1)?,
                    key: r.get(2)?,
                    value: r.get(3)?,
                    override_native: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// A page of tags matching the query, newest first, and the exact number that match.
    pub fn list(
        &self,
        q: &TagQuery,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<VirtualTag>, usize), StoreError> {
        let (where_sql, mut values) = filter(q)?;
        let mut conn = self.lock();
        // One read transaction: the total and the page come from the same state.
        let tx = conn.transaction()?;
        let total: i64 = tx
            .prepare_cached(&format!("SELECT COUNT(*) FROM vt_tags{where_sql}"))?
            .query_row(params_from_iter(&values), |r| r.get(0))?;
        values.push(Value::Integer(signed(limit)));
        values.push(Value::Integer(signed(offset)));
        let rows = tx
            .prepare_cached(&format!(
                "SELECT {TAG_COLUMNS} FROM vt_tags{where_sql} ORDER BY id DESC LIMIT ? OFFSET ?"
            ))?
            .query_map(params_from_iter(&values), read_tag)?
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok((rows, usize::try_from(total).unwrap_or(0)))
    }

    /// The rows with these ids, in the order asked (each once); unknown ids are left out.
    pub fn get(&self, ids: &[i64]) -> Result<Vec<VirtualTag>, StoreError> {
        let conn = self.lock();
        let mut found: HashMap<i64, VirtualTag> = conn
            .prepare_cached(&format!(
                "SELECT {TAG_COLUMNS} FROM vt_tags WHERE id IN (SELECT value FROM json_each(?1))"
            ))?
            .query_map(params![json_list(ids)?], read_tag)?
            .map(|r| r.map(|t| (t.id, t)))
            .collect::<Result<_, _>>()?;
        Ok(distinct(ids)
            .into_iter()
            .filter_map(|id| found.remove(&id))
            .collect())
    }

    /// Approves or denies pending tags by id, in one transaction. Ids not pending are returned
    /// with their status and left alone; an unknown id is an error and nothing changes.
    /// Approving supersedes the approved row of the same resource and key. Reviewing a
    /// suggestion counts towards the feedback of each evidence source it listed.
    pub fn decide(&self, ids: &[i64], d: &Decision) -> Result<Decided, StoreError> {
        self.write(|tx| {
            let (decided, skipped) = decide_in(tx, &distinct(ids), d)?;
            let changed = !decided.is_empty();
            Ok(((decided, skipped), changed))
        })
    }

    /// As `decide`, for every pending tag matching the query (its statuses are ignored), oldest
    /// first. More than `max` matches is an error and nothing changes: the filter is too broad
    /// to review in one go.
    pub fn decide_matching(
        &self,
        q: &TagQuery,
        d: &Decision,
        max: usize,
    ) -> Result<Vec<VirtualTag>, StoreError> {
        let pending = TagQuery {
            statuses: vec![TagStatus::Pending],
            ..q.clone()
        };
        let (where_sql, values) = filter(&pending)?;
        self.write(|tx| {
            let matching: i64 = tx
                .prepare_cached(&format!("SELECT COUNT(*) FROM vt_tags{where_sql}"))?
                .query_row(params_from_iter(&values), |r| r.get(0))?;
            let matching = unsigned(matching);
            if matching > u64::try_from(max).unwrap_or(u64::MAX) {
                return Err(StoreError::Refused(format!(
                    "{matching} pending tags match, more than the {max} one call may decide; \
                     narrow the filter"
                )));
            }
            let ids = tx
                .prepare_cached(&format!("SELECT id FROM vt_tags{where_sql} ORDER BY id"))?
                .query_map(params_from_iter(&values), |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let (decided, _) = decide_in(tx, &ids, d)?;
            let changed = !decided.is_empty();
            Ok((decided, changed))
        })
    }

    /// Every row of one resource, all statuses, oldest first: the history of its virtual tags.
    pub fn history(&self, resource_id: &str) -> Result<Vec<VirtualTag>, StoreError> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {TAG_COLUMNS} FROM vt_tags WHERE resource_id = ?1 ORDER BY id"
            ))?
            .query_map(params![resource_id], read_tag)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Evidence source → (approved, denied) counts of reviewed suggestions that listed it.
    pub fn feedback(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached("SELECT source, approved, denied FROM vt_feedback")?
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (unsigned(r.get(1)?), unsigned(r.get(2)?)),
                ))
            })?
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(rows)
    }

    // ---- Rules ------------------------------------------------------------------------------

    /// Rules not deleted, by priority ascending.
    pub fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {RULE_COLUMNS} FROM vt_rules WHERE deleted = 0 ORDER BY priority"
            ))?
            .query_map([], read_rule)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Creates a rule. Its name and priority must be free among rules not deleted.
    pub fn create_rule(
        &self,
        name: &str,
        priority: i64,
        enabled: bool,
        trusted: bool,
        spec: &str,
        by: Author<'_>,
    ) -> Result<RuleRow, StoreError> {
        check_name(name)?;
        self.write(|tx| {
            ensure_free(tx, Some(name), Some(priority), None)?;
            let now = now();
            tx.prepare_cached(
                "INSERT INTO vt_rules (name, priority, enabled, trusted, spec, created_by,
                     created_at, updated_at, created_by_principal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
            )?
            .execute(params![
                name,
                priority,
                enabled,
                trusted,
                spec,
                by.name,
                now,
                by.principal
            ])?;
            let (row, _) = rule(tx, tx.last_insert_rowid())?;
            Ok((row, true))
        })
    }

    /// Changes the fields given. Changing nothing writes nothing (and bumps no generation).
    pub fn update_rule(
        &self,
        id: i64,
        name: Option<&str>,
        priority: Option<i64>,
        enabled: Option<bool>,
        trusted: Option<bool>,
        spec: Option<&str>,
    ) -> Result<RuleRow, StoreError> {
        if let Some(name) = name {
            check_name(name)?;
        }
        self.write(|tx| {
            let old = live_rule(tx, id)?;
            let new = RuleRow {
                name: name.map_or_else(|| old.name.clone(), str::to_string),
                priority: priority.unwrap_or(old.priority),
                enabled: enabled.unwrap_or(old.enabled),
                trusted: trusted.unwrap_or(old.trusted),
                spec: spec.map_or_else(|| old.spec.clone(), str::to_string),
                ..old.clone()
            };
            if new == old {
                return Ok((old, false));
            }
            ensure_free(
                tx,
                (new.name != old.name).then_some(new.name.as_str()),
                (new.priority != old.priority).then_some(new.priority),
                Some(id),
            )?;
            tx.prepare_cached(
                "UPDATE vt_rules SET name = ?2, priority = ?3, enabled = ?4, trusted = ?5,
                     spec = ?6, updated_at = ?7
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                new.name,
                new.priority,
                new.enabled,
                new.trusted,
                new.spec,
                now()
            ])?;
            let (row, _) = rule(tx, id)?;
            Ok((row, true))
        })
    }

    /// Marks a rule deleted: it stays for the history of the tags it made, and frees its name
    /// and priority. Returns the rule as deleted.
    pub fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError> {
        self.write(|tx| {
            live_rule(tx, id)?;
            tx.prepare_cached("UPDATE vt_rules SET deleted = 1, updated_at = ?2 WHERE id = ?1")?
                .execute(params![id, now()])?;
            let (row, _) = rule(tx, id)?;
            Ok((row, true))
        })
    }

    /// Records a run: adds each rule's matches to its total and sets its last run. Run
    /// statistics change neither tags nor rule definitions, so the generation stays. An
    /// unknown rule id is an error and nothing is recorded.
    pub fn record_rule_run(&self, counts: &[(i64, u64)]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let now = now();
            let mut stmt = tx.prepare_cached(
                "UPDATE vt_rules SET matches = matches + ?2, last_run_at = ?3,
                     last_run_matches = ?2
                 WHERE id = ?1",
            )?;
            for &(id, n) in counts {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                if stmt.execute(params![id, n, now])? == 0 {
                    return Err(no_rule(id));
                }
            }
            Ok(((), false))
        })
    }
}

/// A current (pending or approved) row, as `add` compares it.
struct Current {
    id: i64,
    status: TagStatus,
    value: String,
    override_native: bool,
}

fn validate(i: usize, t: &NewVirtualTag) -> Result<(), StoreError> {
    let bad = |why: String| {
        Err(StoreError::Refused(format!(
            "virtual tag {i} ({} {:?}): {why}",
            t.resource_id, t.key
        )))
    };
    if t.resource_id.is_empty() || t.key.is_empty() {
        return bad("resource_id and key must not be empty".into());
    }
    if !matches!(t.status, TagStatus::Pending | TagStatus::Approved) {
        return bad(format!(
            "a new tag is pending or approved, not {}",
            t.status
        ));
    }
    if !(0.0..=1.0).contains(&t.confidence) {
        return bad(format!(
            "confidence {} is not between 0 and 1",
            t.confidence
        ));
    }
    Ok(())
}

/// Decides pending tags inside the caller's transaction (see `VirtualTagStore::decide`).
fn decide_in(tx: &Transaction<'_>, ids: &[i64], d: &Decision) -> Result<Decided, StoreError> {
    let now = now();
    let reason = (!d.reason.is_empty()).then_some(d.reason.as_str());
    let mut select =
        tx.prepare_cached(&format!("SELECT {TAG_COLUMNS} FROM vt_tags WHERE id = ?1"))?;
    let mut supersede = tx.prepare_cached(
        "UPDATE vt_tags SET status = 'superseded', superseded_by = ?3
         WHERE resource_id = ?1 AND key = ?2 AND status = 'approved'",
    )?;
    let mut set = tx.prepare_cached(
        "UPDATE vt_tags SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason = ?5,
             decided_by_principal = ?6
         WHERE id = ?1",
    )?;
    let mut feedback = tx.prepare_cached(
        "INSERT INTO vt_feedback (source, approved, denied) VALUES (?1, ?2, ?3)
         ON CONFLICT (source) DO UPDATE SET approved = approved + excluded.approved,
             denied = denied + excluded.denied",
    )?;
    let (status, approved, denied) = if d.approve {
        (TagStatus::Approved, 1, 0)
    } else {
        (TagStatus::Denied, 0, 1)
    };
    let mut decided = Vec::new();
    let mut skipped = Vec::new();
    for &id in ids {
        let tag = select
            .query_row(params![id], read_tag)
            .optional()?
            .ok_or_else(|| StoreError::Refused(format!("no virtual tag with id {id}")))?;
        if tag.status != TagStatus::Pending {
            skipped.push((id, tag.status));
            continue;
        }
        if d.approve {
            supersede.execute(params![tag.resource_id, tag.key, id])?;
        }
        set.execute(params![id, status, d.by, now, reason, d.by_principal])?;
        if tag.source == TagSource::Suggestion {
            for source in tag.evidence.iter().collect::<BTreeSet<_>>() {
                feedback.execute(params![source, approved, denied])?;
            }
        }
        decided.push(VirtualTag {
            status,
            decided_by: Some(d.by.clone()),
            decided_by_principal: Some(d.by_principal.clone()),
            decided_at: Some(now.clone()),
            decision_reason: reason.map(str::to_string),
            ..tag
        });
    }
    Ok((decided, skipped))
}

/// The WHERE clause (empty, or starting with a space) and its values for a query. Lists are
/// passed as one JSON parameter each, so any number of ids fits.
fn filter(q: &TagQuery) -> Result<(String, Vec<Value>), StoreError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values = Vec::new();
    let mut any_of = |column: &'static str, items: Vec<&str>| -> Result<(), StoreError> {
        if !items.is_empty() {
            clauses.push(column);
            values.push(Value::Text(json_list(&items)?));
        }
        Ok(())
    };
    any_of(
        "status IN (SELECT value FROM json_each(?))",
        q.statuses.iter().map(|s| s.as_str()).collect(),
    )?;
    any_of(
        "source IN (SELECT value FROM json_each(?))",
        q.sources.iter().map(|s| s.as_str()).collect(),
    )?;
    any_of(
        "key IN (SELECT value FROM json_each(?))",
        q.keys.iter().map(String::as_str).collect(),
    )?;
    any_of(
        "resource_id IN (SELECT value FROM json_each(?))",
        q.resource_ids.iter().map(String::as_str).collect(),
    )?;
    if let Some(rule_id) = q.rule_id {
        clauses.push("rule_id = ?");
        values.push(Value::Integer(rule_id));
    }
    if let Some(min) = q.min_confidence {
        clauses.push("confidence >= ?");
        values.push(Value::Real(min));
    }
    if let Some(max) = q.max_confidence {
        clauses.push("confidence <= ?");
        values.push(Value::Real(max));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    Ok((sql, values))
}

fn read_tag(r: &rusqlite::Row<'_>) -> rusqlite::Result<VirtualTag> {
    let evidence: String = r.get(10)?;
    let evidence = serde_json::from_str(&evidence).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(VirtualTag {
        id: r.get(0)?,
        resource_id: r.get(1)?,
        key: r.get(2)?,
        value: r.get(3)?,
        source: r.get(4)?,
        confidence: r.get(5)?,
        status: r.get(6)?,
        rule_id: r.get(7)?,
        reason: r.get(8)?,
        override_native: r.get(9)?,
        evidence,
        created_by: r.get(11)?,
        created_at: r.get(12)?,
        decided_by: r.get(13)?,
        decided_at: r.get(14)?,
        decision_reason: r.get(15)?,
        superseded_by: r.get(16)?,
        created_by_principal: r.get(17)?,
        decided_by_principal: r.get(18)?,
    })
}

fn read_rule(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        priority: r.get(2)?,
        enabled: r.get(3)?,
        trusted: r.get(4)?,
        spec: r.get(5)?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        matches: unsigned(r.get(9)?),
        last_run_at: r.get(10)?,
        last_run_matches: r.get::<_, Option<i64>>(11)?.map(unsigned),
        created_by_principal: r.get(12)?,
    })
}

/// A rule by id, deleted or not, and whether it is deleted.
fn rule(conn: &Connection, id: i64) -> Result<(RuleRow, bool), StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS}, deleted FROM vt_rules WHERE id = ?1"
    ))?
    .query_row(params![id], |r| Ok((read_rule(r)?, r.get::<_, bool>(13)?)))
    .optional()?
    .ok_or_else(|| no_rule(id))
}

/// A rule that can still be changed: known and not deleted.
fn live_rule(conn: &Connection, id: i64) -> Result<RuleRow, StoreError> {
    match rule(conn, id)? {
        (row, false) => Ok(row),
        (row, true) => Err(StoreError::Refused(format!(
            "rule {id} ({:?}) was deleted",
            row.name
        ))),
    }
}

fn no_rule(id: i64) -> StoreError {
    StoreError::Refused(format!("no rule with id {id}"))
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Refused("a rule needs a name".into()));
    }
    Ok(())
}

/// Fails with a message naming the holder when a name or priority is taken by another rule
/// not deleted (the unique indexes would refuse it too, less helpfully).
fn ensure_free(
    conn: &Connection,
    name: Option<&str>,
    priority: Option<i64>,
    except: Option<i64>,
) -> Result<(), StoreError> {
    if let Some(name) = name {
        let holder: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM vt_rules WHERE deleted = 0 AND name = ?1 AND id IS NOT ?2",
            )?
            .query_row(params![name, except], |r| r.get(0))
            .optional()?;
        if let Some(holder) = holder {
            return Err(StoreError::Refused(format!(
                "a rule named {name:?} already exists (rule {holder})"
            )));
        }
    }
    if let Some(priority) = priority {
        let holder: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT id, name FROM vt_rules WHERE deleted = 0 AND priority = ?1 AND id IS NOT ?2",
            )?
            .query_row(params![priority, except], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((holder, holder_name)) = holder {
            return Err(StoreError::Refused(format!(
                "priority {priority} is taken by rule {holder_name:?} (rule {holder})"
            )));
        }
    }
    Ok(())
}

/// Each id once, first occurrence first: deciding or getting an id twice means nothing more.
fn distinct(ids: &[i64]) -> Vec<i64> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

fn json_list<T: Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Sql(format!("cannot encode a list: {e}")))
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::HistoryStore;

    fn store() -> (tempfile::TempDir, VirtualTagStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VirtualTagStore::open(&dir.path().join("history.db")).unwrap();
        (dir, store)
    }

    fn tag(resource: &str, key: &str, value: &str, status: TagStatus) -> NewVirtualTag {
        NewVirtualTag {
            resource_id: resource.into(),
            key: key.into(),
            value: value.into(),
            source: TagSource::Manual,
            confidence: 1.0,
            status,
            rule_id: None,
            reason: "test".into(),
            override_native: false,
            evidence: vec![],
            created_by: "tester".into(),
            created_by_principal: "token:tester".into(),
        }
    }

    fn suggestion(resource: &str, key: &str, value: &str, evidence: &[&str]) -> NewVirtualTag {
        NewVirtualTag {
            source: TagSource::Suggestion,
            confidence: 0.7,
            evidence: evidence.iter().map(|e| e.to_string()).collect(),
            ..tag(resource, key, value, TagStatus::Pending)
        }
    }

    fn by(name: &str) -> Author<'_> {
        Author {
            name,
            principal: "token:t",
        }
    }

    fn decision(approve: bool) -> Decision {
        Decision {
            approve,
            by: "reviewer".into(),
            by_principal: "token:reviewer".into(),
            reason: "looked right".into(),
        }
    }

    fn one(store: &VirtualTagStore, id: i64) -> VirtualTag {
        store.get(&[id]).unwrap().pop().unwrap()
    }

    fn statuses(rows: &[VirtualTag]) -> Vec<(i64, TagStatus)> {
        rows.iter().map(|t| (t.id, t.status)).collect()
    }

    fn count_rows(store: &VirtualTagStore, table: &str) -> i64 {
        store
            .lock()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn add_supersedes_and_history_keeps_both_rows() {
        let (_dir, store) = store();
        let (first, n) = store
            .add(&[tag("i-1", "CostCenter", "CC-1", TagStatus::Approved)])
            .unwrap();
        assert_eq!(n, 1);
        let (second, n) = store
            .add(&[tag("i-1", "CostCenter", "CC-2", TagStatus::Approved)])
            .unwrap();
        assert_eq!(n, 1);
        let history = store.history("i-1").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].id, first[0]);
        assert_eq!(history[0].value, "CC-1");
        assert_eq!(history[0].status, TagStatus::Superseded);
        assert_eq!(history[0].superseded_by, Some(second[0]));
        assert_eq!(history[1].status, TagStatus::Approved);
        assert_eq!(history[1].superseded_by, None);
        assert_eq!(history[1].decided_by, None);
        assert!(
            history[1].created_at.ends_with('Z'),
            "{}",
            history[1].created_at
        );
        let active = store.active().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].value, "CC-2");

        // A pending proposal leaves the approved tag in effect and replaces an older proposal.
        let (p1, _) = store
            .add(&[tag("i-1", "CostCenter", "CC-3", TagStatus::Pending)])
            .unwrap();
        let (p2, _) = store
            .add(&[tag("i-1", "CostCenter", "CC-4", TagStatus::Pending)])
            .unwrap();
        assert_eq!(store.active().unwrap()[0].id, second[0]);
        assert_eq!(one(&store, p1[0]).status, TagStatus::Superseded);
        assert_eq!(one(&store, p1[0]).superseded_by, Some(p2[0]));
        // A new approved tag retires both the approved row and the proposal.
        let (third, _) = store
            .add(&[tag("i-1", "CostCenter", "CC-5", TagStatus::Approved)])
            .unwrap();
        assert_eq!(one(&store, p2[0]).superseded_by, Some(third[0]));
        assert_eq!(one(&store, second[0]).superseded_by, Some(third[0]));
        // Other keys and resources are untouched; the same key twice in one call chains.
        let (ids, n) = store
            .add(&[
                tag("i-1", "Owner", "a", TagStatus::Approved),
                tag("i-2", "CostCenter", "x", TagStatus::Approved),
                tag("i-2", "CostCenter", "y", TagStatus::Approved),
            ])
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(one(&store, ids[1]).superseded_by, Some(ids[2]));
        let active: Vec<(String, String, String)> = store
            .active()
            .unwrap()
            .into_iter()
            .map(|a| (a.resource_id, a.key, a.value))
            .collect();
        assert_eq!(
            active,
            vec![
                ("i-1".into(), "CostCenter".into(), "CC-5".into()),
                ("i-1".into(), "Owner".into(), "a".into()),
                ("i-2".into(), "CostCenter".into(), "y".into()),
            ]
        );
        assert_eq!(store.history("i-1").unwrap().len(), 6);
    }

    #[test]
    fn re_applying_the_current_tag_is_a_no_op() {
        let (_dir, store) = store();
        let (ids, _) = store
            .add(&[tag("i-1", "Env", "prod", TagStatus::Approved)])
            .unwrap();
        let generation = store.generation().unwrap();
        let (again, n) = store
            .add(&[tag("i-1", "Env", "prod", TagStatus::Approved)])
            .unwrap();
        assert_eq!((again, n), (ids.clone(), 0));
        // Re-proposing what is already approved changes nothing either.
        let (again, n) = store
            .add(&[tag("i-1", "Env", "prod", TagStatus::Pending)])
            .unwrap();
        assert_eq!((again, n), (ids.clone(), 0));
        assert_eq!(store.generation().unwrap(), generation);
        assert_eq!(store.history("i-1").unwrap().len(), 1);
        // A repeated proposal keeps its id (a review in progress stays valid).
        let (p, n) = store
            .add(&[tag("i-1", "Env", "dev", TagStatus::Pending)])
            .unwrap();
        assert_eq!(n, 1);
        let (p_again, n) = store
            .add(&[tag("i-1", "Env", "dev", TagStatus::Pending)])
            .unwrap();
        assert_eq!((p_again, n), (p.clone(), 0));
        // A different override_native is a change.
        let mut overriding = tag("i-1", "Env", "prod", TagStatus::Approved);
        overriding.override_native = true;
        let (o, n) = store.add(&[overriding.clone()]).unwrap();
        assert_eq!(n, 1);
        assert_ne!(o, ids);
        // Mixed: one new, one identical — ids in input order, one insert.
        let (mixed, n) = store
            .add(&[overriding, tag("i-9", "Env", "prod", TagStatus::Approved)])
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(mixed[0], o[0]);
        assert!(mixed[1] > o[0]);
    }

    #[test]
    fn generation_moves_on_every_change_and_only_then() {
        let (_dir, store) = store();
        let g = |store: &VirtualTagStore| store.generation().unwrap();
        assert_eq!(g(&store), 0);
        store.add(&[]).unwrap();
        assert_eq!(g(&store), 0);
        let (ids, _) = store
            .add(&[
                tag("i-1", "A", "1", TagStatus::Pending),
                tag("i-2", "A", "1", TagStatus::Pending),
            ])
            .unwrap();
        assert_eq!(g(&store), 1, "one bump per call, not per tag");
        store
            .add(&[tag("i-1", "A", "1", TagStatus::Pending)])
            .unwrap();
        assert_eq!(g(&store), 1);
        store.decide(&[ids[0]], &decision(true)).unwrap();
        assert_eq!(g(&store), 2);
        // Nothing pending among the ids: nothing changes.
        store.decide(&[ids[0]], &decision(false)).unwrap();
        assert_eq!(g(&store), 2);
        store
            .decide_matching(&TagQuery::default(), &decision(false), 10)
            .unwrap();
        assert_eq!(g(&store), 3);
        store
            .decide_matching(&TagQuery::default(), &decision(false), 10)
            .unwrap();
        assert_eq!(g(&store), 3);
        let rule = store
            .create_rule("r", 1, true, false, "{}", by("tester"))
            .unwrap();
        assert_eq!(g(&store), 4);
        store
            .update_rule(rule.id, Some("r"), Some(1), None, None, None)
            .unwrap();
        assert_eq!(g(&store), 4, "an update that changes nothing");
        store
            .update_rule(rule.id, None, None, Some(false), None, None)
            .unwrap();
        assert_eq!(g(&store), 5);
        store.record_rule_run(&[(rule.id, 3)]).unwrap();
        assert_eq!(g(&store), 5, "run statistics are not a change");
        store.delete_rule(rule.id).unwrap();
        assert_eq!(g(&store), 6);
        // Failures change nothing.
        assert!(store.delete_rule(rule.id).is_err());
        assert!(store.decide(&[999], &decision(true)).is_err());
        assert_eq!(g(&store), 6);
    }

    #[test]
    fn active_is_only_approved_tags() {
        let (_dir, store) = store();
        let (ids, _) = store
            .add(&[
                tag("i-2", "B", "approved", TagStatus::Approved),
                tag("i-1", "A", "pending", TagStatus::Pending),
                tag("i-1", "B", "to-deny", TagStatus::Pending),
                tag("i-1", "C", "old", TagStatus::Approved),
                tag("i-1", "C", "new", TagStatus::Approved),
                tag("i-1", "A", "approved", TagStatus::Approved),
            ])
            .unwrap();
        store.decide(&[ids[2]], &decision(false)).unwrap();
        let active = store.active().unwrap();
        let seen: Vec<(i64, &str, &str, &str)> = active
            .iter()
            .map(|a| (a.id, &*a.resource_id, &*a.key, &*a.value))
            .collect();
        assert_eq!(
            seen,
            vec![
                (ids[5], "i-1", "A", "approved"),
                (ids[4], "i-1", "C", "new"),
                (ids[0], "i-2", "B", "approved"),
            ]
        );
        assert!(active.iter().all(|a| !a.override_native));
    }

    #[test]
    fn list_filters_counts_and_pages() {
        let (_dir, store) = store();
        let mut tags = Vec::new();
        for i in 0..30 {
            let mut t = tag(
                &format!("i-{}", i % 10),
                if i < 10 {
                    "A"
                } else if i < 20 {
                    "B"
                } else {
                    "C"
                },
                &format!("v{i}"),
                if i % 3 == 0 {
                    TagStatus::Approved
                } else {
                    TagStatus::Pending
                },
            );
            t.confidence = f64::from(i) / 30.0;
            if i % 2 == 0 {
                t.source = TagSource::Rule;
                t.rule_id = Some(7);
            }
            tags.push(t);
        }
        let (ids, n) = store.add(&tags).unwrap();
        assert_eq!(n, 30);
        let all = |q: &TagQuery| store.list(q, 1000, 0).unwrap();
        let (rows, total) = all(&TagQuery::default());
        assert_eq!(total, 30);
        assert_eq!(rows.len(), 30);
        assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let q = TagQuery {
            statuses: vec![TagStatus::Approved],
            ..Default::default()
        };
        assert_eq!(all(&q).1, 10);
        let q = TagQuery {
            sources: vec![TagSource::Rule],
            rule_id: Some(7),
            keys: vec!["A".into(), "C".into()],
            ..Default::default()
        };
        let (rows, total) = all(&q);
        assert_eq!(total, 10);
        assert!(
            rows.iter()
                .all(|t| t.source == TagSource::Rule && t.key != "B")
        );
        let q = TagQuery {
            resource_ids: vec!["i-1".into(), "i-2".into()],
            statuses: vec![TagStatus::Pending, TagStatus::Approved],
            ..Default::default()
        };
        assert_eq!(all(&q).1, 6);
        let q = TagQuery {
            min_confidence: Some(10.0 / 30.0),
            max_confidence: Some(19.0 / 30.0),
            ..Default::default()
        };
        let (rows, total) = all(&q);
        assert_eq!(total, 10);
        assert_eq!(rows.last().unwrap().id, ids[10]);
        let q = TagQuery {
            rule_id: Some(8),
            ..Default::default()
        };
        assert_eq!(all(&q), (vec![], 0));
        // Paging: exact totals on every page, pages in order without overlap.
        let mut seen = Vec::new();
        for page in 0..4 {
            let (rows, total) = store.list(&TagQuery::default(), 8, page * 8).unwrap();
            assert_eq!(total, 30);
            seen.extend(rows.iter().map(|t| t.id));
        }
        let mut expected = ids.clone();
        expected.reverse();
        assert_eq!(seen, expected);
        let (rows, total) = store.list(&TagQuery::default(), 8, 100).unwrap();
        assert!(rows.is_empty());
        assert_eq!(total, 30);
        // Many resource ids in one filter (one JSON parameter, no variable limit).
        let many: Vec<String> = (0..40_000).map(|i| format!("i-{i}")).collect();
        let q = TagQuery {
            resource_ids: many,
            ..Default::default()
        };
        assert_eq!(all(&q).1, 30);
        // get: order asked, each once, unknown ids left out.
        let got = store.get(&[ids[3], 999, ids[1], ids[3]]).unwrap();
        assert_eq!(
            got.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![ids[3], ids[1]]
        );
        assert_eq!(got[0].source, TagSource::Manual);
        assert_eq!(got[0].confidence, 0.1);
    }

    #[test]
    fn decide_touches_only_pending_tags() {
        let (_dir, store) = store();
        let (ids, _) = store
            .add(&[
                tag("i-1", "A", "1", TagStatus::Pending),
                tag("i-1", "B", "1", TagStatus::Approved),
                tag("i-1", "C", "1", TagStatus::Pending),
                tag("i-1", "D", "1", TagStatus::Pending),
            ])
            .unwrap();
        store.decide(&[ids[3]], &decision(false)).unwrap();
        let (decided, skipped) = store
            .decide(&[ids[0], ids[1], ids[3], ids[0], ids[2]], &decision(true))
            .unwrap();
        assert_eq!(
            statuses(&decided),
            vec![(ids[0], TagStatus::Approved), (ids[2], TagStatus::Approved)]
        );
        assert_eq!(decided, store.get(&[ids[0], ids[2]]).unwrap());
        assert_eq!(decided[0].decided_by.as_deref(), Some("reviewer"));
        assert_eq!(
            decided[0].decided_by_principal.as_deref(),
            Some("token:reviewer")
        );
        assert_eq!(
            decided[0].created_by_principal.as_deref(),
            Some("token:tester")
        );
        assert_eq!(decided[0].decision_reason.as_deref(), Some("looked right"));
        assert!(decided[0].decided_at.is_some());
        assert_eq!(
            skipped,
            vec![(ids[1], TagStatus::Approved), (ids[3], TagStatus::Denied)]
        );
        // The denied one keeps its decision; the approved-on-add one has none.
        let denied = one(&store, ids[3]);
        assert_eq!(denied.status, TagStatus::Denied);
        assert_eq!(denied.decided_by.as_deref(), Some("reviewer"));
        assert_eq!(one(&store, ids[1]).decided_by, None);
        assert_eq!(one(&store, ids[1]).decided_by_principal, None);
        // An unknown id fails the whole call.
        let (more, _) = store
            .add(&[tag("i-2", "A", "1", TagStatus::Pending)])
            .unwrap();
        let err = store
            .decide(&[more[0], 4242], &decision(true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no virtual tag with id 4242"), "{err}");
        assert_eq!(one(&store, more[0]).status, TagStatus::Pending);
    }

    #[test]
    fn approving_supersedes_the_approved_row_of_the_key() {
        let (_dir, store) = store();
        let (old, _) = store
            .add(&[tag("i-1", "Owner", "alice", TagStatus::Approved)])
            .unwrap();
        let (new, _) = store
            .add(&[tag("i-1", "Owner", "bob", TagStatus::Pending)])
            .unwrap();
        assert_eq!(store.active().unwrap()[0].value, "alice");
        store.decide(&new, &decision(true)).unwrap();
        let old = one(&store, old[0]);
        assert_eq!(old.status, TagStatus::Superseded);
        assert_eq!(old.superseded_by, Some(new[0]));
        let active = store.active().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!((active[0].id, active[0].value.as_str()), (new[0], "bob"));
        // Denying a proposal leaves the approved tag in effect.
        let (p, _) = store
            .add(&[tag("i-1", "Owner", "carol", TagStatus::Pending)])
            .unwrap();
        store.decide(&p, &decision(false)).unwrap();
        assert_eq!(store.active().unwrap()[0].value, "bob");
    }

    #[test]
    fn decide_matching_refuses_too_broad_a_filter() {
        let (_dir, store) = store();
        let tags: Vec<NewVirtualTag> = (0..5)
            .map(|i| tag(&format!("i-{i}"), "Team", "web", TagStatus::Pending))
            .chain([tag("i-0", "Env", "prod", TagStatus::Pending)])
            .collect();
        let (ids, _) = store.add(&tags).unwrap();
        let generation = store.generation().unwrap();
        let team = TagQuery {
            keys: vec!["Team".into()],
            // Ignored: decide_matching only ever decides pending tags.
            statuses: vec![TagStatus::Approved],
            ..Default::default()
        };
        let err = store
            .decide_matching(&team, &decision(true), 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("5 pending tags match"), "{err}");
        assert!(err.contains("narrow the filter"), "{err}");
        assert_eq!(store.generation().unwrap(), generation);
        assert_eq!(
            store
                .list(
                    &TagQuery {
                        statuses: vec![TagStatus::Pending],
                        ..Default::default()
                    },
                    100,
                    0
                )
                .unwrap()
                .1,
            6
        );
        let decided = store.decide_matching(&team, &decision(true), 5).unwrap();
        assert_eq!(
            decided.iter().map(|t| t.id).collect::<Vec<_>>(),
            ids[..5].to_vec()
        );
        assert!(decided.iter().all(|t| t.status == TagStatus::Approved));
        assert_eq!(one(&store, ids[5]).status, TagStatus::Pending);
        // Nothing left to match: an empty answer, not an error.
        assert!(
            store
                .decide_matching(&team, &decision(true), 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn feedback_counts_reviewed_suggestions_per_evidence_source() {
        let (_dir, store) = store();
        let mut from_rule = tag("i-9", "Team", "x", TagStatus::Pending);
        from_rule.source = TagSource::Rule;
        from_rule.evidence = vec!["name_token".into()];
        let (ids, _) = store
            .add(&[
                suggestion("i-1", "Team", "web", &["name_token", "similar_stack"]),
                suggestion("i-2", "Team", "web", &["name_token", "name_token"]),
                suggestion("i-3", "Team", "db", &["similar_stack"]),
                suggestion("i-4", "Team", "db", &[]),
                from_rule,
            ])
            .unwrap();
        store
            .decide(&[ids[0], ids[1], ids[3], ids[4]], &decision(true))
            .unwrap();
        store.decide(&[ids[2]], &decision(false)).unwrap();
        // Re-deciding (skipped) counts nothing.
        store.decide(&[ids[0]], &decision(true)).unwrap();
        let feedback = store.feedback().unwrap();
        assert_eq!(
            feedback,
            BTreeMap::from([
                ("name_token".to_string(), (2, 0)),
                ("similar_stack".to_string(), (1, 1)),
            ])
        );
    }

    #[test]
    fn rules_crud_with_conflicts() {
        let (_dir, store) = store();
        let a = store
            .create_rule("web-team", 10, true, false, r#"{"when":1}"#, by("alice"))
            .unwrap();
        assert_eq!(a.name, "web-team");
        assert_eq!((a.priority, a.enabled, a.trusted), (10, true, false));
        assert_eq!(a.spec, r#"{"when":1}"#);
        assert_eq!(a.created_by, "alice");
        assert_eq!(a.created_by_principal.as_deref(), Some("token:t"));
        assert_eq!(a.created_at, a.updated_at);
        assert_eq!((a.matches, a.last_run_at.clone()), (0, None));
        let b = store
            .create_rule("db-team", 5, false, true, "{}", by("alice"))
            .unwrap();
        assert_eq!(
            store
                .rules()
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![b.id, a.id]
        );
        let err = store
            .create_rule("web-team", 99, true, false, "{}", by("bob"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"a rule named "web-team" already exists"#),
            "{err}"
        );
        let err = store
            .create_rule("other", 10, true, false, "{}", by("bob"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"priority 10 is taken by rule "web-team""#),
            "{err}"
        );
        assert!(
            store
                .create_rule(" ", 11, true, false, "{}", by("bob"))
                .is_err()
        );
        // Updates: conflicts with others are refused, keeping its own name/priority is fine.
        let err = store
            .update_rule(b.id, Some("web-team"), None, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        let err = store
            .update_rule(b.id, None, Some(10), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("priority 10 is taken"), "{err}");
        let updated = store
            .update_rule(
                b.id,
                Some("db-team"),
                Some(20),
                Some(true),
                None,
                Some(r#"{"v":2}"#),
            )
            .unwrap();
        assert_eq!(updated.priority, 20);
        assert!(updated.enabled && updated.trusted);
        assert_eq!(updated.spec, r#"{"v":2}"#);
        assert_eq!(updated.created_at, b.created_at);
        let err = store
            .update_rule(999, None, None, Some(true), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no rule with id 999"), "{err}");
        // Deleting frees the name and priority; the row stays (tags may refer to it).
        let deleted = store.delete_rule(a.id).unwrap();
        assert_eq!(deleted.name, "web-team");
        assert_eq!(
            store
                .rules()
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![b.id]
        );
        let again = store
            .create_rule("web-team", 10, true, false, "{}", by("bob"))
            .unwrap();
        assert_ne!(again.id, a.id);
        assert_eq!(count_rows(&store, "vt_rules"), 3);
        let err = store.delete_rule(a.id).unwrap_err().to_string();
        assert!(err.contains("was deleted"), "{err}");
        let err = store
            .update_rule(a.id, None, None, Some(false), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("was deleted"), "{err}");
        assert!(store.delete_rule(999).is_err());
    }

    #[test]
    fn rule_runs_accumulate() {
        let (_dir, store) = store();
        let a = store
            .create_rule("a", 1, true, true, "{}", by("t"))
            .unwrap();
        let b = store
            .create_rule("b", 2, true, true, "{}", by("t"))
            .unwrap();
        store.record_rule_run(&[(a.id, 5), (b.id, 0)]).unwrap();
        store.record_rule_run(&[(a.id, 3)]).unwrap();
        let rules = store.rules().unwrap();
        assert_eq!((rules[0].matches, rules[0].last_run_matches), (8, Some(3)));
        assert!(rules[0].last_run_at.is_some());
        assert_eq!((rules[1].matches, rules[1].last_run_matches), (0, Some(0)));
        // An unknown rule fails the whole record.
        assert!(
            store
                .record_rule_run(&[(a.id, 1), (999, 1)])
                .unwrap_err()
                .to_string()
                .contains("no rule with id 999")
        );
        assert_eq!(store.rules().unwrap()[0].matches, 8);
        store.record_rule_run(&[]).unwrap();
    }

    #[test]
    fn reopening_keeps_everything_and_history_store_shares_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let (ids, rule) = {
            let store = VirtualTagStore::open(&path).unwrap();
            let (ids, _) = store
                .add(&[
                    tag("i-1", "A", "1", TagStatus::Approved),
                    suggestion("i-1", "B", "2", &["name_token"]),
                ])
                .unwrap();
            store.decide(&ids[1..], &decision(true)).unwrap();
            let rule = store
                .create_rule("r", 1, true, false, "{}", by("t"))
                .unwrap();
            (ids, rule)
        };
        // The history store opens the same file (same migrations, same version)...
        let history = HistoryStore::open(&path).unwrap();
        assert_eq!(history.count().unwrap(), 0);
        drop(history);
        assert!(HistoryStore::open_read_only(&path).is_ok());
        // ...and so does this store again, with everything kept.
        let store = VirtualTagStore::open(&path).unwrap();
        assert_eq!(store.generation().unwrap(), 3);
        assert_eq!(
            store
                .active()
                .unwrap()
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>(),
            ids
        );
        assert_eq!(store.rules().unwrap(), vec![rule]);
        assert_eq!(store.feedback().unwrap()["name_token"], (1, 0));
        let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap();
        let version: i64 = store
            .lock()
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, known);
        // A history store opened first, then this one, on a fresh file.
        let fresh = dir.path().join("fresh.db");
        drop(HistoryStore::open(&fresh).unwrap());
        let store = VirtualTagStore::open(&fresh).unwrap();
        assert_eq!(store.generation().unwrap(), 0);
    }

    #[test]
    fn a_failed_add_writes_nothing() {
        let (_dir, store) = store();
        let (before, _) = store
            .add(&[tag("i-1", "A", "old", TagStatus::Approved)])
            .unwrap();
        let generation = store.generation().unwrap();
        let batch = [
            tag("i-1", "A", "new", TagStatus::Approved),
            tag("i-2", "A", "x", TagStatus::Pending),
            tag("i-3", "A", "x", TagStatus::Denied),
        ];
        // The store's own checks refuse it with a message naming the tag...
        let err = store.add(&batch).unwrap_err().to_string();
        assert!(err.contains("virtual tag 2 (i-3"), "{err}");
        assert!(err.contains("pending or approved"), "{err}");
        // ...and past them, the table's CHECK on status fails the transaction midway, after
        // a supersede and two inserts: all of it is rolled back.
        let err = store.write_tags(&batch).unwrap_err().to_string();
        assert!(err.contains("CHECK constraint failed"), "{err}");
        assert_eq!(count_rows(&store, "vt_tags"), 1);
        assert_eq!(one(&store, before[0]).status, TagStatus::Approved);
        assert_eq!(store.generation().unwrap(), generation);
        let mut bad = tag("i-4", "A", "x", TagStatus::Pending);
        bad.confidence = 1.5;
        assert!(
            store
                .add(&[bad.clone()])
                .unwrap_err()
                .to_string()
                .contains("confidence")
        );
        assert!(store.write_tags(&[bad]).is_err());
        assert!(store.add(&[tag("", "A", "x", TagStatus::Pending)]).is_err());
        assert_eq!(count_rows(&store, "vt_tags"), 1);
        // The store still works afterwards.
        let (after, n) = store
            .add(&[tag("i-1", "A", "new", TagStatus::Approved)])
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(one(&store, before[0]).superseded_by, Some(after[0]));
    }

    #[test]
    fn ten_thousand_tags_in_one_call() {
        let (_dir, store) = store();
        let tags: Vec<NewVirtualTag> = (0..10_000)
            .map(|i| {
                let mut t = suggestion(
                    &format!("arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:08}"),
                    "CostCenter",
                    &format!("CC-{}", i % 37),
                    &["name_token", "similar_stack"],
                );
                if i % 2 == 0 {
                    t.status = TagStatus::Approved;
                }
                t
            })
            .collect();
        let started = std::time::Instant::now();
        let (ids, n) = store.add(&tags).unwrap();
        println!("add 10,000 new tags: {:?}", started.elapsed());
        assert_eq!(n, 10_000);
        assert_eq!(ids.len(), 10_000);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
        // All replaced by new values: 10,000 supersedes and inserts.
        let changed: Vec<NewVirtualTag> = tags
            .iter()
            .map(|t| NewVirtualTag {
                value: format!("{}-b", t.value),
                ..t.clone()
            })
            .collect();
        let started = std::time::Instant::now();
        let (new_ids, n) = store.add(&changed).unwrap();
        println!("add 10,000 superseding tags: {:?}", started.elapsed());
        assert_eq!(n, 10_000);
        let started = std::time::Instant::now();
        let (same_ids, n) = store.add(&changed).unwrap();
        println!("re-apply 10,000 identical tags: {:?}", started.elapsed());
        assert_eq!((same_ids, n), (new_ids.clone(), 0));
        assert_eq!(store.active().unwrap().len(), 5_000);
        assert_eq!(store.list(&TagQuery::default(), 10, 0).unwrap().1, 20_000);
        let pending = TagQuery {
            statuses: vec![TagStatus::Pending],
            ..Default::default()
        };
        assert_eq!(store.list(&pending, 10, 0).unwrap().1, 5_000);
        let started = std::time::Instant::now();
        let decided = store
            .decide_matching(&pending, &decision(true), 10_000)
            .unwrap();
        println!("approve 5,000 pending tags: {:?}", started.elapsed());
        assert_eq!(decided.len(), 5_000);
        assert_eq!(store.active().unwrap().len(), 10_000);
        assert_eq!(store.feedback().unwrap()["similar_stack"], (5_000, 0));
        assert_eq!(store.generation().unwrap(), 3);
    }
}
