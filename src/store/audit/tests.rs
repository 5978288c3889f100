//! Audit log tests: the hash chain and its verification, two writers, a full log, draining on
//! close, and rows written before the principal column.

use super::*;

fn record(i: usize, outcome: &str) -> AuditRecord {
    AuditRecord {
        ts: format!("2026-11-22T10:00:{:02}.000000Z", i % 60),
        correlation_id: format!("c-{i}"),
        session: "s1".into(),
        principal: Some(format!("token:{}", i % 2)),
        client: "test/1".into(),
        transport: "stdio".into(),
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

#[tokio::test]
async fn rows_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditDb::open(&path).unwrap();
    for i in 0..10 {
        let outcome = if i == 3 { "refused:budget" } else { "ok" };
        assert_eq!(
            log.append(record(i, outcome), Duration::from_secs(5)).await,
            Appended::Written(i as i64 + 1)
        );
    }
    let (rows, total) = log
        .query(&AuditFilter {
            outcome: Some("refused".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(rows[0].record.correlation_id, "c-3");
    log.close();
    match verify(&path).unwrap() {
        Verification::Intact { rows, .. } => assert_eq!(rows, 10),
        other => panic!("{other:?}"),
    }
    let t = tail(&path, 3).unwrap();
    assert_eq!(t.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![8, 9, 10]);
}

#[tokio::test]
async fn an_edited_or_removed_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditDb::open(&path).unwrap();
    for i in 0..6 {
        log.append(record(i, "ok"), Duration::from_secs(5)).await;
    }
    log.close();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE audit SET outcome = 'error:internal' WHERE seq = 4",
        [],
    )
    .unwrap();
    match verify(&path).unwrap() {
        Verification::Broken {
            seq,
            reason,
            rows_checked,
        } => {
            assert_eq!((seq, rows_checked), (4, 3));
            assert!(reason.contains("changed after it was written"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    conn.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 4", [])
        .unwrap();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 6, .. }
    ));
    conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    match verify(&path).unwrap() {
        Verification::Broken { seq, reason, .. } => {
            assert_eq!(seq, 3);
            assert!(reason.contains("removed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn two_writers_share_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let a = AuditDb::open(&path).unwrap();
    let b = AuditDb::open(&path).unwrap();
    for i in 0..20 {
        let log = if i % 2 == 0 { &a } else { &b };
        log.append(record(i, "ok"), Duration::from_secs(5)).await;
    }
    a.close();
    b.close();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 20, .. }
    ));
}

#[tokio::test]
async fn a_full_log_refuses_rows_says_so_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditDb::open_with(
        &path,
        &AuditOptions {
            max_bytes: Some(64 * 1024),
        },
    )
    .unwrap();
    assert_eq!(log.failing(), None);
    let big = |i| AuditRecord {
        arguments: format!("{{\"x\":\"{}\"}}", "a".repeat(900)),
        ..record(i, "ok")
    };
    let mut written = 0;
    let mut failed = None;
    for i in 0..1000 {
        match log.append(big(i), Duration::from_secs(5)).await {
            Appended::Written(seq) => {
                written += 1;
                assert_eq!(seq, written);
            }
            Appended::Failed(why) => {
                failed = Some(why);
                break;
            }
            Appended::Pending => panic!("a local disk answers within 5 s"),
        }
    }
    let why = failed.expect("a 64 KiB log fills up");
    assert!(why.contains("size bound"), "{why}");
    assert!(written > 5, "{written} rows fit in 64 KiB");
    assert_eq!(log.failing(), Some(why));
    // A later row of that size fails too, and nothing half-written appears.
    assert!(matches!(
        log.append(big(0), Duration::from_secs(5)).await,
        Appended::Failed(_)
    ));
    match verify(&path).unwrap() {
        Verification::Intact { rows, .. } => assert_eq!(rows, written as u64),
        other => panic!("{other:?}"),
    }
    // Room again (an operator archived old rows): the next row is written, health is back.
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM audit WHERE seq <= 20", [])
        .unwrap();
    assert!(matches!(
        log.append(big(0), Duration::from_secs(5)).await,
        Appended::Written(_)
    ));
    assert_eq!(log.failing(), None);
    log.close();
    assert_eq!(
        log.failing().as_deref(),
        Some("the audit writer has stopped")
    );
}

#[tokio::test]
async fn close_drains_queued_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = std::sync::Arc::new(AuditDb::open(&path).unwrap());
    let mut waits = Vec::new();
    for i in 0..200 {
        let log = log.clone();
        // A zero wait returns at once (Pending); the rows must still land.
        waits.push(tokio::spawn(async move {
            log.append(record(i, "ok"), Duration::ZERO).await
        }));
    }
    for w in waits {
        let _ = w.await;
    }
    log.close();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 200, .. }
    ));
}

#[tokio::test]
async fn rows_from_before_the_principal_column_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    // A log written by a version without principals: schema 1, rows hashed without one.
    {
        let conn = super::super::open(&path, &MIGRATIONS[..1]).unwrap();
        let mut prev = GENESIS.to_string();
        for i in 0..3 {
            let old = AuditRecord {
                principal: None,
                ..record(i, "ok")
            };
            let seq = i as i64 + 1;
            let hash = chain_hash(&prev, seq, &old);
            conn.execute(
                "INSERT INTO audit (seq, ts, correlation_id, session, client, transport, tool,
                         arguments, arguments_hash, outcome, duration_us, result_bytes,
                         prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    seq,
                    old.ts,
                    old.correlation_id,
                    old.session,
                    old.client,
                    old.transport,
                    old.tool,
                    old.arguments,
                    old.arguments_hash,
                    old.outcome,
                    old.duration_us as i64,
                    old.result_bytes as i64,
                    prev,
                    hash
                ],
            )
            .unwrap();
            prev = hash;
        }
    }
    // The command line reads it as it is, without migrating it.
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 3, .. }
    ));
    assert_eq!(tail(&path, 5).unwrap()[0].record.principal, None);
    // This version migrates the log and chains new rows, with principals, onto the old.
    let log = AuditDb::open(&path).unwrap();
    for i in 3..7 {
        log.append(record(i, "ok"), Duration::from_secs(5)).await;
    }
    let (rows, total) = log
        .query(&AuditFilter {
            principal: Some("token:1".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(total, 2, "old rows have no principal and match none");
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![6, 4],
        "newest first"
    );
    assert!(
        rows.iter()
            .all(|r| r.record.principal.as_deref() == Some("token:1"))
    );
    let (_, all) = log
        .query(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all, 7);
    log.close();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 7, .. }
    ));
    // The principal of a new row is covered by its hash: changing or removing it shows.
    let conn = Connection::open(&path).unwrap();
    for edit in [
        "UPDATE audit SET principal = 'token:1' WHERE seq = 5",
        "UPDATE audit SET principal = NULL WHERE seq = 5",
    ] {
        conn.execute(edit, []).unwrap();
        match verify(&path).unwrap() {
            Verification::Broken { seq, .. } => assert_eq!(seq, 5, "{edit}"),
            other => panic!("{edit}: {other:?}"),
        }
    }
    // Giving an old row a principal breaks it too.
    conn.execute("UPDATE audit SET principal = 'token:0' WHERE seq = 5", [])
        .unwrap();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Intact { rows: 7, .. }
    ));
    conn.execute("UPDATE audit SET principal = 'token:0' WHERE seq = 2", [])
        .unwrap();
    assert!(matches!(
        verify(&path).unwrap(),
        Verification::Broken { seq: 2, .. }
    ));
}
