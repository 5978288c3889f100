//! MCP over Streamable HTTP at `/mcp` (rmcp's service mounted in axum), plus `/healthz` and
//! `/metrics` (behind the same authentication and rate limit as `/mcp`).
//!
//! Safe by default: binds loopback; any other address needs bearer tokens or OAuth; the `Host`
//! header is checked against an allow-list (DNS rebinding) and browser `Origin`s against
//! another. Every request passes, in order: the connection layer (caps, header and request
//! timeouts: `conn`), authentication (`auth`: static tokens from `tokens`, OAuth access tokens
//! from `oauth`) and the request rate, the JSON-RPC gate (`jsonrpc`), the session gate
//! (`sessions`), then rmcp. With OAuth, the protected-resource metadata is served beside
//! `/mcp`, without authentication. The web console (`console`) is served at `/ui` beside them,
//! behind its own gate (console sessions or the same bearer tokens, CSRF on writes).

mod auth;
mod conn;
mod console;
mod forwarded;
mod jsonrpc;
mod metrics;
mod oauth;
mod sessions;
mod tokens;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub(crate) use forwarded::parse_trusted_proxy;
pub(crate) use metrics::{bind as bind_metrics, serve as serve_metrics};
pub use oauth::OAuthOptions;
pub(crate) use sessions::ValidatedSession;
pub(crate) use tokens::read_tokens_file;

use super::TagwardenServer;
use crate::metrics::Metrics;

/// How the HTTP server listens and what it accepts; `loopback` gives the defaults.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Accepted bearer tokens: a plain token (an approver) or `name:role:token` (role viewer,
    /// approver or admin). Tokens or OAuth are required when binding a non-loopback address.
    pub api_tokens: Vec<String>,
    /// Bearer tokens of administrators (the admin role: promotion to the cloud, every
    /// principal's audit rows); plain tokens.
    pub admin_tokens: Vec<String>,
    /// OAuth access tokens accepted beside the static tokens; None = off.
    pub oauth: Option<OAuthOptions>,
    /// Accepted `Host` values (hostname or host:port). Empty: loopback names, and when bound
    /// beyond loopback the bound address (every interface's for 0.0.0.0 / ::) and host name.
    pub allowed_hosts: Vec<String>,
    /// Accepted browser `Origin`s (`scheme://host:port`, `:*` for any port). Requests without
    /// an `Origin` (non-browser clients) are always accepted.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The whole exchange: request head to the end of the answer (GET streams excepted).
    pub request_timeout: Duration,
    /// Requests per minute per verified principal (token, or client address); 0 = unlimited.
    pub rate_limit_per_minute: u32,
    /// Failed logins per minute per client address; 0 = unlimited.
    pub auth_failures_per_minute: u32,
    /// A complete request head must arrive within this of connecting or of its first byte.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// Open connections in all; 0 = from the open-file limit.
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64).
    pub max_connections_per_address: usize,
    /// Open MCP sessions in all and per principal; 0 = unlimited.
    pub max_sessions: usize,
    /// Open MCP sessions per verified principal.
    pub max_sessions_per_principal: usize,
    /// A session without any request for this long is closed.
    pub session_idle_timeout: Duration,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// A web console session (`/ui`) without any request for this long is ended.
    pub console_session_idle: Duration,
    /// The console's session cookie is `Secure` even on a loopback listener (behind a TLS
    /// proxy).
    pub console_secure_cookie: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client failed logins are counted
    /// under (see `forwarded`); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl HttpOptions {
    /// The defaults for a server on `addr` (tokens not required on loopback).
    pub fn loopback(addr: SocketAddr) -> HttpOptions {
        HttpOptions {
            addr,
            api_tokens: Vec::new(),
            admin_tokens: Vec::new(),
            oauth: None,
            rate_limit_per_minute: 600,
            auth_failures_per_minute: 20,
            allowed_hosts: Vec::new(),
            allowed_origins: default_origins(),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 0,
            max_connections_per_address: 128,
            max_sessions: 1000,
            max_sessions_per_principal: 100,
            session_idle_timeout: Duration::from_secs(30 * 60),
            shutdown_timeout: Duration::from_secs(30),
            console_session_idle: Duration::from_secs(30 * 60),
            console_secure_cookie: false,
            trusted_proxies: Vec::new(),
        }
    }

    /// Refuses setups that would expose the server unauthenticated, and bad token entries
    /// and OAuth settings; returns what authentication is built from.
    pub(crate) fn check(&self) -> Result<Credentials, HttpError> {
        let tokens = tokens::static_tokens(&self.api_tokens, &self.admin_tokens)?;
        let oauth = self.oauth.as_ref().map(oauth::OAuth::new).transpose()?;
        // Open mode (no tokens, no OAuth) trusts whoever reaches a loopback listener. A TLS
        // proxy in front of it (what --console-secure-cookie is for) lets the world reach it.
        let open = tokens.is_empty() && oauth.is_none();
        if open && !self.addr.ip().is_loopback() {
            return Err(HttpError::TokensRequired(self.addr));
        }
        if open && self.console_secure_cookie {
            return Err(HttpError::ProxiedWithoutTokens);
        }
        Ok(Credentials { tokens, oauth })
    }
}

