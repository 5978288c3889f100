//! The fixture server of the official MCP conformance suite, served through Tagwarden's own HTTP
//! plumbing (`tagwarden::server::http::serve_handler`: Host/Origin checks, bearer auth, JSON
//! gate, body limit, timeout), so the suite proves the project's real transport layer on the
//! scenarios that need fixture content Tagwarden does not have.
//!
//! It implements what the scenarios name (their source: `tests/js/node_modules/
//! @modelcontextprotocol/conformance/dist/index.js`):
//!
//! - here: the `test_*` content tools, resources and prompts, completion, progress, logging, the
//!   2026-07-28 diagnostic tools (`test_missing_capability`, `test_logging_tool`, the list-change
//!   triggers) and `subscriptions/listen`;
//! - `catalog`: the tool, prompt and resource definitions;
//! - `client_requests`: sampling and elicitation on 2025-11-25 sessions;
//! - `mrtr`: `InputRequiredResult` tools and prompt (SEP-2322), HMAC-sealed `requestState`;
//! - `tasks`: the tasks extension (SEP-2663) on rmcp's `TaskManager`;
//! - `skills`: the skills extension (SEP-2640).
//!
//! ```text
//! cargo run --example conformance_fixture -- --http 127.0.0.1:0
//! ```
//!
//! Logs `listening on http://ADDR/mcp` on stderr once bound. `tests/it/conformance.rs` drives it.

// Sampling, roots and logging are deprecated by SEP-2577, yet the 2025-11-25 scenarios test them.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, GetSkillRequestParams, GetSkillResult, GetTaskParams,
    GetTaskResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListSkillsResult, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProgressNotificationParam, Prompt,
    ProtocolVersion, ReadResourceDirectoryRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Reference, Resource, ResourceTemplate,
    ServerCapabilities, ServerConfig, SetLevelRequestMethod, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tagwarden::{HttpOptions, serve_handler};
use tokio_util::sync::CancellationToken;

#[path = "conformance_fixture/catalog.rs"]
mod catalog;
#[path = "conformance_fixture/client_requests.rs"]
mod client_requests;
#[path = "conformance_fixture/mrtr.rs"]
mod mrtr;
#[path = "conformance_fixture/skills.rs"]
mod skills;
#[path = "conformance_fixture/tasks.rs"]
mod tasks;

/// A 1x1 red PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// A short silent mono WAV.
const WAV: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAGWARDEN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let addr = http_arg()?;
    let fixture = Fixture::new()?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    let options = HttpOptions {
        // The suite fires hundreds of requests from one address within seconds; a per-client
        // request rate is not what it tests, and a limit would make it timing-dependent.
        rate_limit_per_minute: 0,
        ..HttpOptions::loopback(addr)
    };
    serve_handler(fixture, axum::Router::new(), options, shutdown).await?;
    Ok(())
}

/// `--http ADDR` (default `127.0.0.1:0`, any free port).
fn http_arg() -> anyhow::Result<SocketAddr> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:0".to_string();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--http", Some(value)) => addr = value,
            _ => anyhow::bail!("usage: conformance_fixture [--http ADDR]"),
        }
    }
    Ok(addr.parse()?)
}

