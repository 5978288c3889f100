//! Tag rules on PostgreSQL (`vt_rules`): creating, changing, deleting and listing them, and
//! recording their runs, as the SQLite store does — names and priorities unique among rules not
//! deleted (the refusal names the holder), a change that changes nothing writes nothing, run
//! statistics do not move the generation.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::{PgVirtualTags, finish, lock};
use crate::store::virtual_tags::rules::{
    RULE_COLUMNS, check_name, deleted, name_taken, no_rule, priority_taken,
};
use crate::store::virtual_tags::{RuleRow, now, unsigned};
use crate::store::{NewRule, RuleUpdate, StoreError};

impl PgVirtualTags {
    /// Rules not deleted, by priority ascending.
    pub(super) async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {RULE_COLUMNS} FROM vt_rules WHERE NOT deleted ORDER BY priority"),
                &[],
            )
            .await?;
        rows.iter().map(read_rule).collect()
    }

    pub(super) async fn create_rule(&self, r: &NewRule) -> Result<RuleRow, StoreError> {
        check_name(&r.name)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            ensure_free(&tx, Some(&r.name), Some(r.priority), None).await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO vt_rules (name, priority, enabled, trusted, spec, created_by,
                         created_at, updated_at, created_by_principal)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
                    &[
                        &r.name,
                        &r.priority,
                        &r.enabled,
                        &r.trusted,
                        &r.spec,
                        &r.by_name,
                        &now(),
                        &r.by_principal,
                    ],
                )
                .await?
                .try_get(0)?;
            Ok(rule(&tx, id).await?.0)
        }
        .await;
        finish(tx, out, |_| true).await
    }

    /// Changes the fields given. Changing nothing writes nothing (and bumps no generation).
    pub(super) async fn update_rule(&self, id: i64, u: &RuleUpdate) -> Result<RuleRow, StoreError> {
        if let Some(name) = &u.name {
            check_name(name)?;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            let old = live_rule(&tx, id).await?;
            let new = RuleRow {
                name: u.name.clone().unwrap_or_else(|| old.name.clone()),
                priority: u.priority.unwrap_or(old.priority),
                enabled: u.enabled.unwrap_or(old.enabled),
                trusted: u.trusted.unwrap_or(old.trusted),
                spec: u.spec.clone().unwrap_or_else(|| old.spec.clone()),
                ..old.clone()
            };
            if new == old {
                return Ok((old, false));
            }
            ensure_free(
                &tx,
                (new.name != old.name).then_some(new.name.as_str()),
                (new.priority != old.priority).then_some(new.priority),
                Some(id),
            )
            .await?;
            tx.execute(
                "UPDATE vt_rules SET name = $2, priority = $3, enabled = $4, trusted = $5,
                     spec = $6, updated_at = $7
                 WHERE id = $1",
                &[
                    &id,
                    &new.name,
                    &new.priority,
                    &new.enabled,
                    &new.trusted,
                    &new.spec,
                    &now(),
                ],
            )
            .await?;
            Ok((rule(&tx, id).await?.0, true))
        }
        .await;
        finish(tx, out, |(_, changed)| *changed)
            .await
            .map(|(row, _)| row)
    }

    /// Marks a rule deleted (kept for the history of its tags; its name and priority freed).
    pub(super) async fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            live_rule(&tx, id).await?;
            tx.execute(
                "UPDATE vt_rules SET deleted = TRUE, updated_at = $2 WHERE id = $1",
                &[&id, &now()],
            )
            .await?;
            Ok(rule(&tx, id).await?.0)
        }
        .await;
        finish(tx, out, |_| true).await
    }

    /// Adds each rule's matches to its total and sets its last run; an unknown rule id fails
    /// the whole record. The generation stays.
    pub(super) async fn record_rule_run(&self, counts: &[(i64, u64)]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let out = async {
            lock(&tx).await?;
            let now = now();
            for &(id, n) in counts {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                let changed = tx
                    .execute(
                        "UPDATE vt_rules SET matches = matches + $2, last_run_at = $3,
                             last_run_matches = $2
                         WHERE id = $1",
                        &[&id, &n, &now],
                    )
                    .await?;
                if changed == 0 {
                    return Err(no_rule(id));
                }
            }
            Ok(())
        }
        .await;
        finish(tx, out, |_| false).await
    }
}

fn read_rule(r: &Row) -> Result<RuleRow, StoreError> {
    Ok(RuleRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        priority: r.try_get(2)?,
        enabled: r.try_get(3)?,
        trusted: r.try_get(4)?,
        spec: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        matches: unsigned(r.try_get(9)?),
        last_run_at: r.try_get(10)?,
        last_run_matches: r.try_get::<_, Option<i64>>(11)?.map(unsigned),
        created_by_principal: r.try_get(12)?,
    })
}

/// A rule by id, deleted or not, and whether it is deleted.
async fn rule(tx: &Transaction<'_>, id: i64) -> Result<(RuleRow, bool), StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {RULE_COLUMNS}, deleted FROM vt_rules WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| no_rule(id))?;
    Ok((read_rule(&row)?, row.try_get(13)?))
}

/// A rule that can still be changed: known and not deleted.
async fn live_rule(tx: &Transaction<'_>, id: i64) -> Result<RuleRow, StoreError> {
    match rule(tx, id).await? {
        (row, false) => Ok(row),
        (row, true) => Err(deleted(id, &row.name)),
    }
}

/// Fails with a message naming the holder when a name or priority is taken by another rule
/// not deleted (the unique indexes would refuse it too, less helpfully).
async fn ensure_free(
    client: &impl GenericClient,
    name: Option<&str>,
    priority: Option<i64>,
    except: Option<i64>,
) -> Result<(), StoreError> {
    if let Some(name) = name
        && let Some(holder) = client
            .query_opt(
                "SELECT id FROM vt_rules
                 WHERE NOT deleted AND name = $1 AND id IS DISTINCT FROM $2",
                &[&name, &except],
            )
            .await?
    {
        return Err(name_taken(name, holder.try_get(0)?));
    }
    if let Some(priority) = priority
        && let Some(holder) = client
            .query_opt(
                "SELECT id, name FROM vt_rules
                 WHERE NOT deleted AND priority = $1 AND id IS DISTINCT FROM $2",
                &[&priority, &except],
            )
            .await?
    {
        let name: String = holder.try_get(1)?;
        return Err(priority_taken(priority, &name, holder.try_get(0)?));
    }
    Ok(())
}