/// What requests are authenticated with: static tokens and their principals, OAuth.
pub(crate) struct Credentials {
    tokens: Vec<tokens::StaticToken>,
    oauth: Option<oauth::OAuth>,
}

/// The token list as configured (`a, b` is `a` and `b`): entries trimmed; a blank entry is an
/// error (a token of spaces must not pass for "tokens set"). Wholly empty means no tokens.
pub(crate) fn parse_tokens(raw: Vec<String>) -> Result<Vec<String>, HttpError> {
    if raw.iter().all(|t| t.is_empty()) {
        return Ok(Vec::new());
    }
    raw.iter()
        .enumerate()
        .map(|(n, t)| {
            let t = t.trim();
            if t.is_empty() {
                Err(HttpError::BlankToken(n + 1))
            } else {
                Ok(t.to_string())
            }
        })
        .collect()
}

pub(crate) fn default_origins() -> Vec<String> {
    ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Why the HTTP server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without tokens.
    #[error(
        "refusing to serve on {0} without authentication: binding an address other than \
         loopback exposes the server to the network; set TAGWARDEN_API_TOKENS (comma-separated \
         bearer tokens), --api-tokens-file or --oauth-issuer with --oauth-audience, or bind \
         127.0.0.1"
    )]
    TokensRequired(SocketAddr),
    /// A TLS proxy fronts a server that trusts everyone (no tokens, no OAuth).
    #[error(
        "--console-secure-cookie says a TLS proxy serves this server to others, but no tokens \
         or OAuth are set: everyone reaching the proxy would be the local user with every role; \
         set TAGWARDEN_API_TOKENS, --api-tokens-file or --oauth-issuer with --oauth-audience"
    )]
    ProxiedWithoutTokens,
    /// An API token entry or the tokens file is wrong (the message says which and the fix).
    #[error("{0}")]
    Tokens(String),
    /// The OAuth settings are wrong (the message says which and the fix).
    #[error("OAuth: {0}")]
    OAuth(String),
    #[error(
        "TAGWARDEN_API_TOKENS (--api-tokens) or TAGWARDEN_ADMIN_TOKENS (--admin-tokens): entry {0} is blank: every comma-separated token \
         needs characters other than spaces; remove the blank entry or set a real token"
    )]
    /// A configured token is blank (its position, from 1).
    BlankToken(usize),
    /// `--metrics-listen` serves without tokens, so only on loopback.
    #[error(
        "refusing to serve /metrics on {0} without authentication: --metrics-listen must be a \
         loopback address (e.g. 127.0.0.1:9464); to scrape from another host, leave it out and \
         scrape /metrics on --http with a bearer token"
    )]
    MetricsNotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        reason: String,
    },
}

