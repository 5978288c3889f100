//! The web console at `/ui` on `serve --http`: server-rendered pages (minijinja templates
//! from `templates/console/`, auto-escaped) over the same tool calls an assistant makes —
//! overview, resources, the approval queue, rules, history and drift, the cost gap.
//!
//! Every page asks the tools through the guard (`Guard::call_from_console`: limits, the role
//! check, sanitisation, the principal's hourly and the global budget, and the audit row as on
//! `/mcp`; no loop detection or per-minute budgets, since a person reloads pages by design),
//! so a figure here is the tool's figure and a decision made here is audited exactly like one
//! made through `review_virtual_tags`.
//!
//! Who is asking (`gate`): a console session cookie (made by `/ui/login` from a token verified
//! exactly as `/mcp` verifies bearer tokens: `session`), else an `Authorization: Bearer`
//! header (scripts), else — only when the server has no tokens and no OAuth, as `/mcp` allows
//! on loopback — the local user, who gets a session without logging in. Writing requests
//! (decisions, logout) need the session's CSRF token in the form, compared in constant time,
//! and a same-origin `Origin`/`Referer` when the browser sends one; a viewer's decision is
//! refused before any tool runs. Every page carries a strict content-security policy with a
//! per-response script nonce.

mod pages;
mod render;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;

use super::auth::{self, Auth, Refused, RequestRate};
use super::forwarded::ClientAddr;
use crate::app::Role;
use crate::guard::{Caller, Principal};
use crate::server::TagwardenServer;
use session::{SessionView, Sessions};

/// Console sessions kept at most (the least recently used goes first).
const MAX_SESSIONS: usize = 1000;

/// What the console needs from the server and the HTTP layer.
pub(crate) struct Console {
    server: TagwardenServer,
    idle: Duration,
    always_secure: bool,
}

impl Console {
    /// `always_secure`: mark the session cookie `Secure` even on a loopback listener (TLS is
    /// terminated by a proxy in front of it).
    pub(crate) fn new(server: TagwardenServer, idle: Duration, always_secure: bool) -> Console {
        Console {
            server,
            idle,
            always_secure,
        }
    }

    /// The `/ui` routes behind their own gate (sessions, bearer tokens, the open loopback
    /// mode) and the request rate; `hosts` and `origins` as for `/mcp`. The session cookie is
    /// `Secure` unless the server listens on loopback (plain HTTP there) and was not told that
    /// a TLS proxy fronts it.
    pub(super) fn router(
        self,
        auth: Arc<Auth>,
        rate: Arc<RequestRate>,
        hosts: Vec<String>,
        origins: Vec<String>,
        local: SocketAddr,
    ) -> Router {
        let state = Arc::new(ConsoleState {
            server: self.server,
            auth,
            sessions: Sessions::new(MAX_SESSIONS, self.idle),
            hosts,
            origins,
            secure_cookie: self.always_secure || !local.ip().is_loopback(),
            env: render::environment(),
        });
        let pages = Router::new()
            .route("/ui", get(pages::overview))
            .route("/ui/", get(pages::overview))
            .route("/ui/resources", get(pages::resources))
            .route("/ui/resource", get(pages::resource))
            .route("/ui/resources/{*id}", get(pages::resource_at))
            .route("/ui/queue", get(pages::queue).post(pages::decide))
            .route("/ui/rules", get(pages::rules))
            .route("/ui/history", get(pages::history))
            .route("/ui/costs", get(pages::costs))
            .route("/ui/logout", axum::routing::post(logout))
            .layer(axum::middleware::from_fn_with_state(rate, auth::rate_limit))
            .layer(axum::middleware::from_fn_with_state(state.clone(), gate));
        Router::new()
            .route("/ui/login", get(login_form).post(login))
            .merge(pages)
            // Forms are a token, a reason and at most a page of ids: no stranger may send more
            // (the login form needs no authentication).
            .layer(axum::extract::DefaultBodyLimit::max(CONSOLE_MAX_BODY))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                host_gate,
            ))
            .with_state(state)
    }
}

/// The largest form body the console reads.
const CONSOLE_MAX_BODY: usize = 64 * 1024;

pub(super) struct ConsoleState {
    server: TagwardenServer,
    auth: Arc<Auth>,
    sessions: Sessions,
    hosts: Vec<String>,
    origins: Vec<String>,
    secure_cookie: bool,
    env: minijinja::Environment<'static>,
}

/// Who is asking, as the gate verified it.
#[derive(Clone)]
pub(super) struct Viewer {
    principal: Principal,
    /// The console session (None: a bearer header, which a browser never sends on its own,
    /// so such requests need no CSRF token).
    session: Option<SessionView>,
}

