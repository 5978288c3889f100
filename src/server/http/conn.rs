//! Connections: our own accept loop over hyper's HTTP/1 server, so that no client can hold the
//! server's sockets.
//!
//! `axum::serve` accepts until the process runs out of file descriptors and never closes a
//! connection that sends nothing: 1,100 idle connections starved everyone, and a header
//! trickled once a second stayed open for minutes. Here:
//! - a client must deliver a complete request head within the header timeout of connecting or
//!   of the first byte of its next request (a small read wrapper arms a timer; hyper's own
//!   header timer counts from the end of the previous answer, which is the idle keep-alive
//!   timeout);
//! - connections are capped per client address and in total (by default below the open-file
//!   limit); at a cap, an idle connection — the oldest of the busiest address — is closed to
//!   make room, and only when none is idle is the newcomer turned away, so a flood from one
//!   address never starves clients at other addresses;
//! - the request timeout covers the whole exchange, from the request head to the end of the
//!   answer (standalone SSE streams opened with GET excepted): an answer still streaming then
//!   ends with a JSON-RPC error for its request id;
//! - on shutdown the listener closes, idle connections close, requests in flight finish
//!   (bounded by the shutdown timeout), and only then is rmcp told to stop its sessions.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response, header};
use http_body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::auth::client_key;
use super::jsonrpc::Envelope;
use crate::metrics::Metrics;

/// Limits on connections and on the time each step may take.
#[derive(Debug, Clone)]
pub(super) struct ConnLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_total: usize,
    pub max_per_address: usize,
    pub shutdown_timeout: Duration,
}

/// The open-file limit's share connections may use when no cap is configured: three quarters
/// (the rest is for the databases, the cache and cloud clients), at most 4,096.
pub(super) fn auto_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft.saturating_mul(3) / 4)
        .unwrap_or(usize::MAX)
        .clamp(16, 4096)
}

/// Accepts and serves connections until `shutdown`, then drains (see the module docs) and
/// cancels `after_drain` (rmcp's sessions and streams).
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    after_drain: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let registry = Arc::new(Registry::new(&limits, metrics));
    let tasks = TaskTracker::new();
    let (inflight, _) = watch::channel(0usize);
    let inflight = Arc::new(inflight);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // hyper's header timer starts when a connection goes idle: it is the keep-alive limit.
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true);
    let mut last_fd_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors: close an idle connection and let the kernel's queue
                // wait a moment rather than spinning.
                if matches!(e.raw_os_error(), Some(23 | 24)) {
                    registry.evict_any_idle();
                    if last_fd_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "out of file descriptors; closing idle connections");
                        last_fd_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                } else {
                    tracing::debug!(error = %e, "accept failed");
                }
                continue;
            }
        };
        let Some(state) = registry.admit(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection refused: at the connection cap and none idle");
            continue;
        };
        // No Nagle delay: the end of a chunked answer would otherwise wait for the client's
        // delayed ACK (~40 ms per answer).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let job = Connection {
            tcp,
            peer,
            state,
            registry: registry.clone(),
            router: router.clone(),
            http: http.clone(),
            limits: limits.clone(),
            inflight: inflight.clone(),
        };
        tasks.spawn(job.run());
    }
    drop(listener);
    let busy = *inflight.borrow();
    tracing::info!(
        requests_in_flight = busy,
        "no longer accepting connections; letting requests in flight finish (at most {} s)",
        limits.shutdown_timeout.as_secs()
    );
    registry.close_all();
    let mut watching = inflight.subscribe();
    let drained = tokio::time::timeout(limits.shutdown_timeout, watching.wait_for(|n| *n == 0))
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            requests_in_flight = *inflight.borrow(),
            "shutdown timeout reached; ending the requests still in flight"
        );
    }
    // Now rmcp may stop: sessions close and open SSE streams end, so their connections close.
    after_drain.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(2), tasks.wait())
        .await
        .is_err()
    {
        tracing::debug!("connections still open at exit");
    }
}

/// What the server knows of one connection.
struct ConnState {
    id: u64,
    key: IpAddr,
    /// Requests being answered on it (a request counts until its answer is written).
    active: AtomicUsize,
    /// Requests started on it so far: the head timer re-arms only for a new request.
    started: AtomicU64,
    /// When it last finished an answer or opened (for choosing the oldest idle connection).
    last_used: Mutex<Instant>,
    /// Cancelled to close it gracefully (eviction or shutdown).
    close: CancellationToken,
}

impl ConnState {
    fn is_idle(&self) -> bool {
        self.active.load(Ordering::Acquire) == 0
    }
}

