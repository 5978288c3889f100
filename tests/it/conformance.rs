//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in tests/js)
//! against `tagwarden serve --http --demo` and against the conformance fixture
//! (examples/conformance_fixture.rs), which serves the suite's fixture tools, resources and
//! prompts through Tagwarden's own HTTP plumbing (`tagwarden::server::http::serve_handler`).
//!
//! Every server scenario of the suite runs (tests/conformance/README.md says where and why),
//! once per protocol wire it applies to: 2025-11-25 (sessions, `initialize`) and 2026-07-28
//! (stateless, per-request `_meta`). A check passes when the suite reports SUCCESS or INFO;
//! anything else (FAILURE, WARNING, SKIPPED) must be listed in the target's expected-failures
//! file with a reason, and a listed check that passes is a stale entry, which also fails.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::{HttpServer, repo};
use serde_json::Value;

/// The two wires; a scenario applicable to both runs on both.
const SESSION: &str = "2025-11-25";
const STATELESS: &str = "2026-07-28";
/// Extension scenarios are not on the spec timeline; the suite runs them on 2026-07-28.
const EXTENSION: &[&str] = &[];

/// Scenarios about the server and transport in general, run against Tagwarden itself.
const TAGWARDEN: &[(&str, &[&str])] = &[
    ("server-initialize", &[SESSION]),
    ("ping", &[SESSION]),
    ("server-session-lifecycle", &[SESSION]),
    ("tools-list", &[SESSION, STATELESS]),
    ("server-sse-multiple-streams", &[SESSION, STATELESS]),
    ("dns-rebinding-protection", &[SESSION, STATELESS]),
    ("resources-list", &[SESSION, STATELESS]),
    ("prompts-list", &[SESSION, STATELESS]),
    ("server-stateless", &[STATELESS]),
    ("caching", &[STATELESS]),
    ("http-header-validation", &[STATELESS]),
    ("sep-2164-resource-not-found", &[STATELESS]),
];

/// Scenarios that need the suite's fixture tools, resources and prompts.
const FIXTURE: &[(&str, &[&str])] = &[
    // The diagnostic checks Tagwarden cannot pass (see tagwarden-expected-failures.yaml).
    ("server-stateless", &[STATELESS]),
    ("logging-set-level", &[SESSION]),
    ("completion-complete", &[SESSION, STATELESS]),
    ("tools-call-simple-text", &[SESSION, STATELESS]),
    ("tools-call-image", &[SESSION, STATELESS]),
    ("tools-call-audio", &[SESSION, STATELESS]),
    ("tools-call-embedded-resource", &[SESSION, STATELESS]),
    ("tools-call-mixed-content", &[SESSION, STATELESS]),
    ("tools-call-with-logging", &[SESSION]),
    ("tools-call-error", &[SESSION, STATELESS]),
    ("tools-call-with-progress", &[SESSION, STATELESS]),
    ("tools-call-sampling", &[SESSION]),
    ("tools-call-elicitation", &[SESSION]),
    ("json-schema-2020-12", &[SESSION, STATELESS]),
    ("elicitation-sep1034-defaults", &[SESSION]),
    ("elicitation-sep1330-enums", &[SESSION]),
    ("server-sse-polling", &[SESSION]),
    ("resources-read-text", &[SESSION, STATELESS]),
    ("resources-read-binary", &[SESSION, STATELESS]),
    ("resources-templates-read", &[SESSION, STATELESS]),
    ("resources-subscribe", &[SESSION]),
    ("resources-unsubscribe", &[SESSION]),
    ("prompts-get-simple", &[SESSION, STATELESS]),
    ("prompts-get-with-args", &[SESSION, STATELESS]),
    ("prompts-get-embedded-resource", &[SESSION, STATELESS]),
    ("prompts-get-with-image", &[SESSION, STATELESS]),
    ("http-custom-header-server-validation", &[STATELESS]),
    ("input-required-result-basic-elicitation", &[STATELESS]),
    ("input-required-result-basic-sampling", &[STATELESS]),
    ("input-required-result-basic-list-roots", &[STATELESS]),
    ("input-required-result-request-state", &[STATELESS]),
    (
        "input-required-result-multiple-input-requests",
        &[STATELESS],
    ),
    ("input-required-result-multi-round", &[STATELESS]),
    ("input-required-result-missing-input-response", &[STATELESS]),
    ("input-required-result-non-tool-request", &[STATELESS]),
    ("input-required-result-result-type", &[STATELESS]),
    ("input-required-result-unsupported-methods", &[STATELESS]),
    ("input-required-result-tampered-state", &[STATELESS]),
    ("input-required-result-capability-check", &[STATELESS]),
    ("input-required-result-ignore-extra-params", &[STATELESS]),
    ("input-required-result-validate-input", &[STATELESS]),
    ("sep-2640-skills-directory", EXTENSION),
    ("sep-2640-skills-enumeration", EXTENSION),
    ("sep-2640-skills-manifest", EXTENSION),
    ("tasks-lifecycle", EXTENSION),
    ("tasks-capability-negotiation", EXTENSION),
    ("tasks-wire-fields", EXTENSION),
    ("tasks-request-state-removal", EXTENSION),
    ("tasks-mrtr-input", EXTENSION),
    ("tasks-request-headers", EXTENSION),
    ("tasks-dispatch-and-envelope", EXTENSION),
    ("tasks-status-notifications", EXTENSION),
    ("tasks-required-task-error", EXTENSION),
    ("tasks-mrtr-composition", EXTENSION),
];