impl Viewer {
    pub(super) fn can_decide(&self) -> bool {
        self.principal.role >= Role::Approver
    }

    /// Who is signed in, for the templates (`me`).
    fn context(&self) -> minijinja::Value {
        minijinja::context! {
            id => self.principal.id.clone(),
            role => self.principal.role.name(),
            can_decide => self.can_decide(),
            session => self.session.is_some(),
        }
    }
}

/// Why a console page could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConsoleError {
    /// The tool answered with an error (its message, already sanitised).
    #[error("{0}")]
    Tool(String),
    #[error("the page could not be rendered: {0}")]
    Render(#[from] minijinja::Error),
}

impl ConsoleState {
    /// One tool call through the guard, as `viewer`: its structured answer, or its error.
    pub(super) async fn tool(
        &self,
        viewer: &Viewer,
        name: &str,
        args: Value,
    ) -> Result<Value, ConsoleError> {
        let caller = Caller {
            principal: viewer.principal.clone(),
            session: viewer
                .session
                .as_ref()
                .map_or_else(|| "console:bearer".to_string(), |s| s.public_id.clone()),
            client: concat!("tagwarden-console/", env!("CARGO_PKG_VERSION")).to_string(),
            transport: "http",
        };
        let arguments = match args {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let server = &self.server;
        // A script with a bearer header (no console session) meets the per-minute budgets a
        // person's session skips, or `/ui` would be a way around them.
        let person = viewer.session.is_some();
        let result = server
            .guard()
            .call_from_console(
                server.registry(),
                server.app(),
                &caller,
                name,
                arguments,
                person,
            )
            .await
            .map_err(|e| ConsoleError::Tool(e.message.to_string()))?;
        if result.is_error == Some(true) {
            let text = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(ConsoleError::Tool(text));
        }
        Ok(result.structured_content.unwrap_or(Value::Null))
    }

    /// A page: the template rendered with `ctx` (plus who is asking, the CSRF token and the
    /// script nonce), with the console's security headers.
    pub(super) fn page(
        &self,
        viewer: Option<&Viewer>,
        template: &str,
        ctx: minijinja::Value,
    ) -> Response {
        let nonce = session::random_token()[..32].to_string();
        let me = viewer.map(Viewer::context);
        let csrf = viewer.and_then(|v| v.session.as_ref().map(|s| s.csrf.clone()));
        let full = minijinja::context! { me, csrf, nonce => nonce.clone(), ..ctx };
        match self.env.get_template(template).and_then(|t| t.render(full)) {
            Ok(html) => with_headers((StatusCode::OK, html).into_response(), &nonce),
            Err(e) => {
                tracing::warn!(error = %e, template, "console page failed to render");
                self.error(viewer, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
            }
        }
    }

    /// An error page (the message is escaped like everything else).
    pub(super) fn error(
        &self,
        viewer: Option<&Viewer>,
        status: StatusCode,
        message: &str,
    ) -> Response {
        let nonce = session::random_token()[..32].to_string();
        let html = self
            .env
            .get_template("error.html.j2")
            .and_then(|t| {
                t.render(minijinja::context! {
                    status => status.as_u16(),
                    message,
                    me => viewer.map(Viewer::context),
                    csrf => viewer.and_then(|v| v.session.as_ref().map(|s| s.csrf.clone())),
                    nonce => nonce.clone(),
                })
            })
            .unwrap_or_else(|_| {
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
            });
        with_headers((status, html).into_response(), &nonce)
    }

    /// Whether a writing request comes from this console: the `Origin` (else the `Referer`),
    /// when the browser sends one, names the host the request was sent to or an allowed origin.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let claimed = headers
            .get(header::ORIGIN)
            .or_else(|| headers.get(header::REFERER))
            .and_then(|h| h.to_str().ok());
        let Some(claimed) = claimed else {
            return true;
        };
        let origin = origin_of(claimed);
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        if !matches!(scheme, "http" | "https") {
            return false;
        }
        authority == host || self.origins.iter().any(|o| origin_allowed(o, &origin))
    }
}

/// `scheme://host[:port]` of a URL (the whole string when it has no path), lower case.
fn origin_of(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => url,
    }
}

/// An `--allowed-origins` entry (`scheme://host:port`, `:*` for any port) against an origin.
fn origin_allowed(entry: &str, origin: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    match entry.strip_suffix(":*") {
        Some(prefix) => {
            origin == prefix
                || origin
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
                    })
        }
        None => origin == entry,
    }
}

