//! Never-tagged resources, served the way AWS serves them: moto's Tagging API drops resources
//! that were never tagged (a third of this estate), and the Resource Explorer stub over the same
//! account lists them all. With Resource Explorer every answer — the CLI check, the MCP tools,
//! the cost gap — counts every resource and equals the independent recount of
//! tests/support/seed_never_tagged.py, with exactly the calls needed; with the Tagging API alone
//! (`--aws-coverage tagging`, or no index) coverage says never-tagged resources are missing and
//! `check` prints that warning; no index, no permission, no default view and a failing listing
//! are each stated with what to do.
//!
//! Each test signs with its own access key, so it has its own Resource Explorer setup and
//! counts its own calls on the shared moto.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, check_json, fixture, path_str, run};
use serde_json::{Value, json};

struct Estate {
    moto: Moto,
    focus: PathBuf,
}

/// One moto per test binary, seeded once; tests only read from it.
fn estate() -> &'static Estate {
    static ESTATE: OnceLock<Estate> = OnceLock::new();
    ESTATE.get_or_init(|| {
        let focus = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("never_tagged_{}.csv", std::process::id()));
        let moto = Moto::start_seeded_by("seed_never_tagged.py", &[&path_str(&focus)]);
        Estate { moto, focus }
    })
}

fn expected() -> &'static Value {
    &estate().moto.expected
}

const REGIONS: &str = "us-east-1,eu-west-1";

/// An aggregator in us-east-1 over local indexes in every region of the account, pages of 50.
fn aggregator() -> Value {
    json!({
        "indexes": [
            {"region": "us-east-1", "type": "AGGREGATOR"},
            {"region": "eu-west-1"},
            {"region": "ap-south-1"}
        ],
        "page_size": expected()["calls"]["re_page_size"],
    })
}

fn args<'a>(policy: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--aws",
        "--regions",
        REGIONS,
        "--policy",
        policy,
        "--limit",
        "0",
    ];
    all.extend_from_slice(extra);
    all
}

fn check_as(key: &str, extra: &[&str]) -> Value {
    let env = estate().moto.env_as(key);
    let policy = path_str(&fixture("moto_policy.json"));
    check_json(&args(&policy, extra), &env_refs(&env))
}

fn assert_recount(got: &Value, want: &Value) {
    for field in ["resources", "in_scope", "by_kind", "by_key"] {
        assert_eq!(got[field], want[field], "{field}");
    }
    for n in ["compliant", "non_compliant", "violations"] {
        assert_eq!(got["effective"][n], want["effective"][n], "effective.{n}");
    }
}

/// `{operation: calls}` made with `key`.
fn calls(key: &str) -> Value {
    estate().moto.calls_by(key)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// An amount (a JSON number with at most 2 decimals here) in cents.
fn cents(v: &Value) -> Value {
    json!((v.as_f64().expect("an amount") * 100.0).round() as i64)
}

fn source<'a>(dq: &'a Value, kind: &str) -> &'a Value {
    dq["coverage"]["sources"]
        .as_array()
        .expect("coverage sources")
        .iter()
        .find(|s| s["source"] == kind)
        .unwrap_or_else(|| panic!("no {kind} source in {}", dq["coverage"]))
}

