//! The violation export as users meet it: `tagwarden export violations` (CSV and JUnit, read
//! back by Python's own `csv` and `xml.etree` modules) and the export_violations_csv tool's
//! pages over MCP.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::{StdioClient, check_json, fixture, path_str, run};

const HEADER: &str = "resource_id,account,region,type,name,key,kind,current,expected,severity,\
monthly_cost,suggested_value,suggestion_confidence,owner";

/// Runs Python (standard library only) on `script` with `args`; returns its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The CSV file read by Python's csv module, as JSON: a list of rows (lists of cells).
fn read_csv(path: &std::path::Path) -> Vec<Vec<String>> {
    let script = "import csv, json, sys\n\
                  with open(sys.argv[1], newline='', encoding='utf-8') as f:\n    \
                  print(json.dumps(list(csv.reader(f))))";
    serde_json::from_str(&python(script, &[&path_str(path)])).expect("rows as JSON")
}

fn export(args: &[&str], out: &std::path::Path) -> String {
    let mut all = vec!["export", "violations", "--out"];
    let out = path_str(out);
    all.push(&out);
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "the file holds the export: {stdout}");
    stderr
}

#[test]
fn csv_of_the_demo_has_one_row_per_violation_check_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("violations.csv");
    let said = export(&["--demo"], &file);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(&format!("{HEADER}\r\n")),
        "{}",
        &text[..300]
    );
    let rows = read_csv(&file);
    let check = check_json(&["--demo", "--limit", "0"], &[]);
    let total = check["violations_total"].as_u64().unwrap() as usize;
    assert_eq!(rows.len() - 1, total);
    assert!(
        said.contains(&format!("wrote {} violations of", thousands(total))),
        "{said}"
    );
    assert_eq!(rows[0].join(","), HEADER);
    // Per kind and per severity, the rows are exactly check's counts.
    let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
    let mut by_severity = std::collections::BTreeMap::<String, u64>::new();
    for r in &rows[1..] {
        *by_kind.entry(r[6].clone()).or_default() += 1;
        *by_severity.entry(r[9].clone()).or_default() += 1;
    }
    let expected_kinds: std::collections::BTreeMap<String, u64> = check["by_kind"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(by_kind, expected_kinds);
    for severity in ["critical", "high", "medium", "low"] {
        assert_eq!(
            by_severity.get(severity).copied().unwrap_or(0),
            check["by_severity"][severity].as_u64().unwrap(),
            "{severity}"
        );
    }
    // Ordered by resource id, then key; every row has the demo's cost figure format.
    let keys: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[5].as_str()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        rows[1..]
            .iter()
            .any(|r| !r[11].is_empty() && !r[12].is_empty())
    );
    for r in &rows[1..] {
        if !r[12].is_empty() {
            let c: f64 = r[12].parse().unwrap();
            assert!((0.7..=1.0).contains(&c), "default threshold 0.7: {r:?}");
        }
        assert!(
            r[10].is_empty() || r[10].parse::<f64>().is_ok(),
            "numeric cost: {r:?}"
        );
    }
    // The worst violation check lists is a row, with the same cost.
    let worst = &check["violations"];
    assert_eq!(worst.as_array().map(Vec::len), Some(0), "limit 0");
    let check = check_json(&["--demo", "--limit", "1"], &[]);
    let w = &check["violations"][0];
    let row = rows[1..]
        .iter()
        .find(|r| r[0] == w["resource_id"] && r[5] == w["tag_key"] && r[6] == w["kind"])
        .expect("the worst violation is exported");
    assert_eq!(
        row[10].parse::<f64>().unwrap(),
        w["resource_cost"].as_f64().unwrap()
    );
    // Filters narrow the rows as they narrow check's total.
    let filtered = dir.path().join("ec2-owner.csv");
    let args = [
        "--demo",
        "--resource-types",
        "ec2:*",
        "--tag-keys",
        "owner",
        "--min-severity",
        "medium",
    ];
    export(&args, &filtered);
    let rows = read_csv(&filtered);
    let check = check_json(&args, &[]);
    assert_eq!(
        rows.len() - 1,
        check["violations_total"].as_u64().unwrap() as usize
    );
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[3].starts_with("ec2:") && r[5] == "Owner")
    );
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The hostile fixture's tag values, by (resource name, key), as the file holds them.
fn hostile_values() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(fixture("export/hostile_inventory.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for r in v["ResourceTagMappingList"].as_array().unwrap() {
        let arn = r["ResourceARN"].as_str().unwrap().to_string();
        for t in r["Tags"].as_array().unwrap() {
            let key = t["Key"].as_str().unwrap().to_string();
            out.push((arn.clone(), key, t["Value"].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn hostile_tag_values_round_trip_through_a_csv_parser() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = path_str(&fixture("export/hostile_inventory.json"));
    let values = hostile_values();
    let value_of = |id: &str, key: &str| {
        values
            .iter()
            .find(|(a, k, _)| a == id && k == key)
            .map(|(_, _, v)| v.clone())
    };
    for guard in [true, false] {
        let file = dir.path().join(format!("hostile-{guard}.csv"));
        let mut args = vec!["--inventory", &inventory];
        if !guard {
            args.push("--no-formula-guard");
        }
        export(&args, &file);
        let rows = read_csv(&file);
        assert_eq!(rows[0].join(","), HEADER);
        // Three resources fail: 4 + 2 + 4 violations (the clean one has none).
        assert_eq!(rows.len() - 1, 10, "{rows:?}");
        let text_cells = [0, 1, 2, 3, 4, 5, 7, 8, 11, 13];
        for r in &rows[1..] {
            let unmark = |cell: &str| -> String {
                if guard {
                    cell.strip_prefix('\'').unwrap_or(cell).to_string()
                } else {
                    cell.to_string()
                }
            };
            for &i in &text_cells {
                if guard {
                    let first = r[i].chars().next();
                    assert!(
                        !matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r')),
                        "cell {i} can run as a formula: {:?}",
                        r[i]
                    );
                }
            }
            if let Some(found) = value_of(&r[0], &r[5]) {
                assert_eq!(unmark(&r[7]), found, "current value of {} {}", r[0], r[5]);
            } else {
                assert_eq!(r[7], "", "{r:?}");
            }
            let owner = value_of(&r[0], "Owner").unwrap();
            assert_eq!(unmark(&r[13]), owner, "owner of {}", r[0]);
        }
        let formula = rows[1..]
            .iter()
            .find(|r| r[5] == "Owner" && r[0].ends_with("i-0formula"))
            .unwrap();
        let expected = if guard {
            "'=cmd|' /C calc'!A0"
        } else {
            "=cmd|' /C calc'!A0"
        };
        assert_eq!(formula[7], expected);
        let negative = rows[1..]
            .iter()
            .find(|r| r[5] == "Environment" && r[0].ends_with("i-0formula"))
            .unwrap();
        assert_eq!(negative[7], if guard { "'-1" } else { "-1" });
    }
}

#[test]
fn junit_has_a_case_per_resource_and_a_failure_per_violation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("violations.xml");
    export(&["--demo", "--format", "junit"], &file);
    let script = "import json, sys, xml.etree.ElementTree as ET\n\
                  root = ET.parse(sys.argv[1]).getroot()\n\
                  suite = root.find('testsuite')\n\
                  cases = suite.findall('testcase')\n\
                  print(json.dumps({'root': root.tag, 'attrs': suite.attrib, 'cases': len(cases),\n  \
                  'failures': sum(len(c.findall('failure')) for c in cases),\n  \
                  'failing': sum(1 for c in cases if c.find('failure') is not None),\n  \
                  'skipped': sum(1 for c in cases if c.find('skipped') is not None),\n  \
                  'names': len({c.get('name') for c in cases}),\n  \
                  'props': {p.get('name'): p.get('value') for p in suite.find('properties')}}))";
    let got: Value = serde_json::from_str(&python(script, &[&path_str(&file)])).unwrap();
    let check = check_json(&["--demo", "--limit", "0"], &[]);
    let resources = check["resources"].as_u64().unwrap();
    assert_eq!(got["root"], "testsuites");
    assert_eq!(got["cases"], resources);
    assert_eq!(got["names"], resources, "one case per resource");
    assert_eq!(got["failures"], check["violations_total"]);
    assert_eq!(got["failing"], check["effective"]["non_compliant"]);
    assert_eq!(
        got["skipped"].as_u64().unwrap(),
        resources - check["in_scope"].as_u64().unwrap()
    );
    assert_eq!(got["attrs"]["tests"], resources.to_string());
    assert_eq!(
        got["attrs"]["failures"],
        check["effective"]["non_compliant"].to_string()
    );
    assert_eq!(got["props"]["policy_hash"], check["policy_hash"]);
}

#[test]
fn junit_carries_hostile_values_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.xml");
    let inventory = path_str(&fixture("export/hostile_inventory.json"));
    export(&["--inventory", &inventory, "--format", "junit"], &file);
    let script = "import json, sys, xml.etree.ElementTree as ET\n\
                  root = ET.parse(sys.argv[1]).getroot()\n\
                  out = []\n\
                  for c in root.iter('testcase'):\n    \
                  for f in c.findall('failure'):\n        \
                  out.append([c.get('name'), f.get('type'), f.text])\n\
                  print(json.dumps(out))";
    let failures: Vec<(String, String, String)> =
        serde_json::from_str(&python(script, &[&path_str(&file)])).unwrap();
    assert_eq!(failures.len(), 10);
    let body = |id: &str, needle: &str| {
        failures
            .iter()
            .any(|(name, _, text)| name.ends_with(id) && text.contains(needle))
    };
    // Markup arrives as text; a forbidden control character as U+FFFD (XML 1.0 cannot carry
    // it); CR LF as written.
    assert!(body(
        "acme-quotes-bucket",
        "current: </failure><x a=\"1\">&amp; ]]>"
    ));
    assert!(body(
        "acme-quotes-bucket",
        "owner: a \"quoted\", comma\r\nnew line"
    ));
    assert!(body("ctl-chars", "current: prod\u{FFFD}[31m\u{FFFD}bell"));
    assert!(body("i-0formula", "current: =cmd|' /C calc'!A0"));
}

#[test]
fn stdout_is_the_default_and_errors_are_one_line() {
    let (code, stdout, stderr) = run(
        &[
            "export",
            "violations",
            "--demo",
            "--resource-types",
            "sqs:queue",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(HEADER), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
    let cells = |text: &str, column: usize| -> Vec<String> {
        csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap()[column].to_string())
            .collect()
    };
    assert!(cells(&stdout, 11).iter().any(|v| !v.is_empty()));
    assert!(cells(&stdout, 13).iter().any(|v| !v.is_empty()));
    let (code, plain, _) = run(
        &[
            "export",
            "violations",
            "--demo",
            "--resource-types",
            "sqs:queue",
            "--no-suggestions",
            "--owner-keys",
            "NoSuchKey",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(cells(&plain, 0), cells(&stdout, 0), "the same rows");
    assert!(cells(&plain, 11).iter().all(String::is_empty));
    assert!(cells(&plain, 12).iter().all(String::is_empty));
    assert!(cells(&plain, 13).iter().all(String::is_empty));
    let (code, _, stderr) = run(
        &["export", "violations", "--demo", "--tag-keys", "Nope"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("the policy has no key Nope"), "{stderr}");
    let (code, _, stderr) = run(
        &[
            "export",
            "violations",
            "--demo",
            "--out",
            "/nonexistent/dir/x.csv",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot create /nonexistent/dir/x.csv"),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &[
            "export",
            "violations",
            "--demo",
            "--metric",
            "UnblendedCost",
        ],
        &[],
    );
    assert_eq!(
        code, 1,
        "a metric the demo does not offer is an error when asked for"
    );
    assert!(stderr.contains("costs unavailable"), "{stderr}");
}

#[test]
fn the_tool_pages_through_every_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.csv");
    export(&["--demo"], &file);
    let whole = std::fs::read_to_string(&file).unwrap();
    let (mut c, _) = StdioClient::initialized(&["--demo"], &[]);
    let mut cursor: Option<String> = None;
    let mut body = String::new();
    let mut pages = 0;
    let total = loop {
        let mut args = json!({"max_rows": 1000});
        if let Some(cur) = &cursor {
            args["cursor"] = json!(cur);
        }
        let result = c.call("export_violations_csv", args);
        assert_ne!(result["isError"], json!(true), "{result}");
        let out = &result["structuredContent"];
        let csv = out["csv"].as_str().unwrap();
        let (header, rows) = csv.split_once("\r\n").unwrap();
        assert_eq!(header, HEADER);
        assert_eq!(out["columns"].as_array().unwrap().len(), 14);
        assert_eq!(out["offset"], pages * 1000);
        body.push_str(rows);
        pages += 1;
        match out["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(out["rows"], 1000);
                cursor = Some(next.to_string());
            }
            None => break out["total_violations"].as_u64().unwrap() as usize,
        }
    };
    assert_eq!(pages, total.div_ceil(1000));
    assert_eq!(
        format!("{HEADER}\r\n{body}"),
        whole,
        "pages = the CLI's file"
    );
    // A cursor from another question is refused.
    let result = c.call(
        "export_violations_csv",
        json!({"tag_keys": ["Owner"], "cursor": cursor.unwrap()}),
    );
    assert_eq!(result["isError"], json!(true), "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("cursor"), "{text}");
}
