//! Who is calling, and how often: bearer tokens (static ones from `tokens`, OAuth access
//! tokens from `oauth`), failed logins, the request rate.
//!
//! Authentication runs first and puts the verified [`Principal`] in the request's extensions;
//! the request rate is keyed on that principal, never on header text the client chooses (with
//! `Bearer` + k spaces + token, or any random header, a raw-header key gave a fresh allowance
//! each time). Failed logins are limited per client address with their own allowance: past it,
//! every request from that address is refused before its token is even compared, so a guess
//! can never be confirmed — a correct token from that address waits too. Client addresses are
//! counted per IPv4 address and per IPv6 /64 (one host usually holds a whole /64).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::forwarded::ClientAddr;
use super::jsonrpc::jsonrpc_error;
use super::oauth::{OAuth, Rejection};
use super::tokens::StaticToken;
use crate::app::Role;
use crate::guard::Principal;

/// The address a client is counted as: IPv4 as is, IPv6 by its /64 (IPv4-mapped IPv6 as IPv4).
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The TCP peer of a request.
pub(super) fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// The address a request's failed logins are counted under: the client a trusted proxy
/// forwarded for, else the TCP peer (see `forwarded`).
pub(super) fn login_address(request: &Request) -> Option<IpAddr> {
    match request.extensions().get::<ClientAddr>() {
        Some(ClientAddr(ip)) => Some(*ip),
        None => peer(request),
    }
}

/// The accepted tokens, and failed logins per client address.
pub(super) struct Auth {
    tokens: Vec<StaticToken>,
    /// OAuth access tokens, when an issuer is configured.
    oauth: Option<Arc<OAuth>>,
    failures: Option<FailedLogins>,
}

struct FailedLogins {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    per_minute: u32,
    /// Addresses over their allowance, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Auth {
    /// Static tokens with their principals (see `tokens`), and OAuth when configured.
    pub(super) fn new(
        tokens: Vec<StaticToken>,
        oauth: Option<Arc<OAuth>>,
        failures_per_minute: u32,
    ) -> Auth {
        let failures = NonZeroU32::new(failures_per_minute).map(|n| FailedLogins {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            per_minute: n.get(),
            blocked: Mutex::new(HashMap::new()),
        });
        Auth {
            tokens,
            oauth,
            failures,
        }
    }

    /// Neither tokens nor OAuth: loopback only, and every client is the local user.
    pub(super) fn open(&self) -> bool {
        self.tokens.is_empty() && self.oauth.is_none()
    }

    /// Forgets addresses whose allowance is whole again (the key space stays bounded).
    pub(super) fn prune(&self) {
        if let Some(f) = &self.failures {
            f.limiter.retain_recent();
            f.limiter.shrink_to_fit();
            let now = Instant::now();
            lock(&f.blocked).retain(|_, until| *until > now);
        }
    }

    /// The principal of a presented token, compared in constant time against every token.
    fn verify(&self, presented: &str) -> Option<&Principal> {
        self.tokens.iter().fold(None, |found, t| {
            if bool::from(t.secret.as_bytes().ct_eq(presented.as_bytes())) {
                Some(&t.principal)
            } else {
                found
            }
        })
    }
}

/// Why a presented token was not accepted (for the console's login form).
pub(super) enum Refused {
    /// A valid OAuth access token without any Tagwarden scope.
    NoScope,
    /// Unknown, expired or malformed.
    Invalid,
}

impl Auth {
    /// The principal of the token a person pasted into the console's login form, checked
    /// exactly as a bearer token on `/mcp`: a static token (constant time), else an OAuth
    /// access token (when OAuth is on).
    /// Also returns when an OAuth token expires (`None` for a static token).
    pub(super) async fn authenticate(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<std::time::SystemTime>), Refused> {
        let token = token.trim();
        if let Some(principal) = self.verify(token) {
            return Ok((principal.clone(), None));
        }
        if let Some(oauth) = &self.oauth
            && OAuth::looks_like_jwt(token)
        {
            return match oauth.verify_with_expiry(token).await {
                Ok((principal, expires)) => Ok((principal, expires)),
                Err(Rejection::NoScope) => Err(Refused::NoScope),
                Err(Rejection::Invalid(_)) => Err(Refused::Invalid),
            };
        }
        Err(Refused::Invalid)
    }

    /// The refusal for a client address over its failed-login allowance, if it is.
    pub(super) fn blocked(&self, ip: Option<IpAddr>) -> Option<Response> {
        let (f, key) = (self.failures.as_ref()?, ip.map(client_key)?);
        let until = lock(&f.blocked).get(&key).copied()?;
        (until > Instant::now()).then(|| too_many_failures(f.per_minute, until - Instant::now()))
    }