#[test]
fn with_resource_explorer_check_counts_every_resource_with_the_calls_needed() {
    let key = "re-cli";
    let e = expected();
    estate().moto.configure_resource_explorer(key, aggregator());
    let got = check_as(key, &[]);
    assert_recount(&got, &e["with_resource_explorer"]);
    let dq = &got["data_quality"];
    assert_eq!(dq["status"], "complete", "{dq}");
    assert_eq!(dq["failures"], json!([]));
    assert_eq!(dq["coverage"]["complete"], true);
    assert_eq!(dq["coverage"]["never_tagged_included"], true);
    assert_eq!(dq["coverage"]["warnings"], json!([]));
    let re = source(dq, "resource_explorer");
    assert_eq!(re["never_tagged"], "included");
    assert_eq!(re["regions"], json!(["us-east-1", "eu-west-1"]));
    assert_eq!(re["resources"], e["with_resource_explorer"]["resources"]);
    assert_eq!(
        re["only_in_this_source"], e["never_tagged"],
        "the never-tagged joined"
    );
    assert_eq!(
        source(dq, "tagging_api")["resources"],
        n(&e["tagged"]) + n(&e["calls"]["duplicates_dropped"])
    );
    assert_eq!(dq["duplicates_dropped"], e["calls"]["duplicates_dropped"]);

    // Calls made = calls needed: the Tagging API's pages, one ListIndexes, and the aggregator's
    // listing of the whole account (ap-south-1 included, then left out) in pages of 50.
    let made = calls(key);
    let c = &e["calls"];
    assert_eq!(n(&made["GetResources"]), n(&c["tagging_pages"]));
    assert_eq!(n(&made["ListIndexes"]), 1);
    assert_eq!(n(&made["ListResources"]), n(&c["re_listing_pages"]));
    let needed = n(&c["tagging_pages"]) + 1 + n(&c["re_listing_pages"]);
    assert_eq!(n(&dq["api_calls"]), needed, "{made}");
    assert_eq!(dq["retries"], 0);
    let parts: Vec<&str> = dq["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["scope"].as_str().unwrap())
        .collect();
    assert!(parts.is_empty());
    assert_eq!(
        dq["parts_total"], 3,
        "2 Tagging API regions + 1 Resource Explorer listing"
    );
}

#[test]
fn mcp_tools_and_the_cost_gap_count_the_never_tagged() {
    let key = "re-mcp";
    let e = expected();
    estate().moto.configure_resource_explorer(key, aggregator());
    let env = estate().moto.env_as(key);
    let policy = path_str(&fixture("moto_policy.json"));
    let focus = path_str(&estate().focus);
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--cost",
            &focus,
            "--no-prewarm",
        ],
        &env_refs(&env),
    );
    let check = c.call("check_tag_compliance", json!({"limit": 0}))["structuredContent"].clone();
    assert_recount(&check, &e["with_resource_explorer"]);
    assert_eq!(
        check["data_quality"]["coverage"]["never_tagged_included"],
        true
    );

    let untagged =
        c.call("find_untagged_resources", json!({"limit": 0}))["structuredContent"].clone();
    assert_eq!(
        untagged["examined"],
        e["with_resource_explorer"]["resources"]
    );
    assert_eq!(
        untagged["total"], e["untagged_default"]["total"],
        "{untagged}"
    );

    let bare = c.call(
        "find_untagged_resources",
        json!({"only_without_any_tags": true, "limit": 500}),
    )["structuredContent"]
        .clone();
    assert_eq!(bare["total"], e["never_tagged"]);
    let found: BTreeSet<&str> = bare["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource_id"].as_str().unwrap())
        .collect();
    let never: BTreeSet<&str> = e["never_tagged_arns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(found, never, "exactly the never-tagged resources");
    for (kind, count) in e["never_tagged_by_type"].as_object().unwrap() {
        assert_eq!(bare["by_type"][kind], *count, "{kind}");
    }

    let gap = c.call("get_cost_attribution_gap", json!({}))["structuredContent"].clone();
    let cost = &e["cost"];
    assert_eq!(cents(&gap["total"]), cost["total_cents"], "{gap}");
    assert_eq!(cents(&gap["attributable"]), cost["attributable_cents"]);
    assert_eq!(cents(&gap["unattributable"]), cost["unattributable_cents"]);
    assert_eq!(gap["resources_priced"], cost["resources_priced"]);
    assert_eq!(
        gap["resources_in_inventory"], cost["resources_priced"],
        "every priced resource is known"
    );

    // One scan served every question.
    let c_ = &e["calls"];
    let made = calls(key);
    assert_eq!(
        n(&made["GetResources"]) + n(&made["ListIndexes"]) + n(&made["ListResources"]),
        n(&c_["tagging_pages"]) + 1 + n(&c_["re_listing_pages"]),
        "{made}"
    );
}

