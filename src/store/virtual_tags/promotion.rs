//! Promotion plans in `history.db` (`promotion_plans`, `promotion_entries`): the stored diff
//! that turns approved virtual tags into real cloud tags, and its life — planned → approved (by
//! whom, why) → applying → applied. Entries and the summary are opaque JSON here (the service
//! layer's types); the store keeps the state machine, so that a plan is applied at most once
//! and only after an approval, and so that marking the virtual tags `promoted` and recording
//! each ARN's outcome happen in one transaction.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Author, VirtualTagDb, now};
use crate::store::StoreError;

/// Where a plan is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    /// Made; waits for a person's approval.
    Planned,
    /// Approved; may be applied once, while its inputs are unchanged.
    Approved,
    /// Being applied (or an apply stopped half-way: make a new plan).
    Applying,
    /// Applied; its entries carry each ARN's outcome.
    Applied,
}

impl PlanStatus {
    pub(crate) fn parse(s: &str) -> Option<PlanStatus> {
        match s {
            "planned" => Some(PlanStatus::Planned),
            "approved" => Some(PlanStatus::Approved),
            "applying" => Some(PlanStatus::Applying),
            "applied" => Some(PlanStatus::Applied),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Planned => "planned",
            PlanStatus::Approved => "approved",
            PlanStatus::Applying => "applying",
            PlanStatus::Applied => "applied",
        }
    }
}

/// A new plan: its fingerprint, what it was made from, its summary and one entry per ARN.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub fingerprint: String,
    /// JSON: which virtual tags the plan was made from (re-read the same way at apply).
    pub selection: String,
    /// JSON: counts, skipped tags, IAM actions.
    pub summary: String,
    /// `(arn, entry JSON)`.
    pub entries: Vec<(String, String)>,
    pub by_name: String,
    pub by_principal: String,
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: i64,
    pub status: PlanStatus,
    pub fingerprint: String,
    pub selection: String,
    pub summary: String,
    pub created_by: String,
    pub created_by_principal: String,
    pub created_at: String,
    pub approved_by: Option<String>,
    pub approved_by_principal: Option<String>,
    pub approved_at: Option<String>,
    pub approval_reason: Option<String>,
    pub applied_by_principal: Option<String>,
    pub applied_at: Option<String>,
    /// `(arn, entry JSON, outcome JSON once applied)`, by ARN.
    pub entries: Vec<(String, String, Option<String>)>,
}

/// Unapproved plans kept per principal (see `create_plan`).
pub(crate) const MAX_UNAPPROVED_PLANS: i64 = 20;

pub(crate) const PLAN_COLUMNS: &str = "id, status, fingerprint, selection, summary, created_by,
    created_by_principal, created_at, approved_by, approved_by_principal, approved_at,
    approval_reason, applied_by_principal, applied_at";

