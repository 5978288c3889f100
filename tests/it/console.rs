//! The web console at /ui on `serve --http --demo`, in the system Chromium (tests/js/console.mjs)
//! and over plain HTTP: the overview shows check_tag_compliance's score; approving two pending
//! tags in the queue changes the score shown and the store (and is audited with the approver);
//! a viewer sees no approve control and a forged POST — no CSRF token, a foreign Origin, or a
//! viewer's own session — is refused 403 and changes nothing; every page reads with JavaScript
//! disabled; a hostile tag value renders as text and runs nothing. Screenshots are kept under
//! target/report-artifacts/ (console-overview.png, console-queue.png, console-xss.png).

use std::process::Command;

use serde_json::{Value, json};

use crate::common::{HttpClient, HttpServer, artifacts, path_str, repo};

const TOKENS: (&str, &str) = (
    "TAGWARDEN_API_TOKENS",
    "vera:viewer:tok-viewer,abe:approver:tok-approver,ada:admin:tok-admin",
);

/// Runs tests/js/console.mjs with `plan`; its JSON answer.
fn drive(plan: Value) -> Value {
    let (node, chromium) = crate::common::browser();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let mut plan = plan;
    plan["chromium"] = json!(chromium);
    plan["artifacts"] = json!(path_str(&artifacts()));
    std::fs::write(&file, plan.to_string()).unwrap();
    let out = Command::new(node)
        .arg(repo().join("tests/js/console.mjs"))
        .arg(&file)
        .current_dir(repo().join("tests/js"))
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "console.mjs failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("console.mjs prints JSON");
    assert_eq!(answer["errors"], json!([]), "{answer:#}");
    assert_eq!(
        answer["blocked"],
        json!([]),
        "no request leaves the server: {answer:#}"
    );
    answer
}

