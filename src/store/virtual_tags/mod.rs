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
//! The tables belong to `history.db`'s migrations (`super::history_db::MIGRATIONS`; the SQL is
//! in `schema`), so this store and the `HistoryDb` agree on the schema version of the file
//! they share.

#[cfg(test)]
pub(crate) mod contract;
pub(crate) mod promotion;
pub(crate) mod rules;
pub(super) mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
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
use super::history_db::MIGRATIONS;

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
    /// Written to the cloud by a promotion plan and verified there; kept for history, no
    /// longer overlaid (the native tag holds the value).
    Promoted,
}

impl TagStatus {
    pub const ALL: [TagStatus; 5] = [
        TagStatus::Pending,
        TagStatus::Approved,
        TagStatus::Denied,
        TagStatus::Superseded,
        TagStatus::Promoted,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Pending => "pending",
            TagStatus::Approved => "approved",
            TagStatus::Denied => "denied",
            TagStatus::Superseded => "superseded",
            TagStatus::Promoted => "promoted",
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
pub(crate) type Decided = (Vec<VirtualTag>, Vec<(i64, TagStatus)>);

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
pub(crate) struct Author<'a> {
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

pub(crate) const TAG_COLUMNS: &str =
    "id, resource_id, key, value, source, confidence, status, rule_id,
    reason, override_native, evidence, created_by, created_at, decided_by, decided_at,
    decision_reason, superseded_by, created_by_principal, decided_by_principal";

/// Virtual tags and tag rules on disk. Calls block; run them off the async runtime.
pub(crate) struct VirtualTagDb {
    conn: Mutex<Connection>,
}

impl VirtualTagDb {
    /// Opens (creating and migrating) `history.db` for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<VirtualTagDb, StoreError> {
        let conn = super::open(path, MIGRATIONS)?;
        Ok(VirtualTagDb {
            conn: Mutex::new(conn),
        })
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
    pub(crate) fn generation(&self) -> Result<u64, StoreError> {
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
    pub(crate) fn add(&self, tags: &[NewVirtualTag]) -> Result<(Vec<i64>, usize), StoreError> {
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
    pub(crate) fn active(&self) -> Result<Vec<ActiveTag>, StoreError> {
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
    pub(crate) fn list(
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
    pub(crate) fn get(&self, ids: &[i64]) -> Result<Vec<VirtualTag>, StoreError> {
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
    pub(crate) fn decide(&self, ids: &[i64], d: &Decision) -> Result<Decided, StoreError> {
        self.write(|tx| {
            let (decided, skipped) = decide_in(tx, &distinct(ids), d)?;
            let changed = !decided.is_empty();
            Ok(((decided, skipped), changed))
        })
    }

    /// As `decide`, for every pending tag matching the query (its statuses are ignored), oldest
    /// first. More than `max` matches is an error and nothing changes: the filter is too broad
    /// to review in one go.
    pub(crate) fn decide_matching(
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
            too_many(matching, max)?;
            let ids = tx
                .prepare_cached(&format!("SELECT id FROM vt_tags{where_sql} ORDER BY id"))?
                .query_map(params_from_iter(&values), |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let (decided, _) = decide_in(tx, &ids, d)?;
            let changed = !decided.is_empty();
            Ok((decided, changed))
        })
    }

    /// Evidence source → (approved, denied) counts of reviewed suggestions that listed it.
    pub(crate) fn feedback(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
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
}

/// Refuses deciding `matching` pending tags when more than `max` (the filter is too broad).
pub(crate) fn too_many(matching: u64, max: usize) -> Result<(), StoreError> {
    if matching > u64::try_from(max).unwrap_or(u64::MAX) {
        return Err(StoreError::Refused(format!(
            "{matching} pending tags match, more than the {max} one call may decide; \
             narrow the filter"
        )));
    }
    Ok(())
}

/// The refusal of deciding an id that is not a virtual tag.
pub(crate) fn no_tag(id: i64) -> StoreError {
    StoreError::Refused(format!("no virtual tag with id {id}"))
}

/// A current (pending or approved) row, as `add` compares it.
struct Current {
    id: i64,
    status: TagStatus,
    value: String,
    override_native: bool,
}

pub(crate) fn validate(i: usize, t: &NewVirtualTag) -> Result<(), StoreError> {
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

/// Decides pending tags inside the caller's transaction (see `VirtualTagDb::decide`).
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
            .ok_or_else(|| no_tag(id))?;
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

/// Each id once, first occurrence first: deciding or getting an id twice means nothing more.
pub(crate) fn distinct(ids: &[i64]) -> Vec<i64> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

pub(crate) fn json_list<T: Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Sql(format!("cannot encode a list: {e}")))
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