impl VirtualTagDb {
    /// Stores a plan (status planned); returns its id. A principal keeps at most
    /// `MAX_UNAPPROVED_PLANS` unapproved plans: making another drops its oldest unapproved one,
    /// so repeated `plan` calls cannot fill the disk (approved and applied plans are kept).
    pub(crate) fn create_plan(&self, p: &NewPlan) -> Result<i64, StoreError> {
        self.write(|tx| {
            let stale = "SELECT id FROM promotion_plans
                 WHERE status = 'planned' AND created_by_principal IS ?1
                 ORDER BY id DESC LIMIT -1 OFFSET ?2";
            let keep = MAX_UNAPPROVED_PLANS - 1;
            tx.execute(
                &format!("DELETE FROM promotion_entries WHERE plan_id IN ({stale})"),
                params![p.by_principal, keep],
            )?;
            tx.execute(
                &format!("DELETE FROM promotion_plans WHERE id IN ({stale})"),
                params![p.by_principal, keep],
            )?;
            tx.execute(
                "INSERT INTO promotion_plans (status, fingerprint, selection, summary,
                     created_by, created_by_principal, created_at)
                 VALUES ('planned', ?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    p.fingerprint,
                    p.selection,
                    p.summary,
                    p.by_name,
                    p.by_principal,
                    now()
                ],
            )?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached(
                "INSERT INTO promotion_entries (plan_id, arn, entry) VALUES (?1, ?2, ?3)",
            )?;
            for (arn, entry) in &p.entries {
                insert.execute(params![id, arn, entry])?;
            }
            Ok((id, false))
        })
    }

    /// A plan and its entries; None when there is no such plan.
    pub(crate) fn plan(&self, id: i64) -> Result<Option<PlanRow>, StoreError> {
        read_plan(&self.lock(), id)
    }

    /// The newest plans first (without their entries; `entries` holds none), and how many
    /// plans there are.
    pub(crate) fn list_plans(
        &self,
        limit: usize,
    ) -> Result<(Vec<(PlanRow, usize)>, usize), StoreError> {
        let conn = self.lock();
        let total: i64 =
            conn.query_row("SELECT COUNT(*) FROM promotion_plans", [], |r| r.get(0))?;
        let ids: Vec<i64> = conn
            .prepare_cached("SELECT id FROM promotion_plans ORDER BY id DESC LIMIT ?1")?
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(mut row) = read_plan(&conn, id)? {
                let n = row.entries.len();
                row.entries.clear();
                out.push((row, n));
            }
        }
        Ok((out, usize::try_from(total).unwrap_or(0)))
    }

    /// Records a person's approval of a planned plan.
    pub(crate) fn approve_plan(
        &self,
        id: i64,
        by: Author<'_>,
        reason: &str,
    ) -> Result<PlanRow, StoreError> {
        self.write(|tx| {
            expect_status(tx, id, PlanStatus::Planned, "approved")?;
            tx.execute(
                "UPDATE promotion_plans SET status = 'approved', approved_by = ?2,
                     approved_by_principal = ?3, approved_at = ?4, approval_reason = ?5
                 WHERE id = ?1",
                params![id, by.name, by.principal, now(), reason],
            )?;
            Ok((existing(tx, id)?, false))
        })
    }

    /// Takes an approved plan for applying (approved → applying), so that two applies of one
    /// plan cannot both write.
    pub(crate) fn start_apply(&self, id: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            expect_status(tx, id, PlanStatus::Approved, "applied")?;
            tx.execute(
                "UPDATE promotion_plans SET status = 'applying' WHERE id = ?1",
                params![id],
            )?;
            Ok(((), false))
        })
    }

    /// Ends an apply in one transaction: each ARN's outcome, the virtual tags now held
    /// natively marked `promoted` (approved ones only; returns how many), the plan applied.
    pub(crate) fn finish_apply(
        &self,
        id: i64,
        outcomes: &[(String, String)],
        promoted: &[i64],
        principal: &str,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            expect_status(tx, id, PlanStatus::Applying, "finished")?;
            let mut outcome = tx.prepare_cached(
                "UPDATE promotion_entries SET outcome = ?3 WHERE plan_id = ?1 AND arn = ?2",
            )?;
            for (arn, o) in outcomes {
                outcome.execute(params![id, arn, o])?;
            }
            let mut mark = tx.prepare_cached(
                "UPDATE vt_tags SET status = 'promoted', promoted_by_plan = ?2
                 WHERE id = ?1 AND status = 'approved'",
            )?;
            let mut marked = 0;
            for tag in promoted {
                marked += mark.execute(params![tag, id])?;
            }
            tx.execute(
                "UPDATE promotion_plans SET status = 'applied', applied_by_principal = ?2,
                     applied_at = ?3
                 WHERE id = ?1",
                params![id, principal, now()],
            )?;
            Ok((marked, marked > 0))
        })
    }

    /// Gives back a plan taken by `start_apply` that wrote nothing (applying → approved).
    pub(crate) fn abandon_apply(&self, id: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE promotion_plans SET status = 'approved'
                 WHERE id = ?1 AND status = 'applying'",
                params![id],
            )?;
            Ok(((), false))
        })
    }
}

/// Refuses unless plan `id` exists and has `status`; `doing` names what was asked.
fn expect_status(
    tx: &Transaction<'_>,
    id: i64,
    status: PlanStatus,
    doing: &str,
) -> Result<(), StoreError> {
    let found: Option<String> = tx
        .query_row(
            "SELECT status FROM promotion_plans WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    status_allows(
        id,
        found.as_deref().and_then(PlanStatus::parse),
        status,
        doing,
    )
}

