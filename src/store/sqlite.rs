//! The SQLite backend of the store traits: each call runs the synchronous store off the async
//! threads through `blocking`, the one place a store call meets `spawn_blocking`, so every
//! store fails the same way ("<store>: <why>") and a stopped task is told apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::audit::{Appended, AuditDb, AuditFilter, AuditRecord, StoredRecord};
use super::history::HistoryDb;
use super::history::dead_letters::{DeadLetter, NewDeadLetter};
use super::virtual_tags::promotion::{NewPlan, PlanRow};
use super::virtual_tags::{
    ActiveTag, Author, Decided, Decision, NewVirtualTag, RuleRow, TagQuery, VirtualTag,
    VirtualTagDb,
};
use super::{AuditStore, HistoryStore, NewRule, RuleUpdate, StoreError, VirtualTagStore};
use crate::history::{MemberRecord, NewSnapshot, SnapshotMeta};

/// A synchronous SQLite store behind the async store traits.
pub(crate) struct Sqlite<D>(pub Arc<D>);

impl<D> Sqlite<D> {
    pub(crate) fn new(db: Arc<D>) -> Sqlite<D> {
        Sqlite(db)
    }
}

/// Runs `work` on the blocking pool. A refusal passes as is (the caller asked for something
/// the store will not do); any other failure says which store failed.
pub(crate) async fn blocking<D, T>(
    db: &Arc<D>,
    store: &'static str,
    work: impl FnOnce(&D) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError>
where
    D: Send + Sync + 'static,
    T: Send + 'static,
{
    let db = db.clone();
    match tokio::task::spawn_blocking(move || work(&db)).await {
        Err(e) => Err(StoreError::Stopped(e.to_string())),
        Ok(Err(StoreError::Refused(why))) => Err(StoreError::Refused(why)),
        Ok(Err(e)) => Err(StoreError::In {
            store,
            source: Box::new(e),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

const HISTORY: &str = "history store";
const VIRTUAL_TAGS: &str = "virtual-tag store";
const AUDIT: &str = "audit log";
const ANOMALIES: &str = "anomaly-decision store";
const ALLOCATION_RULES: &str = "allocation-rule store";

#[async_trait]
impl super::AllocationRuleStore for Sqlite<super::allocation_rules::AllocationRuleDb> {
    async fn list(&self) -> Result<Vec<super::allocation_rules::AllocationRuleRow>, StoreError> {
        blocking(&self.0, ALLOCATION_RULES, |db| db.list()).await
    }

    async fn put(
        &self,
        r: super::allocation_rules::PutAllocationRule,
    ) -> Result<
        (
            super::allocation_rules::AllocationRuleRow,
            super::allocation_rules::RuleChange,
        ),
        StoreError,
    > {
        blocking(&self.0, ALLOCATION_RULES, move |db| db.put(&r)).await
    }

    async fn remove(
        &self,
        name: String,
        by_name: String,
        by_principal: String,
    ) -> Result<super::allocation_rules::AllocationRuleRow, StoreError> {
        blocking(&self.0, ALLOCATION_RULES, move |db| {
            db.remove(&name, &by_name, &by_principal)
        })
        .await
    }
}

#[async_trait]
impl super::AnomalyStore for Sqlite<super::anomalies::AnomalyDb> {
    async fn record(
        &self,
        d: super::anomalies::NewAnomalyDecision,
    ) -> Result<super::anomalies::AnomalyDecisionRow, StoreError> {
        blocking(&self.0, ANOMALIES, move |db| db.record(&d)).await
    }

    async fn latest(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<super::anomalies::AnomalyDecisionRow>, StoreError> {
        blocking(&self.0, ANOMALIES, move |db| db.latest(&ids)).await
    }

    async fn announced(&self, ids: Vec<String>) -> Result<Vec<String>, StoreError> {
        blocking(&self.0, ANOMALIES, move |db| db.announced(&ids)).await
    }

    async fn mark_announced(&self, ids: Vec<String>) -> Result<(), StoreError> {
        blocking(&self.0, ANOMALIES, move |db| db.mark_announced(&ids)).await
    }
}

#[async_trait]
impl HistoryStore for Sqlite<HistoryDb> {
    async fn insert(&self, s: NewSnapshot) -> Result<i64, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.insert(&s)).await
    }

    async fn list_headlines(
        &self,
        since: DateTime<Utc>,
        filters_hash: Option<String>,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        blocking(&self.0, HISTORY, move |db| {
            db.list_headlines(since, filters_hash.as_deref())
        })
        .await
    }

    async fn get(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.get(id)).await
    }

    async fn latest(
        &self,
        filters_hash: Option<String>,
    ) -> Result<Option<SnapshotMeta>, StoreError> {
        blocking(&self.0, HISTORY, move |db| {
            db.latest(filters_hash.as_deref())
        })
        .await
    }

    async fn before(&self, id: i64) -> Result<Option<SnapshotMeta>, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.before(id)).await
    }

    async fn members(&self, id: i64) -> Result<Vec<MemberRecord>, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.members(id)).await
    }

    async fn filter_sets(&self) -> Result<Vec<(Value, String, usize)>, StoreError> {
        blocking(&self.0, HISTORY, |db| db.filter_sets()).await
    }

    async fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.prune(older_than)).await
    }

    async fn record_dead_letter(&self, d: NewDeadLetter) -> Result<i64, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.record_dead_letter(&d)).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.dead_letters(limit)).await
    }

    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.dead_letter(id)).await
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        blocking(&self.0, HISTORY, |db| db.dead_letter_count()).await
    }

    async fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        blocking(&self.0, HISTORY, move |db| db.remove_dead_letter(id)).await
    }

    async fn dead_letter_failed_again(
        &self,
        id: i64,
        attempts: u32,
        error: String,
        failed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        blocking(&self.0, HISTORY, move |db| {
            db.dead_letter_failed_again(id, attempts, &error, failed_at)
        })
        .await
    }

    async fn record_summary(
        &self,
        sent_at: DateTime<Utc>,
        snapshot_id: i64,
        channels: usize,
        delivered: usize,
    ) -> Result<i64, StoreError> {
        blocking(&self.0, HISTORY, move |db| {
            db.record_summary(sent_at, snapshot_id, channels, delivered)
        })
        .await
    }

    async fn last_summary_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        blocking(&self.0, HISTORY, |db| db.last_summary_at()).await
    }
}

