//! Stored shared-cost allocation rules (in `history.db`): the rules `manage_allocation_rules`
//! keeps, which the cost gap, `tagwarden check` and the report apply when no rules are given.
//!
//! A rule's definition is opaque JSON here (a `cost::allocation::AllocationRule`, validated by
//! callers); this store keeps names unique among rules not removed and the order rules were
//! added in (a charge belongs to the first rule of its key that selects it, so order matters;
//! replacing a rule keeps its place). Removing a rule marks it removed; every change — added,
//! updated, removed — is also one row in `allocation_rule_changes` with the definition after
//! it, who made it (as given, and the principal the server verified) and when, so the history
//! of every rule stays readable beside the audit log's record of the call.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::history_db::MIGRATIONS;

/// The tables, as migration 8 of `history.db`.
pub(crate) const V8: &str = "CREATE TABLE allocation_rules (
     id                   INTEGER PRIMARY KEY,
     name                 TEXT    NOT NULL,
     spec                 TEXT    NOT NULL CHECK (json_valid(spec)),
     created_by           TEXT    NOT NULL,
     created_by_principal TEXT    NOT NULL,
     created_at           TEXT    NOT NULL,
     updated_by           TEXT    NOT NULL,
     updated_by_principal TEXT    NOT NULL,
     updated_at           TEXT    NOT NULL,
     removed              INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1))
 );
 CREATE UNIQUE INDEX allocation_rules_name ON allocation_rules (name) WHERE removed = 0;
 CREATE TABLE allocation_rule_changes (
     id           INTEGER PRIMARY KEY,
     rule_id      INTEGER NOT NULL REFERENCES allocation_rules (id),
     change       TEXT    NOT NULL CHECK (change IN ('added', 'updated', 'removed')),
     spec         TEXT    NOT NULL CHECK (json_valid(spec)),
     by_name      TEXT    NOT NULL,
     by_principal TEXT    NOT NULL,
     at           TEXT    NOT NULL
 );
 CREATE INDEX allocation_rule_changes_rule ON allocation_rule_changes (rule_id, id);";

/// Most rules kept at once (as many as one question may give).
pub(crate) const MAX_STORED: usize = 20;

/// A stored rule (removed rules are never returned by `list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct AllocationRuleRow {
    pub id: i64,
    pub name: String,
    /// The rule's definition (JSON), opaque to the store.
    pub spec: String,
    pub created_by: String,
    pub created_by_principal: String,
    pub created_at: String,
    pub updated_by: String,
    pub updated_by_principal: String,
    pub updated_at: String,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RuleChange {
    Added,
    Updated,
    /// The same definition was stored already: nothing was written.
    Unchanged,
    Removed,
}

impl RuleChange {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RuleChange::Added => "added",
            RuleChange::Updated => "updated",
            RuleChange::Unchanged => "unchanged",
            RuleChange::Removed => "removed",
        }
    }
}

/// A rule to store, and who stores it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PutAllocationRule {
    pub name: String,
    pub spec: String,
    /// Replace a rule of the same name (upsert) instead of refusing it (add).
    pub replace: bool,
    pub by_name: String,
    pub by_principal: String,
}

/// A recorded change: (change, spec after it, by, principal, at).
#[cfg(test)]
pub(crate) type ChangeRow = (String, String, String, String, String);

pub(crate) struct AllocationRuleDb {
    conn: Mutex<Connection>,
}

pub(crate) const COLUMNS: &str =
    "id, name, spec, created_by, created_by_principal, created_at, updated_by,
    updated_by_principal, updated_at";

