//! The authorization server's signing keys, cached by key id (`kid`).
//!
//! Keys are fetched from the JWKS URL (given, or discovered once from the issuer's RFC 8414
//! metadata, then its OpenID configuration, else `{issuer}/.well-known/jwks.json`). A token
//! with an unknown `kid` makes the cache refetch — at most once per `min_refetch` (after a
//! failed fetch, at most once per 10 s), whoever asks: a stranger sending random key ids gets
//! refusals, not fetches. Keys older than an hour are refreshed on next use (the old ones
//! still serve if that fails). Every fetch has a timeout and a size cap, follows no redirect,
//! and only keys fit for the accepted algorithms (RS256 with RSA, ES256 with P-256) are kept.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// One request to the authorization server may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS or metadata document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys kept from one JWKS at most.
const MAX_KEYS: usize = 100;
/// Keys are refreshed on use after this long.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed fetch, the next attempt waits at least this (or `min_refetch` if shorter).
const FAILED_RETRY: Duration = Duration::from_secs(10);

/// A verification key and the algorithm it is for.
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    pub(crate) alg: Algorithm,
}

/// Keys by `kid`, from one fetch.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<SigningKey>>,
    /// Keys without a `kid` (used only when the set has exactly one key for the algorithm).
    anonymous: Vec<Arc<SigningKey>>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<SigningKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).filter(|k| k.alg == alg).cloned(),
            None => {
                let mut fitting = self
                    .by_kid
                    .values()
                    .chain(self.anonymous.iter())
                    .filter(|k| k.alg == alg);
                match (fitting.next(), fitting.next()) {
                    (Some(one), None) => Some(one.clone()),
                    _ => None,
                }
            }
        }
    }

    fn is_fresh(&self, now: Instant) -> bool {
        self.fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) < MAX_AGE)
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// `--oauth-jwks-url`.
    Url(String),
    /// Discovered from the issuer's metadata on first use.
    Discover { issuer: String },
}

/// The state fetches are serialised on.
struct FetchState {
    /// The JWKS URL once known (given, or discovered).
    jwks_url: Option<String>,
    /// When the last attempt started, and whether it succeeded.
    last_attempt: Option<(Instant, bool)>,
}

/// Why no key was found for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// Not in the set, and no refetch allowed or the refetch did not bring it.
    Unknown,
}

pub(crate) struct KeyCache {
    source: KeySource,
    client: reqwest::Client,
    min_refetch: Duration,
    keys: RwLock<Arc<KeySet>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl KeyCache {
    pub(crate) fn new(source: KeySource, min_refetch: Duration) -> KeyCache {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tagwarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot build the JWKS client with its limits; using the default one");
                reqwest::Client::new()
            });
        let jwks_url = match &source {
            KeySource::Url(url) => Some(url.clone()),
            KeySource::Discover { .. } => None,
        };
        KeyCache {
            source,
            client,
            min_refetch,
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetch: tokio::sync::Mutex::new(FetchState {
                jwks_url,
                last_attempt: None,
            }),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key for a token's `kid` and `alg`; fetches when it is unknown (or the keys are
    /// old), within the refetch allowance.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<SigningKey>, KeyError> {
        let now = Instant::now();
        let keys = self.current();
        let found = keys.find(kid, alg);
        if found.is_some() && keys.is_fresh(now) {
            return found.ok_or(KeyError::Unknown);
        }
        // One fetch at a time; whoever waited finds the new keys.
        let mut state = self.fetch.lock().await;
        let keys = self.current();
        let found = keys.find(kid, alg);
        if found.is_some() && keys.is_fresh(Instant::now()) {
            return found.ok_or(KeyError::Unknown);
        }
        if !self.may_fetch(&state, Instant::now()) {
            // Old keys still serve while no refetch is allowed.
            return found.ok_or(KeyError::Unknown);
        }
        self.refresh(&mut state).await;
        self.current()
            .find(kid, alg)
            .or(found)
            .ok_or(KeyError::Unknown)
    }

    /// Fetches the keys now (at start-up), within the refetch allowance like any fetch.
    pub(crate) async fn prefetch(&self) {
        let mut state = self.fetch.lock().await;
        if self.may_fetch(&state, Instant::now()) {
            self.refresh(&mut state).await;
        }
    }