/// Scenarios run at once against one server: the suite mostly waits on the network.
const PARALLEL: usize = 3;
/// Run alone, before the others: its checks read response streams within a few hundred
/// milliseconds, which a loaded machine should not turn into failures.
const SOLO: &[&str] = &["server-stateless"];
/// Longer than the suite's own per-scenario timeout (30 s).
const SCENARIO_DEADLINE: Duration = Duration::from_secs(90);

/// One suite run at a time (each already runs scenarios in parallel).
static SUITE: Mutex<()> = Mutex::new(());

#[test]
fn tagwarden_passes_the_conformance_suite() {
    let _one_at_a_time = SUITE.lock().unwrap_or_else(|e| e.into_inner());
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[]);
    let url = format!("{}/mcp", server.base);
    run_suite(
        "tagwarden",
        &url,
        TAGWARDEN,
        "tagwarden-expected-failures.yaml",
    );
}

#[test]
fn fixture_passes_the_conformance_suite() {
    let _one_at_a_time = SUITE.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = Fixture::start();
    let url = format!("{}/mcp", fixture.base);
    run_suite("fixture", &url, FIXTURE, "fixture-expected-failures.yaml");
}

/// Every server scenario the pinned suite lists runs on every wire it applies to, and the
/// README's table names it: a new scenario cannot go unnoticed when the suite is upgraded.
#[test]
fn every_server_scenario_is_run_and_documented() {
    let out = suite_command()
        .args(["list", "--server"])
        .output()
        .expect("run conformance list");
    assert!(out.status.success(), "conformance list failed: {out:?}");
    let listed = String::from_utf8_lossy(&out.stdout);
    let readme = std::fs::read_to_string(conformance_dir().join("README.md")).unwrap();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for line in listed.lines() {
        // `  - tools-list [2025-06-18,2025-11-25,2026-07-28]`
        let Some(entry) = line.trim().strip_prefix("- ") else {
            continue;
        };
        let (name, tags) = entry.split_once(' ').unwrap_or((entry, ""));
        seen.insert(name.to_string());
        let tags = tags.trim_matches(|c| c == '[' || c == ']');
        let expected: BTreeSet<&str> = if tags == "extension" {
            BTreeSet::new()
        } else {
            tags.split(',')
                .filter(|v| *v == SESSION || *v == STATELESS)
                .collect()
        };
        let run: BTreeSet<&str> = TAGWARDEN
            .iter()
            .chain(FIXTURE)
            .filter(|(scenario, _)| *scenario == name)
            .flat_map(|(_, wires)| wires.iter().copied())
            .collect();
        let covered = TAGWARDEN.iter().chain(FIXTURE).any(|(s, _)| *s == name);
        if !covered || run != expected {
            problems.push(format!(
                "{name}: applies to wires {expected:?} ([] = extension), runs on {run:?}{}",
                if covered { "" } else { " (not run at all)" }
            ));
        }
        if !readme.contains(&format!("| `{name}` |")) {
            problems.push(format!("{name}: missing from tests/conformance/README.md"));
        }
    }
    for (name, _) in TAGWARDEN.iter().chain(FIXTURE) {
        if !seen.contains(*name) {
            problems.push(format!("{name}: run here but not listed by the suite"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One scenario on one wire.
struct Job {
    scenario: &'static str,
    wire: Option<&'static str>,
}

impl Job {
    fn label(&self) -> String {
        format!("{} ({})", self.scenario, self.wire.unwrap_or("extension"))
    }
}

/// What a run produced: the suite's exit code and output, and its checks.
struct Outcome {
    job: Job,
    exit: Option<i32>,
    log: String,
    checks: Vec<Value>,
    took: Duration,
}

fn run_suite(target: &str, url: &str, plan: &[(&'static str, &[&'static str])], baseline: &str) {
    let started = Instant::now();
    let baseline_path = conformance_dir().join(baseline);
    let expected = read_baseline(&baseline_path);
    let jobs: VecDeque<Job> = plan
        .iter()
        .flat_map(|(scenario, wires)| {
            let wires: Vec<Option<&'static str>> = if wires.is_empty() {
                vec![None]
            } else {
                wires.iter().map(|w| Some(*w)).collect()
            };
            wires.into_iter().map(|wire| Job { scenario, wire })
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let (solo, shared): (VecDeque<_>, VecDeque<_>) = jobs
        .into_iter()
        .enumerate()
        .partition(|(_, job)| SOLO.contains(&job.scenario));
    let outcomes = Mutex::new(Vec::new());
    for (queue, workers) in [(solo, 1), (shared, PARALLEL)] {
        let queue = Mutex::new(queue);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap().pop_front();
                        let Some((n, job)) = next else { break };
                        let dir = work.path().join(n.to_string());
                        let outcome = run_scenario(url, job, &dir, &baseline_path);
                        outcomes.lock().unwrap().push((n, outcome));
                    }
                });
            }
        });
    }
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|(n, _)| *n);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();

    let mut report = String::new();
    let mut problems = Vec::new();
    let mut matched = BTreeSet::new();
    let mut passed = 0;
    for outcome in &outcomes {
        let label = outcome.job.label();
        let scenario = outcome.job.scenario;
        let mut excused = 0;
        let problems_before = problems.len();
        for check in &outcome.checks {
            let id = check["id"].as_str().unwrap_or("?");
            let status = check["status"].as_str().unwrap_or("?");
            let key = format!("{scenario}:{id}");
            let listed = expected.contains(&key);
            if listed {
                matched.insert(key.clone());
            }
            match (status, listed) {
                ("SUCCESS" | "INFO", false) => passed += usize::from(status == "SUCCESS"),
                ("SUCCESS", true) => problems.push(format!(
                    "{label} {id}: passes, so it is a stale entry in tests/conformance/{baseline}"
                )),
                (_, true) => excused += 1,
                _ => problems.push(format!(
                    "{label} {id}: {status}: {}",
                    check["errorMessage"].as_str().unwrap_or("(no message)")
                )),
            }
        }
        // A non-zero exit the checks do not explain (a crash, a timeout, a baseline error).
        if outcome.checks.is_empty()
            || (outcome.exit != Some(0) && problems.len() == problems_before)
        {
            problems.push(format!(
                "{label}: the suite exited with {:?} after {} checks; its output:\n{}",
                outcome.exit,
                outcome.checks.len(),
                tail(&outcome.log, 40)
            ));
        }
        let count = |status: &str| {
            outcome
                .checks
                .iter()
                .filter(|c| c["status"] == status)
                .count()
        };
        let mut line = format!("{:>3} passed", count("SUCCESS"));
        for (n, what) in [(count("INFO"), "info"), (excused, "baselined")] {
            if n > 0 {
                let _ = write!(line, ", {n} {what}");
            }
        }
        let _ = writeln!(
            report,
            "  {label:<60} {line:<28} {:>5.1}s",
            outcome.took.as_secs_f64()
        );
    }
    for entry in expected.difference(&matched) {
        problems.push(format!(
            "{entry}: listed in tests/conformance/{baseline} but the suite reported no such check"
        ));
    }
    println!(
        "conformance against {target} ({url}): {} runs, {passed} checks passed, {:.1}s\n{report}",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "MCP conformance against {target}: {} problem(s)\n{}\n\nall runs:\n{report}",
        problems.len(),
        problems.join("\n")
    );
}