/// The console's headers on every page: a strict CSP (scripts only with this response's
/// nonce, styles inline, images as data: URIs, forms only to this origin, never framed), no
/// MIME sniffing, no referrer beyond this origin, never cached.
fn with_headers(mut response: Response, nonce: &str) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; \
         img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Refuses a `Host` the server does not answer to (DNS rebinding), as on `/mcp`.
async fn host_gate(
    State(state): State<Arc<ConsoleState>>,
    request: Request,
    next: Next,
) -> Response {
    match super::metrics::host_refusal(&state.hosts, &request, "open the console") {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// Why a request made by another site is refused, if it is one: `Sec-Fetch-Site` says
/// `cross-site` or `same-site` and the request is not a top-level navigation.
fn cross_site(headers: &axum::http::HeaderMap) -> Option<&'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let site = get("sec-fetch-site")?;
    if site != "cross-site" && site != "same-site" {
        return None;
    }
    let navigation = get("sec-fetch-mode") == Some("navigate")
        && matches!(get("sec-fetch-dest"), Some("document") | None);
    (!navigation).then_some(
        "this page was requested by another site; open the console directly in the browser",
    )
}

/// Authenticates a console request (see the module header) and puts the [`Viewer`] and its
/// principal in the request's extensions. Without credentials a page read is sent to the
/// login form; anything else is refused.
async fn gate(State(state): State<Arc<ConsoleState>>, request: Request, next: Next) -> Response {
    // A page of another site (or another port of this host) may make the browser fetch /ui
    // with its cookies or, in open mode, as the local user: only this console's own pages and
    // top-level navigations are served (Fetch Metadata; browsers that send none pass).
    if let Some(why) = cross_site(request.headers()) {
        return state.error(None, StatusCode::FORBIDDEN, why);
    }
    let live = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(session::cookie_values)
        .find_map(|id| state.sessions.touch(id));
    if let Some((principal, view)) = live {
        return admit(request, next, principal, Some(view)).await;
    }
    let ip = auth::peer(&request);
    let login_ip = auth::login_address(&request);
    if let Some(token) = auth::bearer(&request).map(str::to_string) {
        if state.auth.open() {
            return admit(request, next, auth::open_principal(ip), None).await;
        }
        if let Some(refusal) = state.auth.blocked(login_ip) {
            return refusal;
        }
        return match state.auth.authenticate(&token).await {
            Ok((principal, _)) => admit(request, next, principal, None).await,
            Err(why) => {
                // A valid token without a Tagwarden scope is no guess (as on /mcp).
                if matches!(why, Refused::Invalid)
                    && let Some(refusal) = state.auth.failed(login_ip)
                {
                    return refusal;
                }
                let message = match why {
                    Refused::NoScope => "the access token grants no Tagwarden scope",
                    Refused::Invalid => "missing or invalid bearer token",
                };
                let mut r = state.error(None, StatusCode::UNAUTHORIZED, message);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tagwarden\""),
                );
                r
            }
        };
    }
    if state.auth.open() {
        // No tokens, no OAuth (loopback only, as /mcp): the local user, with a session so
        // that writing forms carry a CSRF token like everyone else's. Only a page read opens
        // one; a write without a session has no CSRF token to match and is refused here
        // (admitted without a session it would pass as a script's bearer request).
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return state.error(
                None,
                StatusCode::FORBIDDEN,
                "refused: open a console page first; a write needs the CSRF token of its page",
            );
        }
        let principal = auth::open_principal(ip);
        let (id, view) = state.sessions.create(principal.clone(), None);
        let mut response = admit(request, next, principal, Some(view)).await;
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, state.secure_cookie)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        return response;
    }
    if request.method() == Method::GET || request.method() == Method::HEAD {
        let target = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/ui".into());
        let next_param: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &target)
            .finish();
        return Redirect::to(&format!("/ui/login?{next_param}")).into_response();
    }
    state.error(
        None,
        StatusCode::FORBIDDEN,
        "not signed in: writing requests need a console session (sign in at /ui/login) or a bearer token",
    )
}

