use super::*;

fn put(name: &str, spec: &str, replace: bool, by: &str) -> PutAllocationRule {
    PutAllocationRule {
        name: name.into(),
        spec: spec.into(),
        replace,
        by_name: by.into(),
        by_principal: format!("token:{by}"),
    }
}

fn db() -> (tempfile::TempDir, AllocationRuleDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = AllocationRuleDb::open(&dir.path().join("history.db")).unwrap();
    (dir, db)
}

#[test]
fn rules_keep_their_order_and_every_change_is_recorded() {
    let (_dir, db) = db();
    let (a, change) = db
        .put(&put("support", r#"{"v":1}"#, false, "alice"))
        .unwrap();
    assert_eq!(change, RuleChange::Added);
    assert_eq!(a.created_by_principal, "token:alice");
    let (_, change) = db.put(&put("tax", r#"{"v":2}"#, false, "alice")).unwrap();
    assert_eq!(change, RuleChange::Added);
    // Replacing keeps the rule's place; the same definition again writes nothing.
    let (updated, change) = db.put(&put("support", r#"{"v":3}"#, true, "bob")).unwrap();
    assert_eq!(change, RuleChange::Updated);
    assert_eq!(updated.id, a.id);
    assert_eq!(
        (updated.created_by.as_str(), updated.updated_by.as_str()),
        ("alice", "bob")
    );
    let (_, change) = db.put(&put("support", r#"{"v":3}"#, true, "bob")).unwrap();
    assert_eq!(change, RuleChange::Unchanged);
    let names: Vec<String> = db.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["support", "tax"]);
    let removed = db.remove("support", "carol", "token:carol").unwrap();
    assert_eq!(removed.spec, r#"{"v":3}"#);
    let names: Vec<String> = db.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["tax"]);
    let changes: Vec<(String, String, String)> = db
        .changes(a.id)
        .unwrap()
        .into_iter()
        .map(|(c, spec, _, p, _)| (c, spec, p))
        .collect();
    assert_eq!(
        changes,
        [
            ("added".into(), r#"{"v":1}"#.into(), "token:alice".into()),
            ("updated".into(), r#"{"v":3}"#.into(), "token:bob".into()),
            ("removed".into(), r#"{"v":3}"#.into(), "token:carol".into()),
        ]
    );
    // A removed rule's name is free again; the new rule goes last.
    db.put(&put("support", r#"{"v":4}"#, false, "dave"))
        .unwrap();
    let names: Vec<String> = db.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["tax", "support"]);
}

#[test]
fn refusals_say_what_to_do() {
    let (_dir, db) = db();
    db.put(&put("support", "{}", false, "alice")).unwrap();
    let taken = db.put(&put("support", "{}", false, "bob")).unwrap_err();
    assert!(
        matches!(&taken, StoreError::Refused(m) if m.contains("upsert")),
        "{taken}"
    );
    let unknown = db.remove("nope", "bob", "token:bob").unwrap_err();
    assert!(
        matches!(&unknown, StoreError::Refused(m) if m.contains("action list")),
        "{unknown}"
    );
    let blank = db.put(&put(" ", "{}", false, "bob")).unwrap_err();
    assert!(matches!(blank, StoreError::Refused(_)), "{blank}");
    for i in 1..MAX_STORED {
        db.put(&put(&format!("r{i}"), "{}", false, "alice"))
            .unwrap();
    }
    let full = db.put(&put("one-more", "{}", false, "alice")).unwrap_err();
    assert!(
        matches!(&full, StoreError::Refused(m) if m.contains("remove one")),
        "{full}"
    );
    // Replacing at the limit is fine: the count does not grow.
    db.put(&put("support", r#"{"x":1}"#, true, "alice"))
        .unwrap();
}

#[test]
fn the_store_refuses_definitions_that_are_not_json() {
    let (_dir, db) = db();
    let e = db.put(&put("bad", "not json", false, "alice")).unwrap_err();
    assert!(matches!(e, StoreError::Sql(_)), "{e}");
    assert!(db.list().unwrap().is_empty());
}
