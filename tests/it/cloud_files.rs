//! Azure Resource Graph and GCP Cloud Asset Inventory files, scored by the real binary with one
//! policy (`tests/fixtures/cloud_policy.json`), every figure against a hand count.
//!
//! The policy: `Owner` (high) and `Environment` (medium; production|staging|development,
//! alias `env`, value alias `prod` → production) required of Azure compute/storage/sql/web and
//! GCP compute/storage/sqladmin/bigquery; `CostCenter` (high; `cc-[0-9]{3}`, aliases
//! `cost_center`, `cost-center`) of Azure VMs and SQL and GCP instances and Cloud SQL;
//! `DataClass` (medium; public|internal|confidential) of Azure and GCP storage when
//! `Environment` is production. Network, Key Vault, Pub/Sub and IAM types are out of scope.
//! Key case variants (`owner`, `environment`, `dataclass`) count in the effective view and are
//! `misnamed_key` in the native view.
//!
//! Azure (13 resources in 4 files, one per shape; subscription A = 0a0a…aa, B = 0b0b…bb):
//!
//! | # | file | resource | type | tags | effective verdict (violations) |
//! |---|---|---|---|---|---|
//! | A1 | page1 (az 2.x) | vm-shop-01 | compute/virtualmachines | Owner, CostCenter cc-101, Environment production | compliant |
//! | A2 | page1 | vm-shop-02 | compute/virtualmachines | owner, costcenter cc-102, env prod | compliant (native: 3 misnamed) |
//! | A3 | page1 | vm-batch-01 | compute/virtualmachines | null | 3 missing |
//! | A4 | page1 | disk-shop-01 | compute/disks | Owner, Environment staging | compliant |
//! | A5 | page1 | stshopdata | storage/storageaccounts | Owner, Environment production | 1 (DataClass conditional) |
//! | A6 | page2 (az 2.x) | sql-shop | sql/servers | Owner "", CostCenter CC-7, Environment development | 2 (empty, format) |
//! | A7 | page2 | orders | sql/servers/databases | Owner, CostCenter cc-101, Environment Production | 1 (invalid value) |
//! | A8 | page2 | pip-shop | network/publicipaddresses | null | out of scope |
//! | B1 | rest (REST) | app-api | web/sites | Owner, Environment staging | compliant |
//! | B2 | rest | vm-api-01 | compute/virtualmachines | Owner, cost_center cc-200, Environment staging | compliant (native: misnamed) |
//! | B3 | rest | kv-api | keyvault/vaults | {} | out of scope |
//! | B4 | legacy (bare array) | stapilogs | storage/storageaccounts | Owner, Environment development | compliant (no DataClass needed) |
//! | B5 | legacy | vm-api-02 | compute/virtualmachines | null | 3 missing |
//!
//! In scope 11 (13 − A8, B3); compliant 6 (A1 A2 A4 B1 B2 B4), non-compliant 5, violations
//! 3+1+2+1+3 = 10; native compliant 4 (A1 A4 B1 B4). Without any tag: A3 A8 B3 B5 = 4.
//!
//! GCP (12 resources: 7 search results of project shop-prod = 482915736201, 6 exported assets
//! of data-lab = 739104628355, one of which repeats the shop-assets bucket and is dropped):
//!
//! | # | file | resource | type | labels (and tags) | effective verdict |
//! |---|---|---|---|---|---|
//! | G1 | search | web-1 | compute/instance | owner, cost_center cc-101, env prod | compliant |
//! | G2 | search | web-2 | compute/instance | owner, cost_center cc-10x, environment staging | 1 (format) |
//! | G3 | search | batch-1 | compute/instance | {} | 3 missing |
//! | G4 | search | shop-assets | storage/bucket | owner, env prod, dataclass public | compliant |
//! | G5 | search | shop-tmp | storage/bucket | owner, env prod | 1 (DataClass conditional) |
//! | G6 | search | orders | pubsub/topic | null | out of scope |
//! | G7 | search | orders-db | sqladmin/instance | cost_center cc-300, env production; tag owner=dba | compliant |
//! | G8 | export | etl-1 | compute/instance | owner, cost_center cc-400, env development | compliant |
//! | G9 | export | etl-2 | compute/instance | owner | 2 missing |
//! | G10 | export | sales | bigquery/dataset | owner, env staging | compliant |
//! | G11 | export | lab-raw | storage/bucket | none | 2 missing (no DataClass: not production) |
//! | G12 | export | etl@… | iam/serviceaccount | none | out of scope |
//!
//! In scope 10; compliant 5 (G1 G4 G7 G8 G10), non-compliant 5, violations 1+3+1+2+2 = 9;
//! native compliant 0 (every labelled resource writes a key in lower case: why GCP needs
//! aliases). Without any label: G3 G6 G11 G12 = 4.

