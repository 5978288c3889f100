//! The multi-account scan against moto's AWS Organizations and STS: an organisation of four
//! accounts (the management account and prod, staging, sandbox), each seeded through its
//! `OrganizationAccountAccessRole` by tests/support/seed_org.py, which prints the independent
//! recount. The test server refuses `AssumeRole` into sandbox, as AWS does when the role is
//! missing or does not trust the caller.
//!
//! Asserted: every other account is counted exactly as the recount says, by id and with its
//! name; sandbox is named in the coverage with STS's reason; and the calls moto served are
//! exactly ListAccounts pages + one AssumeRole per account (per role of a chain) + the
//! GetResources pages of the accounts that let us in. The same through a c7n-org accounts.yml,
//! and the Redis listing keys (account + role + region: a new session reuses them, another
//! role does not).
//!
//! moto here is this module's own; the tests take turns (a lock), so the counts one test reads
//! are its own.

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::common::moto::{Moto, env_refs};
use crate::common::{check_json, fixture, path_str, run};
use serde_json::{Value, json};

const REGIONS: &str = "us-east-1,eu-west-1";
const DENIED: &str = "sandbox";

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let m = Moto::start_seeded_by("seed_org.py", &[]);
        let denied = account(&m, DENIED)["id"].as_str().unwrap().to_string();
        m.deny_assume_role(&[&denied]);
        m
    })
}

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The recount of the account with this name.
fn account<'a>(m: &'a Moto, name: &str) -> &'a Value {
    m.expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no account {name} in {}", m.expected))
}

fn id_of(m: &Moto, name: &str) -> String {
    account(m, name)["id"].as_str().unwrap().to_string()
}

/// GetResources pages of one account in these regions, from the recount.
fn pages(a: &Value, regions: &[&str]) -> u64 {
    regions
        .iter()
        .map(|r| a["pages"][r].as_u64().unwrap())
        .sum()
}

/// Requests per operation served while `f` ran.
fn served<T>(m: &Moto, f: impl FnOnce() -> T) -> (T, Value) {
    let before = m.calls_by_operation();
    let out = f();
    let after = m.calls_by_operation();
    let mut delta = serde_json::Map::new();
    for (op, n) in after.as_object().unwrap() {
        let d = n.as_u64().unwrap() - before[op].as_u64().unwrap_or(0);
        if d > 0 {
            delta.insert(op.clone(), json!(d));
        }
    }
    (out, Value::Object(delta))
}

fn org_check(m: &Moto, extra: &[&str], extra_env: &[(&'static str, &str)]) -> Value {
    let policy = path_str(&fixture("moto_policy.json"));
    let env = m.env();
    let mut env = env_refs(&env);
    env.extend_from_slice(extra_env);
    let mut args = vec![
        "--aws-org",
        "--regions",
        REGIONS,
        "--policy",
        &policy,
        "--limit",
        "0",
    ];
    args.extend_from_slice(extra);
    check_json(&args, &env)
}

fn group<'a>(answer: &'a Value, id: &str) -> Option<&'a Value> {
    answer["by_account"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == id)
}

