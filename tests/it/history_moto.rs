//! Snapshots, history and drift against moto with known tag edits in between (made with the
//! Resource Groups Tagging API's TagResources/UntagResources, as a user or a tool would):
//! three snapshots on three days, then `get_violation_history` and `detect_tag_drift` must report
//! exactly those edits and their effect on the counts.

use crate::common::moto::{Moto, env_refs};
use crate::common::{StdioClient, fixture, path_str};
use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

const REGIONS: &str = "us-east-1,eu-west-1";

fn client(m: &Moto, region: &str) -> Client {
    let config = aws_sdk_resourcegroupstagging::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&m.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    Client::from_conf(config)
}

/// ARNs of resources of `resource_type` carrying exactly these tag values (first `n`).
async fn find(c: &Client, resource_type: &str, tags: &[(&str, &str)], n: usize) -> Vec<String> {
    let mut request = c
        .get_resources()
        .resources_per_page(100)
        .resource_type_filters(resource_type);
    for (k, v) in tags {
        request = request.tag_filters(TagFilter::builder().key(*k).values(*v).build());
    }
    let out = request.send().await.expect("GetResources");
    let mut arns: Vec<String> = out
        .resource_tag_mapping_list()
        .iter()
        .filter_map(|m| m.resource_arn().map(str::to_string))
        .collect();
    arns.sort();
    assert!(
        arns.len() >= n,
        "need {n} {resource_type} with {tags:?}, found {}",
        arns.len()
    );
    arns.truncate(n);
    arns
}

async fn tag(c: &Client, arn: &str, tags: &[(&str, &str)]) {
    let mut r = c.tag_resources().resource_arn_list(arn);
    for (k, v) in tags {
        r = r.tags(*k, *v);
    }
    let out = r.send().await.expect("TagResources");
    assert!(
        out.failed_resources_map().is_none_or(|m| m.is_empty()),
        "{out:?}"
    );
}

async fn untag(c: &Client, arn: &str, keys: &[&str]) {
    let mut r = c.untag_resources().resource_arn_list(arn);
    for k in keys {
        r = r.tag_keys(*k);
    }
    let out = r.send().await.expect("UntagResources");
    assert!(
        out.failed_resources_map().is_none_or(|m| m.is_empty()),
        "{out:?}"
    );
}

