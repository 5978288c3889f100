//! `/metrics`: the server's series as OpenMetrics text, for Prometheus to scrape.
//!
//! On the `--http` listener it sits behind the same bearer tokens and request rate as `/mcp`.
//! `--metrics-listen ADDR` serves it on a second listener without tokens, which is why that
//! address must be loopback (a scraper on the same host, or a sidecar): refused otherwise, so
//! it is never public by accident. Both check the `Host` header (DNS rebinding) like `/mcp`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::HttpError;
use super::conn;
use crate::app::App;
use crate::metrics::{HttpMethod, HttpRoute, HttpStatus, Metrics};

/// The route, for the `--http` listener (its caller puts it behind authentication).
pub(super) fn route(app: Arc<App>, hosts: Vec<String>) -> Router {
    Router::new()
        .route("/metrics", get(metrics).with_state(app))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            host_gate,
        ))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    render(&app)
}

/// The current series: the audit queue is read now, everything else was recorded as it
/// happened.
fn render(app: &App) -> Response {
    if let Some(depth) = app.audit().and_then(|log| log.queue_depth()) {
        app.metrics().audit_queue_depth(depth);
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.metrics().render(),
    )
        .into_response()
}

/// Counts every request the router answers (refusals included: `401`, `403`, `408`, `429`)
/// by route, method and status, and times it to its answer's head.
pub(super) async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = HttpRoute::of_path(request.uri().path());
    let method = HttpMethod::of(request.method().as_str());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.http_request(
        route,
        method,
        HttpStatus::of(response.status().as_u16()),
        started.elapsed(),
    );
    response
}

/// Refuses a `Host` the server does not answer to (a page rebinding its domain to this
/// address must not read the metrics). An entry without a port accepts any port.
async fn host_gate(
    State(hosts): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    match host_refusal(&hosts, &request, "scrape /metrics") {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// `403` when the request's `Host` is not one of `hosts` (DNS rebinding), saying what to do
/// (`to`: "scrape /metrics", "open the console") through an accepted name.
pub(super) fn host_refusal(hosts: &[String], request: &Request, to: &str) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    (!host_allowed(hosts, host)).then(|| {
        (
            StatusCode::FORBIDDEN,
            format!("Host not allowed: {to} through a name the server accepts (--allowed-hosts)"),
        )
            .into_response()
    })
}

fn host_allowed(hosts: &[String], host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    // `[::1]:8080` → `::1`; `localhost:8080` → `localhost`; a bare IPv6 address stays whole.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default().to_string()
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or_default().to_string()
    } else {
        host.clone()
    };
    hosts.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        entry == host || entry == name || entry.trim_matches(['[', ']']) == name
    })
}

/// Binds `--metrics-listen`: loopback only, since nothing there asks for a token.
pub(crate) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    if !addr.ip().is_loopback() {
        return Err(HttpError::MetricsNotLoopback(addr));
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| HttpError::Bind {
            addr,
            reason: e.to_string(),
        })
}

/// Serves `/metrics` alone on `listener` until `shutdown`, with small connection caps (one
/// scraper needs one connection) and the same timeouts as the main listener's defaults.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: CancellationToken,
) {
    let hosts = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let router = route(app, hosts).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(30),
    ));
    if let Ok(local) = listener.local_addr() {
        tracing::info!("metrics on http://{local}/metrics (loopback, no token)");
    }
    let limits = conn::ConnLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(30),
        max_total: 16,
        max_per_address: 16,
        shutdown_timeout: Duration::from_secs(5),
    };
    // Its connections are not counted in `http_connections_open` (the --http listener's).
    conn::serve(
        listener,
        router,
        limits,
        shutdown,
        CancellationToken::new(),
        Arc::default(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_a_port() {
        let hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        assert!(host_allowed(&hosts, "localhost:9464"));
        assert!(host_allowed(&hosts, "127.0.0.1"));
        assert!(host_allowed(&hosts, "[::1]:9464"));
        assert!(!host_allowed(&hosts, "evil.example:9464"));
        assert!(!host_allowed(&hosts, "127.0.0.1.evil.example"));
        assert!(!host_allowed(&hosts, ""));
        let with_port: Vec<String> = vec!["metrics.internal:9464".into()];
        assert!(host_allowed(&with_port, "metrics.internal:9464"));
        assert!(!host_allowed(&with_port, "metrics.internal:80"));
    }
}
