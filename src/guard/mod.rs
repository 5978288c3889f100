//! The guard pipeline every `tools/call` goes through, on every transport, in this order:
//! correlation id → input limits → role → budget → loop detection → the tool (its schema
//! check, then its work) → output sanitisation → audit. Tools know nothing of it; nothing
//! bypasses it. The role check compares the caller's role with what the call needs (per
//! action, `Tool::role`); a refusal names the role and is audited with the principal like
//! every other call.
//! Budgets and loop detection keep their state behind `GuardState`: in this process, or in
//! Redis shared by replicas (`shared`).
//!
//! The audit fails closed: an answer leaves only after its row is on disk. When the row cannot
//! be written (full disk, the log's size bound, a stopped writer, a disk slower than
//! `audit_wait`), the answer is replaced by an error that says so, and while the log is failing,
//! tools that change data are refused before they run.

pub(crate) mod budget;
pub(crate) mod limits;
pub(crate) mod loops;
pub(crate) mod sanitize;
pub(crate) mod shared;
pub(crate) mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::app::App;
/// Who the server verified the caller to be (defined with the call context it travels in).
pub(crate) use crate::app::Principal;
use crate::app::Role;
use crate::inventory::ScanProgress;
use crate::metrics::{GuardName, ToolName, ToolOutcome};
use crate::store::AuditStore;
use crate::store::audit::{Appended, AuditRecord};
use crate::tools::{Call, Registry};
pub(crate) use budget::BudgetConfig;
pub(crate) use limits::Limits;
pub(crate) use loops::LoopConfig;
pub(crate) use shared::SharedState;
pub(crate) use state::{GuardState, Kept, LocalState};

/// The `_meta` key carrying the correlation id of a call.
pub(crate) const CORRELATION_META: &str = "tagwarden/correlation_id";

/// The session of a request that has none (2026-07-28 stateless HTTP): only the principal's
/// budgets apply to it, since there is no session to keep one for.
pub(crate) const STATELESS_SESSION: &str = "stateless";
/// The budget key of the web console's calls (never an MCP session id, which the server makes
/// up as UUIDs): charged to the principal's hourly and the server's budgets only.
pub(crate) const CONSOLE_SESSION: &str = "console";

#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    pub limits: Limits,
    pub budget: BudgetConfig,
    pub loops: LoopConfig,
    /// How long a call waits for its audit row to reach the disk; past it the call is
    /// answered with an error instead (the row stays queued).
    pub audit_wait: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            limits: Limits::default(),
            budget: BudgetConfig::default(),
            loops: LoopConfig::default(),
            audit_wait: Duration::from_secs(5),
        }
    }
}

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Caller {
    /// The verified identity (set by the transport after authentication).
    pub principal: Principal,
    /// The MCP session within the principal (as the transport reports it).
    pub session: String,
    /// `name/version` of the MCP client.
    pub client: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
}

impl Caller {
    /// How virtual tags and decisions record who made them: `client (transport session)`.
    pub(crate) fn actor(&self) -> String {
        let session: String = self.session.chars().take(12).collect();
        format!("{} ({} session {session})", self.client, self.transport)
    }
}

pub(crate) struct Guard {
    config: GuardConfig,
    /// Budgets and loop detection: in this process, or shared by the replicas in Redis.
    state: Arc<dyn GuardState>,
    sanitizer: sanitize::Sanitizer,
    audit: Option<Arc<dyn AuditStore>>,
}

/// What became of a call, for the audit log.
enum Outcome {
    Ok,
    Refused(&'static str),
    Error(&'static str),
}

/// The guard a refusal names, as the metric labels it.
fn guard_name(guard: &str) -> GuardName {
    match guard {
        "validation" => GuardName::Validation,
        "audit" => GuardName::Audit,
        "budget" => GuardName::Budget,
        "loop" => GuardName::Loop,
        _ => GuardName::Other,
    }
}

impl Outcome {
    /// How `/metrics` counts it: an error result or an unknown tool is a `tool_error`.
    fn metric(&self) -> ToolOutcome {
        match self {
            Outcome::Ok => ToolOutcome::Ok,
            Outcome::Refused(_) => ToolOutcome::Refused,
            Outcome::Error(_) => ToolOutcome::ToolError,
        }
    }

    fn label(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Refused(guard) => format!("refused:{guard}"),
            Outcome::Error(class) => format!("error:{class}"),
        }
    }
}

/// How a call is metered (see `Guard::call` and `Guard::call_from_console`).
#[derive(Debug, Clone, Copy)]
enum Metering {
    /// An MCP call: its session's budgets (or the stateless ones) and loop detection.
    Mcp,
    /// A console page: the budgets of this key (`CONSOLE_SESSION`, `STATELESS_SESSION`), no
    /// loop detection.
    Page(&'static str),
}

impl Guard {
    pub(crate) fn new(config: GuardConfig, audit: Option<Arc<dyn AuditStore>>) -> Guard {
        Guard {
            state: Arc::new(LocalState::new(&config.budget, &config.loops)),
            sanitizer: sanitize::Sanitizer::new(),
            audit,
            config,
        }
    }

