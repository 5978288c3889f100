//! Audit log on PostgreSQL: the chain verifies, edits are found, filters page, and many
//! concurrent writers (separate pools, as separate replicas have) keep one chain.

use super::*;
use crate::store::postgres::testing::TestSchema;
use crate::store::postgres::{PgOptions, connect};

fn record(i: usize, outcome: &str) -> AuditRecord {
    AuditRecord {
        ts: format!("2026-11-22T10:00:{:02}.000000Z", i % 60),
        correlation_id: format!("c-{i}"),
        session: "s1".into(),
        principal: if i == 0 {
            None
        } else {
            Some(format!("token:{}", i % 2))
        },
        client: "test/1".into(),
        transport: "http".into(),
        tool: if i.is_multiple_of(2) {
            "check_tag_compliance"
        } else {
            "get_tagging_policy"
        }
        .into(),
        arguments: "{}".into(),
        arguments_hash: "h".into(),
        outcome: outcome.into(),
        duration_us: 1000 + i as u64,
        result_bytes: 10,
    }
}

async fn open(options: &PgOptions) -> PgAudit {
    PgAudit::open(connect(options).await.unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_chain_query_and_verify() {
    let schema = TestSchema::create().await;
    let log = open(&schema.options()).await;
    for i in 0..10 {
        let outcome = if i == 3 { "refused:budget" } else { "ok" };
        assert_eq!(
            log.append(record(i, outcome), Duration::from_secs(10))
                .await,
            Appended::Written(i as i64 + 1)
        );
    }
    assert_eq!(log.failing(), None);
    let (rows, total) = AuditStore::query(
        &log,
        AuditFilter {
            outcome: Some("refused".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(total, 1);
    assert_eq!(rows[0].record.correlation_id, "c-3");
    let (rows, total) = AuditStore::query(
        &log,
        AuditFilter {
            principal: Some("token:1".into()),
            before_seq: Some(8),
            limit: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(total, 5);
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![6, 4]);
    log.close().await;
    assert!(matches!(
        log.append(record(99, "ok"), Duration::from_secs(1)).await,
        Appended::Failed(_)
    ));
    let pool = connect(&schema.options()).await.unwrap();
    match verify(&pool).await.unwrap() {
        Verification::Intact { rows, .. } => assert_eq!(rows, 10),
        other => panic!("{other:?}"),
    }
    let t = tail(&pool, 3).await.unwrap();
    assert_eq!(t.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![8, 9, 10]);
    // The chain hash is the SQLite log's: the same record hashes the same way.
    assert_eq!(t[0].hash, chain_hash(&t[0].prev_hash, 8, &t[0].record));
}

#[tokio::test]
async fn an_edited_or_removed_row_is_found() {
    let schema = TestSchema::create().await;
    let log = open(&schema.options()).await;
    for i in 0..6 {
        log.append(record(i, "ok"), Duration::from_secs(10)).await;
    }
    log.close().await;
    let pool = connect(&schema.options()).await.unwrap();
    let client = pool.get().await.unwrap();
    client
        .execute("UPDATE audit SET outcome = 'refused:x' WHERE seq = 4", &[])
        .await
        .unwrap();
    match verify(&pool).await.unwrap() {
        Verification::Broken {
            seq, rows_checked, ..
        } => assert_eq!((seq, rows_checked), (4, 3)),
        other => panic!("{other:?}"),
    }
    client
        .execute("DELETE FROM audit WHERE seq = 4", &[])
        .await
        .unwrap();
    match verify(&pool).await.unwrap() {
        Verification::Broken { seq, reason, .. } => {
            assert_eq!(seq, 5);
            assert!(reason.contains("removed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_database_without_a_log_says_so() {
    let schema = TestSchema::create().await;
    let pool = connect(&schema.options()).await.unwrap();
    let err = verify(&pool).await.unwrap_err().to_string();
    assert!(err.contains("no audit log"), "{err}");
}

#[tokio::test]
async fn concurrent_writers_keep_one_chain() {
    // Four logs with their own pools (as four replicas have), appending at once.
    let schema = TestSchema::create().await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let log = Arc::new(open(&schema.options()).await);
        writers.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            for i in 0..50 {
                let log = log.clone();
                calls.push(tokio::spawn(async move {
                    log.append(record(w * 1000 + i, "ok"), Duration::from_secs(60))
                        .await
                }));
            }
            let mut seqs = Vec::new();
            for c in calls {
                match c.await.unwrap() {
                    Appended::Written(seq) => seqs.push(seq),
                    other => panic!("{other:?}"),
                }
            }
            log.close().await;
            seqs
        }));
    }
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<i64>>());
    let pool = connect(&schema.options()).await.unwrap();
    match verify(&pool).await.unwrap() {
        Verification::Intact { rows, .. } => assert_eq!(rows, 200),
        other => panic!("{other:?}"),
    }
}