    fn may_fetch(&self, state: &FetchState, now: Instant) -> bool {
        match state.last_attempt {
            None => true,
            Some((at, succeeded)) => {
                let wait = if succeeded {
                    self.min_refetch
                } else {
                    self.min_refetch.min(FAILED_RETRY)
                };
                now.saturating_duration_since(at) >= wait
            }
        }
    }

    /// One attempt: discover the JWKS URL if needed, fetch and replace the keys. A failure
    /// keeps the keys held and is logged.
    async fn refresh(&self, state: &mut FetchState) {
        state.last_attempt = Some((Instant::now(), false));
        let url = match &state.jwks_url {
            Some(url) => url.clone(),
            None => match self.discover().await {
                Ok(url) => {
                    tracing::info!(jwks_uri = %url, "OAuth signing keys: JWKS URL discovered");
                    state.jwks_url = Some(url.clone());
                    url
                }
                Err(why) => {
                    tracing::warn!("OAuth signing keys: {why}");
                    return;
                }
            },
        };
        match self.fetch_keys(&url).await {
            Ok(set) => {
                tracing::info!(
                    keys = set.by_kid.len() + set.anonymous.len(),
                    url = %url,
                    "OAuth signing keys fetched"
                );
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                state.last_attempt = Some((Instant::now(), true));
            }
            Err(why) => tracing::warn!(
                url = %url,
                "OAuth signing keys could not be fetched: {why}; the keys held (if any) stay in use"
            ),
        }
    }

    /// The JWKS URL from the issuer's metadata: RFC 8414, then OpenID Connect discovery, else
    /// `{issuer}/.well-known/jwks.json`.
    async fn discover(&self) -> Result<String, String> {
        let KeySource::Discover { issuer } = &self.source else {
            return Err("no JWKS URL configured".into());
        };
        let mut tried = Vec::new();
        for url in metadata_urls(issuer) {
            match self.get_json(&url).await {
                Ok(doc) => match jwks_uri_of(&doc, issuer) {
                    Ok(found) => return Ok(found),
                    Err(why) => tried.push(format!("{url}: {why}")),
                },
                Err(why) => tried.push(format!("{url}: {why}")),
            }
        }
        let fallback = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        tracing::info!(
            tried = %tried.join("; "),
            "no authorization server metadata with a jwks_uri; trying {fallback} (set --oauth-jwks-url to choose)"
        );
        Ok(fallback)
    }

    async fn fetch_keys(&self, url: &str) -> Result<KeySet, String> {
        let doc = self.get_json(url).await?;
        Ok(parse_jwks(&doc, Instant::now()))
    }

    /// GET a JSON document: 200 only, at most `MAX_DOCUMENT_BYTES`, within the timeout.
    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    }
}

/// Where an issuer's metadata may be: RFC 8414 (`/.well-known/oauth-authorization-server`
/// inserted before the issuer's path), then OpenID Connect (`/.well-known/openid-configuration`
/// appended to the issuer).
pub(crate) fn metadata_urls(issuer: &str) -> Vec<String> {
    let mut urls = Vec::new();
    if let Ok(parsed) = reqwest::Url::parse(issuer) {
        let path = parsed.path().trim_end_matches('/').to_string();
        let mut rfc8414 = parsed.clone();
        rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        rfc8414.set_query(None);
        urls.push(rfc8414.to_string());
    }
    urls.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    urls
}

/// The `jwks_uri` of a metadata document whose `issuer` is ours (RFC 8414 §3.3: a document
/// naming another issuer is not used).
fn jwks_uri_of(doc: &Value, issuer: &str) -> Result<String, String> {
    let named = doc.get("issuer").and_then(Value::as_str);
    if named != Some(issuer) {
        return Err(format!(
            "its issuer is {named:?}, not {issuer:?} (check --oauth-issuer)"
        ));
    }
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "no jwks_uri".to_string())
}