#[async_trait]
impl VirtualTagStore for Sqlite<VirtualTagDb> {
    async fn generation(&self) -> Result<u64, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, |db| db.generation()).await
    }

    async fn active(&self) -> Result<Vec<ActiveTag>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, |db| db.active()).await
    }

    async fn add(&self, tags: Vec<NewVirtualTag>) -> Result<(Vec<i64>, usize), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.add(&tags)).await
    }

    async fn list(
        &self,
        q: TagQuery,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<VirtualTag>, usize), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.list(&q, limit, offset)).await
    }

    async fn get(&self, ids: Vec<i64>) -> Result<Vec<VirtualTag>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.get(&ids)).await
    }

    async fn decide(&self, ids: Vec<i64>, d: Decision) -> Result<Decided, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.decide(&ids, &d)).await
    }

    async fn decide_matching(
        &self,
        q: TagQuery,
        d: Decision,
        max: usize,
    ) -> Result<Vec<VirtualTag>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| {
            db.decide_matching(&q, &d, max)
        })
        .await
    }

    async fn feedback(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, |db| db.feedback()).await
    }

    async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, |db| db.rules()).await
    }

    async fn create_rule(&self, r: NewRule) -> Result<RuleRow, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| {
            db.create_rule(
                &r.name,
                r.priority,
                r.enabled,
                r.trusted,
                &r.spec,
                Author {
                    name: &r.by_name,
                    principal: &r.by_principal,
                },
            )
        })
        .await
    }

    async fn update_rule(&self, id: i64, u: RuleUpdate) -> Result<RuleRow, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| {
            db.update_rule(
                id,
                u.name.as_deref(),
                u.priority,
                u.enabled,
                u.trusted,
                u.spec.as_deref(),
            )
        })
        .await
    }

    async fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.delete_rule(id)).await
    }

    async fn record_rule_run(&self, counts: Vec<(i64, u64)>) -> Result<(), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.record_rule_run(&counts)).await
    }

    async fn create_plan(&self, p: NewPlan) -> Result<i64, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.create_plan(&p)).await
    }

    async fn list_plans(&self, limit: usize) -> Result<(Vec<(PlanRow, usize)>, usize), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.list_plans(limit)).await
    }

    async fn plan(&self, id: i64) -> Result<Option<PlanRow>, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.plan(id)).await
    }

    async fn approve_plan(
        &self,
        id: i64,
        by_name: String,
        by_principal: String,
        reason: String,
    ) -> Result<PlanRow, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| {
            db.approve_plan(
                id,
                Author {
                    name: &by_name,
                    principal: &by_principal,
                },
                &reason,
            )
        })
        .await
    }

    async fn start_apply(&self, id: i64) -> Result<(), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.start_apply(id)).await
    }

    async fn abandon_apply(&self, id: i64) -> Result<(), StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| db.abandon_apply(id)).await
    }

    async fn finish_apply(
        &self,
        id: i64,
        outcomes: Vec<(String, String)>,
        promoted: Vec<i64>,
        principal: String,
    ) -> Result<usize, StoreError> {
        blocking(&self.0, VIRTUAL_TAGS, move |db| {
            db.finish_apply(id, &outcomes, &promoted, &principal)
        })
        .await
    }
}

#[async_trait]
impl AuditStore for Sqlite<AuditDb> {
    async fn append(&self, r: AuditRecord, wait: Duration) -> Appended {
        // Already asynchronous: the log has its own writer thread.
        self.0.append(r, wait).await
    }

    async fn query(&self, f: AuditFilter) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        blocking(&self.0, AUDIT, move |db| db.query(&f)).await
    }

    async fn close(&self) {
        let closed = blocking(&self.0, AUDIT, |db| {
            db.close();
            Ok(())
        })
        .await;
        if let Err(e) = closed {
            tracing::error!(error = %e, "closing the audit log failed");
        }
    }

    fn failing(&self) -> Option<String> {
        self.0.failing()
    }

    fn queue_depth(&self) -> Option<usize> {
        Some(self.0.queue_depth())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_say_which_store_and_refusals_pass_as_asked() {
        let db = Arc::new(());
        let failed = blocking(&db, HISTORY, |_| -> Result<(), _> {
            Err(StoreError::Sql("disk I/O error".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(
            failed.to_string(),
            "history store: database error: disk I/O error"
        );
        let refused = blocking(&db, VIRTUAL_TAGS, |_| -> Result<(), _> {
            Err(StoreError::Refused("priority 50 is taken".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(refused, StoreError::Refused(ref why) if why == "priority 50 is taken"));
        let stopped = blocking(&db, AUDIT, |_| -> Result<(), StoreError> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(stopped, StoreError::Stopped(_)), "{stopped}");
    }
}
