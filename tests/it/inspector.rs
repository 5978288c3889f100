//! The MCP Inspector CLI (pinned in tests/js) starts the server exactly as
//! claude_desktop_config.example.json says (`tagwarden-demo` entry: command `tagwarden`, found on
//! PATH), lists the tools with strict schema-portability checks, and calls check_tag_compliance.

use std::path::PathBuf;
use std::process::Command;

use crate::common::repo;
use serde_json::Value;

fn inspector(args: &[&str]) -> (i32, String, String) {
    let js_bin = repo().join("tests/js/node_modules/.bin");
    assert!(
        js_bin.join("mcp-inspector").exists(),
        "the MCP Inspector is not installed: run ./scripts/test.sh (npm ci in tests/js)"
    );
    // The config names the command `tagwarden`: put the freshly built binary first on PATH.
    let bin_dir = PathBuf::from(crate::common::bin())
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}:{}",
        bin_dir.display(),
        js_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(js_bin.join("mcp-inspector"))
        .arg("--cli")
        .args([
            "--config",
            "claude_desktop_config.example.json",
            "--server",
            "tagwarden-demo",
        ])
        .args(args)
        .env("PATH", path)
        .env("MCP_INSPECTOR_SECRET_STORE", "memory")
        .env("TAGWARDEN_LOG", "error")
        .current_dir(repo())
        .output()
        .expect("run the MCP Inspector CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspector_lists_tools_strictly_from_the_example_config() {
    let (code, stdout, stderr) = inspector(&["--method", "tools/list", "--strict"]);
    assert_eq!(code, 0, "strict schema check failed:\n{stderr}");
    assert!(
        !stderr.contains("Warning: tool"),
        "schema portability warnings:\n{stderr}"
    );
    let listed: Value = serde_json::from_str(&stdout).expect("tools/list JSON");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), crate::common::tool_count(), "{names:?}");
}

#[test]
fn inspector_calls_check_tag_compliance_on_the_demo_estate() {
    let (code, stdout, stderr) = inspector(&[
        "--method",
        "tools/call",
        "--tool-name",
        "check_tag_compliance",
        "--tool-arg",
        "limit=3",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).expect("tools/call JSON");
    let s = &result["structuredContent"];
    assert_eq!(s["resources"], 5000);
    assert_eq!(s["violations"].as_array().unwrap().len(), 3);
    let expected = crate::common::check_json(&["--demo", "--limit", "3"], &[]);
    assert_eq!(s["score_pct"], expected["score_pct"]);
}