/// Three resources whose one violation is a missing `Environment` with a suggestion of
/// confidence 1.0, proposed as pending virtual tags: their ids.
async fn propose_three(c: &mut HttpClient) -> Vec<i64> {
    let check = c.ok("check_tag_compliance", json!({"limit": 100})).await;
    let mut candidates: Vec<String> = Vec::new();
    for v in check["violations"].as_array().unwrap() {
        let id = v["resource_id"].as_str().unwrap().to_string();
        if v["tag_key"] == "Environment"
            && v["kind"] == "missing_required_tag"
            && !candidates.contains(&id)
        {
            candidates.push(id);
        }
    }
    // Exactly one violation (the missing key) on effective tags.
    let validated = c
        .ok(
            "validate_resource_tags",
            json!({"resource_ids": candidates.clone()}),
        )
        .await;
    let single: Vec<String> = validated["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["violations"].as_array().map(Vec::len) == Some(1))
        .map(|r| r["resource_id"].as_str().unwrap().to_string())
        .take(3)
        .collect();
    assert_eq!(
        single.len(),
        3,
        "the demo has resources missing only Environment"
    );
    let proposed = c
        .ok(
            "suggest_tags",
            json!({"resource_ids": single, "keys": ["Environment"], "propose": true}),
        )
        .await;
    let ids: Vec<i64> = serde_json::from_value(proposed["proposed_ids"].clone()).unwrap();
    assert_eq!(ids.len(), 3, "{proposed}");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_scores_roles_csrf_and_reading_without_javascript_in_chromium() {
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[TOKENS]);
    let base = server.base.clone();
    let mut approver = HttpClient::authenticated(&base, "tok-approver").await;
    let ids = propose_three(&mut approver).await;
    let before = approver
        .ok("check_tag_compliance", json!({"limit": 0}))
        .await;

    let seen = drive(json!({
        "mode": "main", "base": base,
        "approver": "tok-approver", "viewer": "tok-viewer",
        "ids": [ids[0], ids[1]], "forged_id": ids[2],
    }));

    // Logging in: a page asked for without a session goes to the login form, then back.
    assert_eq!(seen["approver_login_url"], "/ui/login", "{seen:#}");
    assert_eq!(seen["approver_after_login"], "/ui", "{seen:#}");
    // The overview's score is check_tag_compliance's, to the digit.
    let shown: f64 = seen["score_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, before["score_pct"].as_f64().unwrap(), "{seen:#}");
    let native: f64 = seen["native_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(native, before["native_score_pct"].as_f64().unwrap());
    assert_eq!(
        seen["score_before_text"].as_str().unwrap(),
        format!("{:.2}%", before["score_pct"].as_f64().unwrap())
    );
    assert!(seen["key_rows"].as_u64().unwrap() >= 3, "{seen:#}");
    assert!(seen["team_rows"].as_u64().unwrap() >= 3, "{seen:#}");
    assert_eq!(seen["offender_rows"], 10, "{seen:#}");
    assert!(
        seen["gap_before_text"]
            .as_str()
            .unwrap()
            .starts_with("USD ")
    );
    let csp = seen["csp"].as_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'nonce-",
        "img-src data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(seen["nosniff"], "nosniff");

    // The queue: three pending, an approver's controls; select-all ticks them all.
    assert_eq!(seen["queue_total_before"], "3", "{seen:#}");
    assert_eq!(seen["queue_ids"].as_array().unwrap().len(), 3);
    assert_eq!(seen["approver_buttons"], 4, "3 rows + approve selected");
    assert_eq!(seen["select_all_ticked"], 3);
    assert_eq!(seen["decided_text"], "2 tag(s) approved.", "{seen:#}");
    assert_eq!(seen["queue_total_after"], "1");

    // The score shown moved, and it is the tool's new score.
    let after = approver
        .ok("check_tag_compliance", json!({"limit": 0}))
        .await;
    let shown_after: f64 = seen["score_after"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        shown_after,
        after["score_pct"].as_f64().unwrap(),
        "{seen:#}"
    );
    assert_eq!(
        after["effective"]["compliant"].as_u64().unwrap(),
        before["effective"]["compliant"].as_u64().unwrap() + 2,
        "approving the two tags fixed their resources"
    );
    assert!(shown_after > shown, "{shown} -> {shown_after}");

    // The store: the two approved by the approver with the reason; the third still pending.
    let listed = approver
        .ok("review_virtual_tags", json!({"ids": ids, "limit": 10}))
        .await;
    for t in listed["tags"].as_array().unwrap() {
        if t["id"] == ids[2] {
            assert_eq!(t["status"], "pending", "forged posts changed nothing: {t}");
        } else {
            assert_eq!(t["status"], "approved", "{t}");
            assert_eq!(t["decided_by_principal"], "token:abe", "{t}");
            assert_eq!(t["decision_reason"], "confirmed in the console test");
        }
    }

    // Forged writes: refused 403.
    assert_eq!(seen["approver_no_csrf"], 403, "{seen:#}");
    assert_eq!(seen["approver_foreign_origin"], 403, "{seen:#}");
    assert_eq!(seen["approver_wrong_csrf"], 403, "{seen:#}");
    assert_eq!(seen["viewer_role"], "viewer");
    assert_eq!(seen["viewer_buttons"], 0, "{seen:#}");
    assert_eq!(seen["viewer_rows"], 1);
    assert!(
        seen["viewer_read_only"]
            .as_str()
            .unwrap()
            .contains("approver role")
    );
    assert_eq!(seen["viewer_has_csrf"], true);
    assert_eq!(seen["viewer_post"], 403, "{seen:#}");
    assert_eq!(seen["viewer_post_one"], 403, "{seen:#}");
    assert_eq!(seen["viewer_no_csrf"], 403, "{seen:#}");
    assert_eq!(seen["viewer_after_logout"], "/ui/login", "{seen:#}");

    // Without JavaScript: logged in by the form, every page read.
    let nojs: f64 = seen["nojs_score"].as_str().unwrap().parse().unwrap();
    assert_eq!(nojs, shown_after);
    for (path, page) in seen["nojs_pages"].as_object().unwrap() {
        assert_eq!(page["status"], 200, "{path}: {page}");
        assert_eq!(page["errors"], 0, "{path}: {page}");
    }
    assert_eq!(seen["nojs_violation_rows"], 50, "a page of 50");
    assert!(
        seen["nojs_resource"]["native"].as_u64().unwrap() >= 1,
        "{seen:#}"
    );
    assert_eq!(seen["nojs_queue_rows"], 1);
    assert_eq!(seen["dialogs"], json!([]));

    // Audit: the decision's row names the approver, like a review_virtual_tags call over MCP.
    let mut admin = HttpClient::authenticated(&base, "tok-admin").await;
    let trail = admin
        .ok(
            "get_audit_trail",
            json!({"tool": "review_virtual_tags", "principal": "token:abe", "limit": 50}),
        )
        .await;
    let decisions: Vec<&Value> = trail["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.to_string().contains("approve"))
        .collect();
    assert_eq!(decisions.len(), 1, "{trail:#}");
    assert!(
        decisions[0].to_string().contains("tagwarden-console/"),
        "{}",
        decisions[0]
    );
    for png in ["console-overview.png", "console-queue.png"] {
        let meta = std::fs::metadata(artifacts().join(png)).expect(png);
        assert!(meta.len() > 10_000, "{png} is a real screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tag_values_render_as_text_and_run_nothing_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("hostile.json");
    let evil_id = "arn:aws:ec2:eu-west-1:111122223333:instance/i-evil";
    std::fs::write(
        &inventory,
        json!({"ResourceTagMappingList": [
            {"ResourceARN": evil_id,
             "Tags": [{"Key": "Name", "Value": "<script>window.__pwned=1</script>"},
                      {"Key": "Owner", "Value": "<img src=x onerror=alert(1)>"}]},
            {"ResourceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-plain",
             "Tags": [{"Key": "Owner", "Value": "<img src=x onerror=alert(1)>"}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = HttpServer::start(&["--inventory", &path_str(&inventory)], &[TOKENS]);
    let seen = drive(json!({
        "mode": "xss", "base": server.base,
        "approver": "tok-approver", "viewer": "tok-viewer", "evil_id": evil_id,
    }));
    assert_eq!(seen["dialogs"], json!([]), "no dialog fired: {seen:#}");
    let pages = seen["seen"].as_object().unwrap();
    for (path, page) in pages {
        assert_eq!(page["status"], 200, "{path}: {page}");
        assert_eq!(
            page["injected_imgs"], 0,
            "{path}: a tag value became an element"
        );
        assert_eq!(page["injected_scripts"], 0, "{path}");
        assert_eq!(page["pwned"], false, "{path}");
    }
    let detail = pages
        .iter()
        .find(|(p, _)| p.starts_with("/ui/resource?"))
        .unwrap()
        .1;
    assert_eq!(detail["literal"], true, "the value shows as text: {detail}");
    assert_eq!(detail["script_literal"], true, "{detail}");
}

/// Without a browser: the gate, the login form's refusals, bearer headers for scripts, the
/// Host check, and the headers on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_bearer_host_and_headers_over_http() {
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[TOKENS]);
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No credentials: to the login form (a page), 403 (a write).
    let r = http.get(format!("{base}/ui/queue")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login?next=%2Fui%2Fqueue");
    let r = http
        .post(format!("{base}/ui/queue"))
        .form(&[("action", "approve"), ("id", "1"), ("reason", "no session")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A login that names no origin (no Origin, no Referer) is refused: the form has no CSRF
    // token yet, the origin is its only guard against logging a victim in as someone else.
    let r = http
        .post(format!("{base}/ui/login"))
        .form(&[("token", "tok-viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A wrong token at the login form: 401, no cookie; a right one: a session cookie.
    let r = http
        .post(format!("{base}/ui/login"))
        .header("origin", base.as_str())
        .form(&[("token", "nope"), ("next", "/ui/queue")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .post(format!("{base}/ui/login"))
        .header("origin", base.as_str())
        .form(&[("token", "tok-viewer"), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui", "never sent to another site");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    // A login from another site's form is refused.
    let r = http
        .post(format!("{base}/ui/login"))
        .header("Origin", "http://evil.example")
        .form(&[("token", "tok-viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Scripts: a bearer header reads pages without a session. A person reloads pages: the
    // same calls again and again are not a loop (the guard's loop detection allows 3).
    for _ in 0..5 {
        let r = http
            .get(format!("{base}/ui/rules"))
            .bearer_auth("tok-viewer")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(!r.text().await.unwrap().contains("loop detected"));
    }
    let r = http
        .get(format!("{base}/ui/rules"))
        .bearer_auth("tok-viewer")
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("referrer-policy"));
    // A resource's page by its ARN in the path.
    let r = http
        .get(format!(
            "{base}/ui/resources/arn:aws:ec2:eu-west-1:111122223333:instance/i-nowhere"
        ))
        .bearer_auth("tok-viewer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    // (minijinja escapes `/` as `&#x2f;` too.)
    assert!(
        body.contains(
            "Not in the inventory: arn:aws:ec2:eu-west-1:111122223333:instance&#x2f;i-nowhere"
        ),
        "{body}"
    );
    let r = http
        .get(format!("{base}/ui"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A viewer's bearer POST to the queue: refused for its role.
    let r = http
        .post(format!("{base}/ui/queue"))
        .bearer_auth("tok-viewer")
        .form(&[
            ("action", "approve"),
            ("id", "1"),
            ("reason", "viewer script"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // DNS rebinding: a Host the server does not answer to.
    let r = http
        .get(format!("{base}/ui/login"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Without tokens or OAuth (loopback only, as /mcp allows) the console opens as the local user
/// with every role, with a session (so its forms carry a CSRF token like anyone's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_the_local_user_needs_no_login_but_still_a_csrf_token() {
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[]);
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(format!("{base}/ui/queue")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("set-cookie"));
    let body = r.text().await.unwrap();
    assert!(body.contains("data-role=\"admin\""), "{body}");
    let r = http
        .post(format!("{base}/ui/queue"))
        .form(&[("action", "approve"), ("id", "1"), ("reason", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a POST without the session's CSRF token");
    assert!(
        !r.headers().contains_key("set-cookie"),
        "only a page read opens a session in open mode"
    );
}

/// The console is no way around the budgets: its calls draw on the principal's hourly budget,
/// shared with the same principal's /mcp calls, and a page over budget says so. A request
/// another site makes the browser send (an image, a fetch) is refused before anything runs.
#[tokio::test]
async fn console_calls_use_up_the_principals_budget_and_other_sites_are_refused() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--budget-principal-per-hour", "4"],
        &[TOKENS],
    );
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut refused = None;
    for i in 0..8 {
        let r = http
            .get(format!("{base}/ui/rules"))
            .bearer_auth("tok-viewer")
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        if body.contains("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR") {
            refused = Some(i);
            break;
        }
    }
    let refused = refused.expect("the console must stop at the principal's hourly budget");
    assert!(refused <= 4, "refused only after {refused} pages");
    // Another principal is not affected.
    let r = http
        .get(format!("{base}/ui/rules"))
        .bearer_auth("tok-approver")
        .send()
        .await
        .unwrap();
    assert!(
        !r.text()
            .await
            .unwrap()
            .contains("TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR")
    );
    // An <img> on another site pointing at the console.
    let r = http
        .get(format!("{base}/ui/costs"))
        .bearer_auth("tok-approver")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "no-cors")
        .header("sec-fetch-dest", "image")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A script calling the console's pages with a bearer header (no console session) is metered
/// like a stateless `/mcp` call: the per-minute budgets a person's session skips apply to it.
#[tokio::test]
async fn bearer_requests_to_the_console_meet_the_per_minute_budgets() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--budget-principal-burst", "3"],
        &[TOKENS],
    );
    let http = reqwest::Client::new();
    let mut refused = None;
    for i in 0..8 {
        let body = http
            .get(format!("{}/ui/rules", server.base))
            .bearer_auth("tok-viewer")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains("TAGWARDEN_BUDGET_PRINCIPAL_BURST") {
            refused = Some(i);
            break;
        }
    }
    let refused = refused.expect("bearer pages must meet the per-minute budget");
    assert!(refused <= 3, "refused only after {refused} pages");
}

/// The login form needs no authentication: what a stranger may post to it is small.
#[tokio::test]
async fn a_large_console_form_is_refused_before_it_is_read() {
    let server = HttpServer::start(&["--demo", "--no-prewarm"], &[TOKENS]);
    let r = reqwest::Client::new()
        .post(format!("{}/ui/login", server.base))
        .header("origin", server.base.as_str())
        .form(&[("token", "x".repeat(200 * 1024))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// Behind a TLS proxy on the same machine the server listens on loopback, yet the browser
/// speaks HTTPS: `--console-secure-cookie` marks the session cookie `Secure` all the same.
#[tokio::test]
async fn the_session_cookie_can_be_marked_secure_behind_a_tls_proxy() {
    let server = HttpServer::start(
        &["--demo", "--no-prewarm", "--console-secure-cookie"],
        &[TOKENS],
    );
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/ui/login"))
        .header("origin", base.as_str())
        .form(&[("token", "tok-viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
