//! Virtual-tag store tests on SQLite: the behaviour both backends share is the contract
//! (`super::contract`, run here through the `VirtualTagStore` trait); here is what only the
//! file shows — `history.db` reopened and shared with the history store, and a batch rolled
//! back whole past the input checks.

use super::*;
use crate::store::history::HistoryDb;

fn store() -> (tempfile::TempDir, VirtualTagDb) {
    let dir = tempfile::tempdir().unwrap();
    let store = VirtualTagDb::open(&dir.path().join("history.db")).unwrap();
    (dir, store)
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

fn suggestion(resource: &str, key: &str, value: &str, evidence: &[&str]) -> NewVirtualTag {
    NewVirtualTag {
        source: TagSource::Suggestion,
        confidence: 0.7,
        evidence: evidence.iter().map(|e| e.to_string()).collect(),
        ..tag(resource, key, value, TagStatus::Pending)
    }
}

fn by(name: &str) -> Author<'_> {
    Author {
        name,
        principal: "token:t",
    }
}

fn decision(approve: bool) -> Decision {
    Decision {
        approve,
        by: "reviewer".into(),
        by_principal: "token:reviewer".into(),
        reason: "looked right".into(),
    }
}

fn one(store: &VirtualTagDb, id: i64) -> VirtualTag {
    store.get(&[id]).unwrap().pop().unwrap()
}

fn count_rows(store: &VirtualTagDb, table: &str) -> i64 {
    store
        .lock()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn reopening_keeps_everything_and_history_store_shares_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let (ids, rule) = {
        let store = VirtualTagDb::open(&path).unwrap();
        let (ids, _) = store
            .add(&[
                tag("i-1", "A", "1", TagStatus::Approved),
                suggestion("i-1", "B", "2", &["name_token"]),
            ])
            .unwrap();
        store.decide(&ids[1..], &decision(true)).unwrap();
        let rule = store
            .create_rule("r", 1, true, false, "{}", by("t"))
            .unwrap();
        (ids, rule)
    };
    // The history store opens the same file (same migrations, same version)...
    let history = HistoryDb::open(&path).unwrap();
    assert_eq!(history.count().unwrap(), 0);
    drop(history);
    assert!(HistoryDb::open_read_only(&path).is_ok());
    // ...and so does this store again, with everything kept.
    let store = VirtualTagDb::open(&path).unwrap();
    assert_eq!(store.generation().unwrap(), 3);
    assert_eq!(
        store
            .active()
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(store.rules().unwrap(), vec![rule]);
    assert_eq!(store.feedback().unwrap()["name_token"], (1, 0));
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap();
    let version: i64 = store
        .lock()
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, known);
    // A history store opened first, then this one, on a fresh file.
    let fresh = dir.path().join("fresh.db");
    drop(HistoryDb::open(&fresh).unwrap());
    let store = VirtualTagDb::open(&fresh).unwrap();
    assert_eq!(store.generation().unwrap(), 0);
}

#[test]
fn a_failed_add_writes_nothing() {
    let (_dir, store) = store();
    let (before, _) = store
        .add(&[tag("i-1", "A", "old", TagStatus::Approved)])
        .unwrap();
    let generation = store.generation().unwrap();
    let batch = [
        tag("i-1", "A", "new", TagStatus::Approved),
        tag("i-2", "A", "x", TagStatus::Pending),
        tag("i-3", "A", "x", TagStatus::Denied),
    ];
    // The store's own checks refuse it with a message naming the tag...
    let err = store.add(&batch).unwrap_err().to_string();
    assert!(err.contains("virtual tag 2 (i-3"), "{err}");
    assert!(err.contains("pending or approved"), "{err}");
    // ...and past them, the table's CHECK on status fails the transaction midway, after
    // a supersede and two inserts: all of it is rolled back.
    let err = store.write_tags(&batch).unwrap_err().to_string();
    assert!(err.contains("CHECK constraint failed"), "{err}");
    assert_eq!(count_rows(&store, "vt_tags"), 1);
    assert_eq!(one(&store, before[0]).status, TagStatus::Approved);
    assert_eq!(store.generation().unwrap(), generation);
    let mut bad = tag("i-4", "A", "x", TagStatus::Pending);
    bad.confidence = 1.5;
    assert!(
        store
            .add(&[bad.clone()])
            .unwrap_err()
            .to_string()
            .contains("confidence")
    );
    assert!(store.write_tags(&[bad]).is_err());
    assert!(store.add(&[tag("", "A", "x", TagStatus::Pending)]).is_err());
    assert_eq!(count_rows(&store, "vt_tags"), 1);
    // The store still works afterwards.
    let (after, n) = store
        .add(&[tag("i-1", "A", "new", TagStatus::Approved)])
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(one(&store, before[0]).superseded_by, Some(after[0]));
}

/// The SQLite store behind the `VirtualTagStore` trait, for the shared contract tests.
fn open_contract() -> (tempfile::TempDir, super::contract::Blocking) {
    let (dir, db) = store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = crate::store::sqlite::Sqlite::new(std::sync::Arc::new(db));
    (
        dir,
        super::contract::Blocking::new(rt, std::sync::Arc::new(s)),
    )
}

/// The behaviour both backends share (`contract`), on SQLite.
mod contract {
    super::super::contract::run_contract!(super::open_contract);
}
