//! Tag rules in `history.db` (`vt_rules`): creating, changing, deleting and listing them, and
//! recording their runs. The spec is opaque JSON here (a `rules::RuleSpec`, compiled by callers);
//! this store keeps names and priorities unique among rules not deleted, naming the holder.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Author, RuleRow, VirtualTagDb, now, unsigned};
use crate::store::StoreError;

pub(crate) const RULE_COLUMNS: &str =
    "id, name, priority, enabled, trusted, spec, created_by, created_at,
    updated_at, matches, last_run_at, last_run_matches, created_by_principal";

impl VirtualTagDb {
    /// Rules not deleted, by priority ascending.
    pub(crate) fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
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
    pub(crate) fn create_rule(
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
    pub(crate) fn update_rule(
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
    pub(crate) fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError> {
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
    pub(crate) fn record_rule_run(&self, counts: &[(i64, u64)]) -> Result<(), StoreError> {
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
        (row, true) => Err(deleted(id, &row.name)),
    }
}

/// The refusal of changing a deleted rule.
pub(crate) fn deleted(id: i64, name: &str) -> StoreError {
    StoreError::Refused(format!("rule {id} ({name:?}) was deleted"))
}

/// The refusal of a name another rule holds.
pub(crate) fn name_taken(name: &str, holder: i64) -> StoreError {
    StoreError::Refused(format!(
        "a rule named {name:?} already exists (rule {holder})"
    ))
}

/// The refusal of a priority another rule holds.
pub(crate) fn priority_taken(priority: i64, holder_name: &str, holder: i64) -> StoreError {
    StoreError::Refused(format!(
        "priority {priority} is taken by rule {holder_name:?} (rule {holder})"
    ))
}

pub(crate) fn no_rule(id: i64) -> StoreError {
    StoreError::Refused(format!("no rule with id {id}"))
}

pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
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
            return Err(name_taken(name, holder));
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
            return Err(priority_taken(priority, &holder_name, holder));
        }
    }
    Ok(())
}
