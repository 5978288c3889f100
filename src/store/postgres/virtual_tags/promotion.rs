//! Promotion plans on PostgreSQL (`promotion_plans`, `promotion_entries`) with the SQLite
//! store's state machine — planned → approved → applying → applied, each step checked under
//! the write lock so that two replicas cannot both apply one plan — and its bound on the
//! unapproved plans a principal keeps.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PgVirtualTags, finish, lock};
use crate::store::StoreError;
use crate::store::virtual_tags::now;
use crate::store::virtual_tags::promotion::{
    MAX_UNAPPROVED_PLANS, NewPlan, PLAN_COLUMNS, PlanRow, PlanStatus, status_allows,
};

impl PgVirtualTags {
    /// Stores a plan (planned); a principal's oldest unapproved plans beyond
    /// `MAX_UNAPPROVED_PLANS` are dropped, as in the SQLite store.
    pub(super) async fn create_plan(&self, p: &NewPlan) -> Result<i64, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            let stale = "SELECT id FROM promotion_plans
                 WHERE status = 'planned' AND created_by_principal IS NOT DISTINCT FROM $1
                 ORDER BY id DESC OFFSET $2";
            let keep = MAX_UNAPPROVED_PLANS - 1;
            tx.execute(
                &format!("DELETE FROM promotion_entries WHERE plan_id IN ({stale})"),
                &[&p.by_principal, &keep],
            )
            .await?;
            tx.execute(
                &format!("DELETE FROM promotion_plans WHERE id IN ({stale})"),
                &[&p.by_principal, &keep],
            )
            .await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO promotion_plans (status, fingerprint, selection, summary,
                         created_by, created_by_principal, created_at)
                     VALUES ('planned', $1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        &p.fingerprint,
                        &p.selection,
                        &p.summary,
                        &p.by_name,
                        &p.by_principal,
                        &now(),
                    ],
                )
                .await?
                .try_get(0)?;
            let (arns, entries): (Vec<&str>, Vec<&str>) = p
                .entries
                .iter()
                .map(|(a, e)| (a.as_str(), e.as_str()))
                .unzip();
            tx.execute(
                "INSERT INTO promotion_entries (plan_id, arn, entry)
                 SELECT $1, arn, entry FROM unnest($2::text[], $3::text[]) AS u(arn, entry)",
                &[&id, &arns, &entries],
            )
            .await?;
            Ok(id)
        }
        .await;
        finish(tx, out, |_| false).await
    }

    pub(super) async fn plan(&self, id: i64) -> Result<Option<PlanRow>, StoreError> {
        let client = self.pool.get().await?;
        read_plan(&client, id, true).await
    }

    /// The newest plans (without entries) with their entry counts, and how many there are.
    pub(super) async fn list_plans(
        &self,
        limit: usize,
    ) -> Result<(Vec<(PlanRow, usize)>, usize), StoreError> {
        let client = self.pool.get().await?;
        let total: i64 = client
            .query_one("SELECT COUNT(*) FROM promotion_plans", &[])
            .await?
            .try_get(0)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {PLAN_COLUMNS},
                         (SELECT COUNT(*) FROM promotion_entries e WHERE e.plan_id = p.id)
                     FROM promotion_plans p ORDER BY id DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await?;
        let out = rows
            .iter()
            .map(|r| {
                let n: i64 = r.try_get(14)?;
                Ok((read_row(r)?, usize::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((out, usize::try_from(total).unwrap_or(0)))
    }

    pub(super) async fn approve_plan(
        &self,
        id: i64,
        by_name: &str,
        by_principal: &str,
        reason: &str,
    ) -> Result<PlanRow, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            expect_status(&tx, id, PlanStatus::Planned, "approved").await?;
            tx.execute(
                "UPDATE promotion_plans SET status = 'approved', approved_by = $2,
                     approved_by_principal = $3, approved_at = $4, approval_reason = $5
                 WHERE id = $1",
                &[&id, &by_name, &by_principal, &now(), &reason],
            )
            .await?;
            read_plan(&tx, id, true)
                .await?
                .ok_or_else(|| StoreError::Refused(format!("no promotion plan {id}")))
        }
        .await;
        finish(tx, out, |_| false).await
    }

    pub(super) async fn start_apply(&self, id: i64) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            expect_status(&tx, id, PlanStatus::Approved, "applied").await?;
            tx.execute(
                "UPDATE promotion_plans SET status = 'applying' WHERE id = $1",
                &[&id],
            )
            .await?;
            Ok(())
        }
        .await;
        finish(tx, out, |_| false).await
    }

    pub(super) async fn abandon_apply(&self, id: i64) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE promotion_plans SET status = 'approved'
                 WHERE id = $1 AND status = 'applying'",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Each ARN's outcome, the approved virtual tags now held natively marked `promoted`
    /// (returns how many), the plan applied: one transaction.
    pub(super) async fn finish_apply(
        &self,
        id: i64,
        outcomes: &[(String, String)],
        promoted: &[i64],
        principal: &str,
    ) -> Result<usize, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            expect_status(&tx, id, PlanStatus::Applying, "finished").await?;
            let (arns, results): (Vec<&str>, Vec<&str>) = outcomes
                .iter()
                .map(|(a, o)| (a.as_str(), o.as_str()))
                .unzip();
            tx.execute(
                "UPDATE promotion_entries e SET outcome = u.outcome
                 FROM unnest($2::text[], $3::text[]) AS u(arn, outcome)
                 WHERE e.plan_id = $1 AND e.arn = u.arn",
                &[&id, &arns, &results],
            )
            .await?;
            let marked = tx
                .execute(
                    "UPDATE vt_tags SET status = 'promoted', promoted_by_plan = $2
                     WHERE id = ANY($1) AND status = 'approved'",
                    &[&promoted, &id],
                )
                .await?;
            tx.execute(
                "UPDATE promotion_plans SET status = 'applied', applied_by_principal = $2,
                     applied_at = $3
                 WHERE id = $1",
                &[&id, &principal, &now()],
            )
            .await?;
            Ok(usize::try_from(marked).unwrap_or(usize::MAX))
        }
        .await;
        finish(tx, out, |marked| *marked > 0).await
    }
}