    /// Keeps budgets and loop detection in `state` (Redis, shared by replicas) instead of in
    /// this process.
    pub(crate) fn with_state(mut self, state: Arc<dyn GuardState>) -> Guard {
        self.state = state;
        self
    }

    /// Where budgets and loop detection are kept right now (for `/healthz`).
    pub(crate) fn state_kept(&self) -> Kept {
        self.state.kept()
    }

    /// Runs one tool call through the whole pipeline.
    pub(crate) async fn call(
        &self,
        registry: &Registry,
        app: &App,
        caller: &Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        progress: Option<Arc<dyn ScanProgress>>,
    ) -> Result<CallToolResult, McpError> {
        self.run(
            registry,
            app,
            caller,
            tool,
            arguments,
            progress,
            Metering::Mcp,
        )
        .await
    }

    /// The pipeline for the web console: without loop detection (reloading a page repeats the
    /// same calls by design). A person's console session (`person`) skips the per-minute
    /// budgets too but is charged to the principal's hourly and the server's; a script calling
    /// `/ui` with a bearer header meets every budget a stateless `/mcp` call meets. Limits,
    /// the role check, sanitisation and the audit row are the same as `call`'s.
    pub(crate) async fn call_from_console(
        &self,
        registry: &Registry,
        app: &App,
        caller: &Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        person: bool,
    ) -> Result<CallToolResult, McpError> {
        let budgets = if person {
            CONSOLE_SESSION
        } else {
            STATELESS_SESSION
        };
        self.run(
            registry,
            app,
            caller,
            tool,
            arguments,
            None,
            Metering::Page(budgets),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        registry: &Registry,
        app: &App,
        caller: &Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        progress: Option<Arc<dyn ScanProgress>>,
        metering: Metering,
    ) -> Result<CallToolResult, McpError> {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!(
            "tool_call",
            correlation_id = %correlation_id,
            tool = %tool,
            session = %caller.session
        );
        async {
            let started = Instant::now();
            let args = Value::Object(arguments.unwrap_or_default());
            // Arguments over the size limit are refused without the costlier steps (canonical
            // form, fingerprint, redaction): an oversized call costs one serialisation.
            let canonical = match limits::oversized(&self.config.limits, &args) {
                Some(_) => String::new(),
                None => crate::util::canonical_json(&args),
            };
            let (answer, outcome) = self
                .decide(
                    registry,
                    &Call::new(app)
                        .with_progress(progress)
                        .with_actor(caller.actor())
                        .with_principal(caller.principal.clone()),
                    caller,
                    tool,
                    &args,
                    &canonical,
                    metering,
                )
                .await;
            let answer = answer
                .map(|r| self.finish(r, &correlation_id))
                .map_err(|e| self.finish_error(e, &correlation_id));
            let result_bytes = match &answer {
                Ok(r) => serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0),
                Err(e) => e.message.len(),
            };
            let elapsed = started.elapsed();
            let metric_name = registry
                .get(tool)
                .map_or(ToolName::OTHER, |e| ToolName::registered(e.static_name()));
            app.metrics()
                .tool_call(metric_name, outcome.metric(), elapsed);
            if let Outcome::Refused(guard) = outcome {
                app.metrics().guard_refusal(guard_name(guard));
            }
            let ms = elapsed.as_secs_f64() * 1000.0;
            let label = outcome.label();
            match outcome {
                Outcome::Ok => tracing::info!(tool, ms, bytes = result_bytes, "tool call ok"),
                Outcome::Refused(_) => {
                    tracing::info!(tool, ms, outcome = %label, "tool call refused")
                }
                Outcome::Error(_) => tracing::info!(tool, ms, outcome = %label, "tool call failed"),
            }
            let recorded = self
                .audit(
                    caller,
                    tool,
                    &args,
                    &canonical,
                    &correlation_id,
                    &outcome,
                    elapsed,
                    result_bytes,
                )
                .await;
            match recorded {
                Ok(()) => answer,
                // Nothing of the answer leaves without its row: not data, not an error's text.
                Err(why) => Ok(self.finish(unaudited(&outcome, &why), &correlation_id)),
            }
        }
        .instrument(span)
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        registry: &Registry,
        call: &Call<'_>,
        caller: &Caller,
        tool: &str,
        args: &Value,
        canonical: &str,
        metering: Metering,
    ) -> (Result<CallToolResult, McpError>, Outcome) {
        let Some(entry) = registry.get(tool) else {
            let error = McpError::invalid_params(
                format!(
                    "unknown tool `{}`; available tools: {}",
                    self.sanitizer.text(tool),
                    registry.names().join(", ")
                ),
                None,
            );
            return (Err(error), Outcome::Error("unknown_tool"));
        };
        if let Err(why) = limits::check(&self.config.limits, args) {
            return (refusal(&why), Outcome::Refused("validation"));
        }
        let needed = entry.required_role(args, &caller.principal);
        if caller.principal.role < needed {
            return (
                refusal(&role_refusal(tool, needed, &caller.principal)),
                Outcome::Refused("role"),
            );
        }
        // A tool that changes data does not run while rows cannot be written: its effect
        // would stand unrecorded. (This refusal's own row is tried; once it is written, the
        // log works again and the next call runs.)
        let read_only = entry
            .definition
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            == Some(true);
        if !read_only && let Some(why) = self.audit.as_ref().and_then(|log| log.failing()) {
            return (
                refusal(&format!(
                    "the audit log cannot be written ({}), and `{tool}` changes data; it runs \
                     only when its call can be recorded. Retry later; the operator must make \
                     the audit log writable (see /healthz and the server log).",
                    self.sanitizer.text(&why)
                )),
                Outcome::Refused("audit"),
            );
        }
        // Budgets and loops are keyed on the verified principal: a made-up session id neither
        // escapes them nor spends another principal's. Console pages (`call_from_console`)
        // skip loop detection, and a person's session the per-minute budgets, but never the
        // principal's hourly and the server's: /ui must be no way around the budgets /mcp
        // enforces.
        let budget_key = match metering {
            Metering::Mcp => caller.session.as_str(),
            Metering::Page(key) => key,
        };
        if let Err(why) = self.state.take(&caller.principal.id, budget_key).await {
            return (refusal(&why), Outcome::Refused("budget"));
        }
        if matches!(metering, Metering::Mcp) {
            // The same call with defaults spelled out (`force_refresh: false`, `accounts: []`) is
            // the same call: fingerprint the arguments as the tool reads them.
            let normalised = entry
                .canonical_args(args)
                .map(|typed| crate::util::canonical_json(&typed));
            let fingerprint: loops::Fingerprint = {
                let mut h = Sha256::new();
                h.update(tool.as_bytes());
                h.update([0]);
                h.update(normalised.as_deref().unwrap_or(canonical).as_bytes());
                h.finalize().into()
            };
            if let Err(why) = self
                .state
                .admit(&caller.principal.id, tool, fingerprint)
                .await
            {
                return (refusal(&why), Outcome::Refused("loop"));
            }
        }
        match entry.call(call, args.clone()).await {
            Ok(value) => (Ok(CallToolResult::structured(value)), Outcome::Ok),
            Err(e) => (
                Ok(CallToolResult::error(vec![ContentBlock::text(
                    e.to_string(),
                )])),
                Outcome::Error(e.class()),
            ),
        }
    }

