//! `serve --http` as an OAuth 2.1 resource server: JWT access tokens minted here with fixed
//! test keys (tests/fixtures/oauth), the issuer's JWKS and metadata served by a loopback axum
//! server this test runs. Valid, expired, not-yet-valid, wrong-issuer, wrong-audience and
//! wrong-algorithm tokens; a token without any Tagwarden scope (403 insufficient_scope); the
//! protected-resource metadata and the 401 challenge pointing to it; static tokens beside
//! OAuth; an unknown key id making the server refetch the keys (once per interval, then
//! accepted when the JWKS serves the key); and a flood of random key ids that does not make the
//! server hammer the JWKS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{HttpClient, HttpServer, fixture};

/// The audience every server here is configured with (its canonical MCP URI).
const AUDIENCE: &str = "https://tagwarden.test/mcp";

/// A signing key of the test issuer.
#[derive(Clone)]
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    public: Jwk,
}

impl TestKey {
    /// A PKCS#8 PEM key from tests/fixtures/oauth, under `kid`.
    fn load(file: &str, kid: &str, alg: Algorithm) -> TestKey {
        let pem = std::fs::read_to_string(fixture(&format!("oauth/{file}"))).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_der(&der),
            _ => EncodingKey::from_rsa_der(&der),
        };
        let mut public = Jwk::from_encoding_key(&encoding, alg).unwrap();
        public.common.key_id = Some(kid.to_string());
        TestKey {
            kid: kid.to_string(),
            alg,
            encoding,
            public,
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The issuer: its JWKS (changeable) and metadata, served on loopback, counting requests.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    jwks_hits: Arc<Mutex<usize>>,
    metadata_hits: Arc<Mutex<usize>>,
}

impl Issuer {
    /// Serves on its own thread and runtime, so that the tests' blocking waits never starve it.
    fn start(keys: &[&TestKey]) -> Issuer {
        let keys = Arc::new(Mutex::new(
            keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>(),
        ));
        let jwks_hits = Arc::new(Mutex::new(0));
        let metadata_hits = Arc::new(Mutex::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (k, j, m, issuer) = (
            keys.clone(),
            jwks_hits.clone(),
            metadata_hits.clone(),
            url.clone(),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let jwks = move || {
                    let (k, j) = (k.clone(), j.clone());
                    async move {
                        *j.lock().unwrap() += 1;
                        let set = JwkSet {
                            keys: k.lock().unwrap().clone(),
                        };
                        axum::Json(serde_json::to_value(set).unwrap())
                    }
                };
                let metadata = move || {
                    let (m, issuer) = (m.clone(), issuer.clone());
                    async move {
                        *m.lock().unwrap() += 1;
                        axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}))
                    }
                };
                let app = axum::Router::new()
                    .route("/jwks", axum::routing::get(jwks))
                    .route(
                        "/.well-known/oauth-authorization-server",
                        axum::routing::get(metadata),
                    );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Issuer {
            url,
            keys,
            jwks_hits,
            metadata_hits,
        }
    }

    fn jwks_hits(&self) -> usize {
        *self.jwks_hits.lock().unwrap()
    }

    fn metadata_hits(&self) -> usize {
        *self.metadata_hits.lock().unwrap()
    }

    fn publish(&self, key: &TestKey) {
        self.keys.lock().unwrap().push(key.public.clone());
    }

    /// A token signed by `key` with the standard claims, `changes` applied over them.
    fn token(&self, key: &TestKey, sub: &str, scope: &str, changes: Value) -> String {
        let mut claims = json!({
            "iss": self.url, "aud": AUDIENCE, "sub": sub, "scope": scope,
            "iat": now(), "nbf": now() - 5, "exp": now() + 600,
        });
        if let (Some(c), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            for (k, v) in changes {
                // null removes the claim
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }
}

/// A Tagwarden server accepting the issuer's tokens (and one static token), with failed
/// logins unlimited (the refusals here are the point).
fn server(issuer: &Issuer, extra: &[&str]) -> HttpServer {
    let mut args = vec![
        "--demo",
        "--no-prewarm",
        "--http-auth-failures-per-minute",
        "0",
        "--oauth-issuer",
        &issuer.url,
        "--oauth-audience",
        AUDIENCE,
    ];
    args.extend_from_slice(extra);
    HttpServer::start(&args, &[("TAGWARDEN_API_TOKENS", "ci:viewer:static-token")])
}

/// POST an initialize with `token`: (status, WWW-Authenticate, body).
async fn initialize(base: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": crate::common::PROTOCOL, "capabilities": {},
                           "clientInfo": {"name": "oauth-test", "version": "1"}}})
            .to_string(),
        );
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge, resp.text().await.unwrap_or_default())
}