/// `tagwarden check --snapshot --taken-at T` (a new process: a fresh scan every time).
fn snapshot(m: &Moto, data_dir: &str, taken_at: &str) -> Value {
    let policy = path_str(&fixture("moto_policy.json"));
    let env = m.env();
    let mut env = env_refs(&env);
    env.push(("TAGWARDEN_DATA_DIR", data_dir));
    let (code, out, err) = crate::common::run(
        &[
            "check",
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--format",
            "json",
            "--limit",
            "0",
            "--snapshot",
            "--taken-at",
            taken_at,
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stored snapshot"), "{err}");
    serde_json::from_str(&out).expect("check JSON")
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["resource_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn count(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn three_snapshots_with_known_edits_give_exact_history_and_drift() {
    let m = Moto::start_seeded();
    let east = client(&m, "us-east-1");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = path_str(dir.path());
    let t1 = Utc::now() - Duration::days(3);
    let t2 = t1 + Duration::days(1);
    let t3 = t2 + Duration::days(1);
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    // The resources to edit, found by their seeded tags.
    let mut orphans = find(&east, "ec2:volume", &[("Name", "orphan")], 3).await;
    let vanishing = orphans.pop().expect("a third untagged volume");
    let good = [
        ("Environment", "production"),
        ("CostCenter", "CC-1234"),
        ("Owner", "team-a"),
    ];
    let mut good_volumes = find(&east, "ec2:volume", &good, 2).await;
    let reowned = good_volumes.pop().expect("a second compliant volume");
    let broken = good_volumes.pop().expect("a compliant volume");

    let s1 = snapshot(&m, &data_dir, &rfc(t1));
    // Edits 1→2: two untagged volumes fixed (each lacked Environment and CostCenter), one
    // compliant volume loses CostCenter.
    for arn in &orphans {
        tag(
            &east,
            arn,
            &[("Environment", "production"), ("CostCenter", "CC-9999")],
        )
        .await;
    }
    untag(&east, &broken, &["CostCenter"]).await;
    let s2 = snapshot(&m, &data_dir, &rfc(t2));
    // Edits 2→3: a compliant volume's Owner changes (still compliant); an untagged volume loses
    // its only tag, so the tagging API no longer lists it (it lacked Environment and
    // CostCenter).
    tag(&east, &reowned, &[("Owner", "team-z")]).await;
    untag(&east, &vanishing, &["Name"]).await;
    let s3 = snapshot(&m, &data_dir, &rfc(t3));

    // The snapshots' own numbers moved by exactly the edits.
    let (e1, e2, e3) = (&s1["effective"], &s2["effective"], &s3["effective"]);
    assert_eq!(count(e2, "compliant"), count(e1, "compliant") + 2 - 1);
    assert_eq!(count(e2, "violations"), count(e1, "violations") - 4 + 1);
    assert_eq!(count(e3, "compliant"), count(e2, "compliant"));
    assert_eq!(count(e3, "violations"), count(e2, "violations") - 2);
    assert_eq!(count(&s3, "resources"), count(&s2, "resources") - 1);

    let env = m.env();
    let mut env = env_refs(&env);
    env.push(("TAGWARDEN_DATA_DIR", &data_dir));
    let policy = path_str(&fixture("moto_policy.json"));
    let (mut c, _) = StdioClient::initialized(
        &[
            "--aws",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
            "--no-prewarm",
        ],
        &env,
    );

    // History: one point per day, exactly the snapshots' figures.
    let h = c.call(
        "get_violation_history",
        json!({"days_back": 30, "group_by": "day"}),
    )["structuredContent"]
        .clone();
    let points = h["points"].as_array().expect("points");
    assert_eq!(points.len(), 3, "{h}");
    for (p, (s, t)) in points.iter().zip([(&s1, t1), (&s2, t2), (&s3, t3)]) {
        assert_eq!(p["snapshot_id"], s["snapshot_id"]);
        assert_eq!(p["period"], t.format("%Y-%m-%d").to_string());
        assert_eq!(p["score_pct"], s["score_pct"]);
        assert_eq!(p["compliant"], s["effective"]["compliant"]);
        assert_eq!(p["violations"], s["effective"]["violations"]);
        assert_eq!(p["resources"], s["resources"]);
    }
    let first = s1["score_pct"].as_f64().unwrap();
    let last = s3["score_pct"].as_f64().unwrap();
    let change = ((last - first) * 100.0).round() / 100.0;
    let trend = &h["trend"];
    assert_eq!(trend["absolute_change_pct_points"].as_f64(), Some(change));
    assert_eq!(trend["violations_change"], -3 - 2);
    assert_eq!(trend["compliant_change"], 1);
    assert_eq!(trend["threshold_pct_points"], 1.0);
    let expected_direction = if change >= 1.0 {
        "improving"
    } else if change <= -1.0 {
        "declining"
    } else {
        "stable"
    };
    assert_eq!(trend["direction"], expected_direction);
    // Missing Environment went down by 2 (the fixed volumes) + 1 (the vanished one).
    let env_missing = h["top_violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["violation"] == "missing_required_tag:Environment")
        .expect("missing Environment among the top violations")
        .clone();
    assert_eq!(env_missing["change"], -3);

    // Grouped by month: the last snapshot of each month.
    let by_month = c.call(
        "get_violation_history",
        json!({"days_back": 30, "group_by": "month"}),
    )["structuredContent"]
        .clone();
    let months: Vec<String> = [t1, t2, t3]
        .iter()
        .map(|t| t.format("%Y-%m").to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(by_month["points"].as_array().unwrap().len(), months.len());
    assert_eq!(
        by_month["points"].as_array().unwrap().last().unwrap()["snapshot_id"],
        s3["snapshot_id"]
    );

    // Drift 1 → 2: exactly the three edited volumes.
    let d12 = c.call(
        "detect_tag_drift",
        json!({"from_snapshot": s1["snapshot_id"], "to_snapshot": s2["snapshot_id"]}),
    )["structuredContent"]
        .clone();
    let mut edited = orphans.clone();
    edited.push(broken.clone());
    edited.sort();
    assert_eq!(ids(&d12["tag_changes"]), edited, "{d12}");
    assert_eq!(d12["tag_changes_total"], 2 * 2 + 1);
    assert_eq!(ids(&d12["fixed"]), orphans);
    assert_eq!(ids(&d12["became_non_compliant"]), vec![broken.clone()]);
    assert_eq!(d12["appeared_total"], 0);
    assert_eq!(d12["disappeared_total"], 0);
    let removed = d12["tag_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource_id"] == broken.as_str())
        .unwrap()["removed"]
        .clone();
    assert_eq!(removed, json!([{"key": "CostCenter", "value": "CC-1234"}]));
    // The older snapshot must come first.
    let swapped = c.call(
        "detect_tag_drift",
        json!({"from_snapshot": s2["snapshot_id"], "to_snapshot": s1["snapshot_id"]}),
    );
    assert_eq!(swapped["isError"], true);
    assert!(swapped.to_string().contains("from_snapshot"), "{swapped}");
    // Only Environment edits: the fixed volumes.
    let env_only = c.call(
        "detect_tag_drift",
        json!({"from_snapshot": s1["snapshot_id"], "to_snapshot": s2["snapshot_id"],
               "tag_keys": ["environment"]}),
    )["structuredContent"]
        .clone();
    assert_eq!(ids(&env_only["tag_changes"]), orphans);

    // Drift 2 → 3 (the earlier snapshot of the same scope is found by itself).
    let d23 = c.call(
        "detect_tag_drift",
        json!({"to_snapshot": s3["snapshot_id"]}),
    )["structuredContent"]
        .clone();
    assert_eq!(d23["from"]["snapshot_id"], s2["snapshot_id"]);
    assert_eq!(d23["tag_changes_total"], 1);
    assert_eq!(
        d23["tag_changes"][0]["changed"],
        json!([{"key": "Owner", "old": "team-a", "new": "team-z"}])
    );
    assert_eq!(ids(&d23["disappeared"]), vec![vanishing.clone()]);
    assert_eq!(d23["fixed_total"], 0);
    assert_eq!(d23["became_non_compliant_total"], 0);

    // The latest snapshot against the current inventory: nothing changed since.
    let now = c.call("detect_tag_drift", json!({}))["structuredContent"].clone();
    assert_eq!(now["from"]["snapshot_id"], s3["snapshot_id"]);
    assert!(now["to"]["snapshot_id"].is_null());
    for total in [
        "tag_changes_total",
        "fixed_total",
        "became_non_compliant_total",
        "appeared_total",
        "disappeared_total",
    ] {
        assert_eq!(now[total], 0, "{total}: {now}");
    }
    assert_eq!(now["resources_compared"], s3["resources"]);
}