/// The handler. Clones share the catalog, the listen streams, the `requestState` key and the
/// tasks; each clone (one per 2025-11-25 session: the transport clones the handler for every
/// session) starts with its own `logging/setLevel` threshold.
struct Fixture {
    shared: Arc<Shared>,
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl Clone for Fixture {
    fn clone(&self) -> Self {
        Fixture {
            shared: self.shared.clone(),
            log_level: Arc::default(),
        }
    }
}

struct Shared {
    tools: Vec<Tool>,
    prompts: Vec<Prompt>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    /// Open `subscriptions/listen` streams.
    listeners: Mutex<Vec<(u64, SubscriptionSink)>>,
    next_listener: AtomicU64,
    /// URIs subscribed with the legacy `resources/subscribe`.
    subscribed: Mutex<Vec<String>>,
    mrtr: mrtr::Mrtr,
    tasks: tasks::Tasks,
}

impl Fixture {
    fn new() -> anyhow::Result<Fixture> {
        Ok(Fixture {
            shared: Arc::new(Shared {
                tools: parse(catalog::tools())?,
                prompts: parse(catalog::prompts())?,
                resources: parse(catalog::resources())?,
                templates: parse(catalog::resource_templates())?,
                listeners: Mutex::default(),
                next_listener: AtomicU64::new(0),
                subscribed: Mutex::default(),
                mrtr: mrtr::Mrtr::new(),
                tasks: tasks::Tasks::default(),
            }),
            log_level: Arc::default(),
        })
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_tasks()
            .enable_skills_with_directory_read()
            .build();
        let mut info = ServerConfig::new(capabilities)
            .with_instructions("Fixture server for the MCP conformance suite.");
        info.server_info = Implementation::new("tagwarden-conformance-fixture", "1.0.0");
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.shared.tools.clone()))
    }

    /// Lets the transport check `Mcp-Param-*` headers against the tool's `x-mcp-header`s.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let complete = |v: Value| result::<CallToolResult>(v).map(CallToolResponse::from);
        match request.name.as_ref() {
            "test_simple_text" => complete(text("This is a simple text response for testing.")),
            "test_image_content" => complete(json!({"content": [image()]})),
            "test_audio_content" => complete(json!({"content": [
                {"type": "audio", "data": WAV, "mimeType": "audio/wav"}
            ]})),
            "test_embedded_resource" => complete(json!({"content": [{"type": "resource",
                "resource": {"uri": "test://embedded-resource", "mimeType": "text/plain",
                             "text": "This is an embedded resource content."}}]})),
            "test_multiple_content_types" => complete(json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                image(),
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                    "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}
            ]})),
            "test_error_handling" => complete(json!({"isError": true, "content": [
                {"type": "text", "text": "This tool intentionally returns an error for testing"}
            ]})),
            "test_tool_with_logging" | "test_logging_tool" => {
                for message in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ] {
                    if self.log(&context, LoggingLevel::Info, message).await {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                complete(text("Logging test completed"))
            }
            "test_tool_with_progress" => {
                report_progress(&context).await;
                complete(text("Progress test completed"))
            }
            "test_reconnection" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                complete(text("Reconnection test completed"))
            }
            "test_sampling" => complete(client_requests::sampling_tool(&context, &args).await),
            "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums" => {
                let name = &request.name;
                complete(client_requests::elicitation_tool(name, &context, &args).await)
            }
            "json_schema_2020_12_tool" => {
                let name = args["name"].as_str().unwrap_or("world");
                complete(text(&format!("Hello, {name}!")))
            }
            "test_custom_header" => {
                let region = args["region"].as_str().unwrap_or("");
                complete(text(&format!("Region: {region}")))
            }
            "test_missing_capability" => {
                require(&context, Needs::Sampling)?;
                complete(text("The client declared sampling"))
            }
            "test_trigger_tool_change" => {
                let sent = self.notify_listeners(Change::Tools).await;
                complete(text(&format!(
                    "tools/list_changed sent to {sent} listen streams"
                )))
            }
            "test_trigger_prompt_change" => {
                let sent = self.notify_listeners(Change::Prompts).await;
                complete(text(&format!(
                    "prompts/list_changed sent to {sent} listen streams"
                )))
            }
            name if mrtr::TOOLS.contains(&name) => self.shared.mrtr.call_tool(&request, &context),
            name if tasks::is_task_tool(name) => {
                self.shared.tasks.call_tool(&request, &context).await
            }
            name => Err(McpError::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            )),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(
            self.shared.prompts.clone(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let user = |content: Value| json!({"role": "user", "content": content});
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![user(
                json!({"type": "text", "text": "This is a simple prompt for testing."}),
            )],
            "test_prompt_with_arguments" => {
                let arg = |name: &str| args[name].as_str().unwrap_or("").to_string();
                vec![user(json!({"type": "text", "text": format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2")
                )}))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = args["resourceUri"]
                    .as_str()
                    .unwrap_or("test://example-resource");
                vec![
                    user(json!({"type": "resource", "resource": {"uri": uri,
                        "mimeType": "text/plain", "text": "Embedded resource content for testing."}})),
                    user(json!({"type": "text",
                        "text": "Please process the embedded resource above."})),
                ]
            }
            "test_prompt_with_image" => vec![
                user(image()),
                user(json!({"type": "text", "text": "Please analyze the image above."})),
            ],
            "test_input_required_result_prompt" => {
                return self.shared.mrtr.get_prompt(&request, &context);
            }
            name => {
                return Err(McpError::invalid_params(
                    format!("unknown prompt `{name}`"),
                    None,
                ));
            }
        };
        Ok(result::<GetPromptResult>(json!({"messages": messages}))?.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let candidates: &[&str] = match (&request.r#ref, request.argument.name.as_str()) {
            (Reference::Prompt(p), "arg1") if p.name == "test_prompt_with_arguments" => {
                &["paris", "park", "party", "test", "testing"]
            }
            (Reference::Resource(_), "id") => &["1", "2", "3", "123"],
            _ => &[],
        };
        let values = candidates
            .iter()
            .filter(|c| c.starts_with(&request.argument.value))
            .map(|c| c.to_string())
            .collect();
        let info = CompletionInfo::new(values).map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // Removed in 2026-07-28, where `_meta.io.modelcontextprotocol/logLevel` replaces it.
        if is_stateless(&context) {
            return Err(McpError::method_not_found::<SetLevelRequestMethod>());
        }
        *lock(&self.log_level) = Some(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            self.shared.resources.clone(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            self.shared.templates.clone(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.as_str();
        let contents = match uri {
            "test://static-text" => json!({"uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource."}),
            "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG}),
            _ if uri.starts_with("skill://") => match skills::read(uri) {
                Some(contents) => contents,
                None => return Err(not_found(uri)),
            },
            _ => match template_id(uri) {
                Some(id) => json!({"uri": uri, "mimeType": "application/json", "text":
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string()}),
                None => return Err(not_found(uri)),
            },
        };
        Ok(result::<ReadResourceResult>(json!({"contents": [contents]}))?.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.shared.subscribed).push(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.shared.subscribed).retain(|uri| *uri != request.uri);
        Ok(())
    }

    /// Accepts whatever is asked; rmcp narrows it to the advertised capabilities.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let id = self.shared.next_listener.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.listeners).push((id, context.sink().clone()));
        context.cancelled().await;
        lock(&self.shared.listeners).retain(|(other, _)| *other != id);
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.shared.tasks.get(&request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared
            .tasks
            .update(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.tasks.cancel(&request.task_id)
    }

    async fn list_skills(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, McpError> {
        Ok(skills::list())
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, McpError> {
        skills::get(&request.uri)
    }

    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        skills::read_directory(&request.uri)
    }
}

enum Change {
    Tools,
    Prompts,
}

impl Fixture {
    /// Sends a list-changed notification on every listen stream that asked for it (the sink
    /// refuses the others); returns how many streams got it.
    async fn notify_listeners(&self, change: Change) -> usize {
        let sinks: Vec<SubscriptionSink> = lock(&self.shared.listeners)
            .iter()
            .map(|(_, sink)| sink.clone())
            .collect();
        let mut sent = 0;
        for sink in sinks {
            let result = match change {
                Change::Tools => sink.notify_tool_list_changed().await,
                Change::Prompts => sink.notify_prompt_list_changed().await,
            };
            sent += usize::from(result.is_ok());
        }
        sent
    }

    /// A log message, if the client asked for this level: with `logging/setLevel` on a
    /// 2025-11-25 session (everything from `info` until then), with
    /// `_meta.io.modelcontextprotocol/logLevel` on a 2026-07-28 request (nothing without it).
    /// Returns whether it was sent.
    async fn log(
        &self,
        context: &RequestContext<RoleServer>,
        level: LoggingLevel,
        message: &str,
    ) -> bool {
        let threshold = if is_stateless(context) {
            context.meta.log_level()
        } else {
            Some(lock(&self.log_level).unwrap_or(LoggingLevel::Info))
        };
        if threshold.is_none_or(|t| severity(level) < severity(t)) {
            return false;
        }
        let param = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger("conformance-fixture");
        context.peer.notify_logging_message(param).await.is_ok()
    }
}

fn severity(level: LoggingLevel) -> u8 {
    level as u8
}

/// 0, 50 and 100 of 100, 50 ms apart, when the request carries a progress token.
async fn report_progress(context: &RequestContext<RoleServer>) {
    for (progress, message) in [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Complete")] {
        if let Some(token) = context.meta.get_progress_token() {
            let param = ProgressNotificationParam::new(token, progress)
                .with_total(100.0)
                .with_message(message);
            let _ = context.peer.notify_progress(param).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Clone, Copy)]
enum Needs {
    Elicitation,
    Sampling,
    Roots,
}

/// `MissingRequiredClientCapabilityError` (-32021) unless the request's client declared it.
fn require(context: &RequestContext<RoleServer>, needs: Needs) -> Result<(), McpError> {
    let caps = context.client_capabilities().unwrap_or_default();
    let (declared, key) = match needs {
        Needs::Elicitation => (caps.elicitation.is_some(), "elicitation"),
        Needs::Sampling => (caps.sampling.is_some(), "sampling"),
        Needs::Roots => (caps.roots.is_some(), "roots"),
    };
    if declared {
        return Ok(());
    }
    let required: ClientCapabilities = parse(json!({ key: {} }))?;
    Err(McpError::missing_required_client_capability(required))
}

/// A request on the 2026-07-28 (stateless) protocol.
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

// ---- Small helpers ----

/// -32002 on 2025-11-25; rmcp turns it into -32602 for 2026-07-28 (SEP-2164).
fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found("Resource not found", Some(json!({"uri": uri})))
}

/// The `{id}` of `test://template/{id}/data`.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn text(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}]})
}

/// A complete tool result with one text block.
fn done(message: &str) -> Result<CallToolResponse, McpError> {
    result::<CallToolResult>(text(message)).map(CallToolResponse::from)
}

fn tool_error(message: &str) -> Value {
    json!({"isError": true, "content": [{"type": "text", "text": message}]})
}

fn image() -> Value {
    json!({"type": "image", "data": PNG, "mimeType": "image/png"})
}

/// An rmcp model from its JSON form (the fixtures are written as the scenarios state them).
fn parse<T: DeserializeOwned>(value: Value) -> Result<T, McpError> {
    serde_json::from_value(value)
        .map_err(|e| McpError::internal_error(format!("fixture model does not parse: {e}"), None))
}

/// A complete result (`resultType: "complete"`, which rmcp strips again for 2025-11-25 peers).
fn result<T: DeserializeOwned>(mut value: Value) -> Result<T, McpError> {
    if let Some(object) = value.as_object_mut() {
        object.insert("resultType".into(), json!("complete"));
    }
    parse(value)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