/// Refuses unless plan `id` exists and has `status` (the SQLite store's words).
async fn expect_status(
    client: &impl GenericClient,
    id: i64,
    status: PlanStatus,
    doing: &str,
) -> Result<(), StoreError> {
    let found = client
        .query_opt("SELECT status FROM promotion_plans WHERE id = $1", &[&id])
        .await?
        .map(|r| r.try_get::<_, String>(0))
        .transpose()?;
    status_allows(
        id,
        found.as_deref().and_then(PlanStatus::parse),
        status,
        doing,
    )
}

fn read_row(r: &Row) -> Result<PlanRow, StoreError> {
    let status: String = r.try_get(1)?;
    Ok(PlanRow {
        id: r.try_get(0)?,
        status: PlanStatus::parse(&status).unwrap_or(PlanStatus::Planned),
        fingerprint: r.try_get(2)?,
        selection: r.try_get(3)?,
        summary: r.try_get(4)?,
        created_by: r.try_get(5)?,
        created_by_principal: r.try_get(6)?,
        created_at: r.try_get(7)?,
        approved_by: r.try_get(8)?,
        approved_by_principal: r.try_get(9)?,
        approved_at: r.try_get(10)?,
        approval_reason: r.try_get(11)?,
        applied_by_principal: r.try_get(12)?,
        applied_at: r.try_get(13)?,
        entries: Vec::new(),
    })
}

/// A plan, with its entries (by ARN) when `entries`; None when there is no such plan.
async fn read_plan(
    client: &impl GenericClient,
    id: i64,
    entries: bool,
) -> Result<Option<PlanRow>, StoreError> {
    let Some(row) = client
        .query_opt(
            &format!("SELECT {PLAN_COLUMNS} FROM promotion_plans WHERE id = $1"),
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut plan = read_row(&row)?;
    if entries {
        plan.entries = client
            .query(
                "SELECT arn, entry, outcome FROM promotion_entries WHERE plan_id = $1
                 ORDER BY arn COLLATE \"C\"",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
    }
    Ok(Some(plan))
}
