//! The PostgreSQL backend (`--database-url`) with real server processes: two `serve --http`
//! replicas on one database share one history and one audit chain that `audit verify
//! --database-url` accepts, concurrent appends from both keep the chain valid, and they share
//! virtual tags, tag rules and promotion plans (what one proposes the other reviews, and the
//! effective score follows on both); `check`, `report` and `promote` read the same tables. Each test uses a schema of its own in the test database
//! (`TAGWARDEN_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test); the tests
//! fail — never skip — when PostgreSQL is unreachable.

use serde_json::{Value, json};

use crate::common::moto::{Moto, env_refs};
use crate::common::{HttpClient, HttpServer, fixture, path_str, run};

const NO_LIMITS: &[(&str, &str)] = &[
    ("TAGWARDEN_BUDGET_BURST", "0"),
    ("TAGWARDEN_BUDGET_PER_HOUR", "0"),
    ("TAGWARDEN_BUDGET_GLOBAL_PER_HOUR", "0"),
    ("TAGWARDEN_LOOP_MAX_REPEATS", "0"),
];

fn test_url() -> String {
    std::env::var("TAGWARDEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own, dropped at the end.
struct Schema {
    name: String,
}

async fn admin() -> tokio_postgres::Client {
    let url = test_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url} ({e}): these tests need it. Start it \
                 (`pg_ctlcluster 15 main start`, or `docker run -p 5432:5432 -e \
                 POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres`) or set \
                 TAGWARDEN_TEST_DATABASE_URL"
            )
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

impl Schema {
    async fn create() -> Schema {
        let name = format!("tw_it_{:016x}", fastrand::u64(..));
        admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        Schema { name }
    }

    fn url(&self) -> String {
        format!(
            "{}?options=-csearch_path%3D{name}&application_name={name}",
            test_url(),
            name = self.name
        )
    }
}

impl Drop for Schema {
    /// Also when a test fails: the servers (declared after the schema) are gone by now; end
    /// any session left (by application name), then drop the schema, from a thread of its
    /// own since the test's runtime may be the one dropping.
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = admin().await;
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1",
                        &[&name],
                    )
                    .await
                    .ok()?;
                admin
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test schema {} was not dropped", self.name);
        }
    }
}

