//! The command line as a user meets it: summaries, exit codes and one-line errors.

use crate::common::{check_json, fixture, path_str, run};

#[test]
fn check_demo_prints_a_summary() {
    let (code, stdout, stderr) = run(&["check", "--demo"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "Score",
        "on native tags",
        "By resource type",
        "Worst violations",
        "ec2:instance",
    ] {
        assert!(stdout.contains(needle), "summary lacks {needle}:\n{stdout}");
    }
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

#[test]
fn fail_under_sets_exit_code_two() {
    let (code, _, stderr) = run(&["check", "--demo", "--fail-under", "99"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("below --fail-under 99"), "{stderr}");
    let (code, _, _) = run(&["check", "--demo", "--fail-under", "10"], &[]);
    assert_eq!(code, 0);
    let (code, _, stderr) = run(&["check", "--demo", "--fail-under", "120"], &[]);
    assert_eq!(code, 2, "clap usage error");
    assert!(stderr.contains("between 0 and 100"));
}

#[test]
fn markdown_report() {
    let (code, stdout, _) = run(&["check", "--demo", "--format", "markdown"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("# Tag compliance"));
    assert!(stdout.contains("| effective |"));
}

#[test]
fn broken_policy_is_one_clear_line() {
    let (code, stdout, stderr) = run(
        &[
            "check",
            "--demo",
            "--policy",
            &path_str(&fixture("broken_policy.json")),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("required_tags[1].validation_regex"),
        "{stderr}"
    );
    assert!(stderr.contains("broken_policy.json"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn missing_inventory_file_is_one_clear_line() {
    let (code, _, stderr) = run(&["check", "--inventory", "/nonexistent/estate.json"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "tagwarden: cannot read inventory file estate.json: no such file (check --inventory)"
    );
}

#[test]
fn unreachable_aws_is_one_clear_line() {
    let (code, _, stderr) = run(
        &["check", "--aws", "--aws-max-attempts", "1"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot reach the AWS endpoint"), "{stderr}");
    assert!(stderr.contains("AWS_ENDPOINT_URL"), "{stderr}");
}

#[test]
fn missing_aws_credentials_and_region_say_what_to_set() {
    let (code, _, stderr) = run(
        &["check", "--aws", "--aws-max-attempts", "1"],
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("credentials"), "{stderr}");
    let (code, _, stderr) = run(
        &["check", "--aws"],
        &[
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("AWS_REGION"), "{stderr}");
}

/// `tagwarden demo export --size 2000 EXTRA... --out FILE`; fails the test when it fails.
fn demo_export(extra: &[&str], file: &std::path::Path) {
    let out = path_str(file);
    let args: Vec<&str> = ["demo", "export", "--size", "2000"]
        .into_iter()
        .chain(extra.iter().copied())
        .chain(["--out", out.as_str()])
        .collect();
    let (code, _, stderr) = run(&args, &[]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn demo_export_round_trips_through_an_inventory_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.json");
    demo_export(&[], &file);
    let from_file = check_json(&["--inventory", &path_str(&file)], &[]);
    let from_demo = check_json(&["--demo", "--demo-size", "2000"], &[]);
    for field in [
        "resources",
        "in_scope",
        "effective",
        "native",
        "by_kind",
        "native_by_kind",
        "by_key",
        "by_severity",
    ] {
        assert_eq!(from_file[field], from_demo[field], "{field}");
    }
}

#[test]
fn demo_export_writes_the_irregular_estate_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("irregular.json");
    demo_export(&["--estate", "irregular"], &file);
    let page: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mappings = page["ResourceTagMappingList"].as_array().unwrap();
    assert_eq!(mappings.len(), 2000);
    let checked = check_json(&["--inventory", &path_str(&file)], &[]);
    // Not the demo: five accounts instead of three (and name-based ARNs that may repeat, which
    // the check counts once).
    assert_eq!(
        checked["by_account"].as_array().unwrap().len(),
        5,
        "{checked}"
    );
    let resources = checked["resources"].as_u64().unwrap();
    assert!(resources > 1000 && resources <= 2000, "{resources}");
    let (code, _, stderr) = run(&["demo", "export", "--estate", "nonsense"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("irregular"), "{stderr}");
}

#[test]
fn policy_check_command() {
    let (code, stdout, _) = run(&["policy", "check", "policies/tagging_policy.json"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("valid policy"));
    let (code, _, stderr) = run(
        &["policy", "check", &path_str(&fixture("broken_policy.json"))],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("validation_regex"));
}

#[test]
fn suggest_evaluates_the_demo_and_the_irregular_estate() {
    let (code, stdout, stderr) = run(&["suggest", "--evaluate", "--demo", "--size", "600"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("demo estate seed 42 size 600:"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("high ")), "{stdout}");
    let (code, stdout, stderr) = run(
        &[
            "suggest",
            "--evaluate",
            "--estate",
            "irregular",
            "--seed",
            "7",
            "--size",
            "600",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["estate"], "irregular");
    assert_eq!(report["seed"], 7);
    assert_eq!(report["size"], 600);
    assert_eq!(report["bands"][0]["band"], "high");
    let patterns: Vec<&str> = report["patterns"]
        .as_array()
        .expect("patterns")
        .iter()
        .filter(|p| p["key"] == "Environment")
        .filter_map(|p| p["pattern"].as_str())
        .collect();
    assert!(patterns.contains(&"sandbox-*"), "{patterns:?}");
    // Without an estate: one line saying what to run; with two: a usage error.
    let (code, _, stderr) = run(&["suggest", "--evaluate"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--estate irregular"), "{stderr}");
    let (code, _, _) = run(
        &["suggest", "--evaluate", "--demo", "--estate", "irregular"],
        &[],
    );
    assert_eq!(code, 2);
}

#[test]
fn tools_directory_matches_what_the_server_serves() {
    let (code, _, stderr) = run(&["tools", "check", "tools"], &[]);
    assert_eq!(code, 0, "tools/*.json are stale: {stderr}");
}

#[test]
fn help_describes_every_command() {
    let (code, stdout, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    for cmd in ["check", "serve", "tools", "demo", "policy"] {
        assert!(stdout.contains(cmd), "--help lacks {cmd}");
    }
    let (_, stdout, _) = run(&["serve", "--help"], &[]);
    for flag in [
        "--stdio",
        "--http",
        "--api-tokens",
        "--demo",
        "--inventory",
        "--aws",
        "--regions",
        "--policy",
        "TAGWARDEN_POLICY",
    ] {
        assert!(stdout.contains(flag), "serve --help lacks {flag}");
    }
}