/// The usable keys of a JWKS document: signing keys (no `use`, or `use: sig`) that are RSA
/// for RS256 or EC P-256 for ES256 (an `alg` on the key must agree). Others are skipped, so
/// one odd key (an encryption key, a new key type) does not hide the rest.
fn parse_jwks(doc: &Value, now: Instant) -> KeySet {
    let mut set = KeySet {
        fetched_at: Some(now),
        ..KeySet::default()
    };
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return set;
    };
    for raw in keys.iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Some(key) = usable(&jwk) else { continue };
        match jwk.common.key_id.clone() {
            Some(kid) => {
                set.by_kid.entry(kid).or_insert_with(|| Arc::new(key));
            }
            None => set.anonymous.push(Arc::new(key)),
        }
    }
    set
}

fn usable(jwk: &Jwk) -> Option<SigningKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    let declared = jwk.common.key_algorithm;
    let agrees = match declared {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    if !agrees {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(SigningKey { key, alg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A P-256 public key (coordinates of the generator point: valid on the curve).
    const X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

    fn ec(kid: Option<&str>, extra: Value) -> Value {
        let mut k = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y});
        if let Some(kid) = kid {
            k["kid"] = json!(kid);
        }
        if let (Some(k), Some(extra)) = (k.as_object_mut(), extra.as_object()) {
            k.extend(extra.clone());
        }
        k
    }

    #[test]
    fn signing_keys_of_the_accepted_kinds_are_kept_and_the_rest_skipped() {
        let doc = json!({"keys": [
            ec(Some("a"), json!({})),
            ec(Some("b"), json!({"use": "enc"})),
            ec(Some("c"), json!({"alg": "RS256"})),
            ec(Some("d"), json!({"alg": "ES256", "use": "sig"})),
            {"kty": "oct", "kid": "e", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "f", "crv": "P-384", "x": X, "y": Y},
            {"kty": "weird", "kid": "g"},
            {"kid": "h"},
        ]});
        let set = parse_jwks(&doc, Instant::now());
        let mut kids: Vec<&str> = set.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["a", "d"]);
        assert!(set.find(Some("a"), Algorithm::ES256).is_some());
        // A key is for its algorithm only: an RSA-signed token cannot use an EC key.
        assert!(set.find(Some("a"), Algorithm::RS256).is_none());
        assert!(set.find(Some("zzz"), Algorithm::ES256).is_none());
        // Without a kid, only a single fitting key is chosen.
        assert!(set.find(None, Algorithm::ES256).is_none());
        let one = parse_jwks(&json!({"keys": [ec(None, json!({}))]}), Instant::now());
        assert!(one.find(None, Algorithm::ES256).is_some());
    }

    #[test]
    fn metadata_is_looked_up_where_rfc_8414_and_openid_put_it() {
        assert_eq!(
            metadata_urls("https://auth.example.com"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://login.example.com/tenant/v2.0"),
            [
                "https://login.example.com/.well-known/oauth-authorization-server/tenant/v2.0",
                "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn metadata_of_another_issuer_is_not_used() {
        let doc = json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/k"});
        assert!(jwks_uri_of(&doc, "https://auth.example.com").is_err());
        let doc =
            json!({"issuer": "https://auth.example.com", "jwks_uri": "https://auth.example.com/k"});
        assert_eq!(
            jwks_uri_of(&doc, "https://auth.example.com").unwrap(),
            "https://auth.example.com/k"
        );
    }

    #[test]
    fn refetches_are_spaced_and_failures_retried_sooner() {
        let cache = KeyCache::new(
            KeySource::Url("http://127.0.0.1:9/jwks".into()),
            Duration::from_secs(300),
        );
        let now = Instant::now();
        let mut state = FetchState {
            jwks_url: None,
            last_attempt: None,
        };
        assert!(cache.may_fetch(&state, now));
        state.last_attempt = Some((now, true));
        assert!(!cache.may_fetch(&state, now + Duration::from_secs(299)));
        assert!(cache.may_fetch(&state, now + Duration::from_secs(300)));
        state.last_attempt = Some((now, false));
        assert!(!cache.may_fetch(&state, now + Duration::from_secs(9)));
        assert!(cache.may_fetch(&state, now + Duration::from_secs(10)));
    }
}
