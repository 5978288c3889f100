//! History store on PostgreSQL: round trips, listing order, the previous snapshot, filter
//! sets, pruning with garbage collection, dead letters, and replicas inserting at once.

use chrono::Duration;
use serde_json::json;

use super::*;
use crate::store::history::tests::{at, member};
use crate::store::postgres::connect;
use crate::store::postgres::testing::TestSchema;

fn snapshot(taken_at: DateTime<Utc>, filters: Value, members: Vec<MemberRecord>) -> NewSnapshot {
    NewSnapshot {
        taken_at,
        trigger: "tool".into(),
        source: "demo".into(),
        policy_hash: "abc".into(),
        filters,
        resources: members.len(),
        in_scope: 4,
        compliant: 3,
        violations: 2,
        score_pct: Some(75.0),
        native_score_pct: Some(50.5),
        spend_score_pct: None,
        counts: json!({"by_kind": {"missing_tag": 2}}),
        by_violation: [("missing_tag:Owner".to_string(), 2)].into_iter().collect(),
        members,
    }
}

/// Rows of `table`; for the chunked dictionaries (`resources`, `tag_sets`), their entries.
async fn rows(store: &PgHistory, table: &str) -> i64 {
    let client = store.pool.get().await.unwrap();
    let chunked = match table {
        "resources" => Some("resource_chunks"),
        "tag_sets" => Some("tag_set_chunks"),
        _ => None,
    };
    match chunked {
        Some(chunk_table) => client
            .query(&format!("SELECT data FROM {chunk_table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let data: Vec<u8> = r.get(0);
                crate::store::history::chunks::open(&data).unwrap().len() as i64
            })
            .sum(),
        None => client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0),
    }
}

#[tokio::test]
async fn snapshots_round_trip_list_and_prune() {
    let schema = TestSchema::create().await;
    let store = PgHistory::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap();
    let store: &dyn HistoryStore = &store;
    let mut members: Vec<MemberRecord> = (0..30).map(member).collect();
    members[1].tags.clear();
    members[4]
        .tags
        .push(("stack".into(), "ünïcode \"q\"".into()));
    let taken_at = at(22, 10) + Duration::nanoseconds(123_456_789);
    let filters = json!({"resource_types": ["ec2:*"]});
    let s = snapshot(taken_at, filters.clone(), members.clone());
    let first = store.insert(s.clone()).await.unwrap();
    let meta = store.get(first).await.unwrap().unwrap();
    assert_eq!(meta.taken_at, taken_at);
    assert_eq!(meta.filters, filters);
    assert_eq!(meta.filters_hash, filters_hash(&filters));
    assert_eq!(
        (meta.resources, meta.score_pct, meta.spend_score_pct),
        (30, Some(75.0), None)
    );
    assert_eq!(meta.by_violation, s.by_violation);
    assert_eq!(store.members(first).await.unwrap(), members);
    assert_eq!(store.get(first + 100).await.unwrap(), None);
    assert!(store.members(first + 100).await.is_err());

    // A second snapshot of the same estate reuses every interned row.
    let second = store
        .insert(snapshot(at(23, 10), filters.clone(), members.clone()))
        .await
        .unwrap();
    let other = store
        .insert(snapshot(at(23, 11), json!({}), vec![member(100)]))
        .await
        .unwrap();
    assert_eq!(store.before(second).await.unwrap().unwrap().id, first);
    assert_eq!(store.before(first).await.unwrap(), None);
    assert_eq!(store.latest(None).await.unwrap().unwrap().id, other);
    assert_eq!(
        store
            .latest(Some(filters_hash(&filters)))
            .await
            .unwrap()
            .unwrap()
            .id,
        second
    );
    let listed = store.list_headlines(at(1, 0), None).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![first, second, other]
    );
    assert!(
        listed[0].by_violation.is_empty(),
        "headlines skip breakdowns"
    );
    let sets = store.filter_sets().await.unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        (sets[0].1.clone(), sets[0].2),
        (filters_hash(&json!({})), 1)
    );

    // Pruning the first two frees the rows only they referenced.
    assert_eq!(store.prune(at(23, 11)).await.unwrap(), 2);
    assert_eq!(store.get(first).await.unwrap(), None);
    assert_eq!(store.members(other).await.unwrap(), vec![member(100)]);
}