fn replica(url: &str) -> HttpServer {
    let mut envs = NO_LIMITS.to_vec();
    envs.push(("TAGWARDEN_DATABASE_URL", url));
    HttpServer::start(&["--demo", "--no-prewarm"], &envs)
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn verify(url: &str) -> (i32, String) {
    let (code, out, err) = run(&["audit", "verify", "--database-url", url], &[]);
    (code, format!("{out}{err}"))
}

/// Rows of the shared log, oldest first (`audit tail --json`).
fn tail(url: &str, n: usize) -> Vec<Value> {
    let (code, out, err) = run(
        &[
            "audit",
            "tail",
            "--json",
            "-n",
            &n.to_string(),
            "--database-url",
            url,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_history_and_one_audit_chain() {
    let schema = Schema::create().await;
    let url = schema.url();
    let a = replica(&url);
    let b = replica(&url);
    let mut ca = HttpClient::new(&a.base);
    let mut cb = HttpClient::new(&b.base);
    ca.initialize().await;
    cb.initialize().await;

    // A snapshot stored through one replica is the other's history.
    let stored = ca
        .call(
            "check_tag_compliance",
            json!({"store_snapshot": true, "limit": 1}),
        )
        .await;
    assert_ne!(stored["isError"], json!(true), "{}", text(&stored));
    let history = cb
        .call("get_violation_history", json!({"days_back": 1}))
        .await;
    assert_ne!(history["isError"], json!(true), "{}", text(&history));
    let points = history["structuredContent"]["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points: {history}"));
    assert_eq!(points.len(), 1, "{history}");

    // Calls alternate between the replicas.
    for i in 0..6 {
        let c = if i % 2 == 0 { &mut ca } else { &mut cb };
        let r = c.call("get_tagging_policy", json!({})).await;
        assert_ne!(r["isError"], json!(true), "{}", text(&r));
    }

    // The virtual-tag store is on PostgreSQL too (no SQLite file of its own).
    let r = cb
        .call("review_virtual_tags", json!({"action": "list"}))
        .await;
    assert_ne!(r["isError"], json!(true), "{r}");
    assert_eq!(r["structuredContent"]["total"], json!(0), "{r}");

    let rows = tail(&url, 100);
    assert_eq!(rows.len(), 9, "{rows:?}");
    let sessions: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["session"].as_str()).collect();
    assert_eq!(sessions.len(), 2, "rows of both replicas: {sessions:?}");
    let seqs: Vec<i64> = rows.iter().filter_map(|r| r["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    let (code, out) = verify(&url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 9 rows"), "{out}");

    // An edited row is found by the same command.
    admin()
        .await
        .batch_execute(&format!(
            "UPDATE {}.audit SET outcome = 'refused:edited' WHERE seq = 8",
            schema.name
        ))
        .await
        .unwrap();
    let (code, out) = verify(&url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at row 8"), "{out}");
}

fn compliant(check: &Value) -> u64 {
    check["effective"]["compliant"]
        .as_u64()
        .unwrap_or_else(|| panic!("no effective count: {check}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_virtual_tags_and_rules() {
    let schema = Schema::create().await;
    let url = schema.url();
    let a = replica(&url);
    let b = replica(&url);
    let mut ca = HttpClient::new(&a.base);
    let mut cb = HttpClient::new(&b.base);
    ca.initialize().await;
    cb.initialize().await;
    let check = json!({"limit": 0});
    let before = compliant(&ca.ok("check_tag_compliance", check.clone()).await);

    // Proposed through A, listed and approved through B.
    let filter = json!({"resource_types": ["ec2:instance"], "regions": ["eu-west-1"],
                        "tags_missing": ["Owner"]});
    let suggested = ca
        .ok(
            "suggest_tags",
            json!({"filter": filter, "keys": ["Owner"], "propose": true}),
        )
        .await;
    let proposed = suggested["proposed"].as_u64().unwrap();
    assert!(proposed > 0, "{suggested}");
    let pending = cb.ok("review_virtual_tags", json!({"limit": 500})).await;
    assert_eq!(pending["total"].as_u64(), Some(proposed), "{pending}");
    assert!(
        pending["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "pending")
    );
    let decided = cb
        .ok(
            "review_virtual_tags",
            json!({"action": "approve", "filter": {"sources": ["suggestion"]},
               "reason": "owners confirmed on replica B"}),
        )
        .await;
    assert_eq!(decided["total"].as_u64(), Some(proposed), "{decided}");

    // A's effective view follows (its overlay reloads on the shared generation).
    let after = compliant(&ca.ok("check_tag_compliance", check.clone()).await);
    assert!(
        after > before,
        "approved on B, not in effect on A: {before} -> {after}"
    );
    assert_eq!(
        after,
        compliant(&cb.ok("check_tag_compliance", check).await)
    );

    // A rule created on B applies on A.
    let rule = json!({"name": "web owners", "priority": 10,
        "when": {"field": "type", "eq": "ec2:instance"}, "set": {"CostCenter": "CC-9999"}});
    let created = cb
        .ok(
            "manage_tag_rules",
            json!({"action": "create", "rule": rule}),
        )
        .await;
    let rule_id = created["rule"]["id"].as_i64().unwrap();
    let listed = ca.ok("manage_tag_rules", json!({})).await;
    assert_eq!(listed["rules"][0]["id"].as_i64(), Some(rule_id), "{listed}");
    let ran = ca.ok("manage_tag_rules", json!({"action": "run"})).await;
    let written = ran["written_pending"].as_u64().unwrap();
    assert!(written > 0, "{ran}");
    let from_rule = cb
        .ok(
            "review_virtual_tags",
            json!({"filter": {"rule_id": rule_id}, "limit": 0}),
        )
        .await;
    assert_eq!(from_rule["total"].as_u64(), Some(written), "{from_rule}");

    // `check --database-url` reads the same tables.
    let (code, out, err) = run(
        &[
            "check",
            "--demo",
            "--format",
            "json",
            "--database-url",
            &url,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(compliant(&cli), after, "check --database-url: {out}");
    // So do `export violations` and `report`: fewer violations than without the approved tags
    // (an empty data directory), the same score as the replicas.
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    let export = |store: &[&str]| {
        let mut args = vec!["export", "violations", "--demo", "--no-suggestions"];
        args.extend_from_slice(store);
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 0, "{err}");
        out.lines().count()
    };
    let with_tags = export(&["--database-url", &url]);
    let without = export(&["--data-dir", empty]);
    assert!(
        with_tags < without,
        "export --database-url: {with_tags} vs {without}"
    );
    let (code, out, err) = run(
        &[
            "report",
            "--demo",
            "--format",
            "json",
            "--database-url",
            &url,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let (code, out, err) = run(
        &["report", "--demo", "--format", "json", "--data-dir", empty],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let plain: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(
        report["summary"], plain["summary"],
        "report --database-url reads the approved tags"
    );
}

/// Promotion needs a writer, so these replicas serve moto's estate (`seed_promote.py`): a
/// plan made on A is shown and approved on B, and `promote show --database-url` sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_plan_made_on_one_replica_is_approved_on_the_other() {
    let moto = Moto::start_seeded_by("seed_promote.py", &[]);
    let buckets: Vec<Value> = moto.expected["buckets"].as_array().unwrap().clone();
    let schema = Schema::create().await;
    let url = schema.url();
    let policy = path_str(&fixture("moto_policy.json"));
    let source = [
        "--aws",
        "--regions",
        "us-east-1",
        "--aws-coverage",
        "tagging",
        "--policy",
        &policy,
    ];
    let moto_env = moto.env();
    let mut envs = env_refs(&moto_env);
    envs.extend(NO_LIMITS.iter().copied());
    envs.push(("TAGWARDEN_DATABASE_URL", url.as_str()));
    let mut args = source.to_vec();
    args.push("--no-prewarm");
    let a = HttpServer::start(&args, &envs);
    let b = HttpServer::start(&args, &envs);
    let mut ca = HttpClient::new(&a.base);
    let mut cb = HttpClient::new(&b.base);
    ca.initialize().await;
    cb.initialize().await;

    let applied = ca
        .ok(
            "apply_virtual_tag",
            json!({"resource_ids": buckets, "key": "CostCenter", "value": "CC-2002",
               "reason": "promotion across replicas"}),
        )
        .await;
    assert_eq!(applied["written"].as_u64(), Some(buckets.len() as u64));
    let plan = ca
        .ok("promote_virtual_tags", json!({"action": "plan"}))
        .await["plan"]
        .clone();
    let plan_id = plan["plan_id"].as_i64().unwrap();
    let shown = cb
        .ok(
            "promote_virtual_tags",
            json!({"action": "show", "plan_id": plan_id}),
        )
        .await["plan"]
        .clone();
    assert_eq!(shown["status"], "planned", "{shown}");
    assert_eq!(shown["resources"], plan["resources"], "{shown}");
    assert_eq!(shown["entries"], plan["entries"], "{shown}");
    let approved = cb
        .ok(
            "promote_virtual_tags",
            json!({"action": "approve", "plan_id": plan_id, "reason": "owners confirmed",
               "approved_by": "bob@example.com"}),
        )
        .await["plan"]
        .clone();
    assert_eq!(approved["status"], "approved", "{approved}");
    let on_a = ca
        .ok(
            "promote_virtual_tags",
            json!({"action": "show", "plan_id": plan_id}),
        )
        .await["plan"]
        .clone();
    assert_eq!(on_a["status"], "approved", "{on_a}");
    assert_eq!(on_a["approved_by"], "bob@example.com", "{on_a}");

    // The CLI reads the same tables.
    let mut cli = vec!["promote", "show"];
    cli.extend(source);
    let id = plan_id.to_string();
    cli.extend(["--database-url", &url, &id]);
    let (code, out, err) = run(&cli, &env_refs(&moto_env));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("promotion plan {plan_id} (approved)")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_processes_keep_the_chain_valid() {
    let schema = Schema::create().await;
    let url = schema.url();
    let servers = [replica(&url), replica(&url)];
    let mut tasks = Vec::new();
    // Two clients per replica, 25 calls each, all at once.
    for server in &servers {
        for _ in 0..2 {
            let base = server.base.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = HttpClient::new(&base);
                c.initialize().await;
                for _ in 0..25 {
                    let r = c.call("get_tagging_policy", json!({})).await;
                    assert_ne!(r["isError"], json!(true), "{r}");
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (code, out) = verify(&url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 100 rows"), "{out}");
}

#[test]
fn a_wrong_database_url_says_what_to_check() {
    let (code, out, err) = run(
        &[
            "audit",
            "verify",
            "--database-url",
            "postgres://nobody:hunter2@127.0.0.1:1/none",
        ],
        &[],
    );
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("TAGWARDEN_DATABASE_URL"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}
