//! OAuth 2.1 resource server (MCP authorization, 2025-11-25 and 2026-07-28): access tokens
//! are JWTs from one authorization server, checked here — signature against the issuer's
//! keys (`jwks`), `alg` from an allow-list (RS256, ES256), `iss`, `aud` (this server's
//! canonical URI: tokens for anything else are refused), `exp` and `nbf` with 30 s of leeway,
//! and `sub`. The token's Tagwarden scopes give its role; a valid token without any gets 403
//! `insufficient_scope`. The metadata clients discover us by is in `metadata`.

mod jwks;
mod metadata;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha2::Digest;

use super::HttpError;
use crate::app::Role;
use crate::guard::Principal;

/// Token signing algorithms accepted (asymmetric only: a shared secret would let anyone
/// holding it mint tokens).
const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// The OAuth settings of `serve --http`.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// The authorization server's issuer identifier: the exact `iss` of its tokens, e.g.
    /// `https://auth.example.com` (https, or http on a loopback host).
    pub issuer: String,
    /// This server's canonical MCP URI, the `aud` its tokens must carry (RFC 8707), e.g.
    /// `https://tagwarden.example.com/mcp` (no trailing slash).
    pub audience: String,
    /// Where the issuer's signing keys are; None = discovered from its metadata (RFC 8414,
    /// then OpenID Connect), else `{issuer}/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// The least time between two fetches of the keys caused by unknown key ids.
    pub min_refetch: Duration,
}

impl OAuthOptions {
    /// Issuer and audience, with the keys' URL discovered and refetched at most every 5 minutes.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> OAuthOptions {
        OAuthOptions {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            min_refetch: Duration::from_secs(300),
        }
    }
}

/// An http(s) URL: https, or http to a loopback host (tests, a local authorization server).
fn checked_url(what: &str, value: &str) -> Result<reqwest::Url, HttpError> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| HttpError::OAuth(format!("{what} `{value}` is not a URL: {e}")))?;
    let loopback = url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(HttpError::OAuth(format!(
                "{what} `{value}` must be an https URL (http only to a loopback host)"
            )));
        }
    }
    if url.fragment().is_some() || url.host_str().is_none_or(str::is_empty) {
        return Err(HttpError::OAuth(format!(
            "{what} `{value}` must name a host and have no #fragment"
        )));
    }
    Ok(url)
}

/// Why a bearer token that looked like a JWT was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rejection {
    /// 401 `invalid_token`, with a fixed phrase saying why.
    Invalid(&'static str),
    /// 403 `insufficient_scope`: valid, but without any Tagwarden scope.
    NoScope,
}

/// The claims read from an access token (the registered ones are checked by `Validation`).
#[derive(Debug, Deserialize)]
struct Claims {
    /// Optional here so that a missing `sub` is reported as a missing claim by `Validation`
    /// (which requires it) rather than as an unreadable token.
    #[serde(default)]
    sub: Option<String>,
    /// RFC 9068 / RFC 8693: space-separated (some servers send a list).
    #[serde(default)]
    scope: Option<Scopes>,
    /// Microsoft Entra ID, Okta: a list (or space-separated).
    #[serde(default)]
    scp: Option<Scopes>,
    /// Seconds since the epoch (required and checked by `Validation`).
    #[serde(default)]
    exp: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

impl Scopes {
    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Scopes::Text(s) => Box::new(s.split_ascii_whitespace()),
            Scopes::List(l) => Box::new(l.iter().map(String::as_str)),
        }
    }
}

/// The verifier of access tokens, and what it tells clients.
pub(super) struct OAuth {
    host: String,
    metadata_url: String,
    resource: reqwest::Url,
    document: serde_json::Value,
    validations: Vec<(Algorithm, Validation)>,
    keys: jwks::KeyCache,
}