#[tokio::test]
async fn interned_rows_are_shared_and_collected() {
    let schema = TestSchema::create().await;
    let store = PgHistory::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap();
    let members: Vec<MemberRecord> = (0..20).map(member).collect();
    HistoryStore::insert(&store, snapshot(at(1, 0), json!({}), members.clone()))
        .await
        .unwrap();
    HistoryStore::insert(&store, snapshot(at(2, 0), json!({}), members))
        .await
        .unwrap();
    assert_eq!(rows(&store, "resources").await, 20);
    // 7 cost centres; violation sets: none or one.
    assert_eq!(rows(&store, "tag_sets").await, 7);
    assert_eq!(rows(&store, "violation_sets").await, 2);
    HistoryStore::insert(&store, snapshot(at(3, 0), json!({}), vec![member(500)]))
        .await
        .unwrap();
    assert_eq!(HistoryStore::prune(&store, at(3, 0)).await.unwrap(), 2);
    assert_eq!(rows(&store, "resources").await, 1);
    assert_eq!(rows(&store, "tag_sets").await, 1);
}

#[tokio::test]
async fn replicas_inserting_at_once_share_interned_rows() {
    let schema = TestSchema::create().await;
    let mut tasks = Vec::new();
    for r in 0..4 {
        let store = PgHistory::open(connect(&schema.options()).await.unwrap())
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let members: Vec<MemberRecord> = (0..200).map(member).collect();
            let id = HistoryStore::insert(&store, snapshot(at(5, r), json!({}), members.clone()))
                .await
                .unwrap();
            assert_eq!(HistoryStore::members(&store, id).await.unwrap(), members);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = PgHistory::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows(&store, "snapshots").await, 4);
    assert_eq!(rows(&store, "resources").await, 200);
}

#[tokio::test]
async fn dead_letters_are_kept_newest_first() {
    let schema = TestSchema::create().await;
    let store = PgHistory::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap();
    for i in 0..3 {
        HistoryStore::record_dead_letter(
            &store,
            NewDeadLetter {
                failed_at: at(1, i),
                channel: "webhook".into(),
                snapshot_id: i64::from(i),
                attempts: 4,
                error: "HTTP 500".into(),
                payload: json!({"n": i}),
            },
        )
        .await
        .unwrap();
    }
    let kept = HistoryStore::dead_letters(&store, 2).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].payload, json!({"n": 2}));
    assert_eq!(kept[0].failed_at, "2026-11-01T02:00:00Z");
    assert_eq!(kept[1].attempts, 4);
}

/// Resending: one letter read back, a failed resend adds attempts, a delivered one is removed;
/// the last weekly summary's time is kept.
#[tokio::test]
async fn resends_update_and_remove_dead_letters_and_summaries_are_kept() {
    let schema = TestSchema::create().await;
    let store = PgHistory::open(connect(&schema.options()).await.unwrap())
        .await
        .unwrap();
    let id = HistoryStore::record_dead_letter(
        &store,
        NewDeadLetter {
            failed_at: at(1, 0),
            channel: "email".into(),
            snapshot_id: 7,
            attempts: 3,
            error: "connection refused".into(),
            payload: json!({"subject": "score dropped"}),
        },
    )
    .await
    .unwrap();
    assert_eq!(HistoryStore::dead_letter_count(&store).await.unwrap(), 1);
    let one = HistoryStore::dead_letter(&store, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.channel, "email");
    assert!(
        HistoryStore::dead_letter(&store, id + 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        HistoryStore::dead_letter_failed_again(&store, id, 2, "timed out".into(), at(2, 0))
            .await
            .unwrap()
    );
    let again = HistoryStore::dead_letter(&store, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.attempts, again.error.as_str()), (5, "timed out"));
    assert_eq!(again.failed_at, "2026-11-02T00:00:00Z");
    assert!(HistoryStore::remove_dead_letter(&store, id).await.unwrap());
    assert!(!HistoryStore::remove_dead_letter(&store, id).await.unwrap());
    assert_eq!(HistoryStore::dead_letter_count(&store).await.unwrap(), 0);

    assert_eq!(HistoryStore::last_summary_at(&store).await.unwrap(), None);
    HistoryStore::record_summary(&store, at(8, 6), 9, 2, 2)
        .await
        .unwrap();
    HistoryStore::record_summary(&store, at(1, 6), 3, 1, 0)
        .await
        .unwrap();
    assert_eq!(
        HistoryStore::last_summary_at(&store).await.unwrap(),
        Some(at(8, 6))
    );
}

