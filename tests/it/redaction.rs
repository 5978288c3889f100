//! Redaction through the real binary: secrets in tag *keys* never reach the assistant or the
//! audit log, and resource ids that merely contain a key-shaped word come back whole, so the
//! id one tool returns is accepted by the next.

use std::path::Path;

use crate::common::StdioClient;
use serde_json::{Value, json};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const PASSWORD: &str = "hunter2xyz";

/// Every row of the audit log, as JSON text (one string per row).
fn audit_rows(dir: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.join("audit.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT tool, arguments, client, session, outcome FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(json!({
            "tool": r.get::<_, String>(0)?,
            "arguments": r.get::<_, String>(1)?,
            "client": r.get::<_, String>(2)?,
            "session": r.get::<_, String>(3)?,
            "outcome": r.get::<_, String>(4)?,
        })
        .to_string())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn secrets_in_tag_keys_are_redacted_in_answers_and_audit_rows() {
    let (mut c, _) = StdioClient::initialized(&["--demo", "--no-prewarm"], &[]);
    let r = c.call(
        "validate_resource_tags",
        json!({
            "resource_type": "ec2:instance",
            "tags": {
                KEY: "x",
                format!("password={PASSWORD}"): "y",
                "Environment": "production",
            }
        }),
    );
    assert_ne!(r["isError"], true, "{r}");
    let text = r.to_string();
    assert!(!text.contains(KEY), "access key in a key leaked: {text}");
    assert!(!text.contains(PASSWORD), "password in a key leaked: {text}");
    let native = &r["structuredContent"]["results"][0]["native_tags"];
    assert_eq!(native["[redacted: AWS access key]"], "x", "{native}");
    assert_eq!(native["password=[redacted]"], "y", "{native}");
    assert_eq!(native["Environment"], "production", "{native}");

    // The audit trail over MCP, and the rows on disk.
    let trail = c.call("get_audit_trail", json!({"tool": "validate_resource_tags"}));
    let trail_text = trail.to_string();
    assert!(trail_text.contains("redacted"), "{trail_text}");
    assert!(
        !trail_text.contains(KEY) && !trail_text.contains(PASSWORD),
        "{trail_text}"
    );
    let (code, dir) = c.finish();
    assert_eq!(code, 0);
    let rows = audit_rows(dir.path());
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert!(!row.contains(KEY) && !row.contains(PASSWORD), "{row}");
    }
    assert!(rows[0].contains("password=[redacted]"), "{}", rows[0]);
}

#[test]
fn ids_containing_key_shaped_words_round_trip() {
    let ids = [
        // The reported case: a lower-case look-alike is not a key at all.
        "arn:aws:s3:::bucket-akia-0123456789abcdef",
        // An upper-case key id inside a longer name is part of the name.
        "arn:aws:lambda:us-east-1:111122223333:function:etl-AKIAIOSFODNN7EXAMPLE",
        // `secret:` is the ARN's resource type, not an assignment.
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-password-AbCdEf",
        // A 40-character mixed token inside a name is not a secret key either.
        "arn:aws:lambda:us-east-1:111122223333:function:w-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd",
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.json");
    let mappings: Vec<Value> = ids
        .iter()
        .map(|id| json!({"ResourceARN": id, "Tags": [{"Key": "Name", "Value": "x"}]}))
        .collect();
    std::fs::write(
        &file,
        json!({ "ResourceTagMappingList": mappings }).to_string(),
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let (mut c, _) = StdioClient::initialized(&["--inventory", &path, "--no-prewarm"], &[]);

    // The ids as one tool lists them...
    let listed = c.call("find_untagged_resources", json!({"tag_keys": ["Owner"]}));
    assert_ne!(listed["isError"], true, "{listed}");
    let returned: Vec<String> = listed["structuredContent"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|r| r["resource_id"].as_str().unwrap().to_string())
        .collect();
    for id in ids {
        assert!(
            returned.iter().any(|r| r == id),
            "{id} did not come back whole: {returned:?}"
        );
    }
    // ... are accepted and found by the next.
    let r = c.call("validate_resource_tags", json!({"resource_ids": returned}));
    assert_ne!(r["isError"], true, "{r}");
    let out = &r["structuredContent"];
    assert_eq!(out["not_found"], json!([]), "{out}");
    let validated: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource_id"].as_str().unwrap())
        .collect();
    for id in ids {
        assert!(validated.contains(&id), "{id} not in {validated:?}");
    }

    // A key standing alone next to those ids is still caught.
    let r = c.call(
        "validate_resource_tags",
        json!({"resource_type": "s3:bucket", "tags": {"Notes": format!("{} key={KEY}", ids[1])}}),
    );
    let notes = r["structuredContent"]["results"][0]["native_tags"]["Notes"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert_eq!(notes, format!("{} key=[redacted: AWS access key]", ids[1]));
}