/// Serves Tagwarden until `shutdown` is cancelled, then drains the requests in flight. Logs
/// `listening on http://ADDR/mcp` once bound.
pub(crate) async fn serve_http(
    server: TagwardenServer,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let health = Router::new().route("/healthz", get(healthz).with_state(server.clone()));
    let hosts = if options.allowed_hosts.is_empty() {
        default_hosts(options.addr.ip())
    } else {
        options.allowed_hosts.clone()
    };
    let protected = metrics::route(server.app().clone(), hosts);
    let console = console::Console::new(
        server.clone(),
        options.console_session_idle,
        options.console_secure_cookie,
    );
    let series = server.app().metrics().clone();
    serve_with(
        server,
        health,
        protected,
        Some(console),
        series,
        options,
        shutdown,
    )
    .await
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
    // Its series are kept but served nowhere (no `/metrics` route here).
    let series = Arc::default();
    serve_with(
        handler,
        extra,
        Router::new(),
        None,
        series,
        options,
        shutdown,
    )
    .await
}

/// As `serve_handler`, with `protected` routes behind the same authentication and rate limit
/// as `/mcp` (but not its JSON-RPC and session gates).
async fn serve_with<H>(
    handler: H,
    extra: Router,
    protected: Router,
    console: Option<console::Console>,
    series: Arc<Metrics>,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), HttpError>
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let credentials = options.check()?;
    let has_console = console.is_some();
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
    // rmcp's own token is cancelled only after the drain: cancelling it ends every session and
    // the answers in flight with them.
    let rmcp_stop = CancellationToken::new();
    let router = app_router(
        handler,
        extra,
        protected,
        console,
        &options,
        credentials,
        local,
        rmcp_stop.clone(),
        series.clone(),
    );
    let limits = conn::ConnLimits {
        header_timeout: options.header_timeout,
        idle_timeout: options.idle_timeout,
        request_timeout: options.request_timeout,
        max_total: match options.max_connections {
            0 => conn::auto_max_connections(),
            n => n,
        },
        max_per_address: options.max_connections_per_address,
        shutdown_timeout: options.shutdown_timeout,
    };
    tracing::info!(
        max_connections = limits.max_total,
        max_connections_per_address = limits.max_per_address,
        "connection limits"
    );
    tracing::info!("listening on http://{local}/mcp");
    if has_console {
        tracing::info!("web console on http://{local}/ui");
    }
    conn::serve(listener, router, limits, shutdown, rmcp_stop, series).await;
    Ok(())
}

/// `/mcp` behind its gates, `protected` behind authentication and the rate limit, `extra`
/// beside them, every route under the request timeout.
#[allow(clippy::too_many_arguments)]
fn app_router<H>(
    handler: H,
    extra: Router,
    protected: Router,
    console: Option<console::Console>,
    options: &HttpOptions,
    credentials: Credentials,
    local: SocketAddr,
    rmcp_stop: CancellationToken,
    metrics: Arc<Metrics>,
) -> Router
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let hosts = if options.allowed_hosts.is_empty() {
        default_hosts(local.ip())
    } else {
        options.allowed_hosts.clone()
    };
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts.clone())
        .with_allowed_origins(options.allowed_origins.clone())
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(rmcp_stop.clone());
    let mut local_sessions = LocalSessionManager::default();
    local_sessions.session_config.keep_alive = Some(options.session_idle_timeout);
    let table = Arc::new(sessions::SessionTable::new(
        options.max_sessions_per_principal,
        options.max_sessions,
        options.session_idle_timeout,
        metrics.clone(),
    ));
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(sessions::OwnedSessions::new(local_sessions, table.clone())),
        config,
    );
    let oauth = credentials.oauth.map(Arc::new);
    let metadata = match &oauth {
        Some(oauth) => {
            oauth.spawn_prefetch();
            oauth.routes()
        }
        None => Router::new(),
    };
    let auth = Arc::new(auth::Auth::new(
        credentials.tokens,
        oauth,
        options.auth_failures_per_minute,
    ));
    let rate = Arc::new(auth::RequestRate::new(options.rate_limit_per_minute));
    auth::spawn_pruning(auth.clone(), rate.clone(), rmcp_stop);
    let console = match console {
        Some(console) => console.router(
            auth.clone(),
            rate.clone(),
            hosts,
            options.allowed_origins.clone(),
            local,
        ),
        None => Router::new(),
    };
    // Layers run outside in: the last added runs first.
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            table,
            sessions::session_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            options.max_body_bytes,
            jsonrpc::json_gate,
        ))
        .merge(protected)
        .layer(axum::middleware::from_fn_with_state(rate, auth::rate_limit))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_bearer,
        ))
        .merge(extra)
        .merge(console)
        .merge(metadata)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::count_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(options.trusted_proxies.clone()),
            forwarded::client_address,
        ))
}