#[test]
fn aws_org_counts_every_account_names_the_refused_one_and_makes_only_the_calls_needed() {
    let _turn = one_at_a_time();
    let m = moto();
    let (got, calls) = served(m, || org_check(m, &[], &[]));

    let scanned: Vec<&Value> = m.expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] != DENIED)
        .collect();
    assert_eq!(scanned.len(), 3);
    let mut resources = 0;
    for a in &scanned {
        let id = a["id"].as_str().unwrap();
        let g = group(&got, id).unwrap_or_else(|| panic!("{id} missing: {}", got["by_account"]));
        assert_eq!(g["in_scope"], a["resources"], "{id}");
        assert_eq!(g["compliant"], a["compliant"], "{id}");
        assert_eq!(g["non_compliant"], a["non_compliant"], "{id}");
        assert_eq!(g["account_name"], a["name"], "{id}");
        resources += a["resources"].as_u64().unwrap();
    }
    assert_eq!(
        got["resources"], resources,
        "never-tagged volumes are not listed"
    );
    let sandbox = id_of(m, DENIED);
    assert!(group(&got, &sandbox).is_none());

    // The refused account is named, with STS's reason; the others are covered.
    let dq = &got["data_quality"];
    assert_eq!(dq["status"], "partial");
    let source = &dq["coverage"]["sources"][0];
    let failed = source["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["scope"], format!("{sandbox} ({DENIED})"));
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "AssumeRole in arn:aws:iam::{sandbox}:role/OrganizationAccountAccessRole failed: \
             AWS answered AccessDenied"
        )),
        "{reason}"
    );
    assert!(reason.contains("trust policy"), "{reason}");
    let covered: Vec<String> = source["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for a in &scanned {
        assert!(covered.contains(&format!(
            "{} ({})",
            a["id"].as_str().unwrap(),
            a["name"].as_str().unwrap()
        )));
    }
    assert_eq!(covered.len(), 3);
    assert!(
        dq["coverage"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w
                .as_str()
                .unwrap()
                .contains(&format!("did not cover {sandbox} ({DENIED})")))
    );
    // sandbox's two regions are failed parts, with the same reason.
    let failures = dq["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|p| p["error"] == reason));
    assert_eq!(dq["parts_total"], 8);

    // Exactly the calls needed: one ListAccounts page (4 accounts), one AssumeRole per
    // account (the refused one too), and the GetResources pages of the three scanned accounts.
    let pages: u64 = scanned
        .iter()
        .map(|a| pages(a, &["us-east-1", "eu-west-1"]))
        .sum();
    assert_eq!(
        calls,
        json!({"ListAccounts": 1, "AssumeRole": 4, "GetResources": pages}),
        "calls served by moto"
    );
    assert_eq!(
        dq["api_calls"],
        1 + 4 + pages,
        "Tagwarden's own count agrees"
    );
    assert_eq!(dq["retries"], 0);
}

#[test]
fn the_accounts_filter_takes_a_name_and_check_prints_the_refused_account() {
    let _turn = one_at_a_time();
    let m = moto();
    let prod = account(m, "prod");
    let got = org_check(m, &["--accounts", "prod"], &[]);
    assert_eq!(got["resources"], prod["resources"]);
    assert_eq!(got["by_account"].as_array().unwrap().len(), 1);
    assert_eq!(got["by_account"][0]["name"], prod["id"]);

    let policy = path_str(&fixture("moto_policy.json"));
    let env = m.env();
    let (code, text, stderr) = run(
        &[
            "check",
            "--aws-org",
            "--regions",
            REGIONS,
            "--policy",
            &policy,
        ],
        &env_refs(&env),
    );
    assert!(code == 0 || code == 2, "{stderr}");
    let sandbox = id_of(m, DENIED);
    assert!(
        text.contains(&format!("did not cover {sandbox} ({DENIED}): AssumeRole")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} (prod)", prod["id"].as_str().unwrap())),
        "by_account shows names: {text}"
    );
    assert!(text.contains("3 of 4 accounts"), "{text}");
}