/// Open connections per client address and in total.
struct Registry {
    inner: Mutex<Conns>,
    max_total: usize,
    max_per_address: usize,
    /// Parent of every connection's `close` token.
    all: CancellationToken,
    /// Where the number of open connections is published.
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Conns {
    /// Takes a connection out of the counts and asks it to close.
    fn evict(&mut self, id: u64) {
        if let Some(state) = self.remove(id) {
            state.close.cancel();
        }
    }

    fn remove(&mut self, id: u64) -> Option<Arc<ConnState>> {
        let state = self.open.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&state.key) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&state.key);
            }
        }
        Some(state)
    }

    /// The idle connection to close first: of the given address, or else of the address with
    /// the most connections; the one unused longest.
    fn idle_victim(&self, of: Option<IpAddr>) -> Option<u64> {
        self.open
            .values()
            .filter(|c| c.is_idle() && of.is_none_or(|k| c.key == k))
            .max_by_key(|c| {
                let crowd = self.per_address.get(&c.key).copied().unwrap_or(0);
                let since = *c.last_used.lock().unwrap_or_else(|e| e.into_inner());
                (crowd, std::cmp::Reverse(since))
            })
            .map(|c| c.id)
    }
}

impl Registry {
    fn new(limits: &ConnLimits, metrics: Arc<Metrics>) -> Registry {
        Registry {
            inner: Mutex::new(Conns::default()),
            max_total: limits.max_total.max(1),
            max_per_address: limits.max_per_address.max(1),
            all: CancellationToken::new(),
            metrics,
        }
    }

    fn published(&self, conns: &Conns) {
        self.metrics.http_connections_open(conns.open.len());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for a connection from `ip` (closing idle ones if needed), or refuses it.
    fn admit(&self, ip: IpAddr) -> Option<Arc<ConnState>> {
        let key = client_key(ip);
        let mut conns = self.lock();
        if conns.per_address.get(&key).copied().unwrap_or(0) >= self.max_per_address {
            let victim = conns.idle_victim(Some(key))?;
            conns.evict(victim);
        }
        if conns.open.len() >= self.max_total {
            let Some(victim) = conns.idle_victim(None) else {
                // The per-address step may have closed one already.
                self.published(&conns);
                return None;
            };
            conns.evict(victim);
        }
        conns.next_id += 1;
        let state = Arc::new(ConnState {
            id: conns.next_id,
            key,
            active: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_used: Mutex::new(Instant::now()),
            close: self.all.child_token(),
        });
        conns.open.insert(state.id, state.clone());
        *conns.per_address.entry(key).or_insert(0) += 1;
        self.published(&conns);
        Some(state)
    }

    fn evict_any_idle(&self) {
        let mut conns = self.lock();
        if let Some(victim) = conns.idle_victim(None) {
            conns.evict(victim);
            self.published(&conns);
        }
    }

    fn release(&self, id: u64) {
        let mut conns = self.lock();
        conns.remove(id);
        self.published(&conns);
    }

    fn close_all(&self) {
        self.all.cancel();
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    tcp: TcpStream,
    peer: SocketAddr,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
    router: Router,
    http: hyper::server::conn::http1::Builder,
    limits: ConnLimits,
    inflight: Arc<watch::Sender<usize>>,
}

impl Connection {
    async fn run(self) {
        let Connection {
            tcp,
            peer,
            state,
            registry,
            router,
            http,
            limits,
            inflight,
        } = self;
        let io = TokioIo::new(HeadTimer::new(tcp, state.clone(), limits.header_timeout));
        let served = state.clone();
        let request_timeout = limits.request_timeout;
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let guard = RequestGuard::start(&served, &inflight, is_stream(&request));
            let router = router.clone();
            async move {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                let deadline = Instant::now() + request_timeout;
                let response = router.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(bounded(
                    response,
                    guard,
                    deadline,
                    request_timeout,
                ))
            }
        });
        let conn = http.serve_connection(io, service);
        tokio::pin!(conn);
        let outcome = tokio::select! {
            outcome = conn.as_mut() => outcome,
            _ = state.close.cancelled() => {
                // Idle: hyper closes at once; busy: after the answer being written.
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(client = %peer.ip(), error = %e, "connection ended");
        }
        registry.release(state.id);
    }
}

/// A standalone SSE stream (`GET /mcp`): open as long as its session, so neither drained nor
/// bounded by the request timeout.
fn is_stream<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET && request.uri().path() == "/mcp"
}

/// Counts a request as active on its connection (and in flight for the drain) until its
/// answer has been written.
struct RequestGuard {
    conn: Arc<ConnState>,
    inflight: Option<Arc<watch::Sender<usize>>>,
}