use serde_json::{Value, json};

use crate::common::{StdioClient, check_json, fixture, path_str, run};

const AZURE_FILES: [&str; 4] = [
    "azure/arg_sub_a_page1.json",
    "azure/arg_sub_a_page2.json",
    "azure/arg_sub_b_rest.json",
    "azure/arg_sub_b_legacy.json",
];
const GCP_FILES: [&str; 2] = ["gcp/search_all_resources.json", "gcp/asset_export.ndjson"];
const SUB_A: &str = "0a0a0a0a-1111-4111-8111-0000000000aa";
const SUB_B: &str = "0b0b0b0b-2222-4222-8222-0000000000bb";

fn files(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| path_str(&fixture(n)))
        .collect::<Vec<_>>()
        .join(",")
}

fn policy() -> String {
    path_str(&fixture("cloud_policy.json"))
}

fn micros(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) * 1_000_000.0).round() as i64
}

fn ok(result: Value) -> Value {
    assert_ne!(result["isError"], true, "tool error: {result}");
    result["structuredContent"].clone()
}

/// (in scope, compliant) of one row of `by_type`.
fn of_type(check: &Value, name: &str) -> (u64, u64) {
    let row = check["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no type {name}: {}", check["by_type"]));
    (
        row["in_scope"].as_u64().unwrap(),
        row["compliant"].as_u64().unwrap(),
    )
}

#[test]
fn azure_exports_in_three_shapes_score_as_counted_by_hand() {
    let azure = files(&AZURE_FILES);
    let cost = path_str(&fixture("azure/focus_costs.csv"));
    let c = check_json(
        &[
            "--policy",
            &policy(),
            "--inventory",
            &azure,
            "--cost",
            &cost,
        ],
        &[],
    );
    assert_eq!(c["resources"], 13, "{c}");
    assert_eq!(c["in_scope"], 11);
    assert_eq!(c["effective"]["compliant"], 6);
    assert_eq!(c["effective"]["non_compliant"], 5);
    assert_eq!(c["effective"]["violations"], 10);
    assert_eq!(c["score_pct"], 54.55);
    assert_eq!(c["native"]["compliant"], 4);
    assert_eq!(c["by_kind"]["missing_required_tag"], 6, "A3 3 + B5 3");
    assert_eq!(c["by_kind"]["conditional_requirement"], 1, "A5");
    // Types are canonical: A1 A2 A3 B2 B5 are VMs, of which A1 A2 B2 comply.
    assert_eq!(of_type(&c, "azure:compute/virtualmachines"), (5, 3));
    assert_eq!(of_type(&c, "azure:sql/servers/databases"), (1, 0));
    assert_eq!(of_type(&c, "azure:storage/storageaccounts"), (2, 1));
    // Spend (FOCUS ids in other cases join the inventory): in-scope resources with a cost are
    // A1 120 (two rows, lower and original case), A3 50 (upper case), A5 30, A6 40, A7 60
    // (upper-case segments), B2 80 (lower case), B5 25 = 405; compliant A1 + B2 = 200.
    let spend = &c["spend"];
    assert_eq!(micros(&spend["in_scope_spend"]), 405_000_000, "{spend}");
    assert_eq!(micros(&spend["compliant_spend"]), 200_000_000);
    assert_eq!(spend["priced_resources"], 7);

    let q = &c["data_quality"];
    assert_eq!(q["status"], "complete", "{q}");
    let coverage = &q["coverage"];
    assert_eq!(coverage["complete"], true);
    assert_eq!(coverage["never_tagged_included"], true);
    let source = &coverage["sources"][0];
    assert_eq!(source["source"], "azure_resource_graph");
    assert_eq!(source["never_tagged"], "included");
    assert_eq!(source["resources"], 13);
    assert_eq!(source["accounts"], json!([SUB_A, SUB_B]));
    assert_eq!(
        source["regions"],
        json!(["eastus", "northeurope", "westeurope"])
    );
    assert_eq!(source["failed"], json!([]));
}