/// Refuses unless the plan `id` was found (`found`) with `status`; `doing` names what was
/// asked. Shared by the SQLite and PostgreSQL stores, so both refuse in the same words.
pub(crate) fn status_allows(
    id: i64,
    found: Option<PlanStatus>,
    status: PlanStatus,
    doing: &str,
) -> Result<(), StoreError> {
    let Some(found) = found else {
        return Err(StoreError::Refused(format!(
            "no promotion plan {id}; make one with action `plan`"
        )));
    };
    if found == status {
        return Ok(());
    }
    let why = match found {
        PlanStatus::Planned => "it is not approved yet: a person approves it first (action \
                                `approve` with the plan id and a reason)"
            .to_string(),
        PlanStatus::Approved => "it is already approved".to_string(),
        PlanStatus::Applying => "it is being applied, or an apply stopped half-way; make a new \
                                 plan"
            .to_string(),
        PlanStatus::Applied => "it was already applied; make a new plan".to_string(),
    };
    Err(StoreError::Refused(format!(
        "promotion plan {id} cannot be {doing}: {why}"
    )))
}

fn existing(conn: &Connection, id: i64) -> Result<PlanRow, StoreError> {
    read_plan(conn, id)?.ok_or_else(|| StoreError::Refused(format!("no promotion plan {id}")))
}

fn read_plan(conn: &Connection, id: i64) -> Result<Option<PlanRow>, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {PLAN_COLUMNS} FROM promotion_plans WHERE id = ?1"),
            params![id],
            |r| {
                let status: String = r.get(1)?;
                Ok(PlanRow {
                    id: r.get(0)?,
                    status: PlanStatus::parse(&status).unwrap_or(PlanStatus::Planned),
                    fingerprint: r.get(2)?,
                    selection: r.get(3)?,
                    summary: r.get(4)?,
                    created_by: r.get(5)?,
                    created_by_principal: r.get(6)?,
                    created_at: r.get(7)?,
                    approved_by: r.get(8)?,
                    approved_by_principal: r.get(9)?,
                    approved_at: r.get(10)?,
                    approval_reason: r.get(11)?,
                    applied_by_principal: r.get(12)?,
                    applied_at: r.get(13)?,
                    entries: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    row.entries = conn
        .prepare_cached(
            "SELECT arn, entry, outcome FROM promotion_entries WHERE plan_id = ?1 ORDER BY arn",
        )?
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    debug_assert!(!row.status.as_str().is_empty());
    Ok(Some(row))
}

#[cfg(test)]
mod migration_tests {
    use rusqlite::params;

    use super::super::VirtualTagDb;
    use crate::store::history_db::MIGRATIONS;

    #[test]
    fn a_version_3_file_keeps_its_tags_and_gains_promotion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        {
            let conn = crate::store::open(&path, &MIGRATIONS[..3]).unwrap();
            conn.execute(
                "INSERT INTO vt_tags (id, resource_id, key, value, source, confidence, status,
                     reason, override_native, created_by, created_at, created_by_principal)
                 VALUES (1, 'arn:a', 'Owner', 'x', 'manual', 1.0, 'approved', 'r', 0, 'cli',
                     '2026-01-01T00:00:00Z', 'local')",
                params![],
            )
            .unwrap();
        }
        let db = VirtualTagDb::open(&path).unwrap();
        let active = db.active().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!((active[0].id, active[0].key.as_str()), (1, "Owner"));
        let version: i64 = db
            .lock()
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        // Migrated to the latest version (5 when this test was written).
        assert_eq!(version, MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap());
        assert!(version >= 5);
        // The partial unique index came back with the rebuilt table.
        let dup = db.lock().execute(
            "INSERT INTO vt_tags (resource_id, key, value, source, confidence, status, reason,
                 override_native, created_by, created_at)
             VALUES ('arn:a', 'Owner', 'y', 'manual', 1.0, 'approved', 'r', 0, 'cli', 'now')",
            params![],
        );
        assert!(dup.is_err());
    }
}