    /// Counts a failed login from `ip`; the refusal when it used up the allowance.
    pub(super) fn failed(&self, ip: Option<IpAddr>) -> Option<Response> {
        let (f, key) = (self.failures.as_ref()?, ip.map(client_key)?);
        let not_until = f.limiter.check_key(&key).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        lock(&f.blocked).insert(key, Instant::now() + wait);
        tracing::warn!(client = %key, "too many failed logins; refusing this address for {} s", wait.as_secs() + 1);
        Some(too_many_failures(f.per_minute, wait))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Authorization: Bearer <token>` (scheme case-insensitive, surrounding blanks ignored).
pub(super) fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The principal of a request when the server has no tokens and no OAuth (loopback only): the
/// local user, with every role, named by address.
pub(super) fn open_principal(ip: Option<IpAddr>) -> Principal {
    Principal {
        id: ip.map_or_else(|| "http:anonymous".to_string(), |ip| format!("ip:{ip}")),
        role: Role::Admin,
    }
}

/// Bearer-token check: a static token, else (with OAuth) an access token. Without tokens
/// and OAuth the server is loopback-only and open: the client address is the principal, with
/// every role, like the local user on stdio. Puts the verified [`Principal`] in the request's
/// extensions. A valid access token without any Tagwarden scope gets 403 `insufficient_scope`
/// (not a failed login); everything else refused gets 401 with `WWW-Authenticate`.
pub(super) async fn require_bearer(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    if auth.open() {
        let principal = open_principal(peer(&request));
        request.extensions_mut().insert(principal);
        return next.run(request).await;
    }
    let ip = login_address(&request);
    let key = ip.map(client_key);
    if let Some(refusal) = auth.blocked(ip) {
        return refusal;
    }
    let presented = bearer(&request).map(str::to_string);
    if let Some(principal) = presented.as_deref().and_then(|t| auth.verify(t)) {
        request.extensions_mut().insert(principal.clone());
        return next.run(request).await;
    }
    let mut refused = None;
    if let (Some(oauth), Some(token)) = (&auth.oauth, presented.as_deref())
        && OAuth::looks_like_jwt(token)
    {
        match oauth.verify(token).await {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                return next.run(request).await;
            }
            Err(Rejection::NoScope) => return forbidden(oauth),
            Err(Rejection::Invalid(why)) => refused = Some(why),
        }
    } else if presented.is_some() {
        refused = Some("unknown token");
    }
    if let Some(refusal) = auth.failed(ip) {
        return refusal;
    }
    if let Some(why) = refused {
        tracing::debug!(client = ?key, reason = why, "bearer token refused");
    }
    let (message, challenge) = match &auth.oauth {
        Some(oauth) => (
            "missing or invalid bearer token: send `Authorization: Bearer <token>` with an OAuth \
             access token for this server (its metadata: the resource_metadata URL in \
             WWW-Authenticate) or one of the server's API tokens",
            oauth.unauthorized(refused),
        ),
        None => (
            "missing or invalid bearer token: send `Authorization: Bearer <token>` with one of \
             the server's TAGWARDEN_API_TOKENS",
            HeaderValue::from_static("Bearer realm=\"tagwarden\""),
        ),
    };
    let mut response = (StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// 403 for a valid access token that grants nothing here.
fn forbidden(oauth: &OAuth) -> Response {
    let mut response = (
        StatusCode::FORBIDDEN,
        format!(
            "the access token is valid but grants no Tagwarden scope: ask the authorization \
             server for `{}` (read), `{}` (decide on virtual tags, rules and anomalies) or `{}` \
             (promote to the cloud, read everyone's audit rows)",
            Role::Viewer.scope(),
            Role::Approver.scope(),
            Role::Admin.scope()
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, oauth.insufficient_scope());
    response
}

fn too_many_failures(per_minute: u32, wait: Duration) -> Response {
    let secs = wait.as_secs() + 1;
    with_retry_after(
        jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            -32000,
            &format!(
                "too many failed logins from this address: {per_minute} per minute \
                 (TAGWARDEN_HTTP_AUTH_FAILURES_PER_MINUTE); every request from it is refused \
                 for {secs} s"
            ),
            Value::Null,
        ),
        secs,
    )
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Requests per minute per verified principal, checked after authentication.
pub(super) struct RequestRate {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_minute: u32,
}

impl RequestRate {
    pub(super) fn new(per_minute: u32) -> RequestRate {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        RequestRate {
            limiter,
            per_minute,
        }
    }

    pub(super) fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

pub(super) async fn rate_limit(
    State(rate): State<Arc<RequestRate>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &rate.limiter else {
        return next.run(request).await;
    };
    // Authentication ran first: every request here carries its principal.
    let key = request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "http:anonymous".to_string(), |p| p.id.clone());
    match limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                + 1;
            let id = request
                .extensions()
                .get::<super::jsonrpc::Envelope>()
                .and_then(|e| e.id.clone())
                .unwrap_or(Value::Null);
            with_retry_after(
                jsonrpc_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    -32000,
                    &format!(
                        "too many requests: {} per minute per client (TAGWARDEN_HTTP_RATE_LIMIT); \
                         retry after {wait} s",
                        rate.per_minute
                    ),
                    id,
                ),
                wait,
            )
        }
    }
}

/// Keeps the limiters' key spaces bounded while serving.
pub(super) fn spawn_pruning(
    auth: Arc<Auth>,
    rate: Arc<RequestRate>,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    auth.prune();
                    rate.prune();
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bearer_scheme_and_blanks() {
        let req = |v: &str| {
            axum::http::Request::builder()
                .header("authorization", v)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(bearer(&req("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&req("bearer    abc  ")), Some("abc"));
        assert_eq!(bearer(&req("Basic abc")), None);
        assert_eq!(bearer(&req("Bearer    ")), None);
    }
}
