//! History store tests: round trips, canonical interning, listing order, pruning and garbage
//! collection, corrupt member data, reopening, concurrent writers, and sparse snapshots.

use chrono::{Duration, TimeZone};
use serde_json::json;

use super::*;

/// Fixtures shared with the PostgreSQL backend's tests.
pub(crate) fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

pub(crate) fn member(i: usize) -> MemberRecord {
    MemberRecord {
        resource_id: format!("arn:aws:ec2:eu-west-1:111122223333:instance/i-{i:06}"),
        resource_type: "ec2:instance".into(),
        region: "eu-west-1".into(),
        account: "111122223333".into(),
        name: arcstr::format!("web-{i}"),
        tags: vec![
            ("CostCenter".into(), arcstr::format!("CC-{}", i % 7)),
            ("Environment".into(), "prod".into()),
        ],
        violations: if i.is_multiple_of(3) {
            vec!["missing_tag:Owner".into()]
        } else {
            vec![]
        },
        failing: i.is_multiple_of(3),
        in_scope: !i.is_multiple_of(5),
    }
}

fn snapshot(taken_at: DateTime<Utc>, filters: Value, members: Vec<MemberRecord>) -> NewSnapshot {
    NewSnapshot {
        taken_at,
        trigger: "tool".into(),
        source: "demo estate (seed 42, 5000 resources)".into(),
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

fn store() -> (tempfile::TempDir, HistoryDb) {
    let dir = tempfile::tempdir().unwrap();
    let store = HistoryDb::open(&dir.path().join("history.db")).unwrap();
    (dir, store)
}

/// Rows of `table`; for the chunked dictionaries (`resources`, `tag_sets`), their entries.
fn rows(store: &HistoryDb, table: &str) -> i64 {
    let chunked = match table {
        "resources" => Some("resource_chunks"),
        "tag_sets" => Some("tag_set_chunks"),
        _ => None,
    };
    let conn = store.lock();
    match chunked {
        Some(chunk_table) => {
            let mut stmt = conn
                .prepare(&format!("SELECT data FROM {chunk_table}"))
                .unwrap();
            let data: Vec<Vec<u8>> = stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            data.iter()
                .map(|d| chunks::open(d).unwrap().len() as i64)
                .sum()
        }
        None => conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap(),
    }
}

/// The ids of the interned resources, ascending.
fn resource_ids(store: &HistoryDb) -> Vec<i64> {
    let conn = store.lock();
    let mut stmt = conn
        .prepare("SELECT data FROM resource_chunks ORDER BY id")
        .unwrap();
    let data: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut ids: Vec<i64> = data
        .iter()
        .flat_map(|d| {
            chunks::open(d)
                .unwrap()
                .entries()
                .map(|(id, _)| i64::from(id))
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

fn ids(metas: &[SnapshotMeta]) -> Vec<i64> {
    metas.iter().map(|m| m.id).collect()
}

#[test]
fn metadata_and_members_round_trip() {
    let (_dir, store) = store();
    let mut members: Vec<MemberRecord> = (0..6).map(member).collect();
    members[1].tags.clear();
    members[2].violations = vec!["invalid_value:Environment".into(), "too_many_tags".into()];
    members[4].tags.push((
        "aws:cloudformation:stack-name".into(),
        "ünïcode \"q\"".into(),
    ));
    let taken_at =
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::nanoseconds(123_456_789);
    let filters = json!({"resource_types": ["ec2:*"], "regions": ["eu-west-1"]});
    let s = snapshot(taken_at, filters.clone(), members.clone());
    let id = store.insert(&s).unwrap();

    let meta = store.get(id).unwrap().unwrap();
    assert_eq!(
        meta,
        SnapshotMeta {
            id,
            taken_at,
            trigger: s.trigger.clone(),
            source: s.source.clone(),
            policy_hash: "abc".into(),
            filters: filters.clone(),
            filters_hash: filters_hash(&filters),
            resources: 6,
            in_scope: 4,
            compliant: 3,
            violations: 2,
            score_pct: Some(75.0),
            native_score_pct: Some(50.5),
            spend_score_pct: None,
            counts: s.counts.clone(),
            by_violation: s.by_violation.clone(),
        }
    );
    assert_eq!(store.members(id).unwrap(), members);
    assert_eq!(store.get(id + 1).unwrap(), None);
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn sets_are_stored_in_canonical_order() {
    let (_dir, store) = store();
    let mut m = member(0);
    m.tags = vec![("b".into(), "2".into()), ("a".into(), "1".into())];
    m.violations = vec!["z".into(), "a".into()];
    let id = store
        .insert(&snapshot(at(1, 0), json!({}), vec![m]))
        .unwrap();
    let back = &store.members(id).unwrap()[0];
    assert_eq!(
        back.tags,
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    assert_eq!(back.violations, vec!["a".to_string(), "z".to_string()]);
}

#[test]
fn identical_sets_are_interned_once() {
    let (_dir, store) = store();
    let members: Vec<MemberRecord> = (0..30).map(member).collect();
    store
        .insert(&snapshot(at(1, 0), json!({}), members.clone()))
        .unwrap();
    let counts = |s: &HistoryDb| {
        (
            rows(s, "resources"),
            rows(s, "tag_sets"),
            rows(s, "violation_sets"),
        )
    };
    // 30 resources, 7 CostCenter values, with and without a violation.
    assert_eq!(counts(&store), (30, 7, 2));
    store
        .insert(&snapshot(at(2, 0), json!({}), members.clone()))
        .unwrap();
    assert_eq!(counts(&store), (30, 7, 2));
    // A rename interns a new resource row; the old snapshot keeps the old name.
    let mut renamed = members.clone();
    renamed[0].name = "renamed".into();
    renamed[0].tags.push(("Owner".into(), "alice".into()));
    let id = store
        .insert(&snapshot(at(3, 0), json!({}), renamed.clone()))
        .unwrap();
    assert_eq!(counts(&store), (31, 8, 2));
    assert_eq!(store.members(id).unwrap(), renamed);
    assert_eq!(store.members(1).unwrap()[0].name, "web-0");
}

#[test]
fn headlines_are_the_list_without_breakdowns() {
    let (_dir, store) = store();
    let all = json!({});
    for day in 1..=3 {
        store
            .insert(&snapshot(at(day, 0), all.clone(), vec![]))
            .unwrap();
    }
    let full = store.list(at(1, 0), None).unwrap();
    let light = store.list_headlines(at(1, 0), None).unwrap();
    assert_eq!(full.len(), 3);
    assert_eq!(light.len(), 3);
    for (f, l) in full.iter().zip(&light) {
        assert!(!f.by_violation.is_empty() || f.counts != Value::Null);
        assert_eq!(l.counts, Value::Null);
        assert!(l.by_violation.is_empty());
        let without = SnapshotMeta {
            counts: Value::Null,
            by_violation: BTreeMap::new(),
            ..f.clone()
        };
        assert_eq!(&without, l);
    }
}

#[test]
fn list_orders_by_time_then_id_and_filters_by_scope() {
    let (_dir, store) = store();
    let all = json!({});
    let ec2 = json!({"resource_types": ["ec2:*"]});
    let a = store
        .insert(&snapshot(at(3, 0), all.clone(), vec![]))
        .unwrap();
    let b = store
        .insert(&snapshot(at(1, 0), all.clone(), vec![]))
        .unwrap();
    let c = store
        .insert(&snapshot(at(2, 0), ec2.clone(), vec![]))
        .unwrap();
    let d = store
        .insert(&snapshot(at(3, 0), all.clone(), vec![]))
        .unwrap();
    let e = store
        .insert(&snapshot(at(4, 0), ec2.clone(), vec![]))
        .unwrap();
    let since = at(1, 0);
    assert_eq!(ids(&store.list(since, None).unwrap()), vec![b, c, a, d, e]);
    let all_hash = filters_hash(&all);
    assert_eq!(
        ids(&store.list(since, Some(&all_hash)).unwrap()),
        vec![b, a, d]
    );
    assert_eq!(ids(&store.list(at(2, 0), None).unwrap()), vec![c, a, d, e]);
    assert_eq!(
        ids(&store.list(at(2, 1), Some(&all_hash)).unwrap()),
        vec![a, d]
    );
    assert!(store.list(since, Some("nope")).unwrap().is_empty());

    assert_eq!(store.latest(None).unwrap().unwrap().id, e);
    assert_eq!(store.latest(Some(&all_hash)).unwrap().unwrap().id, d);
    assert_eq!(store.latest(Some("nope")).unwrap(), None);

    // `before` stays within the filter set and breaks time ties by id.
    assert_eq!(store.before(d).unwrap().unwrap().id, a);
    assert_eq!(store.before(a).unwrap().unwrap().id, b);
    assert_eq!(store.before(b).unwrap(), None);
    assert_eq!(store.before(e).unwrap().unwrap().id, c);
    assert_eq!(store.before(999).unwrap(), None);

    let sets = store.filter_sets().unwrap();
    assert_eq!(
        sets,
        vec![
            (ec2.clone(), filters_hash(&ec2), 2),
            (all.clone(), all_hash.clone(), 3)
        ]
    );
}

#[test]
fn prune_removes_older_snapshots_only() {
    let (_dir, store) = store();
    for day in 1..=5 {
        store
            .insert(&snapshot(
                at(day, 12),
                json!({}),
                vec![member(day as usize)],
            ))
            .unwrap();
    }
    assert_eq!(store.prune(at(3, 12)).unwrap(), 2);
    assert_eq!(store.count().unwrap(), 3);
    let left = store.list(at(1, 0), None).unwrap();
    assert_eq!(left.first().unwrap().taken_at, at(3, 12));
    assert_eq!(store.prune(at(1, 0)).unwrap(), 0);
    // The pruned snapshots' own resources are gone; those still referenced stay.
    assert_eq!(rows(&store, "resources"), 3);
    assert_eq!(store.members(left[0].id).unwrap(), vec![member(3)]);
}

#[test]
fn pruning_collects_unreferenced_rows_and_never_reuses_ids() {
    let (_dir, store) = store();
    // A second handle (another process) whose in-memory index is filled before the
    // collection and used after it.
    let other = HistoryDb::open(store.path()).unwrap();
    // Day 1 and 2 share member 1; day 2 adds member 2; day 3 only member 3.
    other
        .insert(&snapshot(at(1, 0), json!({}), vec![member(1), member(9)]))
        .unwrap();
    let d2 = store
        .insert(&snapshot(at(2, 0), json!({}), vec![member(1), member(2)]))
        .unwrap();
    let d3 = store
        .insert(&snapshot(at(3, 0), json!({}), vec![member(3)]))
        .unwrap();
    assert_eq!(rows(&store, "resources"), 4);
    assert_eq!(store.prune(at(2, 0)).unwrap(), 1);
    // member 9 was only in day 1: gone; 1, 2 and 3 are still referenced.
    assert_eq!(rows(&store, "resources"), 3);
    assert_eq!(store.members(d2).unwrap(), vec![member(1), member(2)]);
    assert_eq!(store.members(d3).unwrap(), vec![member(3)]);
    // Everything but the newest snapshot pruned: the highest ids stay even if unused, so
    // a new row never takes a deleted row's id.
    let max_before: i64 = *resource_ids(&store).last().unwrap();
    store.prune(at(3, 0)).unwrap();
    let d4 = store
        .insert(&snapshot(at(4, 0), json!({}), vec![member(1), member(7)]))
        .unwrap();
    let new_ids: Vec<i64> = resource_ids(&store);
    assert!(
        new_ids.iter().filter(|id| **id > max_before).count() >= 1,
        "{new_ids:?}"
    );
    assert_eq!(store.members(d3).unwrap(), vec![member(3)]);
    assert_eq!(store.members(d4).unwrap(), vec![member(1), member(7)]);
    // The other handle's index still holds the deleted rows' ids: it writes correctly.
    let d5 = other
        .insert(&snapshot(
            at(5, 0),
            json!({}),
            vec![member(9), member(7), member(8)],
        ))
        .unwrap();
    assert_eq!(
        store.members(d5).unwrap(),
        vec![member(9), member(7), member(8)]
    );
    assert_eq!(other.members(d4).unwrap(), vec![member(1), member(7)]);
}

#[test]
fn corrupt_member_data_is_an_error_naming_the_snapshot() {
    let (_dir, store) = store();
    let id = store
        .insert(&snapshot(at(1, 0), json!({}), vec![member(1)]))
        .unwrap();
    let damage = |blob: Vec<u8>| {
        store
            .lock()
            .execute(
                "UPDATE snapshots SET members = ?1 WHERE id = ?2",
                params![blob, id],
            )
            .unwrap();
        store.members(id).unwrap_err().to_string()
    };
    let err = damage(vec![1, 2, 3]);
    assert!(err.contains(&format!("snapshot {id} is corrupt")), "{err}");
    assert!(err.contains("not a multiple of 13"), "{err}");
    let mut dangling = vec![0u8; 13];
    dangling[0] = 99;
    let err = damage(dangling);
    assert!(err.contains("refers to resource 99"), "{err}");
    let mut flags = vec![0u8; 13];
    flags[..12].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    flags[12] = 0xff;
    assert!(damage(flags).contains("unknown flags"));
    store
        .lock()
        .execute("UPDATE tag_set_chunks SET data = x'01deadbeef'", [])
        .unwrap();
    let mut valid = vec![0u8; 13];
    valid[..12].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    let err = damage(valid);
    assert!(err.contains("interned chunk"), "{err}");
    assert!(
        store
            .members(id + 1)
            .unwrap_err()
            .to_string()
            .contains("no history snapshot")
    );
    // Damaged metadata is an error too, not a panic.
    store
        .lock()
        .execute(
            "UPDATE snapshots SET counts = '{' WHERE id = ?1",
            params![id],
        )
        .unwrap();
    let err = store.get(id).unwrap_err().to_string();
    assert!(err.contains("counts is unreadable"), "{err}");
}

#[test]
fn reopen_after_close_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let members: Vec<MemberRecord> = (0..10).map(member).collect();
    {
        let store = HistoryDb::open(&path).unwrap();
        store
            .insert(&snapshot(at(1, 0), json!({}), members.clone()))
            .unwrap();
    }
    let store = HistoryDb::open(&path).unwrap();
    assert_eq!(store.count().unwrap(), 1);
    let id = store
        .insert(&snapshot(at(2, 0), json!({}), members.clone()))
        .unwrap();
    assert_eq!(rows(&store, "resources"), 10);
    drop(store);
    let read = HistoryDb::open_read_only(&path).unwrap();
    assert_eq!(read.members(id).unwrap(), members);
    assert_eq!(read.latest(None).unwrap().unwrap().id, id);
    assert!(read.insert(&snapshot(at(3, 0), json!({}), vec![])).is_err());
    assert!(HistoryDb::open_read_only(&dir.path().join("missing.db")).is_err());
}

#[test]
fn rows_shared_by_members_are_handed_to_each() {
    let (_dir, store) = store();
    // The same resource twice (the store does not judge), and tag sets shared by many.
    let members = vec![member(1), member(8), member(1), member(15)];
    let id = store
        .insert(&snapshot(at(1, 0), json!({}), members.clone()))
        .unwrap();
    assert_eq!(store.members(id).unwrap(), members);
}

#[test]
fn two_writers_share_the_intern_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let a = HistoryDb::open(&path).unwrap();
    let b = HistoryDb::open(&path).unwrap();
    let first: Vec<MemberRecord> = (0..20).map(member).collect();
    let second: Vec<MemberRecord> = (10..40).map(member).collect();
    let x = a
        .insert(&snapshot(at(1, 0), json!({}), first.clone()))
        .unwrap();
    // `b` must see the rows `a` interned (else a duplicate fingerprint would fail)...
    let y = b
        .insert(&snapshot(at(2, 0), json!({}), second.clone()))
        .unwrap();
    // ...and `a`, whose maps are cached, must catch up with the rows `b` added.
    let z = a
        .insert(&snapshot(at(3, 0), json!({}), second.clone()))
        .unwrap();
    assert_eq!(rows(&a, "resources"), 40);
    assert_eq!(a.members(x).unwrap(), first);
    assert_eq!(a.members(y).unwrap(), second);
    assert_eq!(b.members(z).unwrap(), second);
}

#[test]
fn a_failed_insert_leaves_no_stale_interning() {
    let (_dir, store) = store();
    store
        .insert(&snapshot(at(1, 0), json!({}), vec![member(0)]))
        .unwrap();
    store
        .lock()
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON snapshots
                 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
        )
        .unwrap();
    let fresh: Vec<MemberRecord> = (1..5).map(member).collect();
    let err = store.insert(&snapshot(at(2, 0), json!({}), fresh.clone()));
    assert!(err.is_err());
    assert_eq!(rows(&store, "resources"), 1);
    store.lock().execute_batch("DROP TRIGGER refuse").unwrap();
    let id = store
        .insert(&snapshot(at(2, 0), json!({}), fresh.clone()))
        .unwrap();
    assert_eq!(store.members(id).unwrap(), fresh);
}

#[test]
fn members_of_a_sparse_snapshot_in_a_large_store() {
    let (_dir, store) = store();
    let many: Vec<MemberRecord> = (0..500).map(member).collect();
    store.insert(&snapshot(at(1, 0), json!({}), many)).unwrap();
    // Ids 1, 250 and 500 are far apart: read by lookup, not by range.
    let sparse = vec![member(0), member(249), member(499)];
    let id = store
        .insert(&snapshot(at(2, 0), json!({}), sparse.clone()))
        .unwrap();
    assert_eq!(store.members(id).unwrap(), sparse);
    let empty = store
        .insert(&snapshot(at(3, 0), json!({}), vec![]))
        .unwrap();
    assert!(store.members(empty).unwrap().is_empty());
}

/// `cargo test --release --lib store::history::tests::scale -- --ignored --nocapture`
/// (`SCALE_RESOURCES=1000000` for a million; the default is 100,000).
#[test]
#[ignore = "timing at scale; run in release"]
fn scale() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = HistoryDb::open(&path).unwrap();
    let n: usize = std::env::var("SCALE_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let big = |seed: usize| -> Vec<MemberRecord> {
        (0..n)
            .map(|i| {
                let mut m = member(i);
                m.tags.push(("Name".into(), arcstr::format!("web-{i}")));
                if i % 50 == seed % 50 {
                    m.tags[0].1 = arcstr::format!("CC-changed-{seed}");
                }
                m
            })
            .collect()
    };
    let first = big(0);
    let t = Instant::now();
    let id = store
        .insert(&snapshot(at(1, 0), json!({}), first.clone()))
        .unwrap();
    println!("insert {n} (all new rows): {:?}", t.elapsed());
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_extension("db-wal");
    println!(
        "history.db after the first: {} bytes (+ WAL {})",
        size(&path),
        size(&wal)
    );
    let second = big(1);
    let t = Instant::now();
    store
        .insert(&snapshot(at(2, 0), json!({}), second))
        .unwrap();
    println!("insert {n} (2% changed): {:?}", t.elapsed());
    let small: Vec<MemberRecord> = (0..5000).map(member).collect();
    let t = Instant::now();
    store
        .insert(&snapshot(at(3, 0), json!({"x": 1}), small))
        .unwrap();
    println!("insert 5k (into a 100k-resource store): {:?}", t.elapsed());
    let t = Instant::now();
    let back = store.members(id).unwrap();
    println!("members of {n}: {:?}", t.elapsed());
    assert_eq!(back, first);
    // 400 snapshots of 100k members each, copied in SQL to skip the interning cost.
    {
        let conn = store.lock();
        let t = Instant::now();
        for day in 0..397i64 {
            conn.execute(
                "INSERT INTO snapshots (taken_at, taken_at_us, trigger, source, policy_hash,
                         filters, filters_hash, resources, in_scope, compliant, violations,
                         score_pct, native_score_pct, spend_score_pct, counts, by_violation,
                         members)
                     SELECT taken_at, taken_at_us + ?1, trigger, source, policy_hash, filters,
                         filters_hash, resources, in_scope, compliant, violations, score_pct,
                         native_score_pct, spend_score_pct, counts, by_violation, members
                     FROM snapshots WHERE id = 1",
                params![(day + 3) * 86_400_000_000],
            )
            .unwrap();
        }
        println!("copy 397 snapshot rows: {:?}", t.elapsed());
    }
    let size = std::fs::metadata(dir.path().join("history.db"))
        .unwrap()
        .len()
        + std::fs::metadata(dir.path().join("history.db-wal")).map_or(0, |m| m.len());
    println!("database + WAL: {} MB", size / 1_000_000);
    let hash = filters_hash(&json!({}));
    let t = Instant::now();
    let listed = store.list(at(1, 0), Some(&hash)).unwrap();
    println!("list {} snapshots: {:?}", listed.len(), t.elapsed());
    let t = Instant::now();
    let listed = store.list(at(1, 0), Some(&hash)).unwrap();
    println!("list {} snapshots (again): {:?}", listed.len(), t.elapsed());
    assert_eq!(listed.len(), 399);
}

#[test]
fn a_store_with_row_intern_tables_is_upgraded_to_chunks_with_ids_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        // A history.db as version 9 wrote it: one row per interned resource and tag set.
        let conn = crate::store::open(&path, &MIGRATIONS[..9]).unwrap();
        conn.execute_batch(
            "INSERT INTO resources (id, fingerprint, rid, type, region, account, name) VALUES
                 (4, x'01', 'arn:aws:s3:::logs', 's3:bucket', 'global', '111122223333', 'logs'),
                 (9, x'02', 'arn:aws:s3:::data', 's3:bucket', 'global', '111122223333', 'data');
             INSERT INTO tag_sets (id, fingerprint, tags) VALUES
                 (2, x'03', '[[\"Team\",\"payments\"]]'), (5, x'04', '[]');",
        )
        .unwrap();
        let labels = r#"["missing_tag:Owner"]"#;
        conn.execute(
            "INSERT INTO violation_sets (id, fingerprint, labels) VALUES (1, ?1, ?2)",
            params![&Sha256::digest(labels.as_bytes())[..], labels],
        )
        .unwrap();
        let mut blob = Vec::new();
        for (r, t, flags) in [(9u32, 2u32, 0b11u8), (4, 5, 0b01)] {
            for id in [r, t, 1] {
                blob.extend_from_slice(&id.to_le_bytes());
            }
            blob.push(flags);
        }
        let tx = conn.unchecked_transaction().unwrap();
        insert_snapshot_row(&tx, &snapshot(at(1, 0), json!({}), vec![]), &blob).unwrap();
        tx.commit().unwrap();
    }
    // A read-only open of the old layout says what to do.
    let err = HistoryDb::open_read_only(&path).err().unwrap().to_string();
    assert!(err.contains("open it once for writing"), "{err}");
    let store = HistoryDb::open(&path).unwrap();
    let snapshot_id: i64 = store
        .lock()
        .query_row("SELECT MAX(id) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    let members = store.members(snapshot_id).unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].resource_id, "arn:aws:s3:::data");
    assert_eq!(
        members[0].tags,
        vec![(
            arcstr::ArcStr::from("Team"),
            arcstr::ArcStr::from("payments")
        )]
    );
    assert_eq!(members[0].violations, vec!["missing_tag:Owner".to_string()]);
    assert!(members[0].failing && members[0].in_scope);
    assert_eq!(members[1].resource_id, "arn:aws:s3:::logs");
    assert!(members[1].tags.is_empty());
    assert_eq!(resource_ids(&store), vec![4, 9]);
    // The old tables are gone; new resources get ids above the old ones.
    assert!(!has_table(&store.lock(), "resources").unwrap());
    let id = store
        .insert(&snapshot(at(2, 0), json!({}), vec![member(1)]))
        .unwrap();
    assert_eq!(store.members(id).unwrap(), vec![member(1)]);
    assert_eq!(resource_ids(&store), vec![4, 9, 10]);
    drop(store);
    assert!(HistoryDb::open_read_only(&path).is_ok());
}
