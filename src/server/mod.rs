//! The MCP server: one rmcp handler serving every tool, over stdio and Streamable HTTP.
//!
//! The handler lists the registry's definitions and dispatches `tools/call` to the registry;
//! arguments are validated against the published schema there, so what is advertised is what
//! is enforced. Tool failures are `isError` results with a message the assistant can act on;
//! an unknown tool is a JSON-RPC error.

mod catalog;
pub mod http;
pub mod stdio;

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::app::App;
use crate::tools::Registry;

/// What an assistant should know to use the tools well.
pub const INSTRUCTIONS: &str = "Tagwarden answers questions about cloud tag compliance and cost attribution \
from live cloud data, the tagging policy and its own store. Start with check_tag_compliance for the overall \
picture (scores on effective and native tags, counts, worst violations with fixes); narrow it with \
resource_types, regions, accounts, tag_keys or min_severity. Use find_untagged_resources to list resources \
missing keys, validate_resource_tags to explain a specific resource or to check tags before applying them, and \
get_tagging_policy to explain the rules. Answers reuse a cached scan (see data_quality.cache); pass \
force_refresh only when the user says the cloud changed. If data_quality.status is partial, say which regions \
or files failed and why. Lists are pages: totals are exact; follow next_cursor only when the user needs more. \
The policy is also a resource (tagwarden://policy, tagwarden://policy/summary), and the \
weekly_compliance_review prompt runs a standard review.";

#[derive(Clone)]
pub struct TagwardenServer {
    app: Arc<App>,
    registry: Arc<Registry>,
}

impl TagwardenServer {
    pub fn new(app: Arc<App>, registry: Arc<Registry>) -> Self {
        TagwardenServer { app, registry }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }
}

impl ServerHandler for TagwardenServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
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
        Ok(ListResourcesResult::with_all_items(catalog::resources()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let contents = catalog::read(&self.app, &request.uri)?;
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
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(entry) = self.registry.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool `{}`; available tools: {}",
                    request.name,
                    self.registry.names().join(", ")
                ),
                None,
            ));
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        let started = std::time::Instant::now();
        let result = entry.call(&self.app, args).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(match result {
            Ok(value) => {
                tracing::info!(tool = entry.name(), ms, "tool call ok");
                CallToolResult::structured(value)
            }
            Err(e) => {
                tracing::info!(tool = entry.name(), ms, class = e.class(), error = %e, "tool call failed");
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
        }
        .into())
    }
}

/// Keeps the policy current while serving: reload on SIGHUP and when the file changes.
pub fn spawn_policy_watch(app: Arc<App>, poll: Duration) {
    let watched = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        loop {
            tick.tick().await;
            watched.policy.reload_if_changed();
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
            let _ = app.policy.reload();
        }
    });
}

/// Starts the first scan in the background so the first question is answered from cache.
pub fn spawn_prewarm(app: Arc<App>) {
    tokio::spawn(async move {
        if let Err(e) = app.snapshot(false).await {
            tracing::warn!(error = %e, "initial scan failed; tools will retry on first use");
        }
    });
}