    /// Sanitises a result and stamps it with the correlation id.
    fn finish(&self, mut result: CallToolResult, correlation_id: &str) -> CallToolResult {
        let mut changed = 0;
        if let Some(structured) = result.structured_content.as_mut() {
            changed += self.sanitizer.value(structured);
            // Keep the text copy identical to the structured content.
            if let Ok(text) = serde_json::to_string(structured) {
                result.content = vec![ContentBlock::text(text)];
            }
        } else {
            let mut content = serde_json::to_value(&result.content).unwrap_or(Value::Null);
            changed += self.sanitizer.value(&mut content);
            if let Ok(clean) = serde_json::from_value(content) {
                result.content = clean;
            }
        }
        if changed > 0 {
            tracing::warn!(strings = changed, "output sanitisation redacted values");
        }
        let mut meta = result.meta.take().unwrap_or_default();
        meta.0
            .insert(CORRELATION_META.into(), Value::from(correlation_id));
        result.meta = Some(meta);
        result
    }

    fn finish_error(&self, mut error: McpError, correlation_id: &str) -> McpError {
        error.message = self.sanitizer.text(&error.message).into_owned().into();
        let mut data = match error.data.take() {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.insert("correlation_id".into(), Value::from(correlation_id));
        error.data = Some(Value::Object(data));
        error
    }

    /// Writes the call's row; the error says why it is not on disk.
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        caller: &Caller,
        tool: &str,
        args: &Value,
        canonical: &str,
        correlation_id: &str,
        outcome: &Outcome,
        elapsed: Duration,
        result_bytes: usize,
    ) -> Result<(), String> {
        let Some(log) = &self.audit else {
            return Ok(());
        };
        // A refused call did nothing: a short excerpt of its arguments (and their hash) is
        // enough, and it keeps refusals — the cheapest calls to make — from filling the disk.
        let max_arguments = match outcome {
            Outcome::Refused(_) => REFUSED_ARGUMENT_BYTES,
            _ => ARGUMENT_BYTES,
        };
        let record = AuditRecord {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            correlation_id: correlation_id.to_string(),
            session: shorten(&caller.session, FIELD_BYTES),
            principal: Some(shorten(&caller.principal.id, FIELD_BYTES)),
            client: shorten(&self.sanitizer.text(&caller.client), FIELD_BYTES),
            transport: caller.transport.to_string(),
            tool: shorten(&self.sanitizer.text(tool), FIELD_BYTES),
            arguments: if canonical.is_empty() {
                "[over the size limit: not recorded]".to_string()
            } else {
                redacted_arguments(&self.sanitizer, args, max_arguments)
            },
            arguments_hash: hex::encode(Sha256::digest(canonical.as_bytes())),
            outcome: outcome.label(),
            duration_us: elapsed.as_micros() as u64,
            result_bytes: result_bytes as u64,
        };
        match log.append(record, self.config.audit_wait).await {
            Appended::Written(_) => Ok(()),
            Appended::Pending => {
                tracing::error!(
                    "audit row not on disk after {:?}; the answer is withheld (the row stays queued)",
                    self.config.audit_wait
                );
                Err(format!(
                    "the disk did not confirm it within {} ms; it stays queued",
                    self.config.audit_wait.as_millis()
                ))
            }
            Appended::Failed(e) => {
                tracing::error!(error = %e, "audit row could not be written; the answer is withheld");
                Err(e)
            }
        }
    }
}

/// Bytes of arguments recorded for a call that ran, and for one that was refused.
const ARGUMENT_BYTES: usize = 4096;
const REFUSED_ARGUMENT_BYTES: usize = 1024;
/// Bytes recorded of the session, client and tool names (the client chooses them).
const FIELD_BYTES: usize = 128;

/// The answer to a call whose audit row is not on disk: what happened, and nothing of the
/// answer itself.
fn unaudited(outcome: &Outcome, why: &str) -> CallToolResult {
    let what = match outcome {
        Outcome::Ok => "The call ran, but its answer is withheld",
        Outcome::Error(_) => "The call failed, and its error is withheld",
        Outcome::Refused(_) => "The call was refused before running",
    };
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{what}: its audit row could not be written ({why}). This server answers no call it \
         has not recorded, and runs no call that changes data until it can record it. The \
         operator must make the audit log writable again (free disk space where it lives, or \
         archive it or raise --audit-max-bytes) and check the server log; /healthz shows the \
         state."
    ))])
}

