//! An independent client: the official Python MCP SDK (tests/clients/python_sdk_client.py)
//! lists the tools, validates every schema, calls every tool validly and invalidly, and checks
//! check_tag_compliance against `tagwarden check --format json` — over stdio and Streamable
//! HTTP, in both protocol eras (2025-11-25 with sessions, 2026-07-28 stateless).

use std::process::Command;

use crate::common::{HttpServer, bin, path_str, repo, run, venv_bin};
use serde_json::Value;

fn expected_check(dir: &tempfile::TempDir) -> String {
    let (code, stdout, stderr) = run(
        &["check", "--demo", "--format", "json", "--limit", "10"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let path = dir.path().join("expected.json");
    std::fs::write(&path, stdout).unwrap();
    path_str(&path)
}

fn sdk_client(args: &[&str]) -> Value {
    // The tools the server must list, and an example call of each, come from the registry: a
    // new tool is exercised without touching the client.
    let registry = tagwarden::Registry::new();
    let examples: Vec<Value> = registry
        .names()
        .into_iter()
        .filter_map(|name| registry.get(name))
        .map(|entry| {
            let (invalid, named) = entry.counter_example();
            serde_json::json!({
                "name": entry.name(), "valid": entry.example(), "invalid": [invalid, named]
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let examples_path = dir.path().join("examples.json");
    std::fs::write(&examples_path, serde_json::to_vec(&examples).unwrap()).unwrap();
    let out = Command::new(venv_bin("python"))
        .arg(repo().join("tests/clients/python_sdk_client.py"))
        .args(["--examples", &path_str(&examples_path)])
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run the Python SDK client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no summary; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() && summary["ok"] == true,
        "Python SDK client failed: {summary}"
    );
    assert_eq!(
        summary["tools"].as_array().unwrap().len(),
        crate::common::tool_count()
    );
    summary
}

#[test]
fn python_sdk_over_stdio_both_eras() {
    let dir = tempfile::tempdir().unwrap();
    let expect = expected_check(&dir);
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let summary = sdk_client(&[
            "--mode",
            mode,
            "--expect",
            &expect,
            "--stdio",
            bin(),
            "serve",
            "--stdio",
            "--demo",
            "--data-dir",
            &path_str(dir.path()),
            "--budget-burst",
            "0",
        ]);
        assert_eq!(summary["protocol_version"], version);
    }
}

#[test]
fn python_sdk_over_http_both_eras() {
    let dir = tempfile::tempdir().unwrap();
    let expect = expected_check(&dir);
    // Three client runs of two calls per tool from one address: stateless requests share that
    // address's budget, which would refuse the later ones within the minute.
    let server = HttpServer::start(&["--demo", "--budget-burst", "0"], &[]);
    let url = format!("{}/mcp", server.base);
    for (mode, version) in [
        ("legacy", "2025-11-25"),
        ("2026-07-28", "2026-07-28"),
        ("auto", "2026-07-28"),
    ] {
        let summary = sdk_client(&["--mode", mode, "--expect", &expect, "--http", &url]);
        assert_eq!(summary["protocol_version"], version, "{mode}");
    }
}