impl RequestGuard {
    fn start(
        conn: &Arc<ConnState>,
        inflight: &Arc<watch::Sender<usize>>,
        stream: bool,
    ) -> RequestGuard {
        conn.active.fetch_add(1, Ordering::AcqRel);
        conn.started.fetch_add(1, Ordering::AcqRel);
        let inflight = (!stream).then(|| {
            inflight.send_modify(|n| *n += 1);
            inflight.clone()
        });
        RequestGuard {
            conn: conn.clone(),
            inflight,
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        *self
            .conn
            .last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.conn.active.fetch_sub(1, Ordering::AcqRel);
        if let Some(inflight) = &self.inflight {
            inflight.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

/// Wraps an answer so that it counts as active until written and ends at the deadline.
fn bounded(
    response: Response<Body>,
    guard: RequestGuard,
    deadline: Instant,
    timeout: Duration,
) -> Response<Body> {
    let sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let id = response
        .extensions()
        .get::<Envelope>()
        .and_then(|e| e.id.clone());
    // On a timed-out SSE answer the client gets an error for its request, not a cut stream.
    let last_words = match (sse, id) {
        (true, Some(id)) => {
            let error = serde_json::json!({
                "jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": format!(
                    "request timed out after {} s (TAGWARDEN_HTTP_REQUEST_TIMEOUT); the work may \
                     still complete on the server: ask again in a while",
                    timeout.as_secs()
                )}
            });
            Some(Bytes::from(format!("event: message\ndata: {error}\n\n")))
        }
        _ => None,
    };
    let stream = guard.inflight.is_none();
    response.map(|inner| {
        Body::new(Bounded {
            inner,
            deadline: (!stream).then(|| Box::pin(tokio::time::sleep_until(deadline))),
            last_words,
            done: false,
            _guard: guard,
        })
    })
}

/// A response body with a deadline, holding its request's [`RequestGuard`].
struct Bounded {
    inner: Body,
    deadline: Option<Pin<Box<Sleep>>>,
    last_words: Option<Bytes>,
    done: bool,
    _guard: RequestGuard,
}

impl http_body::Body for Bounded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            return Poll::Ready(match this.last_words.take() {
                Some(words) => Some(Ok(Frame::data(words))),
                None => Some(Err(axum::Error::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request timed out",
                )))),
            });
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, with a deadline on receiving a request head: armed when the connection opens
/// and at the first byte of each later request, disarmed once hyper hands the request on.
struct HeadTimer {
    io: TcpStream,
    conn: Arc<ConnState>,
    timeout: Duration,
    /// The deadline, and the request count when it was armed.
    armed: Option<(u64, Pin<Box<Sleep>>)>,
}

impl HeadTimer {
    fn new(io: TcpStream, conn: Arc<ConnState>, timeout: Duration) -> HeadTimer {
        HeadTimer {
            io,
            conn,
            timeout,
            armed: Some((0, Box::pin(tokio::time::sleep(timeout)))),
        }
    }
}

impl AsyncRead for HeadTimer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let started = this.conn.started.load(Ordering::Acquire);
        let busy = !this.conn.is_idle();
        if busy || this.armed.as_ref().is_some_and(|(n, _)| *n != started) {
            this.armed = None;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if !busy && buf.filled().len() > before && this.armed.is_none() => {
                this.armed = Some((started, Box::pin(tokio::time::sleep(this.timeout))));
            }
            Poll::Pending if !busy => {
                if let Some((_, deadline)) = &mut this.armed
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    tracing::debug!("request head not received in time; closing the connection");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received in time",
                    )));
                }
            }
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for HeadTimer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            max_total: total,
            max_per_address: per_address,
            shutdown_timeout: Duration::from_secs(30),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn idle_connections_of_the_busiest_address_make_room() {
        let r = Registry::new(&limits(4, 3), Arc::default());
        let a: Vec<_> = (0..3).map(|_| r.admit(ip("10.0.0.1")).unwrap()).collect();
        let b = r.admit(ip("10.0.0.2")).unwrap();
        // Busy connections are never closed for room.
        b.active.store(1, Ordering::Release);
        a[1].active.store(1, Ordering::Release);
        let c = r.admit(ip("10.0.0.3")).unwrap();
        assert!(a[0].close.is_cancelled() || a[2].close.is_cancelled());
        assert!(!b.close.is_cancelled() && !a[1].close.is_cancelled());
        // Per address: a fourth from 10.0.0.1 replaces its own idle one.
        let _d = r.admit(ip("10.0.0.1")).unwrap();
        assert!(a[0].close.is_cancelled() && a[2].close.is_cancelled());
        // Nothing idle left: refused.
        c.active.store(1, Ordering::Release);
        _d.active.store(1, Ordering::Release);
        assert!(r.admit(ip("10.0.0.4")).is_none());
    }
}
