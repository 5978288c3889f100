//! The MCP server: one rmcp handler serving every tool, over stdio and Streamable HTTP.
//!
//! The handler lists the registry's definitions and dispatches `tools/call` to the registry;
//! arguments are validated against the published schema there, so what is advertised is what
//! is enforced. Tool failures are `isError` results with a message the assistant can act on;
//! an unknown tool is a JSON-RPC error.

mod apps;
mod catalog;
pub(crate) mod http;
pub(crate) mod progress;
pub(crate) mod schedule;
pub(crate) mod stdio;

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::app::App;
use crate::guard::{Caller, Guard, Principal};
use crate::tools::Registry;

/// What an assistant should know to use the tools well.
pub(crate) const INSTRUCTIONS: &str = "Tagwarden answers questions about cloud tag compliance and cost attribution \
from live cloud data, the tagging policy and its own store. Start with check_tag_compliance for the overall \
picture (scores on effective and native tags, counts, worst violations with fixes); narrow it with \
resource_types, regions, accounts, tag_keys or min_severity. Use find_untagged_resources to list resources \
missing keys, validate_resource_tags to explain a specific resource or to check tags before applying them, and \
get_tagging_policy to explain the rules. For \"is it getting better?\" use get_violation_history (from stored \
snapshots; check_tag_compliance with store_snapshot=true records one) and detect_tag_drift for what changed \
since a snapshot. Answers reuse a cached scan and cached answers (see data_quality.cache); pass \
force_refresh only when the user says the cloud changed. If data_quality.status is partial, say which regions \
or files failed and why. Lists are pages: totals are exact; follow next_cursor only when the user needs more. \
The policy is also a resource (tagwarden://policy, tagwarden://policy/summary), and the \
weekly_compliance_review prompt runs a standard review.";

#[derive(Clone)]
pub(crate) struct TagwardenServer {
    app: Arc<App>,
    registry: Arc<Registry>,
    guard: Arc<Guard>,
    /// The one session a stdio connection is.
    stdio_session: Arc<str>,
}

impl TagwardenServer {
    pub(crate) fn new(app: Arc<App>, registry: Arc<Registry>, guard: Arc<Guard>) -> Self {
        TagwardenServer {
            app,
            registry,
            guard,
            stdio_session: format!("stdio:{}", std::process::id()).into(),
        }
    }

    pub(crate) fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub(crate) fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Who is calling: the principal the HTTP layer verified (or the local user on stdio), and
    /// the session the transport validated — an HTTP session that exists and is the caller's,
    /// or `stateless` for requests without one (never a client-chosen header value).
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        let client = context
            .client_info()
            .map(|c| format!("{}/{}", c.name, c.version))
            .unwrap_or_else(|| "unknown".to_string());
        let Some(parts) = context.extensions.get::<axum::http::request::Parts>() else {
            return Caller {
                principal: Principal::local(),
                session: self.stdio_session.to_string(),
                client,
                transport: "stdio",
            };
        };
        let session = match parts.extensions.get::<http::ValidatedSession>() {
            Some(s) => format!("http:{}", s.0),
            None => crate::guard::STATELESS_SESSION.to_string(),
        };
        // The HTTP layer authenticates every request and puts the verified principal in its
        // extensions; without one (a handler served outside that layer) the client address is
        // the principal.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(|| {
                let id = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| format!("ip:{}", c.0.ip()))
                    .unwrap_or_else(|| "http:anonymous".to_string());
                // Served outside the auth layer: the least rights.
                Principal {
                    id,
                    role: crate::app::Role::Viewer,
                }
            });
        Caller {
            principal,
            session,
            client,
            transport: "http",
        }
    }
}

impl ServerHandler for TagwardenServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_extensions_with(apps::extension())
            .build();
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("tagwarden", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.registry.definitions()))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut resources = catalog::resources();
        resources.extend(apps::resources());
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let contents = match apps::read(&request.uri) {
            Some(view) => view,
            None => catalog::read(&self.app, &request.uri)?,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(catalog::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        Ok(catalog::get(&request.name, request.arguments.as_ref())?.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.registry.get(name).map(|e| e.definition.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context);
        let token = context
            .meta
            .get_progress_token()
            .or_else(|| request.meta.as_ref().and_then(|m| m.get_progress_token()));
        let progress = token.map(|token| {
            Arc::new(progress::McpProgress::new(
                context.peer.clone(),
                token,
                progress::progress_after(),
            ))
        });
        let result = self
            .guard
            .call(
                &self.registry,
                &self.app,
                &caller,
                &request.name,
                request.arguments,
                progress
                    .clone()
                    .map(|p| p as Arc<dyn crate::inventory::ScanProgress>),
            )
            .await;
        if let Some(p) = progress {
            p.flush().await;
        }
        result.map(Into::into)
    }
}

/// Keeps the policy current while serving: reload on SIGHUP and when the file changes.
pub(crate) fn spawn_policy_watch(app: Arc<App>, poll: Duration) {
    let watched = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        loop {
            tick.tick().await;
            watched.policy().reload_if_changed();
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; policy reload on signal is off");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the policy");
            let _ = app.policy().reload();
        }
    });
}

/// Starts the first scan in the background so the first question is answered from cache.
pub(crate) fn spawn_prewarm(app: Arc<App>) {
    tokio::spawn(async move {
        if let Err(e) = app.estate(false).await {
            tracing::warn!(error = %e, "initial scan failed; tools will retry on first use");
        }
    });
}
