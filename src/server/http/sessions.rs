//! MCP sessions (protocol 2025-11-25 and earlier) belong to the principal that created them,
//! and there are only so many.
//!
//! rmcp's session manager knows session ids, not who asked for them: with another token one
//! could call tools on someone's session, spend its budget and DELETE it. Each session here is
//! bound to its creator when rmcp creates it, and a request naming a session of someone else
//! is answered 404, as an unknown session is. Sessions cost memory (~62 KB each): an
//! `initialize` is refused beyond a number per principal (429) and in total (503), and a session
//! idle for long is closed (rmcp's keep-alive), which frees its place.
//!
//! The binding is exact, not inferred from response headers: the gate reserves a place for the
//! principal before rmcp runs and hands the reservation down a task-local; rmcp's
//! `create_session`, which runs inside that same request future, consumes it. A reservation not
//! consumed (a refused handshake) is released when the request ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use serde_json::Value;

use super::jsonrpc::{Envelope, jsonrpc_error};
use crate::guard::Principal;
use crate::metrics::Metrics;

/// The session a request belongs to, as validated by the transport (it exists and is the
/// caller's). Absent for stateless requests, whatever `Mcp-Session-Id` they carry.
#[derive(Debug, Clone)]
pub(crate) struct ValidatedSession(pub Arc<str>);

/// Who owns which session, and how many each has.
pub(super) struct SessionTable {
    inner: Mutex<Table>,
    per_principal: usize,
    total: usize,
    idle: Duration,
    /// Where the number of sessions is published.
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Table {
    owners: HashMap<Arc<str>, Arc<str>>,
    /// Sessions and reservations per principal.
    counts: HashMap<Arc<str>, usize>,
    total: usize,
}

impl Table {
    fn release(&mut self, principal: &Arc<str>) {
        if let Some(n) = self.counts.get_mut(principal) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(principal);
            }
        }
        self.total = self.total.saturating_sub(1);
    }
}

enum Full {
    Principal,
    Server,
}

/// A place held for a session about to be created; released on drop unless used.
pub(super) struct Reservation {
    table: Arc<SessionTable>,
    principal: Arc<str>,
    used: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            let mut t = lock(&self.table.inner);
            t.release(&self.principal);
            self.table.publish(&t);
        }
    }
}

