//! The virtual-tag store on PostgreSQL: the behaviour shared with the SQLite store
//! (`store::virtual_tags::contract`, every test in a schema of its own), plus what only a
//! shared database shows — a failed batch rolled back whole past the input checks, replicas
//! seeing each other's changes and generation, and concurrent writers serialized.

use std::sync::Arc;

use super::*;
use crate::store::postgres::connect;
use crate::store::postgres::testing::TestSchema;
use crate::store::virtual_tags::contract::{Blocking, run_contract};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(schema: &TestSchema) -> PgVirtualTags {
    PgVirtualTags::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap()
}

/// The PostgreSQL store behind the trait, in a fresh schema (dropped with the guard).
fn open_contract() -> (TestSchema, Blocking) {
    let rt = runtime();
    let (schema, store) = rt.block_on(async {
        let schema = TestSchema::create().await;
        let store = open(&schema).await;
        (schema, store)
    });
    (schema, Blocking::new(rt, Arc::new(store)))
}

mod contract {
    super::run_contract!(super::open_contract);
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

fn approve() -> Decision {
    Decision {
        approve: true,
        by: "reviewer".into(),
        by_principal: "token:reviewer".into(),
        reason: String::new(),
    }
}

/// Past the input checks, the table's CHECK fails the batch midway (after a supersede and
/// two inserts would have happened row by row): all of it is rolled back.
#[tokio::test]
async fn a_failed_add_writes_nothing() {
    let schema = TestSchema::create().await;
    let store = open(&schema).await;
    let (before, _) = store
        .add(&[tag("i-1", "A", "old", TagStatus::Approved)])
        .await
        .unwrap();
    let generation = store.generation().await.unwrap();
    let batch = [
        tag("i-1", "A", "new", TagStatus::Approved),
        tag("i-2", "A", "x", TagStatus::Pending),
        tag("i-3", "A", "x", TagStatus::Denied),
    ];
    let err = store.write_tags(&batch).await.unwrap_err().to_string();
    assert!(err.contains("check constraint"), "{err}");
    let mut bad = tag("i-4", "A", "x", TagStatus::Pending);
    bad.confidence = 1.5;
    assert!(store.write_tags(&[bad]).await.is_err());
    let (rows, total) = store.list(&TagQuery::default(), 10, 0).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(
        (rows[0].id, rows[0].status),
        (before[0], TagStatus::Approved)
    );
    assert_eq!(store.generation().await.unwrap(), generation);
    // The pooled connections still work afterwards.
    let (after, n) = store
        .add(&[tag("i-1", "A", "new", TagStatus::Approved)])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let old = store.get(&before).await.unwrap().pop().unwrap();
    assert_eq!(old.superseded_by, Some(after[0]));
}

/// Two replicas (two pools) on one schema: what one writes the other reads, and the
/// generation the overlay watches moves for both.
#[tokio::test]
async fn replicas_see_each_others_changes() {
    let schema = TestSchema::create().await;
    let a = open(&schema).await;
    let b = open(&schema).await;
    let (ids, _) = a
        .add(&[tag("i-1", "Owner", "alice", TagStatus::Pending)])
        .await
        .unwrap();
    let g = b.generation().await.unwrap();
    assert_eq!(g, 1);
    let (decided, _) = b.decide(&ids, &approve()).await.unwrap();
    assert_eq!(decided[0].status, TagStatus::Approved);
    assert_eq!(a.generation().await.unwrap(), 2);
    let active = a.active().await.unwrap();
    assert_eq!((active[0].id, active[0].value.as_str()), (ids[0], "alice"));
}

/// Replicas adding and deciding at once: writers are serialized, so every key keeps one
/// approved row, ids stay unique and the generation counts every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_serialized() {
    let schema = TestSchema::create().await;
    let mut tasks = Vec::new();
    for replica in 0..4 {
        let store = open(&schema).await;
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let value = format!("{replica}-{round}");
                let (ids, _) = store
                    .add(&[
                        tag("i-1", "Owner", &value, TagStatus::Approved),
                        tag("i-2", "Owner", &value, TagStatus::Pending),
                    ])
                    .await
                    .unwrap();
                // Another replica may have superseded the proposal already: skipped, fine.
                store.decide(&ids[1..], &approve()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = open(&schema).await;
    let active = store.active().await.unwrap();
    assert_eq!(active.len(), 2, "{active:?}");
    let (rows, total) = store.list(&TagQuery::default(), 1000, 0).await.unwrap();
    assert_eq!(total, 80);
    let superseded = rows
        .iter()
        .filter(|t| t.status == TagStatus::Superseded)
        .count();
    assert_eq!(superseded, 78);
}