/// `Host` values accepted when none are configured: loopback names; beyond loopback also the
/// bound address (every interface's address when bound to 0.0.0.0 or ::) and the host name.
/// Entries without a port accept any port.
fn default_hosts(bound: IpAddr) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if bound.is_loopback() {
        return hosts;
    }
    if bound.is_unspecified() {
        match if_addrs::get_if_addrs() {
            Ok(interfaces) => hosts.extend(interfaces.iter().map(|i| i.ip().to_string())),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot list this machine's addresses; set --allowed-hosts to accept them"
            ),
        }
    } else {
        hosts.push(bound.to_string());
    }
    match gethostname::gethostname().into_string() {
        Ok(name) if !name.is_empty() => hosts.push(name.to_ascii_lowercase()),
        _ => {}
    }
    hosts.sort();
    hosts.dedup();
    tracing::info!(hosts = %hosts.join(", "), "accepted Host names (--allowed-hosts to change)");
    hosts
}

/// Liveness and a few facts for operators (no secrets, no paths).
/// 200 and `"audit": "ok"` while calls can be recorded; 503 and `"audit": "failing: <why>"`
/// when the last audit write failed (the server then answers no tool call). `guard_state`
/// says where budgets and loop detection are kept: `shared` (Redis), `local` (no Redis), or
/// `local (redis unavailable)` while this replica enforces its own limits.
async fn healthz(State(server): State<TagwardenServer>) -> impl IntoResponse {
    let app = server.app();
    let failing = app.audit().and_then(|log| log.failing());
    let (status, code) = match &failing {
        None => ("ok", StatusCode::OK),
        Some(_) => ("failing", StatusCode::SERVICE_UNAVAILABLE),
    };
    let audit = match (app.audit(), failing) {
        (None, _) => "off".to_string(),
        (Some(_), None) => "ok".to_string(),
        (Some(_), Some(why)) => format!("failing: {why}"),
    };
    let body = axum::Json(serde_json::json!({
        "status": status,
        "audit": audit,
        "guard_state": server.guard().state_kept().label(),
        "version": env!("CARGO_PKG_VERSION"),
        "policy_hash": app.policy().current().hash(),
        "resources_cached": app.cached_resources().await,
    }));
    (code, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_mode_only_on_loopback_and_never_behind_a_declared_proxy() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(HttpOptions::loopback(loopback).check().is_ok());
        let proxied = HttpOptions {
            console_secure_cookie: true,
            ..HttpOptions::loopback(loopback)
        };
        assert!(matches!(
            proxied.check(),
            Err(HttpError::ProxiedWithoutTokens)
        ));
        let with_tokens = HttpOptions {
            api_tokens: vec!["t0ken".into()],
            ..proxied
        };
        assert!(with_tokens.check().is_ok());
        let public = HttpOptions::loopback("0.0.0.0:8080".parse().unwrap());
        assert!(matches!(public.check(), Err(HttpError::TokensRequired(_))));
    }

    #[test]
    fn tokens_are_trimmed_and_blank_ones_refused() {
        let v = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_tokens(v(&["a", " b"])).unwrap(), v(&["a", "b"]));
        assert!(parse_tokens(v(&[""])).unwrap().is_empty());
        assert!(matches!(
            parse_tokens(v(&["  "])),
            Err(HttpError::BlankToken(1))
        ));
        assert!(matches!(
            parse_tokens(v(&["a", " ", "b"])),
            Err(HttpError::BlankToken(2))
        ));
    }

    #[test]
    fn beyond_loopback_the_bound_address_and_host_name_are_hosts() {
        let hosts = default_hosts("192.0.2.7".parse().unwrap());
        assert!(hosts.contains(&"192.0.2.7".to_string()));
        assert!(hosts.contains(&"localhost".to_string()));
        let all = default_hosts("0.0.0.0".parse().unwrap());
        assert!(all.contains(&"127.0.0.1".to_string()));
        assert!(default_hosts("127.0.0.1".parse().unwrap()).len() == 3);
    }
}