fn keys() -> (TestKey, TestKey, TestKey) {
    (
        TestKey::load("es256-a.pem", "key-a", Algorithm::ES256),
        TestKey::load("es256-b.pem", "key-b", Algorithm::ES256),
        TestKey::load("rs256.pem", "key-rsa", Algorithm::RS256),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_are_accepted_and_every_bad_one_refused_with_a_challenge() {
    let (a, _, rsa) = keys();
    let issuer = Issuer::start(&[&a, &rsa]);
    let server = server(
        &issuer,
        &["--oauth-jwks-url", &format!("{}/jwks", issuer.url)],
    );
    let base = server.base.clone();
    let metadata_url = "https://tagwarden.test/.well-known/oauth-protected-resource/mcp";

    // The protected-resource metadata, path form and root form, needs no token.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let doc: Value = reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], AUDIENCE, "{path}: {doc}");
        assert_eq!(doc["authorization_servers"], json!([issuer.url]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["tagwarden:read", "tagwarden:approve", "tagwarden:admin"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }

    // No token: 401 pointing to the metadata.
    let (status, challenge, _) = initialize(&base, None).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );

    // Valid tokens (ES256 and RS256) and the static token are accepted.
    let valid = issuer.token(&a, "alice", "openid tagwarden:read", json!({}));
    assert_eq!(initialize(&base, Some(&valid)).await.0, 200);
    let rs = issuer.token(&rsa, "rita", "tagwarden:read", json!({}));
    assert_eq!(initialize(&base, Some(&rs)).await.0, 200);
    assert_eq!(initialize(&base, Some("static-token")).await.0, 200);
    // A list in `scp` (Entra ID, Okta) grants too.
    let scp = issuer.token(
        &a,
        "sam",
        "",
        json!({"scope": null, "scp": ["tagwarden:read"]}),
    );
    assert_eq!(initialize(&base, Some(&scp)).await.0, 200);

    // Every bad token: 401, `invalid_token`, the reason, the metadata.
    let host = issuer.url.trim_start_matches("http://");
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "scope": "tagwarden:admin",
                "exp": now() + 600}),
        &EncodingKey::from_secret(b"guessable").unwrap(),
    )
    .unwrap();
    // Another signature byte in the middle of the signature.
    let mut forged = issuer
        .token(&a, "alice", "tagwarden:admin", json!({}))
        .into_bytes();
    let at = forged.len() - 20;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let cases = [
        (
            "expired",
            issuer.token(&a, "alice", "tagwarden:read", json!({"exp": now() - 600})),
            "expired",
        ),
        (
            "not valid yet",
            issuer.token(&a, "alice", "tagwarden:read", json!({"nbf": now() + 600})),
            "not valid yet",
        ),
        (
            "wrong issuer",
            issuer.token(
                &a,
                "alice",
                "tagwarden:read",
                json!({"iss": "https://other.example"}),
            ),
            "another issuer",
        ),
        (
            "wrong audience",
            issuer.token(
                &a,
                "alice",
                "tagwarden:read",
                json!({"aud": "https://other.example/mcp"}),
            ),
            "audience",
        ),
        (
            "no subject",
            issuer.token(&a, "alice", "tagwarden:read", json!({"sub": null})),
            "required claim",
        ),
        ("HS256", hs256, "algorithm"),
        ("bad signature", forged, "signature"),
        ("not a token", "nonsense".to_string(), "unknown token"),
    ];
    for (what, token, reason) in cases {
        let (status, challenge, _) = initialize(&base, Some(&token)).await;
        assert_eq!(status, 401, "{what}");
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains(reason)
                && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{what}: {challenge}"
        );
    }

    // Valid, but without any Tagwarden scope: 403 insufficient_scope naming the scope.
    let unscoped = issuer.token(&a, "alice", "openid email", json!({}));
    let (status, challenge, body) = initialize(&base, Some(&unscoped)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"tagwarden:read\"")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );

    // The principal is the issuer's host and the subject; the scope is its role.
    let mut alice = HttpClient::authenticated(&base, &valid).await;
    let me = alice.call("get_audit_trail", json!({"limit": 1})).await;
    let me = &me["structuredContent"];
    assert_eq!(me["principal"], format!("oauth:{host}/alice"), "{me}");
    assert_eq!(me["role"], "viewer");
    // A viewer's scope does not decide; an approver's does, but does not promote.
    let refused = alice
        .call(
            "review_virtual_tags",
            json!({"action": "approve", "ids": [1], "reason": "looks right"}),
        )
        .await;
    assert_eq!(refused["isError"], true);
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("needs the approver role") && text.contains("tagwarden:approve"),
        "{text}"
    );
    let approver = issuer.token(&a, "bob", "tagwarden:approve", json!({}));
    let mut bob = HttpClient::authenticated(&base, &approver).await;
    let listed = bob
        .call("review_virtual_tags", json!({"action": "list"}))
        .await;
    assert_ne!(listed["isError"], true, "{listed}");
    let promote = bob
        .call(
            "promote_virtual_tags",
            json!({"action": "approve", "plan_id": 1, "reason": "fine by me"}),
        )
        .await;
    assert!(
        promote["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("needs the admin role"),
        "{promote}"
    );
    // One fetch at start-up served every token.
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_id_refetches_the_discovered_keys_once_per_interval() {
    let (a, b, _) = keys();
    let issuer = Issuer::start(&[&a]);
    // No --oauth-jwks-url: the JWKS URL is discovered from the issuer's RFC 8414 metadata.
    let server = server(&issuer, &["--oauth-jwks-min-refetch", "2s"]);
    let base = server.base.clone();
    let with_a = issuer.token(&a, "alice", "tagwarden:read", json!({}));
    assert_eq!(initialize(&base, Some(&with_a)).await.0, 200);
    assert_eq!((issuer.metadata_hits(), issuer.jwks_hits()), (1, 1));

    // Past the interval, a token signed with a key the JWKS does not list yet: one refetch,
    // still unknown, refused.
    std::thread::sleep(Duration::from_millis(2200));
    let with_b = issuer.token(&b, "alice", "tagwarden:read", json!({}));
    let (status, challenge, _) = initialize(&base, Some(&with_b)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("unknown signing key"), "{challenge}");
    assert_eq!(issuer.jwks_hits(), 2, "one refetch for the unknown key");

    // The issuer rotates: the JWKS now lists key B. Within the interval the server does not
    // fetch again; the first request after it fetches once and is accepted.
    issuer.publish(&b);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = initialize(&base, Some(&with_b)).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
        assert!(Instant::now() < deadline, "key B never accepted");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        issuer.jwks_hits(),
        3,
        "exactly one more fetch brought key B"
    );
    assert_eq!(issuer.metadata_hits(), 1, "discovery happens once");
    // Key A still works (the new set holds both).
    assert_eq!(initialize(&base, Some(&with_a)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_key_ids_does_not_hammer_the_jwks() {
    let (a, _, _) = keys();
    let issuer = Issuer::start(&[&a]);
    // The default interval (5 minutes) between refetches.
    let server = server(
        &issuer,
        &["--oauth-jwks-url", &format!("{}/jwks", issuer.url)],
    );
    let base = server.base.clone();
    let valid = issuer.token(&a, "alice", "tagwarden:read", json!({}));
    assert_eq!(initialize(&base, Some(&valid)).await.0, 200);
    let before = issuer.jwks_hits();
    assert_eq!(before, 1);

    // 200 tokens with random key ids (signed with key A, so only the kid is unknown), 20 at a
    // time.
    let mut refused = 0;
    for _ in 0..10 {
        let batch: Vec<_> = (0..20)
            .map(|_| {
                let mut key = a.clone();
                key.kid = uuid::Uuid::new_v4().to_string();
                let token = issuer.token(&key, "mallory", "tagwarden:admin", json!({}));
                let base = base.clone();
                tokio::spawn(async move { initialize(&base, Some(&token)).await.0 })
            })
            .collect();
        for task in batch {
            if task.await.unwrap() == 401 {
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 200);
    let fetches = issuer.jwks_hits() - before;
    assert!(
        fetches <= 1,
        "200 random key ids made {fetches} JWKS fetches"
    );
    // The real key still works.
    assert_eq!(initialize(&base, Some(&valid)).await.0, 200);
}