impl OAuth {
    pub(super) fn new(options: &OAuthOptions) -> Result<OAuth, HttpError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(HttpError::OAuth(
                "this build has no JWT crypto backend (jsonwebtoken needs exactly one of its \
                 aws_lc_rs and rust_crypto features)"
                    .into(),
            ));
        }
        let issuer = checked_url("--oauth-issuer", &options.issuer)?;
        let resource = checked_url("--oauth-audience", &options.audience)?;
        if options.audience.ends_with('/') {
            return Err(HttpError::OAuth(format!(
                "--oauth-audience `{}` ends with `/`: give the canonical URI without it (tokens \
                 must carry exactly this value as `aud`)",
                options.audience
            )));
        }
        if let Some(url) = &options.jwks_url {
            checked_url("--oauth-jwks-url", url)?;
        }
        let source = match &options.jwks_url {
            Some(url) => jwks::KeySource::Url(url.clone()),
            None => jwks::KeySource::Discover {
                issuer: options.issuer.clone(),
            },
        };
        let validations = ALGORITHMS
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.set_issuer(&[&options.issuer]);
                v.set_audience(&[&options.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.leeway = LEEWAY_SECS;
                v.validate_nbf = true;
                (*alg, v)
            })
            .collect();
        let host = match issuer.port() {
            Some(port) => format!("{}:{port}", issuer.host_str().unwrap_or_default()),
            None => issuer.host_str().unwrap_or_default().to_string(),
        };
        Ok(OAuth {
            host,
            metadata_url: metadata::metadata_url(&resource),
            document: metadata::document(&options.audience, &options.issuer),
            resource,
            validations,
            keys: jwks::KeyCache::new(source, options.min_refetch.max(Duration::from_secs(1))),
        })
    }

    /// Three dot-separated parts: worth verifying as a JWT (static tokens are checked first).
    pub(super) fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// The principal of a valid access token.
    pub(super) async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        self.verify_with_expiry(token).await.map(|(p, _)| p)
    }

    /// The principal of a valid access token and when the token expires (its `exp`), for
    /// what must not outlive it (a console session).
    pub(super) async fn verify_with_expiry(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<std::time::SystemTime>), Rejection> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Rejection::Invalid("malformed token"))?;
        let Some((alg, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg)
        else {
            return Err(Rejection::Invalid("signing algorithm not accepted"));
        };
        let key = self
            .keys
            .key(header.kid.as_deref(), *alg)
            .await
            .map_err(|_| Rejection::Invalid("unknown signing key"))?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| Rejection::Invalid(describe(e.kind())))?;
        let claims = data.claims;
        let sub = claims.sub.as_deref().ok_or(Rejection::Invalid(
            "a required claim (exp, iss, aud, sub) is missing",
        ))?;
        let scopes = claims
            .scope
            .iter()
            .chain(claims.scp.iter())
            .flat_map(Scopes::iter);
        let role = Role::from_scopes(scopes).ok_or(Rejection::NoScope)?;
        // The validation accepts a token until `exp` plus the leeway; an `exp` too far off to
        // be a time (a signed token can carry any number) is no limit at all.
        let expires = claims.exp.and_then(|exp| {
            std::time::UNIX_EPOCH.checked_add(Duration::from_secs(exp.saturating_add(LEEWAY_SECS)))
        });
        Ok((
            Principal {
                id: principal_id(&self.host, sub),
                role,
            },
            expires,
        ))
    }

    /// `WWW-Authenticate` of a 401.
    pub(super) fn unauthorized(&self, refused: Option<&'static str>) -> HeaderValue {
        metadata::unauthorized(&self.metadata_url, refused)
    }

    /// `WWW-Authenticate` of a 403 for a token without any Tagwarden scope.
    pub(super) fn insufficient_scope(&self) -> HeaderValue {
        metadata::insufficient_scope(&self.metadata_url, Role::Viewer)
    }

    /// The protected-resource metadata routes (public: no token needed to read them).
    pub(super) fn routes(&self) -> Router {
        metadata::routes(&self.resource, self.document.clone())
    }

    /// Fetches the signing keys in the background at start-up, so that a wrong issuer or
    /// JWKS URL shows in the log at once (the first token would fetch them anyway).
    pub(super) fn spawn_prefetch(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move { me.keys.prefetch().await });
    }
}

/// A fixed phrase for each reason a token is refused (nothing the client sent is echoed).
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not valid yet",
        ErrorKind::InvalidIssuer => "token from another issuer",
        ErrorKind::InvalidAudience => "token not meant for this server (audience)",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::MissingRequiredClaim(_) => "a required claim (exp, iss, aud, sub) is missing",
        ErrorKind::InvalidAlgorithm => "signing algorithm not accepted",
        _ => "invalid token",
    }
}

/// `oauth:<issuer host>/<sub>`; a `sub` that is long or holds other characters than letters,
/// digits and `.-_@:|+` is replaced by `#` and 16 hex digits of its SHA-256 (ids go in logs,
/// the audit log and messages).
fn principal_id(issuer_host: &str, sub: &str) -> String {
    let plain = !sub.is_empty()
        && sub.len() <= 64
        && sub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@:|+".contains(c));
    if plain {
        format!("oauth:{issuer_host}/{sub}")
    } else {
        let digest = hex::encode(sha2::Sha256::digest(sub.as_bytes()));
        format!("oauth:{issuer_host}/#{}", &digest[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_become_readable_ids_or_digests() {
        assert_eq!(
            principal_id("auth.example.com", "alice@example.com"),
            "oauth:auth.example.com/alice@example.com"
        );
        let odd = principal_id("h", "a b\u{202e}c");
        assert!(
            odd.starts_with("oauth:h/#") && odd.len() == "oauth:h/#".len() + 16,
            "{odd}"
        );
        assert!(principal_id("h", &"x".repeat(65)).contains('#'));
    }

    #[test]
    fn scopes_are_read_from_scope_text_and_scp_lists() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "a", "scope": "openid tagwarden:read", "scp": ["tagwarden:approve"]
        }))
        .unwrap();
        let all: Vec<&str> = claims
            .scope
            .iter()
            .chain(claims.scp.iter())
            .flat_map(Scopes::iter)
            .collect();
        assert_eq!(all, ["openid", "tagwarden:read", "tagwarden:approve"]);
        assert_eq!(Role::from_scopes(all), Some(Role::Approver));
    }

    #[test]
    fn settings_are_checked() {
        let ok = OAuthOptions::new("https://auth.example.com", "https://tw.example.com/mcp");
        assert!(OAuth::new(&ok).is_ok());
        let local = OAuthOptions::new("http://127.0.0.1:9000", "http://localhost:8080/mcp");
        assert!(OAuth::new(&local).is_ok());
        for (issuer, audience) in [
            ("http://auth.example.com", "https://tw.example.com/mcp"),
            ("https://auth.example.com", "https://tw.example.com/mcp/"),
            ("auth.example.com", "https://tw.example.com/mcp"),
            ("https://auth.example.com", "https://tw.example.com/mcp#x"),
        ] {
            let e = OAuth::new(&OAuthOptions::new(issuer, audience));
            assert!(e.is_err(), "{issuer} {audience}");
        }
        let mut jwks = ok.clone();
        jwks.jwks_url = Some("ftp://auth.example.com/keys".into());
        assert!(OAuth::new(&jwks).is_err());
    }

    #[test]
    fn only_three_part_tokens_are_taken_for_jwts() {
        assert!(OAuth::looks_like_jwt("a.b.c"));
        assert!(!OAuth::looks_like_jwt("opaque-token"));
        assert!(!OAuth::looks_like_jwt("a.b.c.d.e"));
    }
}