#[test]
fn gcp_search_and_export_score_as_counted_by_hand() {
    let gcp = files(&GCP_FILES);
    let cost = path_str(&fixture("gcp/focus_costs.csv"));
    let c = check_json(
        &["--policy", &policy(), "--inventory", &gcp, "--cost", &cost],
        &[],
    );
    assert_eq!(c["resources"], 12, "{c}");
    assert_eq!(c["in_scope"], 10);
    assert_eq!(c["effective"]["compliant"], 5);
    assert_eq!(c["effective"]["non_compliant"], 5);
    assert_eq!(c["effective"]["violations"], 9);
    assert_eq!(c["native"]["compliant"], 0);
    assert_eq!(c["by_key"]["CostCenter"], 3, "G2 format, G3 and G9 missing");
    assert_eq!(of_type(&c, "gcp:compute/instance"), (5, 2));
    assert_eq!(of_type(&c, "gcp:storage/bucket"), (3, 1));
    assert_eq!(
        of_type(&c, "gcp:sqladmin/instance"),
        (1, 1),
        "owner from a tag"
    );
    // Costs: etl-1 by its numeric id (70), sales by its relative name (20), web-1 (50) and
    // etl-2 (30) by full name; all four join, compliant are the first three.
    let spend = &c["spend"];
    assert_eq!(micros(&spend["in_scope_spend"]), 170_000_000, "{spend}");
    assert_eq!(micros(&spend["compliant_spend"]), 140_000_000);
    assert_eq!(spend["priced_resources"], 4);

    let q = &c["data_quality"];
    assert_eq!(q["status"], "complete", "{q}");
    assert_eq!(q["duplicates_dropped"], 1, "shop-assets is in both files");
    let source = &q["coverage"]["sources"][0];
    assert_eq!(source["source"], "gcp_asset_inventory");
    assert_eq!(source["never_tagged"], "included");
    assert_eq!(
        source["accounts"],
        json!(["482915736201 (shop-prod)", "739104628355 (data-lab)"])
    );
    assert!(
        source["regions"].as_array().unwrap().contains(&json!("eu"))
            && !source["regions"].as_array().unwrap().contains(&json!("EU")),
        "{source}"
    );
}

/// One policy over both clouds at once, and `applies_to`-style type filters by cloud and
/// namespace: Azure VMs and disks are A1 A2 A3 A4 B2 B5 (compliant A1 A2 A4 B2).
#[test]
fn both_clouds_in_one_run_and_filtered_by_type_prefix() {
    let both = format!("{},{}", files(&AZURE_FILES), files(&GCP_FILES));
    let c = check_json(&["--policy", &policy(), "--inventory", &both], &[]);
    assert_eq!(c["resources"], 25, "{c}");
    assert_eq!(c["in_scope"], 21);
    assert_eq!(c["effective"]["compliant"], 11);
    assert_eq!(c["effective"]["violations"], 19);
    let kinds: Vec<&Value> = c["data_quality"]["coverage"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["source"])
        .collect();
    assert_eq!(kinds, vec!["azure_resource_graph", "gcp_asset_inventory"]);
    assert_eq!(c["data_quality"]["coverage"]["complete"], true);

    let compute = check_json(
        &[
            "--policy",
            &policy(),
            "--inventory",
            &both,
            "--resource-types",
            "azure:compute/*",
        ],
        &[],
    );
    assert_eq!(compute["in_scope"], 6, "{compute}");
    assert_eq!(compute["effective"]["compliant"], 4);
    let gcp = check_json(
        &[
            "--policy",
            &policy(),
            "--inventory",
            &both,
            "--resource-types",
            "gcp",
        ],
        &[],
    );
    assert_eq!(gcp["in_scope"], 10, "a bare `gcp` is every GCP type");
    assert_eq!(gcp["effective"]["compliant"], 5);
}

/// The first page of subscription A alone: it has a skip token and 5 of 8 records, so the
/// inventory is partial and both the answer and `check` say which file and what to fetch.
#[test]
fn a_missing_azure_page_is_stated_in_coverage() {
    let page1 = files(&["azure/arg_sub_a_page1.json"]);
    let c = check_json(&["--policy", &policy(), "--inventory", &page1], &[]);
    assert_eq!(c["resources"], 5);
    let q = &c["data_quality"];
    assert_eq!(q["status"], "partial", "{q}");
    let coverage = &q["coverage"];
    assert_eq!(coverage["complete"], false);
    assert_eq!(coverage["never_tagged_included"], true);
    let failed = &coverage["sources"][0]["failed"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["scope"], "file arg_sub_a_page1.json");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("this export has more pages")
            && reason.contains("5 of its 8 records")
            && reason.contains("--skip-token ew0KICAiJGlkIjogIjEiLA0K"),
        "{reason}"
    );
    let (code, stdout, _) = run(
        &["check", "--policy", &policy(), "--inventory", &page1],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Azure Resource Graph did not cover file arg_sub_a_page1.json")
            && stdout.contains("this export has more pages"),
        "{stdout}"
    );
}