/// `conformance server --scenario S [--spec-version W] -o DIR --expected-failures FILE`.
fn run_scenario(url: &str, job: Job, dir: &Path, baseline: &Path) -> Outcome {
    std::fs::create_dir_all(dir).unwrap();
    let mut command = suite_command();
    command
        .args(["server", "--url", url, "--scenario", job.scenario, "-o"])
        .arg(dir)
        .arg("--expected-failures")
        .arg(baseline);
    if let Some(wire) = job.wire {
        command.args(["--spec-version", wire]);
    }
    let log_path = dir.join("suite.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    let mut child = command
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run the conformance suite");
    let exit = wait_with_deadline(&mut child, SCENARIO_DEADLINE);
    let took = started.elapsed();
    let checks = find_file(dir, "checks.json")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str::<Vec<Value>>(&s).ok())
        .unwrap_or_default();
    Outcome {
        job,
        exit,
        log: std::fs::read_to_string(&log_path).unwrap_or_default(),
        checks,
        took,
    }
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> Option<i32> {
    let until = Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pinned suite, with the pinned Node first on PATH, run from a scratch directory.
fn suite_command() -> Command {
    let js_bin = repo().join("tests/js/node_modules/.bin");
    assert!(
        js_bin.join("conformance").exists(),
        "the MCP conformance suite is not installed: run ./scripts/test.sh (npm ci in tests/js)"
    );
    let path = format!(
        "{}:{}",
        js_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(js_bin.join("conformance"));
    command
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

fn conformance_dir() -> PathBuf {
    repo().join("tests/conformance")
}

/// `scenario:check-id` entries under `server:` (the suite's expected-failures format).
fn read_baseline(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut in_server = false;
    let mut entries = BTreeSet::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            in_server = line == "server:";
            continue;
        }
        if let Some(entry) = line.trim().strip_prefix("- ")
            && in_server
        {
            let entry = entry.trim().trim_matches('"').to_string();
            assert!(
                entry.contains(':'),
                "{}: `{entry}` baselines a whole scenario; name the check (`scenario:check-id`)",
                path.display()
            );
            entries.insert(entry);
        }
    }
    entries
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The conformance fixture example, built if needed and started on a free port.
struct Fixture {
    child: Child,
    base: String,
    _stderr: Receiver<String>,
}

impl Fixture {
    fn start() -> Fixture {
        let binary = build_fixture();
        let mut child = Command::new(&binary)
            .args(["--http", "127.0.0.1:0"])
            .env("TAGWARDEN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let (tx, rx) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the fixture did not report its address");
            if let Some(at) = line.find("listening on http://") {
                let url = line[at + "listening on ".len()..].trim();
                break url.trim_end_matches("/mcp").to_string();
            }
        };
        Fixture {
            child,
            base,
            _stderr: rx,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/<profile>/examples/conformance_fixture`, next to the tagwarden binary. `cargo build`
/// (a no-op when it is up to date) keeps it in step with its sources even when only this test
/// was built; the variables cargo sets for this test are removed so the nested build sees the
/// same environment as the outer one and does not rebuild dependencies.
fn build_fixture() -> PathBuf {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_tagwarden")).parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "--example",
            "conformance_fixture",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(repo());
    if profile_dir.ends_with("release") {
        command.arg("--release");
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            command.env_remove(key);
        }
    }
    let status = command.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --example conformance_fixture failed"
    );
    let binary = profile_dir.join("examples").join("conformance_fixture");
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}
