//! MCP over Streamable HTTP at `/mcp` (rmcp's service mounted in axum), plus `/healthz`.
//!
//! Safe by default: binds loopback; any other address needs bearer tokens; the `Host` header is
//! checked against an allow-list (DNS rebinding) and browser `Origin`s against another; request
//! bodies are bounded and slow requests time out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::TagwardenServer;
use crate::guard::Principal;

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// Accepted bearer tokens; required when binding a non-loopback address.
    pub api_tokens: Vec<String>,
    /// Bearer tokens of administrators (who may read every principal's audit rows); each is
    /// accepted like an API token.
    pub admin_tokens: Vec<String>,
    /// Accepted `Host` values (hostname or host:port). Empty: loopback names and the bound IP.
    pub allowed_hosts: Vec<String>,
    /// Accepted browser `Origin`s (`scheme://host:port`, `:*` for any port). Requests without
    /// an `Origin` (non-browser clients) are always accepted.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Requests per minute per bearer token (or per client address); 0 = unlimited.
    pub rate_limit_per_minute: u32,
}

impl HttpOptions {
    pub fn loopback(addr: SocketAddr) -> HttpOptions {
        HttpOptions {
            addr,
            api_tokens: Vec::new(),
            admin_tokens: Vec::new(),
            rate_limit_per_minute: 600,
            allowed_hosts: Vec::new(),
            allowed_origins: default_origins(),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl HttpOptions {
    /// Refuses setups that would expose the server unauthenticated.
    pub fn check(&self) -> Result<(), HttpError> {
        if !self.addr.ip().is_loopback()
            && self.api_tokens.is_empty()
            && self.admin_tokens.is_empty()
        {
            return Err(HttpError::TokensRequired(self.addr));
        }
        Ok(())
    }
}

pub fn default_origins() -> Vec<String> {
    ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to serve on {0} without authentication: binding an address other than \
         loopback exposes the server to the network; set TAGWARDEN_API_TOKENS (comma-separated \
         bearer tokens) or bind 127.0.0.1"
    )]
    TokensRequired(SocketAddr),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("HTTP server failed: {0}")]
    Serve(String),
}

/// Serves Tagwarden until `shutdown` is cancelled. Logs `listening on http://ADDR/mcp` once
/// bound.
pub async fn serve_http(
    server: TagwardenServer,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let health = Router::new().route("/healthz", get(healthz).with_state(server.clone()));
    serve_handler(server, health, options, shutdown).await
}

/// Serves any MCP handler through the same plumbing (gates, auth, limits), with `extra`
/// routes beside `/mcp`. Used by `serve_http` and by the conformance fixture server, so the
/// conformance suite exercises exactly this transport layer.
pub async fn serve_handler<H>(
    handler: H,
    extra: Router,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), HttpError>
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    options.check()?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| HttpError::Bind {
            addr: options.addr,
            reason: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| HttpError::Bind {
        addr: options.addr,
        reason: e.to_string(),
    })?;
    let router = mcp_router(handler, &options, local, shutdown.clone()).merge(extra);
    tracing::info!("listening on http://{local}/mcp");
    // No Nagle delay: the end of a chunked response would otherwise wait for the client's
    // delayed ACK (~40 ms per answer).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
    .await
    .map_err(|e| HttpError::Serve(e.to_string()))
}

fn mcp_router<H>(
    handler: H,
    options: &HttpOptions,
    local: SocketAddr,
    shutdown: CancellationToken,
) -> Router
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let mut hosts = options.allowed_hosts.clone();
    if hosts.is_empty() {
        hosts = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !local.ip().is_unspecified() {
            hosts.push(local.ip().to_string());
        }
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(options.allowed_origins.clone())
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(shutdown.child_token());
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let tokens = Arc::new(BearerTokens::of(options));
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            options.max_body_bytes,
            json_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(RequestRate::new(options.rate_limit_per_minute)),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(tokens, require_bearer))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
}