/// Why a call was refused for its role, and how to get the role needed.
fn role_refusal(tool: &str, needed: Role, principal: &Principal) -> String {
    format!(
        "this call of `{tool}` needs the {needed} role, and principal `{}` has the {} role. \
         Ask the operator for a token with that role (`--api-tokens name:{needed}:TOKEN`) or \
         an OAuth access token with the scope `{}`; the calls that only read need the viewer \
         role.",
        principal.id,
        principal.role,
        needed.scope()
    )
}

/// Prepends the guard's wording: the assistant should know this was a guard, not the tool.
fn refusal(why: &str) -> Result<CallToolResult, McpError> {
    Ok(CallToolResult::error(vec![ContentBlock::text(format!(
        "Refused before running: {why}"
    ))]))
}

/// Arguments for the audit log: secrets redacted (keys and values), long strings shortened,
/// at most `max_bytes` (and a marker).
fn redacted_arguments(sanitizer: &sanitize::Sanitizer, args: &Value, max_bytes: usize) -> String {
    fn shorten_all(v: &mut Value) {
        match v {
            Value::String(s) if s.len() > 256 => *s = shorten(s, 256),
            Value::Array(items) => {
                let n = items.len();
                items.truncate(50);
                items.iter_mut().for_each(shorten_all);
                if n > 50 {
                    items.push(Value::from(format!("… {} more", n - 50)));
                }
            }
            Value::Object(map) => map.values_mut().for_each(shorten_all),
            _ => {}
        }
    }
    let mut copy = args.clone();
    sanitizer.value(&mut copy);
    shorten_all(&mut copy);
    let text = crate::util::canonical_json(&copy);
    shorten(&text, max_bytes)
}

fn shorten(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &s[..end], s.len())
}