#[test]
fn a_file_of_no_known_format_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("estate.json");
    std::fs::write(&odd, r#"{"value": [{"id": "x"}]}"#).unwrap();
    let (code, stdout, stderr) = run(&["check", "--inventory", &path_str(&odd)], &[]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tagwarden: inventory file estate.json is not in the expected format")
            && stderr.contains("az graph query")
            && stderr.contains("gcloud asset search-all-resources")
            && stderr.contains("gcloud asset export"),
        "{stderr}"
    );
}

/// Over MCP, on both clouds with both cost files: `find_untagged_resources` counts the
/// never-tagged resources of both and puts money on them through case-insensitive Azure ids;
/// the cost gap adds up the two hand counts.
#[test]
fn mcp_finds_never_tagged_resources_and_the_gap_of_both_clouds() {
    let both = format!("{},{}", files(&AZURE_FILES), files(&GCP_FILES));
    let costs = files(&["azure/focus_costs.csv", "gcp/focus_costs.csv"]);
    let args = [
        "--policy",
        &policy(),
        "--inventory",
        &both,
        "--cost",
        &costs,
        "--no-prewarm",
    ];
    let (mut c, _) = StdioClient::initialized(&args, &[]);

    // No tag at all: A3 A8 B3 B5 and G3 G6 G11 G12, in or out of the policy's scope.
    let bare = ok(c.call(
        "find_untagged_resources",
        json!({"only_without_any_tags": true, "limit": 50}),
    ));
    assert_eq!(bare["total"], 8, "{bare}");
    assert_eq!(bare["examined"], 25);
    let mut names: Vec<&str> = bare["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "batch-1",
            "etl@data-lab.iam.gserviceaccount.com",
            "kv-api",
            "lab-raw",
            "orders",
            "pip-shop",
            "vm-api-02",
            "vm-batch-01"
        ]
    );
    // vm-batch-01's cost row writes its id in upper case: it still carries its 50.00.
    let batch = bare["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "vm-batch-01")
        .unwrap();
    assert_eq!(micros(&batch["cost"]), 50_000_000, "{batch}");
    assert_eq!(batch["account"], SUB_A);
    assert_eq!(batch["resource_type"], "azure:compute/virtualmachines");

    // Missing a required key (effective view, empty counts as missing): A3 A5 A6 B5 and
    // G3 G5 G9 G11. Owner: A3 A6 B5 G3 G11; DataClass: A5 G5.
    let missing = ok(c.call("find_untagged_resources", json!({"limit": 50})));
    assert_eq!(missing["total"], 8, "{missing}");
    assert_eq!(missing["by_missing_key"]["Owner"], 5);
    assert_eq!(missing["by_missing_key"]["DataClass"], 2);
    assert_eq!(missing["by_missing_key"]["CostCenter"], 4, "A3 B5 G3 G9");
    assert_eq!(
        missing["by_missing_key"]["Environment"], 5,
        "A3 B5 G3 G9 G11"
    );

    // Gap, October: Azure 410.00 of which 210.00 unattributable (A3 50, A5 30, A6 40, A7 60,
    // B5 25, and the orphan disk 5 that only the cost file knows); GCP 170.00 of which 30.00
    // (etl-2). Resources priced: 8 Azure (A1's two case variants are one) + 4 GCP, all but
    // the orphan disk in the inventory.
    let gap = ok(c.call(
        "get_cost_attribution_gap",
        json!({"time_period": {"start": "2026-10-01", "end": "2026-11-01"},
               "group_by": "provider"}),
    ));
    assert_eq!(micros(&gap["total"]), 580_000_000, "{gap}");
    assert_eq!(micros(&gap["unattributable"]), 240_000_000);
    assert_eq!(micros(&gap["attributable"]), 340_000_000);
    assert_eq!(gap["resources_priced"], 12);
    assert_eq!(gap["resources_in_inventory"], 11);
    let provider = |name: &str| {
        gap["by_provider"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == name)
            .unwrap_or_else(|| panic!("no {name}: {gap}"))
            .clone()
    };
    assert_eq!(micros(&provider("azure")["unattributable"]), 210_000_000);
    assert_eq!(micros(&provider("gcp")["unattributable"]), 30_000_000);
    assert_eq!(micros(&provider("gcp")["attributable"]), 140_000_000);

    let check = ok(c.call("check_tag_compliance", json!({})));
    assert_eq!(check["effective"]["compliant"], 11);
    assert_eq!(check["data_quality"]["coverage"]["complete"], true);
}
