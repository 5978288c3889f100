//! The guard pipeline every `tools/call` goes through, on every transport, in this order:
//! correlation id → input limits → budget → loop detection → the tool (its schema check, then
//! its work) → output sanitisation → audit. Tools know nothing of it; nothing bypasses it.

pub mod budget;
pub mod limits;
pub mod loops;
pub mod sanitize;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::app::App;
use crate::inventory::ScanProgress;
use crate::store::audit::{Appended, AuditLog, AuditRecord};
use crate::tools::{Call, Registry};
pub use budget::BudgetConfig;
pub use limits::Limits;
pub use loops::LoopConfig;

/// The `_meta` key carrying the correlation id of a call.
pub const CORRELATION_META: &str = "tagwarden/correlation_id";

#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    pub limits: Limits,
    pub budget: BudgetConfig,
    pub loops: LoopConfig,
    /// How long a call waits for its audit row to reach the disk before answering anyway.
    pub audit_wait: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            limits: Limits::default(),
            budget: BudgetConfig::default(),
            loops: LoopConfig::default(),
            audit_wait: Duration::from_millis(500),
        }
    }
}

/// Who the server verified the caller to be. Every limit and every access decision is keyed
/// on this, never on a value the client chooses (a session id, a header it made up).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Stable and not secret: `token:<12 hex of the token's SHA-256>` for a bearer token,
    /// `ip:<address>` for a tokenless loopback client, `local` for stdio and the command line.
    pub id: String,
    /// May read every principal's audit rows (`--admin-tokens`); stdio is always admin.
    pub admin: bool,
}

impl Principal {
    /// The one principal of a stdio connection or a command: the local user, with all rights.
    pub fn local() -> Principal {
        Principal {
            id: "local".into(),
            admin: true,
        }
    }
}

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
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
    pub fn actor(&self) -> String {
        let session: String = self.session.chars().take(12).collect();
        format!("{} ({} session {session})", self.client, self.transport)
    }
}

pub struct Guard {
    config: GuardConfig,
    budget: budget::Budget,
    loops: loops::LoopDetector,
    sanitizer: sanitize::Sanitizer,
    audit: Option<Arc<AuditLog>>,
}

/// What became of a call, for the audit log.
enum Outcome {
    Ok,
    Refused(&'static str),
    Error(&'static str),
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Refused(guard) => format!("refused:{guard}"),
            Outcome::Error(class) => format!("error:{class}"),
        }
    }
}

impl Guard {
    pub fn new(config: GuardConfig, audit: Option<Arc<AuditLog>>) -> Guard {
        Guard {
            budget: budget::Budget::new(&config.budget),
            loops: loops::LoopDetector::new(config.loops.clone()),
            sanitizer: sanitize::Sanitizer::new(),
            audit,
            config,
        }
    }

    pub fn sanitizer(&self) -> &sanitize::Sanitizer {
        &self.sanitizer
    }

    /// Runs one tool call through the whole pipeline.
    pub async fn call(
        &self,
        registry: &Registry,
        app: &App,
        caller: &Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        progress: Option<Arc<dyn ScanProgress>>,
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
            let ms = elapsed.as_secs_f64() * 1000.0;
            let label = outcome.label();
            match outcome {
                Outcome::Ok => tracing::info!(tool, ms, bytes = result_bytes, "tool call ok"),
                Outcome::Refused(_) => {
                    tracing::info!(tool, ms, outcome = %label, "tool call refused")
                }
                Outcome::Error(_) => tracing::info!(tool, ms, outcome = %label, "tool call failed"),
            }
            self.audit(
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
            answer
        }
        .instrument(span)
        .await
    }

    async fn decide(
        &self,
        registry: &Registry,
        call: &Call<'_>,
        caller: &Caller,
        tool: &str,
        args: &Value,
        canonical: &str,
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
        // Budgets and loops are keyed on the verified principal: a made-up session id neither
        // escapes them nor spends another principal's.
        if let Err(why) = self.budget.take(&caller.principal.id, &caller.session) {
            return (refusal(&why), Outcome::Refused("budget"));
        }
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
            .loops
            .admit(&caller.principal.id, tool, fingerprint, Instant::now())
        {
            return (refusal(&why), Outcome::Refused("loop"));
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
    ) {
        let Some(log) = &self.audit else {
            return;
        };
        let record = AuditRecord {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            correlation_id: correlation_id.to_string(),
            session: caller.session.clone(),
            principal: Some(caller.principal.id.clone()),
            client: self.sanitizer.text(&caller.client).into_owned(),
            transport: caller.transport.to_string(),
            tool: shorten(&self.sanitizer.text(tool), 128),
            arguments: if canonical.is_empty() {
                "[over the size limit: not recorded]".to_string()
            } else {
                redacted_arguments(&self.sanitizer, args)
            },
            arguments_hash: hex::encode(Sha256::digest(canonical.as_bytes())),
            outcome: outcome.label(),
            duration_us: elapsed.as_micros() as u64,
            result_bytes: result_bytes as u64,
        };
        match log.append(record, self.config.audit_wait).await {
            Appended::Written(_) => {}
            Appended::Pending => tracing::warn!(
                "audit row not yet on disk after {:?}; answering anyway (it stays queued)",
                self.config.audit_wait
            ),
            Appended::Failed(e) => tracing::error!(error = %e, "audit row could not be written"),
        }
    }
}

/// Prepends the guard's wording: the assistant should know this was a guard, not the tool.
fn refusal(why: &str) -> Result<CallToolResult, McpError> {
    Ok(CallToolResult::error(vec![ContentBlock::text(format!(
        "Refused before running: {why}"
    ))]))
}

/// Arguments for the audit log: secrets redacted, long strings shortened, at most 4 KiB.
fn redacted_arguments(sanitizer: &sanitize::Sanitizer, args: &Value) -> String {
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
    shorten(&text, 4096)
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

/// The `_meta` of a result (for tests and callers that read the correlation id).
pub fn correlation_id(meta: Option<&MetaObject>) -> Option<&str> {
    meta.and_then(|m| m.0.get(CORRELATION_META))
        .and_then(Value::as_str)
}