tokio::task_local! {
    static PENDING: RefCell<Option<Reservation>>;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionTable {
    /// `0` means unlimited for either cap.
    pub(super) fn new(
        per_principal: usize,
        total: usize,
        idle: Duration,
        metrics: Arc<Metrics>,
    ) -> SessionTable {
        SessionTable {
            metrics,
            inner: Mutex::new(Table::default()),
            per_principal: if per_principal == 0 {
                usize::MAX
            } else {
                per_principal
            },
            total: if total == 0 { usize::MAX } else { total },
            idle,
        }
    }

    fn publish(&self, t: &Table) {
        self.metrics.mcp_sessions_open(t.total);
    }

    fn owner(&self, session: &str) -> Option<Arc<str>> {
        lock(&self.inner).owners.get(session).cloned()
    }

    fn reserve(self: &Arc<Self>, principal: &str) -> Result<Reservation, Full> {
        let mut t = lock(&self.inner);
        if t.total >= self.total {
            return Err(Full::Server);
        }
        let principal: Arc<str> = principal.into();
        let count = t.counts.entry(principal.clone()).or_insert(0);
        if *count >= self.per_principal {
            return Err(Full::Principal);
        }
        *count += 1;
        t.total += 1;
        self.publish(&t);
        Ok(Reservation {
            table: self.clone(),
            principal,
            used: false,
        })
    }

    /// Binds a new session to the reservation's principal (or, created outside the gate, to
    /// no one: it then counts in the total only).
    fn bind(&self, session: &SessionId, reservation: Option<Reservation>) {
        let principal = match reservation {
            Some(mut r) => {
                r.used = true;
                r.principal.clone()
            }
            None => {
                let nobody: Arc<str> = "http:unbound".into();
                let mut t = lock(&self.inner);
                *t.counts.entry(nobody.clone()).or_insert(0) += 1;
                t.total += 1;
                self.publish(&t);
                nobody
            }
        };
        lock(&self.inner).owners.insert(session.clone(), principal);
    }

    fn forget(&self, session: &SessionId) {
        let mut t = lock(&self.inner);
        if let Some(principal) = t.owners.remove(&**session) {
            t.release(&principal);
            self.publish(&t);
        }
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        lock(&self.inner).total
    }
}

/// Checks the session a request names against its principal; reserves a place for a new one on
/// `initialize`. Runs after authentication and the JSON-RPC gate.
pub(super) async fn session_gate(
    State(table): State<Arc<SessionTable>>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "http:anonymous".to_string(), |p| p.id.clone());
    let named = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(session) = named {
        match table.owner(&session) {
            Some(owner) if *owner != *principal => {
                tracing::warn!(%principal, "refused a request naming another principal's session");
                return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
            }
            Some(_) => {
                request
                    .extensions_mut()
                    .insert(ValidatedSession(session.into()));
            }
            // Unknown: rmcp answers 404 for a session request; a stateless one ignores it.
            None => {}
        }
        return next.run(request).await;
    }
    let envelope = request.extensions().get::<Envelope>().cloned();
    let Some(envelope) = envelope.filter(|e| e.method.as_deref() == Some("initialize")) else {
        return next.run(request).await;
    };
    let id = envelope.id.unwrap_or(Value::Null);
    match table.reserve(&principal) {
        Ok(reservation) => {
            PENDING
                .scope(RefCell::new(Some(reservation)), next.run(request))
                .await
        }
        Err(Full::Principal) => jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            -32000,
            &format!(
                "too many sessions: each client may hold {} open sessions \
                 (TAGWARDEN_HTTP_MAX_SESSIONS_PER_PRINCIPAL); close one (DELETE /mcp with its \
                 Mcp-Session-Id) or reuse it — idle sessions close after {} s",
                table.per_principal,
                table.idle.as_secs()
            ),
            id,
        ),
        Err(Full::Server) => jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            &format!(
                "the server holds as many sessions as it may ({}, TAGWARDEN_HTTP_MAX_SESSIONS); \
                 try again when idle sessions have closed (after {} s idle)",
                table.total,
                table.idle.as_secs()
            ),
            id,
        ),
    }
}

/// A session manager that records each session's owner in the [`SessionTable`].
pub(super) struct OwnedSessions<M> {
    inner: M,
    table: Arc<SessionTable>,
}

impl<M> OwnedSessions<M> {
    pub(super) fn new(inner: M, table: Arc<SessionTable>) -> Self {
        OwnedSessions { inner, table }
    }
}

impl<M: SessionManager> SessionManager for OwnedSessions<M> {
    type Error = M::Error;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        let reservation = PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten();
        self.table.bind(&id, reservation);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        // Closed by DELETE, by idle expiry or at shutdown: the place is free either way.
        self.table.forget(id);
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_until_released_or_bound() {
        let table = Arc::new(SessionTable::new(
            2,
            3,
            Duration::from_secs(60),
            Arc::default(),
        ));
        let a1 = table.reserve("a").ok().unwrap();
        let a2 = table.reserve("a").ok().unwrap();
        assert!(matches!(table.reserve("a"), Err(Full::Principal)));
        drop(a2);
        let id: SessionId = "s1".into();
        table.bind(&id, Some(a1));
        assert_eq!(table.owner("s1").as_deref(), Some("a"));
        let _b1 = table.reserve("b").ok().unwrap();
        let _b2 = table.reserve("b").ok().unwrap();
        assert!(matches!(table.reserve("c"), Err(Full::Server)));
        table.forget(&id);
        table.forget(&id);
        assert_eq!(table.total(), 2);
        assert!(table.owner("s1").is_none());
    }
}