#[test]
fn with_the_tagging_api_alone_never_tagged_resources_are_missing_and_check_says_so() {
    let key = "re-tagging";
    let e = expected();
    // Even with an index, `tagging` asks only the Tagging API.
    estate().moto.configure_resource_explorer(key, aggregator());
    let got = check_as(key, &["--aws-coverage", "tagging"]);
    assert_recount(&got, &e["tagging_only"]);
    let dq = &got["data_quality"];
    assert_eq!(dq["status"], "partial");
    assert_eq!(dq["coverage"]["never_tagged_included"], false);
    assert_eq!(dq["coverage"]["sources"].as_array().unwrap().len(), 1);
    let warning = dq["coverage"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("resources that were never tagged are not listed by the Tagging API"),
        "{warning}"
    );
    let made = calls(key);
    assert_eq!(
        made,
        json!({"GetResources": n(&e["calls"]["tagging_pages"])})
    );
    assert_eq!(dq["api_calls"], e["calls"]["tagging_pages"]);

    // The text output prints the warning.
    let env = estate().moto.env_as(key);
    let policy = path_str(&fixture("moto_policy.json"));
    let mut text_args = vec!["check"];
    text_args.extend(args(&policy, &["--aws-coverage", "tagging"]));
    let (code, stdout, stderr) = run(&text_args, &env_refs(&env));
    assert!(code == 0 || code == 2, "{stderr}");
    assert!(
        stdout.contains(
            "warning: resources that were never tagged are not listed by the Tagging API"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("never-tagged resources are not listed"),
        "{stdout}"
    );

    // The cost gap cannot place the never-tagged resources' spend in the inventory.
    let focus = path_str(&estate().focus);
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--cost",
            &focus,
            "--no-prewarm",
            "--aws-coverage",
            "tagging",
        ],
        &env_refs(&env),
    );
    let gap = c.call("get_cost_attribution_gap", json!({}))["structuredContent"].clone();
    assert_eq!(cents(&gap["total"]), e["cost"]["total_cents"]);
    assert_eq!(
        n(&gap["resources_in_inventory"]),
        n(&e["cost"]["resources_priced"]) - n(&e["cost"]["resources_priced_never_tagged"])
    );
    let bare = c.call(
        "find_untagged_resources",
        json!({"only_without_any_tags": true}),
    )["structuredContent"]
        .clone();
    assert_eq!(
        bare["total"], 0,
        "the Tagging API lists no never-tagged resource"
    );
}

#[test]
fn without_an_index_the_tagging_answer_is_kept_and_coverage_says_how_to_turn_it_on() {
    let key = "re-no-index";
    let e = expected();
    // No setup for this key: the stub answers as a fresh account, with no index.
    let got = check_as(key, &[]);
    assert_recount(&got, &e["tagging_only"]);
    let dq = &got["data_quality"];
    assert_eq!(
        dq["failures"],
        json!([]),
        "auto: a missing index is not a failed part"
    );
    assert_eq!(dq["status"], "partial");
    assert_eq!(dq["coverage"]["never_tagged_included"], false);
    let re = source(dq, "resource_explorer");
    assert_eq!(re["resources"], 0);
    let reason = re["failed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no index in this account") && reason.contains("create-index"),
        "{reason}"
    );
    let warnings = dq["coverage"]["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("resources that were never tagged")
    );
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .starts_with("Resource Explorer did not cover aws:")
    );
    assert_eq!(n(&calls(key)["ListIndexes"]), 1);
    assert_eq!(n(&calls(key)["ListResources"]), 0);
    assert_eq!(n(&dq["api_calls"]), n(&e["calls"]["tagging_pages"]) + 1);

    // Required: the same, loudly — a failed part, and `check` says so.
    let required = check_as(key, &["--aws-coverage", "resource-explorer"]);
    assert_recount(&required, &e["tagging_only"]);
    let failures = required["data_quality"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("Resource Explorer is required (--aws-coverage resource-explorer)")
            && error.contains("no index in this account"),
        "{error}"
    );
    let env = estate().moto.env_as(key);
    let policy = path_str(&fixture("moto_policy.json"));
    let mut text_args = vec!["check"];
    text_args.extend(args(&policy, &["--aws-coverage", "resource-explorer"]));
    let (_, stdout, _) = run(&text_args, &env_refs(&env));
    assert!(stdout.contains("PARTIAL — 1 of 3 parts failed"), "{stdout}");
    assert!(stdout.contains("Resource Explorer is required"), "{stdout}");
}