#[test]
fn an_accounts_file_is_scanned_through_its_roles_chains_and_regions() {
    let _turn = one_at_a_time();
    let m = moto();
    let (prod, staging, sandbox) = (id_of(m, "prod"), id_of(m, "staging"), id_of(m, DENIED));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.yml");
    // prod: one region, reached by chaining through the management account's role; staging:
    // --aws-role-name; sandbox: its own role, still refused.
    std::fs::write(
        &file,
        format!(
            "accounts:\n\
             - account_id: '{prod}'\n  name: production\n  regions: [us-east-1]\n  \
               external_id: tagwarden-test\n  role:\n  \
               - arn:aws:iam::123456789012:role/OrganizationAccountAccessRole\n  \
               - arn:aws:iam::{prod}:role/OrganizationAccountAccessRole\n  tags: ['path:/Workloads']\n\
             - account_id: '{staging}'\n  name: staging\n\
             - account_id: '{sandbox}'\n  name: play\n  role: arn:aws:iam::{sandbox}:role/Reader\n"
        ),
    )
    .unwrap();
    let policy = path_str(&fixture("moto_policy.json"));
    let env = m.env();
    let (got, calls) = served(m, || {
        check_json(
            &[
                "--aws-accounts",
                &path_str(&file),
                "--regions",
                REGIONS,
                "--policy",
                &policy,
                "--limit",
                "0",
            ],
            &env_refs(&env),
        )
    });
    let p = account(m, "prod");
    let s = account(m, "staging");
    let g = group(&got, &prod).expect("prod scanned");
    assert_eq!(g["account_name"], "production", "the file's name");
    // prod only in us-east-1 (its own `regions`), the other accounts in --regions.
    assert_eq!(g["in_scope"], p["by_region"]["us-east-1"]);
    assert_eq!(group(&got, &staging).unwrap()["in_scope"], s["resources"]);
    let failed = &got["data_quality"]["coverage"]["sources"][0]["failed"];
    assert_eq!(failed[0]["scope"], format!("{sandbox} (play)"));
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{sandbox}:role/Reader"))
    );
    // No ListAccounts; AssumeRole: 2 for prod's chain, 1 each for the others.
    let pages = pages(p, &["us-east-1"]) + pages(s, &["us-east-1", "eu-west-1"]);
    assert_eq!(calls, json!({"AssumeRole": 4, "GetResources": pages}));
    assert_eq!(got["data_quality"]["api_calls"], 4 + pages);
    assert_eq!(got["data_quality"]["parts_total"], 5, "1 + 2 + 2 regions");
}

#[test]
fn redis_listings_are_keyed_by_account_role_and_region() {
    let _turn = one_at_a_time();
    let m = moto();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "tagwarden-test:org:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let shared = [
        ("REDIS_URL", url.as_str()),
        ("TAGWARDEN_CACHE_PREFIX", prefix.as_str()),
    ];
    let scanned_pages: u64 = m.expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] != DENIED)
        .map(|a| pages(a, &["us-east-1", "eu-west-1"]))
        .sum();

    let (first, calls) = served(m, || org_check(m, &[], &shared));
    assert_eq!(calls["GetResources"], scanned_pages);
    assert_eq!(first["data_quality"]["cache"]["shared_cache"], "available");
    assert_eq!(listing_keys(&url, &prefix), 6, "3 accounts × 2 regions");

    // A new process assumes new sessions (new access keys): the listings are still its own,
    // so no GetResources and no AssumeRole for the accounts whose listings are cached.
    let (second, calls) = served(m, || org_check(m, &["--min-severity", "high"], &shared));
    assert_eq!(
        calls,
        json!({"ListAccounts": 1, "AssumeRole": 1}),
        "only the refused account is tried again"
    );
    assert_eq!(second["data_quality"]["parts_from_shared_cache"], 6);
    assert_eq!(second["data_quality"]["api_calls"], 2);
    assert_eq!(second["resources"], first["resources"]);

    // Another role is another principal: its listings are not shared with the first role's.
    let (_, calls) = served(m, || {
        org_check(m, &["--aws-role-name", "TagwardenReadOnly"], &shared)
    });
    assert_eq!(calls["GetResources"], scanned_pages);
    assert_eq!(calls["AssumeRole"], 4);
    assert_eq!(listing_keys(&url, &prefix), 12);
}

/// Listing keys under this prefix in Redis.
fn listing_keys(url: &str, prefix: &str) -> usize {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client.get_connection().expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*:inventory:*"))
        .query(&mut con)
        .expect("KEYS");
    keys.len()
}

#[test]
fn a_bad_accounts_file_or_conflicting_flags_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.yml");
    std::fs::write(&file, "accounts:\n- account_id: '12345'\n  name: short\n").unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        // Nothing listens here: the file is refused before any call.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    let (code, _, stderr) = run(&["check", "--aws-accounts", &path_str(&file)], &env);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("accounts.yml") && stderr.contains("`12345` is not a 12-digit account id"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["check", "--demo", "--aws-org"], &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (code, _, stderr) = run(
        &["check", "--aws-org", "--aws-accounts", &path_str(&file)],
        &env,
    );
    assert_eq!(code, 2, "{stderr}");
}