#[tokio::test]
async fn row_intern_tables_of_version_2_are_moved_into_chunks_with_ids_kept() {
    let schema = TestSchema::create().await;
    let pool = connect(&schema.options()).await.unwrap();
    // The layout the first two migrations made, with one snapshot referring to its rows.
    migrate(&pool, "history", &MIGRATIONS[..2]).await.unwrap();
    let labels = r#"["missing_tag:Owner"]"#;
    {
        let client = pool.get().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO resources (id, fingerprint, rid, type, region, account, name) VALUES
                     (4, '\\x01', 'arn:aws:s3:::logs', 's3:bucket', 'global', '111122223333', 'logs'),
                     (9, '\\x02', 'arn:aws:s3:::data', 's3:bucket', 'global', '111122223333', 'data');
                 INSERT INTO tag_sets (id, fingerprint, tags) VALUES
                     (2, '\\x03', '[[\"Team\",\"payments\"]]'), (5, '\\x04', '[]');",
            )
            .await
            .unwrap();
        let v: i64 = client
            .query_one(
                "INSERT INTO violation_sets (fingerprint, labels) VALUES ($1, $2) RETURNING id",
                &[&Sha256::digest(labels.as_bytes()).to_vec(), &labels],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, 1);
    }
    let store = PgHistory::open(pool.clone()).await.unwrap();
    let old = snapshot(at(1, 0), json!({}), vec![member(1)]);
    let id = store.insert(&old).await.unwrap();
    // Rewrite the new snapshot's members to point at the converted rows.
    let mut blob = Vec::new();
    for (r, t, flags) in [(9u32, 2u32, 0b11u8), (4, 5, 0b01)] {
        for i in [r, t, 1] {
            blob.extend_from_slice(&i.to_le_bytes());
        }
        blob.push(flags);
    }
    pool.get()
        .await
        .unwrap()
        .execute(
            "UPDATE snapshots SET members = $1 WHERE id = $2",
            &[&blob, &id],
        )
        .await
        .unwrap();
    let members = HistoryStore::members(&store, id).await.unwrap();
    assert_eq!(members[0].resource_id, "arn:aws:s3:::data");
    assert_eq!(
        members[0].tags,
        vec![(
            arcstr::ArcStr::from("Team"),
            arcstr::ArcStr::from("payments")
        )]
    );
    assert_eq!(members[0].violations, vec!["missing_tag:Owner".to_string()]);
    assert_eq!(members[1].resource_id, "arn:aws:s3:::logs");
    assert_eq!(rows(&store, "resources").await, 3);
    let gone: bool = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT to_regclass('resources') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(gone);
    // A second replica opening the same database finds nothing left to convert.
    let again = PgHistory::open(pool).await.unwrap();
    let id2 = again
        .insert(&snapshot(at(2, 0), json!({}), vec![member(2)]))
        .await
        .unwrap();
    assert_eq!(
        HistoryStore::members(&again, id2).await.unwrap(),
        vec![member(2)]
    );
}