/// Lets the request through as `principal` (with its console session, if it has one).
async fn admit(
    mut request: Request,
    next: Next,
    principal: Principal,
    session: Option<SessionView>,
) -> Response {
    request.extensions_mut().insert(Viewer {
        principal: principal.clone(),
        session,
    });
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The fields of a form body or a query string; repeated names keep every value.
pub(super) fn fields(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Checks a writing request: a console session needs its CSRF token in the form and a
/// same-origin `Origin`/`Referer` when one is sent; a bearer request (no session) needs
/// neither, since a browser never attaches that header by itself. The refusal, if any.
pub(super) fn check_write(
    state: &ConsoleState,
    viewer: &Viewer,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Option<Response> {
    let Some(view) = &viewer.session else {
        return None;
    };
    if !state.same_origin(headers) {
        return Some(state.error(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "refused: this request did not come from a console page of this server (Origin)",
        ));
    }
    if !session::csrf_matches(view, field(form, "csrf").unwrap_or_default()) {
        return Some(state.error(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or wrong; reload the page and try again",
        ));
    }
    None
}

async fn login_form(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let query = fields(request.uri().query().unwrap_or_default().as_bytes());
    state.page(
        None,
        "login.html.j2",
        minijinja::context! {
            next => safe_next(field(&query, "next")),
            failed => false,
            open => state.auth.open(),
        },
    )
}

/// Where to go after logging in: a console path, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.contains("//") && !n.contains('\\') => n.to_string(),
        _ => "/ui".to_string(),
    }
}

/// `POST /ui/login`: the pasted token verified exactly as a bearer token on `/mcp` (failed
/// logins counted per client address with the same allowance), then a new session.
async fn login(
    State(state): State<Arc<ConsoleState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The login form has no CSRF token yet: its only guard against logging a victim into the
    // attacker's session is the origin, so a login must name one (browsers send `Origin` with
    // every form POST).
    let named = headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER);
    if !named || !state.same_origin(&headers) {
        return state.error(
            None,
            StatusCode::FORBIDDEN,
            "refused: this login did not come from this server's login page (Origin)",
        );
    }
    let form = fields(&body);
    let next = safe_next(field(&form, "next"));
    let ip = Some(addr.ip().to_canonical());
    // Failed logins: behind a trusted proxy, under the address it forwarded for.
    let login_ip = client.map_or(ip, |Extension(c)| Some(c.0));
    let (principal, expires) = if state.auth.open() {
        (auth::open_principal(ip), None)
    } else {
        if let Some(refusal) = state.auth.blocked(login_ip) {
            return refusal;
        }
        let token = field(&form, "token").unwrap_or_default();
        match state.auth.authenticate(token).await {
            Ok(p) => p,
            Err(why) => {
                if matches!(why, Refused::Invalid)
                    && let Some(refusal) = state.auth.failed(login_ip)
                {
                    return refusal;
                }
                let mut r = state.page(
                    None,
                    "login.html.j2",
                    minijinja::context! {
                        next,
                        failed => true,
                        no_scope => matches!(why, Refused::NoScope),
                        open => false,
                    },
                );
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                return r;
            }
        }
    };
    tracing::info!(principal = %principal.id, "console login");
    let (id, _) = state.sessions.create(principal, expires);
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, state.secure_cookie)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /ui/logout` (CSRF-checked): ends the session and clears the cookie.
async fn logout(
    State(state): State<Arc<ConsoleState>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = fields(&body);
    if let Some(refusal) = check_write(&state, &viewer, &headers, &form) {
        return refusal;
    }
    for id in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(session::cookie_values)
    {
        state.sessions.end(id);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(state.secure_cookie)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_made_by_other_sites_are_refused_unless_navigations() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        // An <img> or fetch() from another site or another port of this host.
        for site in ["cross-site", "same-site"] {
            assert!(
                cross_site(&headers(&[
                    ("sec-fetch-site", site),
                    ("sec-fetch-mode", "no-cors"),
                    ("sec-fetch-dest", "image"),
                ]))
                .is_some()
            );
        }
        // Following a link, the console's own pages, and clients that send no metadata.
        assert!(
            cross_site(&headers(&[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "document"),
            ]))
            .is_none()
        );
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-origin")])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "none")])).is_none());
        assert!(cross_site(&headers(&[])).is_none());
    }

    #[test]
    fn origins_and_next() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/ui/queue?x=1"),
            "http://127.0.0.1:8080"
        );
        assert!(origin_allowed(
            "http://localhost:*",
            "http://localhost:9000"
        ));
        assert!(!origin_allowed(
            "http://localhost:*",
            "http://localhost.evil:9000"
        ));
        assert!(!origin_allowed("http://localhost:*", "http://localhost:"));
        assert!(origin_allowed("https://a.example", "https://a.example"));
        assert_eq!(safe_next(Some("/ui/queue?x=1")), "/ui/queue?x=1");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui");
        assert_eq!(safe_next(Some("/ui//evil.example")), "/ui");
        assert_eq!(safe_next(None), "/ui");
    }
}
