//! Virtual tags end to end, over stdio and over HTTP: check → suggest → propose → approve →
//! check again, where the score improves by exactly the approved tags' effect (each resource's
//! before/after judged independently by validate_resource_tags) and the cost gap's "before
//! virtual tags" figure stays what it was. Then the guard rails of apply_virtual_tag and the
//! rules' create → test → run cycle.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{HttpClient, HttpServer, StdioClient};
use serde_json::{Value, json};

const DEMO: &[&str] = &[
    "--demo",
    "--no-prewarm",
    "--budget-burst",
    "0",
    "--budget-per-hour",
    "0",
    "--loop-max-repeats",
    "0",
];

trait Client {
    fn call(&mut self, tool: &str, args: Value) -> Value;
}

impl Client for StdioClient {
    fn call(&mut self, tool: &str, args: Value) -> Value {
        StdioClient::call(self, tool, args)
    }
}

struct Http {
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
}

impl Client for Http {
    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.runtime.block_on(self.client.call(tool, args))
    }
}

fn ok(c: &mut dyn Client, tool: &str, args: Value) -> Value {
    let r = c.call(tool, args.clone());
    assert_ne!(r["isError"], true, "{tool} {args}: {r}");
    r["structuredContent"].clone()
}

fn err(c: &mut dyn Client, tool: &str, args: Value) -> String {
    let r = c.call(tool, args.clone());
    assert_eq!(r["isError"], true, "{tool} {args} should fail: {r}");
    r["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn micros(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) * 1_000_000.0).round() as i64
}

fn scenario(c: &mut dyn Client) {
    let check0 = ok(c, "check_tag_compliance", json!({"limit": 0}));
    let gap0 = ok(c, "get_cost_attribution_gap", json!({}));
    assert_eq!(
        gap0["before_virtual_tags"]["attributable"],
        gap0["attributable"]
    );

    // Suggest owners for instances in one region that lack one, proposing the confident ones.
    let filter = json!({"resource_types": ["ec2:instance"], "regions": ["eu-west-1"],
                        "tags_missing": ["Owner"]});
    let suggested = ok(
        c,
        "suggest_tags",
        json!({"filter": filter, "keys": ["Owner"], "propose": true}),
    );
    let proposed = suggested["proposed"].as_u64().unwrap() as usize;
    assert!(proposed > 0, "{suggested}");
    let pending = ok(c, "review_virtual_tags", json!({"limit": 500}));
    assert_eq!(pending["total"].as_u64().unwrap() as usize, proposed);

    // Independently: each resource's compliance now, and with the proposed tags added.
    let mut by_resource: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for t in pending["tags"].as_array().unwrap() {
        assert_eq!(t["status"], "pending");
        assert_eq!(t["source"], "suggestion");
        assert!(t["confidence"].as_f64().unwrap() >= 0.9);
        by_resource
            .entry(t["resource_id"].as_str().unwrap().to_string())
            .or_default()
            .push((
                t["key"].as_str().unwrap().to_string(),
                t["value"].as_str().unwrap().to_string(),
            ));
    }
    let mut fixed = 0;
    for (id, tags) in &by_resource {
        let now = ok(c, "validate_resource_tags", json!({"resource_ids": [id]}));
        let now = &now["results"][0];
        let mut proposed_tags: BTreeMap<String, Value> =
            serde_json::from_value(now["effective_tags"].clone()).unwrap();
        for (k, v) in tags {
            proposed_tags.insert(k.clone(), json!(v));
        }
        let after = ok(
            c,
            "validate_resource_tags",
            json!({"resource_type": now["resource_type"], "tags": proposed_tags}),
        );
        if now["compliant"] == false && after["results"][0]["compliant"] == true {
            fixed += 1;
        }
    }

    let untagged = json!({"tag_keys": ["Owner"], "resource_types": ["ec2:instance"],
                          "regions": ["eu-west-1"], "limit": 0});
    let mut native_untagged = untagged.clone();
    native_untagged["view"] = json!("native");
    let untagged0 = ok(c, "find_untagged_resources", untagged.clone())["total"].clone();
    let native0 = ok(c, "find_untagged_resources", native_untagged.clone())["total"].clone();

    // Approve them all (by filter), then check again.
    let decided = ok(
        c,
        "review_virtual_tags",
        json!({"action": "approve", "filter": {"sources": ["suggestion"]},
               "reason": "owners confirmed by the platform team",
               "decided_by": "alice@example.com"}),
    );
    assert_eq!(decided["total"].as_u64().unwrap() as usize, proposed);
    assert_eq!(decided["tags"][0]["decided_by"], "alice@example.com");
    let check1 = ok(c, "check_tag_compliance", json!({"limit": 0}));
    let compliant = |v: &Value| v["effective"]["compliant"].as_u64().unwrap() as usize;
    assert_eq!(
        compliant(&check1),
        compliant(&check0) + fixed,
        "exactly the approved effect"
    );
    assert!(fixed > 0);
    assert_eq!(check1["native"], check0["native"], "native view untouched");
    assert_eq!(check1["data_quality"]["cache"]["result"], "miss");
    // Resources given an owner are no longer missing one, except in the native view.
    let untagged1 = ok(c, "find_untagged_resources", untagged)["total"].clone();
    assert_eq!(
        untagged1.as_u64().unwrap(),
        untagged0.as_u64().unwrap() - by_resource.len() as u64
    );
    assert_eq!(
        ok(c, "find_untagged_resources", native_untagged)["total"],
        native0
    );
    let gap1 = ok(c, "get_cost_attribution_gap", json!({}));
    assert_eq!(gap1["total"], gap0["total"]);
    assert_eq!(
        micros(&gap1["before_virtual_tags"]["unattributable"]),
        micros(&gap0["unattributable"])
    );
    assert!(micros(&gap1["unattributable"]) <= micros(&gap0["unattributable"]));
    assert_eq!(
        micros(&gap1["attributable"]) + micros(&gap1["unattributable"]),
        micros(&gap1["total"])
    );
    // The native view of a tagged resource is unchanged; its effective tags carry the owner.
    let (id, tags) = by_resource.iter().next().unwrap();
    let v = ok(c, "validate_resource_tags", json!({"resource_ids": [id]}));
    assert_eq!(
        v["results"][0]["effective_tags"][&tags[0].0],
        json!(tags[0].1)
    );
    assert!(v["results"][0]["native_tags"].get(&tags[0].0).is_none());
}

fn apply_and_rules(c: &mut dyn Client) {
    // A value outside the allowed values is refused with the list.
    let e = err(
        c,
        "apply_virtual_tag",
        json!({"filter": {"name_glob": "payments-*"}, "key": "Environment", "value": "prod-ish",
               "reason": "test"}),
    );
    assert!(e.contains("production") && e.contains("Environment"), "{e}");
    let e = err(
        c,
        "apply_virtual_tag",
        json!({"resource_ids": ["arn:aws:s3:::nope"], "key": "Nope", "value": "x", "reason": "test"}),
    );
    assert!(e.contains("does not govern"), "{e}");

    // Keys in filters are read as the policy reads them (regression: `costcenter` matched
    // every resource as missing, `env`/`prod` matched none).
    let canonical = |tags_missing: &str| {
        json!({"filter": {"resource_types": ["ec2:volume"], "tags_missing": [tags_missing]},
               "key": "CostCenter", "value": "CC-1234", "reason": "finance mapping",
               "dry_run": true})
    };
    let exact = ok(c, "apply_virtual_tag", canonical("CostCenter"))["matched"].clone();
    assert_eq!(
        ok(c, "apply_virtual_tag", canonical("costcenter"))["matched"],
        exact
    );
    let by_alias = ok(
        c,
        "apply_virtual_tag",
        json!({
        "filter": {"resource_types": ["ec2:volume"], "tags_equal": {"env": "prod"}},
        "key": "CostCenter", "value": "CC-1234", "reason": "finance mapping", "dry_run": true}),
    );
    let by_name = ok(
        c,
        "apply_virtual_tag",
        json!({
        "filter": {"resource_types": ["ec2:volume"], "tags_equal": {"Environment": "production"}},
        "key": "CostCenter", "value": "CC-1234", "reason": "finance mapping", "dry_run": true}),
    );
    assert_eq!(by_alias["matched"], by_name["matched"]);
    assert!(by_name["matched"].as_u64().unwrap() > 0);

    // A dry run reports the effect and writes nothing.
    let args = json!({"filter": {"resource_types": ["ec2:volume"], "tags_missing": ["CostCenter"]},
                      "key": "CostCenter", "value": "CC-1234", "reason": "finance mapping",
                      "dry_run": true});
    let dry = ok(c, "apply_virtual_tag", args.clone());
    assert_eq!(dry["written"], 0);
    let matched = dry["matched"].as_u64().unwrap();
    assert!(matched > 0, "{dry}");
    let before = dry["effect"]["score_before_pct"].as_f64().unwrap();
    let after = dry["effect"]["score_after_pct"].as_f64().unwrap();
    assert!(after >= before, "{dry}");
    let check = ok(c, "check_tag_compliance", json!({"limit": 0}));
    assert_eq!(check["score_pct"].as_f64().unwrap(), before);
    // Applied: the score becomes what the dry run said.
    let mut real = args.clone();
    real["dry_run"] = json!(false);
    let applied = ok(c, "apply_virtual_tag", real.clone());
    assert_eq!(applied["written"].as_u64().unwrap(), matched);
    let check = ok(c, "check_tag_compliance", json!({"limit": 0}));
    assert_eq!(check["score_pct"].as_f64().unwrap(), after);
    // Applying the same to the same resources again changes nothing and writes nothing.
    let ids: Vec<Value> = ok(
        c,
        "review_virtual_tags",
        json!({
        "filter": {"statuses": ["approved"], "sources": ["manual"]}, "limit": 500}),
    )["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["resource_id"].clone())
        .collect();
    assert_eq!(ids.len() as u64, matched);
    let again = ok(
        c,
        "apply_virtual_tag",
        json!({
        "resource_ids": ids, "key": "CostCenter", "value": "CC-1234",
        "reason": "finance mapping"}),
    );
    assert_eq!(again["written"], 0);
    assert_eq!(again["effect"]["resources_changed"], 0);

    // A priority held by a disabled rule is refused as an argument error, not a database
    // failure (regression: store refusals read "virtual-tag store: database error: ...").
    ok(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": {"name": "parked", "priority": 50, "enabled": false,
               "when": {"field": "type", "eq": "sqs:queue"}, "set": {"CostCenter": "CC-1111"}}}),
    );
    let e = err(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": {"name": "same slot", "priority": 50,
               "when": {"field": "type", "eq": "sns:topic"}, "set": {"CostCenter": "CC-1111"}}}),
    );
    assert!(e.contains("priority 50") && !e.contains("database"), "{e}");

    // Deciding by filter needs a narrowing condition and acts on pending tags only.
    let e = err(
        c,
        "review_virtual_tags",
        json!({"action": "approve", "filter": {}, "reason": "all of them"}),
    );
    assert!(e.contains("filter"), "{e}");
    let e = err(
        c,
        "review_virtual_tags",
        json!({"action": "approve", "filter": {"statuses": ["denied"]}, "reason": "again"}),
    );
    assert!(e.contains("statuses"), "{e}");

    // Deciding needs a reason, and ids that exist.
    let e = err(
        c,
        "review_virtual_tags",
        json!({"action": "deny", "ids": [1]}),
    );
    assert!(e.contains("reason"), "{e}");
    let e = err(
        c,
        "review_virtual_tags",
        json!({"action": "deny", "ids": [999999], "reason": "not ours"}),
    );
    assert!(e.contains("999999"), "{e}");

    // Rules: an invalid one is refused; a valid one is tested, then run as pending tags.
    let e = err(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": {"name": "bad", "priority": 5,
               "when": {"field": "name", "regex": "(unclosed"}, "set": {"Owner": "x@example.com"}}}),
    );
    assert!(
        e.contains("regex") || e.contains("regular expression"),
        "{e}"
    );
    let e = err(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": {"name": "bad field", "priority": 5,
               "when": {"field": "colour", "eq": "x"}, "set": {"Owner": "x@example.com"}}}),
    );
    assert!(e.contains("colour"), "{e}");
    let rule = json!({"name": "lambda app from name", "priority": 10,
        "when": {"all": [{"field": "type", "eq": "lambda:function"},
                         {"field": "tag:Environment", "exists": true},
                         {"field": "name", "regex": "^(?P<app>[a-z]+)-"}]},
        "set": {"CostCenter": "CC-9999"}});
    let created = ok(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": rule}),
    );
    let rule_id = created["rule"]["id"].as_i64().unwrap();
    let e = err(
        c,
        "manage_tag_rules",
        json!({"action": "create", "rule": {"name": "clash", "priority": 10,
               "when": {"field": "type", "eq": "s3:bucket"}, "set": {"CostCenter": "CC-1111"}}}),
    );
    assert!(e.contains("priority"), "{e}");
    let tested = ok(
        c,
        "manage_tag_rules",
        json!({"action": "test", "id": rule_id}),
    );
    let matches = tested["matches_total"].as_u64().unwrap();
    assert!(matches > 0, "{tested}");
    // A person's tag on one matched resource: the rule must leave it alone (regression: a run
    // superseded manual tags).
    let manual_on = tested["examples"][0]["resource_id"].clone();
    let manual = ok(
        c,
        "apply_virtual_tag",
        json!({
        "resource_ids": [manual_on], "key": "CostCenter", "value": "CC-4242",
        "reason": "finance says so", "override_native": true}),
    );
    assert_eq!(manual["written"], 1);
    let ran = ok(c, "manage_tag_rules", json!({"action": "run"}));
    let written = ran["written_pending"].as_u64().unwrap();
    assert_eq!(ran["written_approved"], 0, "untrusted rule: pending only");
    assert_eq!(ran["kept_decided"], 1, "{ran}");
    assert_eq!(
        written + ran["already_in_effect"].as_u64().unwrap() + 1,
        matches
    );
    // Running again writes nothing new (the proposals are already pending).
    let again = ok(c, "manage_tag_rules", json!({"action": "run"}));
    assert_eq!(again["written_pending"], 0, "{again}");
    let kept = ok(
        c,
        "validate_resource_tags",
        json!({"resource_ids": [manual_on]}),
    );
    assert_eq!(
        kept["results"][0]["effective_tags"]["CostCenter"],
        "CC-4242"
    );
    let pending = ok(
        c,
        "review_virtual_tags",
        json!({"filter": {"rule_id": rule_id}, "limit": 500}),
    );
    assert_eq!(pending["total"].as_u64().unwrap(), written);
    let listed = ok(c, "manage_tag_rules", json!({}));
    assert_eq!(
        listed["rules"][0]["last_run_matches"].as_u64(),
        Some(matches)
    );
    assert_eq!(listed["rules"][0]["matches"].as_u64(), Some(2 * matches));
    let resources: BTreeSet<&str> = pending["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["resource_id"].as_str().unwrap())
        .collect();
    assert_eq!(resources.len() as u64, written);
}

#[test]
fn the_review_cycle_over_stdio() {
    let (mut c, _) = StdioClient::initialized(DEMO, &[]);
    scenario(&mut c);
    apply_and_rules(&mut c);
}

#[test]
fn the_review_cycle_over_http() {
    let server = HttpServer::start(DEMO, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = HttpClient::new(&server.base);
    runtime.block_on(client.initialize());
    let mut http = Http { client, runtime };
    scenario(&mut http);
}