/// Liveness and a few facts for operators (no secrets, no paths).
/// 200 and `"audit": "ok"` while calls can be recorded; 503 and `"audit": "failing: <why>"`
/// when the last audit write failed (the server then answers no tool call).
async fn healthz(State(server): State<TagwardenServer>) -> impl IntoResponse {
    let app = server.app();
    let failing = app.audit.as_ref().and_then(|log| log.failing());
    let (status, code) = match &failing {
        None => ("ok", StatusCode::OK),
        Some(_) => ("failing", StatusCode::SERVICE_UNAVAILABLE),
    };
    let audit = match (&app.audit, failing) {
        (None, _) => "off".to_string(),
        (Some(_), None) => "ok".to_string(),
        (Some(_), Some(why)) => format!("failing: {why}"),
    };
    let body = axum::Json(serde_json::json!({
        "status": status,
        "audit": audit,
        "version": env!("CARGO_PKG_VERSION"),
        "policy_hash": app.policy.current().hash(),
        "resources_cached": app.cached_resources().await,
    }));
    (code, body)
}

/// Per-client request rate at the HTTP layer (before any MCP processing): keyed by bearer
/// token, or by client address when the server has no tokens.
struct RequestRate {
    limiter: Option<governor::DefaultKeyedRateLimiter<String>>,
    per_minute: u32,
}

impl RequestRate {
    fn new(per_minute: u32) -> RequestRate {
        let limiter = std::num::NonZeroU32::new(per_minute)
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n)));
        RequestRate {
            limiter,
            per_minute,
        }
    }
}

async fn rate_limit(
    State(rate): State<Arc<RequestRate>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &rate.limiter else {
        return next.run(request).await;
    };
    let key = match request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => {
            use sha2::Digest;
            format!(
                "token:{}",
                hex::encode(sha2::Sha256::digest(auth.as_bytes()))
            )
        }
        None => request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| format!("ip:{}", c.0.ip()))
            .unwrap_or_else(|| "anonymous".to_string()),
    };
    match limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            use governor::clock::Clock;
            let wait = not_until
                .wait_time_from(governor::clock::DefaultClock::default().now())
                .as_secs()
                + 1;
            let mut response = jsonrpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                -32000,
                &format!(
                    "too many requests: {} per minute per client (TAGWARDEN_HTTP_RATE_LIMIT); \
                     retry after {wait} s",
                    rate.per_minute
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

/// Answers malformed or oversized POST bodies with a JSON-RPC error (parse error `-32700` with
/// HTTP 400, or `-32600` with HTTP 413) instead of a bare text reply, so every client gets an
/// error it can read. Well-formed bodies pass through untouched.
async fn json_gate(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                &format!("Invalid Request: body larger than {limit} bytes"),
            );
        }
    };
    if !crate::util::json_depth_within(&bytes, crate::util::MAX_JSON_DEPTH) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            &format!(
                "Invalid Request: JSON nested deeper than {} levels",
                crate::util::MAX_JSON_DEPTH
            ),
        );
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            "Parse error: the request body is not valid JSON",
        );
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}
        })),
    )
        .into_response()
}

/// The bearer tokens `require_bearer` accepts, and which of them are administrators'.
struct BearerTokens {
    accepted: Vec<String>,
    admin: Vec<String>,
}

impl BearerTokens {
    fn of(options: &HttpOptions) -> BearerTokens {
        let mut accepted = options.api_tokens.clone();
        accepted.extend(options.admin_tokens.iter().cloned());
        BearerTokens {
            accepted,
            admin: options.admin_tokens.clone(),
        }
    }

    /// Whether this (accepted) token is an administrator's; constant time like the check.
    fn is_admin(&self, token: &str) -> bool {
        self.admin.iter().fold(false, |found, a| {
            bool::from(a.as_bytes().ct_eq(token.as_bytes())) | found
        })
    }
}

/// Bearer-token check in constant time; no tokens configured means loopback-only and open.
/// Puts the verified [`Principal`] in the request's extensions: the token's digest when tokens
/// are configured, else the client address.
async fn require_bearer(
    State(tokens): State<Arc<BearerTokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    if tokens.accepted.is_empty() {
        let id = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| format!("ip:{}", c.0.ip()))
            .unwrap_or_else(|| "http:anonymous".to_string());
        request
            .extensions_mut()
            .insert(Principal { id, admin: false });
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let accepted = presented.and_then(|p| {
        tokens.accepted.iter().fold(None, |found, t| {
            if bool::from(t.as_bytes().ct_eq(p.as_bytes())) {
                Some(t)
            } else {
                found
            }
        })
    });
    if let Some(token) = accepted {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        request.extensions_mut().insert(Principal {
            id: format!("token:{}", &digest[..12]),
            admin: tokens.is_admin(token),
        });
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "missing or invalid bearer token: send `Authorization: Bearer <token>` with one of the \
         server's TAGWARDEN_API_TOKENS",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tagwarden\""),
    );
    response
}