#[test]
fn access_denied_names_the_permission_to_grant() {
    let e = expected();
    for (key, denied) in [
        ("re-denied-list", "ListResources"),
        ("re-denied-indexes", "ListIndexes"),
    ] {
        let mut setup = aggregator();
        setup["deny"] = json!([denied]);
        estate().moto.configure_resource_explorer(key, setup);
        let got = check_as(key, &[]);
        assert_recount(&got, &e["tagging_only"]);
        let dq = &got["data_quality"];
        assert_eq!(dq["failures"], json!([]));
        let reason = source(dq, "resource_explorer")["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            reason.contains(&format!(
                "{denied} in us-east-1 was refused (AccessDeniedException)"
            )) && reason.contains("resource-explorer-2:ListResources"),
            "{reason}"
        );
        assert_eq!(dq["coverage"]["never_tagged_included"], false);
        // A refusal is not retried.
        assert_eq!(n(&calls(key)[denied]), 1, "{}", calls(key));
    }
}

#[test]
fn without_a_default_view_coverage_says_how_to_make_one_and_a_named_view_works() {
    let key = "re-no-view";
    let e = expected();
    let mut setup = aggregator();
    setup["default_views"] = json!([]);
    let view = "arn:aws:resource-explorer-2:us-east-1:123456789012:view/tagwarden/0000";
    setup["views"] = json!([view]);
    estate().moto.configure_resource_explorer(key, setup);
    let got = check_as(key, &[]);
    assert_recount(&got, &e["tagging_only"]);
    let reason = source(&got["data_quality"], "resource_explorer")["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("UnauthorizedException")
            && reason.contains("associate-default-view")
            && reason.contains("--resource-explorer-view"),
        "{reason}"
    );

    let named = check_as(key, &["--resource-explorer-view", view]);
    assert_recount(&named, &e["with_resource_explorer"]);
    assert_eq!(named["data_quality"]["coverage"]["complete"], true);

    let missing = check_as(
        key,
        &[
            "--resource-explorer-view",
            "arn:aws:resource-explorer-2:us-east-1:123456789012:view/gone/1",
        ],
    );
    let reason = source(&missing["data_quality"], "resource_explorer")["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("does not exist"), "{reason}");
}

#[test]
fn local_indexes_are_listed_region_by_region() {
    let key = "re-local";
    let e = expected();
    estate().moto.configure_resource_explorer(
        key,
        json!({"indexes": [{"region": "us-east-1"}, {"region": "eu-west-1"}],
               "page_size": e["calls"]["re_page_size"]}),
    );
    let got = check_as(key, &[]);
    assert_recount(&got, &e["with_resource_explorer"]);
    let dq = &got["data_quality"];
    assert_eq!(dq["coverage"]["complete"], true, "{}", dq["coverage"]);
    assert_eq!(
        n(&calls(key)["ListResources"]),
        n(&e["calls"]["re_local_pages"])
    );
    assert_eq!(
        dq["parts_total"], 4,
        "2 Tagging API regions + 2 local listings"
    );
}

#[test]
fn a_listing_that_keeps_failing_is_a_failed_part_and_the_tagging_answer_is_kept() {
    let key = "re-failing";
    let e = expected();
    let mut setup = aggregator();
    setup["errors"] =
        json!({"ListResources": ["InternalServerException", "InternalServerException"]});
    estate().moto.configure_resource_explorer(key, setup);
    let got = check_as(key, &["--aws-max-attempts", "2"]);
    assert_recount(&got, &e["tagging_only"]);
    let dq = &got["data_quality"];
    let failures = dq["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["scope"], "aws resource-explorer us-east-1");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("InternalServerException"),
        "{}",
        failures[0]
    );
    assert_eq!(dq["retries"], 1);
    assert_eq!(n(&calls(key)["ListResources"]), 2);
    assert_eq!(dq["coverage"]["complete"], false);
}

#[test]
fn a_second_server_takes_the_resource_explorer_listing_from_redis() {
    let key = "re-redis";
    let e = expected();
    estate().moto.configure_resource_explorer(key, aggregator());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tagwarden-test:re:{}:{key}", std::process::id());
    let mut env = estate().moto.env_as(key);
    env.push(("REDIS_URL", url));
    env.push(("TAGWARDEN_CACHE_PREFIX", prefix));
    let policy = path_str(&fixture("moto_policy.json"));
    let server = || {
        StdioClient::initialized(
            &[
                "--aws",
                "--regions",
                REGIONS,
                "--policy",
                &policy,
                "--no-prewarm",
            ],
            &env_refs(&env),
        )
        .0
    };
    let mut a = server();
    let first = a.call("check_tag_compliance", json!({"limit": 0}))["structuredContent"].clone();
    assert_recount(&first, &e["with_resource_explorer"]);
    let needed = n(&e["calls"]["tagging_pages"]) + 1 + n(&e["calls"]["re_listing_pages"]);
    assert_eq!(n(&first["data_quality"]["api_calls"]), needed);

    let before = calls(key);
    let mut b = server();
    let second = b.call("check_tag_compliance", json!({"limit": 1}))["structuredContent"].clone();
    assert_eq!(
        calls(key),
        before,
        "no AWS call: every listing came from Redis"
    );
    assert_recount(&second, &e["with_resource_explorer"]);
    let dq = &second["data_quality"];
    assert_eq!(dq["cache"]["layer"], "redis", "{dq}");
    assert_eq!(dq["parts_from_shared_cache"], dq["parts_total"]);
    assert_eq!(dq["coverage"]["complete"], true);
}

/// Timing, not run by default (seeding takes about a minute):
/// `cargo test --test it coverage_moto::timing -- --ignored --nocapture`. Lists an account of
/// about 5,100 never-tagged resources through the Resource Explorer stub (pages of 1,000) and
/// compares the scan with the Tagging API's alone.
#[test]
#[ignore]
fn timing_resource_explorer_listing_of_5000_resources() {
    let moto = Moto::start_seeded_by("seed_many.py", &["1700"]);
    let resources = n(&moto.expected["resources"]);
    let key = "re-timing";
    moto.configure_resource_explorer(
        key,
        json!({"indexes": [{"region": "us-east-1", "type": "AGGREGATOR"}]}),
    );
    let env = moto.env_as(key);
    let policy = path_str(&fixture("moto_policy.json"));
    let scan = |coverage: &str| {
        let started = std::time::Instant::now();
        let got = check_json(
            &[
                "--aws",
                "--regions",
                "us-east-1",
                "--policy",
                &policy,
                "--limit",
                "0",
                "--aws-coverage",
                coverage,
            ],
            &env_refs(&env),
        );
        (got, started.elapsed())
    };
    let (tagging, tagging_wall) = scan("tagging");
    let (full, full_wall) = scan("resource-explorer");
    assert_eq!(n(&full["resources"]), resources);
    let pages = resources.div_ceil(1000);
    let made = moto.calls_by(key);
    assert_eq!(n(&made["ListResources"]), pages, "{made}");
    assert_eq!(n(&made["ListIndexes"]), 1);
    assert_eq!(n(&full["data_quality"]["api_calls"]), 1 + 1 + pages);
    eprintln!(
        "timing: {resources} resources; check with the Tagging API alone: {} ms wall ({} \
         resources); with Resource Explorer: {} ms wall, {} calls (1 GetResources + 1 ListIndexes \
         + {pages} ListResources)",
        tagging_wall.as_millis(),
        tagging["resources"],
        full_wall.as_millis(),
        full["data_quality"]["api_calls"],
    );
}