impl AllocationRuleDb {
    /// Opens (creating and migrating) `history.db` for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<AllocationRuleDb, StoreError> {
        let conn = super::open(path, MIGRATIONS)?;
        Ok(AllocationRuleDb {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` in a transaction that takes the write lock at once, so the name check and
    /// the write cannot interleave with another process's.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = work(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The rules not removed, in the order they were added.
    pub(crate) fn list(&self) -> Result<Vec<AllocationRuleRow>, StoreError> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM allocation_rules WHERE removed = 0 ORDER BY id"
            ))?
            .query_map([], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Adds a rule, or with `replace` replaces the one of the same name in its place.
    pub(crate) fn put(
        &self,
        r: &PutAllocationRule,
    ) -> Result<(AllocationRuleRow, RuleChange), StoreError> {
        check_name(&r.name)?;
        self.write(|tx| {
            let at = now();
            let current = live(tx, &r.name)?;
            let (id, change) = match current {
                Some(old) if !r.replace => return Err(name_taken(&old)),
                Some(old) if old.spec == r.spec => return Ok((old, RuleChange::Unchanged)),
                Some(old) => {
                    tx.prepare_cached(
                        "UPDATE allocation_rules SET spec = ?2, updated_by = ?3,
                             updated_by_principal = ?4, updated_at = ?5
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        old.id,
                        r.spec,
                        r.by_name,
                        r.by_principal,
                        at
                    ])?;
                    (old.id, RuleChange::Updated)
                }
                None => {
                    let count: i64 = tx.query_row(
                        "SELECT COUNT(*) FROM allocation_rules WHERE removed = 0",
                        [],
                        |row| row.get(0),
                    )?;
                    room_for_one(count)?;
                    tx.prepare_cached(
                        "INSERT INTO allocation_rules (name, spec, created_by,
                             created_by_principal, created_at, updated_by, updated_by_principal,
                             updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        r.name,
                        r.spec,
                        r.by_name,
                        r.by_principal,
                        at
                    ])?;
                    (tx.last_insert_rowid(), RuleChange::Added)
                }
            };
            record_change(tx, id, change, &r.spec, &r.by_name, &r.by_principal, &at)?;
            Ok((by_id(tx, id)?, change))
        })
    }

    /// Marks the rule of this name removed; returns it as it was.
    pub(crate) fn remove(
        &self,
        name: &str,
        by_name: &str,
        by_principal: &str,
    ) -> Result<AllocationRuleRow, StoreError> {
        self.write(|tx| {
            let Some(old) = live(tx, name)? else {
                return Err(no_rule(name));
            };
            let at = now();
            tx.prepare_cached(
                "UPDATE allocation_rules SET removed = 1, updated_by = ?2,
                     updated_by_principal = ?3, updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![old.id, by_name, by_principal, at])?;
            record_change(
                tx,
                old.id,
                RuleChange::Removed,
                &old.spec,
                by_name,
                by_principal,
                &at,
            )?;
            Ok(old)
        })
    }

    /// Every change to the rule of this id, oldest first.
    #[cfg(test)]
    pub(crate) fn changes(&self, rule_id: i64) -> Result<Vec<ChangeRow>, StoreError> {
        let conn = self.lock();
        let rows = conn
            .prepare(
                "SELECT change, spec, by_name, by_principal, at FROM allocation_rule_changes
                 WHERE rule_id = ?1 ORDER BY id",
            )?
            .query_map(params![rule_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// Refuses a rule without a name.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Refused(
            "an allocation rule needs a name".into(),
        ));
    }
    Ok(())
}

/// The refusal of adding a rule whose name `old` holds.
pub(crate) fn name_taken(old: &AllocationRuleRow) -> StoreError {
    StoreError::Refused(format!(
        "an allocation rule named {:?} already exists (added by {} at {}); pick another name, \
         or use action upsert to replace it",
        old.name, old.created_by, old.created_at
    ))
}

/// Refuses a new rule when `count` rules are stored already and that is the most kept.
pub(crate) fn room_for_one(count: i64) -> Result<(), StoreError> {
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_STORED {
        return Err(StoreError::Refused(format!(
            "{MAX_STORED} allocation rules are stored, the most kept at once; remove one first"
        )));
    }
    Ok(())
}

/// The refusal of removing a rule that is not stored.
pub(crate) fn no_rule(name: &str) -> StoreError {
    StoreError::Refused(format!(
        "no allocation rule named {name:?}; action list shows the stored rules"
    ))
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AllocationRuleRow> {
    Ok(AllocationRuleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        spec: r.get(2)?,
        created_by: r.get(3)?,
        created_by_principal: r.get(4)?,
        created_at: r.get(5)?,
        updated_by: r.get(6)?,
        updated_by_principal: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// The rule of this name not removed, if any.
fn live(conn: &Connection, name: &str) -> Result<Option<AllocationRuleRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM allocation_rules WHERE removed = 0 AND name = ?1"
        ))?
        .query_row(params![name], read_row)
        .optional()?)
}

fn by_id(conn: &Connection, id: i64) -> Result<AllocationRuleRow, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM allocation_rules WHERE id = ?1"
        ))?
        .query_row(params![id], read_row)?)
}

fn record_change(
    conn: &Connection,
    rule_id: i64,
    change: RuleChange,
    spec: &str,
    by_name: &str,
    by_principal: &str,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO allocation_rule_changes (rule_id, change, spec, by_name, by_principal, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        rule_id,
        change.as_str(),
        spec,
        by_name,
        by_principal,
        at
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests;
