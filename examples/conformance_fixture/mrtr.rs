//! Multi round-trip requests (SEP-2322, 2026-07-28): tools and a prompt that answer
//! `InputRequiredResult` first and complete when the client retries with `inputResponses`
//! (and the echoed `requestState`, sealed here with HMAC-SHA256 so a tampered one is refused).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ElicitResult, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses, ListRootsResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Needs, done, parse, require, result};

/// The tools this module answers.
pub const TOOLS: &[&str] = &[
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_tampered_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_capabilities",
    "test_streaming_elicitation",
];

/// Seals and opens `requestState` with a key that is new for every process.
pub struct Mrtr {
    key: [u8; 32],
}

impl Mrtr {
    pub fn new() -> Mrtr {
        Mrtr { key: fresh_key() }
    }

    /// Round 1 asks for input; the retry carrying the answers (and the echoed, verified
    /// `requestState`) completes, or asks again for what is still missing.
    pub fn call_tool(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.as_ref();
        let responses = request.input_responses.clone().unwrap_or_default();
        let state = self.open(name, request.request_state.as_deref())?;
        let name_question = || elicit("What is your name?", json!({"name": {"type": "string"}}));
        match name {
            "test_input_required_result_elicitation" | "test_streaming_elicitation" => {
                match accepted_form(&responses, "user_name")? {
                    Some(answer) => done(&format!("Hello, {}!", str_of(&answer, "name"))),
                    None => {
                        require(context, Needs::Elicitation)?;
                        ask([("user_name", name_question())], None)
                    }
                }
            }
            "test_input_required_result_sampling" => {
                match input_response::<Value>(&responses, "capital_question", sampled)? {
                    Some(answer) => {
                        done(&format!("The client answered: {}", sampled_text(&answer)))
                    }
                    None => {
                        require(context, Needs::Sampling)?;
                        let question = sample("What is the capital of France?", 100);
                        ask([("capital_question", question)], None)
                    }
                }
            }
            "test_input_required_result_list_roots" => {
                match input_response::<ListRootsResult>(&responses, "client_roots", any)? {
                    Some(roots) => {
                        let uris: Vec<&str> = roots.roots.iter().map(|r| r.uri.as_str()).collect();
                        done(&format!(
                            "The client shares {} roots: {}",
                            uris.len(),
                            uris.join(", ")
                        ))
                    }
                    None => {
                        require(context, Needs::Roots)?;
                        ask([("client_roots", list_roots())], None)
                    }
                }
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                match (state, accepted_form(&responses, "confirm")?) {
                    (Some(_), Some(answer)) => {
                        done(&format!("state-ok: confirmed={}", answer["ok"]))
                    }
                    _ => {
                        require(context, Needs::Elicitation)?;
                        let confirm = elicit("Please confirm", json!({"ok": {"type": "boolean"}}));
                        ask(
                            [("confirm", confirm)],
                            Some(self.seal(name, json!({"round": 1}))),
                        )
                    }
                }
            }
            "test_input_required_result_multiple_inputs" => {
                let user = accepted_form(&responses, "user_name")?;
                let greeting = input_response::<Value>(&responses, "greeting", sampled)?;
                let roots = input_response::<ListRootsResult>(&responses, "client_roots", any)?;
                match (state, user, greeting, roots) {
                    (Some(_), Some(user), Some(greeting), Some(roots)) => done(&format!(
                        "{} {}, with {} roots",
                        sampled_text(&greeting),
                        str_of(&user, "name"),
                        roots.roots.len()
                    )),
                    _ => {
                        for needs in [Needs::Elicitation, Needs::Sampling, Needs::Roots] {
                            require(context, needs)?;
                        }
                        let requests = [
                            ("user_name", name_question()),
                            ("greeting", sample("Generate a greeting", 50)),
                            ("client_roots", list_roots()),
                        ];
                        ask(requests, Some(self.seal(name, json!({"round": 1}))))
                    }
                }
            }
            "test_input_required_result_multi_round" => {
                self.multi_round(&responses, state, context)
            }
            _ => capability_aware(context),
        }
    }

    /// `test_input_required_result_prompt`: asks for context, then returns the prompt.
    pub fn get_prompt(
        &self,
        request: &GetPromptRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let responses = request.input_responses.clone().unwrap_or_default();
        let Some(answer) = accepted_form(&responses, "user_context")? else {
            require(context, Needs::Elicitation)?;
            let question = elicit(
                "What context should the prompt use?",
                json!({"context": {"type": "string"}}),
            );
            return ask([("user_context", question)], None);
        };
        let text = format!("Answer using this context: {}", str_of(&answer, "context"));
        let messages = json!([{"role": "user", "content": {"type": "text", "text": text}}]);
        Ok(result::<GetPromptResult>(json!({ "messages": messages }))?.into())
    }

    /// Step 1 asks a name, step 2 (the state carries the name) a colour, then completes.
    fn multi_round(
        &self,
        responses: &InputResponses,
        state: Option<Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        const TOOL: &str = "test_input_required_result_multi_round";
        require(context, Needs::Elicitation)?;
        let step1 = || {
            let question = elicit(
                "Step 1: What is your name?",
                json!({"name": {"type": "string"}}),
            );
            ask(
                [("step1", question)],
                Some(self.seal(TOOL, json!({"step": 1}))),
            )
        };
        let Some(state) = state else { return step1() };
        match state["step"].as_u64() {
            Some(1) => match accepted_form(responses, "step1")? {
                Some(answer) => {
                    let name = str_of(&answer, "name");
                    let question = elicit(
                        "Step 2: What is your favorite color?",
                        json!({"color": {"type": "string"}}),
                    );
                    let state = self.seal(TOOL, json!({"step": 2, "name": name}));
                    ask([("step2", question)], Some(state))
                }
                None => step1(),
            },
            _ => match accepted_form(responses, "step2")? {
                Some(answer) => done(&format!(
                    "{} likes {}",
                    str_of(&state, "name"),
                    str_of(&answer, "color")
                )),
                None => step1(),
            },
        }
    }

    /// `base64url(json).hex(hmac)`, bound to the tool.
    fn seal(&self, tool: &str, data: Value) -> String {
        let payload = URL_SAFE_NO_PAD.encode(json!({"tool": tool, "data": data}).to_string());
        let mac = hmac_sha256(&self.key, payload.as_bytes());
        format!("{payload}.{}", hex::encode(mac))
    }

    /// The data of a `requestState` this server sealed for `tool`; an error for anything else.
    fn open(&self, tool: &str, state: Option<&str>) -> Result<Option<Value>, McpError> {
        let Some(state) = state else { return Ok(None) };
        let rejected = || {
            McpError::invalid_params(
                "requestState failed its integrity check: this server did not issue it for this tool",
                None,
            )
        };
        let (payload, mac) = state.rsplit_once('.').ok_or_else(rejected)?;
        let mac = hex::decode(mac).map_err(|_| rejected())?;
        let expected = hmac_sha256(&self.key, payload.as_bytes());
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(rejected());
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| rejected())?;
        let sealed: Value = serde_json::from_slice(&bytes).map_err(|_| rejected())?;
        if sealed["tool"] != tool {
            return Err(rejected());
        }
        Ok(Some(sealed["data"].clone()))
    }
}

/// Asks only for what the client declared it can answer.
fn capability_aware(context: &RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
    let caps = context.client_capabilities().unwrap_or_default();
    let mut requests = Vec::new();
    if caps.elicitation.is_some() {
        let question = elicit("What is your name?", json!({"name": {"type": "string"}}));
        requests.push(("user_name", question));
    }
    if caps.sampling.is_some() {
        requests.push(("greeting", sample("Generate a greeting", 50)));
    }
    if caps.roots.is_some() {
        requests.push(("client_roots", list_roots()));
    }
    if requests.is_empty() {
        return done("The client declared no capability to ask anything with");
    }
    ask(requests, None)
}

/// The content of an accepted form elicitation under `key`; `None` when it is missing (the
/// server asks again) or was declined; an error when it is not an `ElicitResult`.
pub fn accepted_form(responses: &InputResponses, key: &str) -> Result<Option<Value>, McpError> {
    let answer = input_response::<ElicitResult>(responses, key, any)?;
    Ok(answer
        .and_then(|a| serde_json::to_value(a).ok())
        .filter(|a| a["action"] == "accept")
        .and_then(|a| a.get("content").cloned()))
}

/// The response under `key` parsed as `T` and accepted by `check`; a JSON-RPC error (not a
/// re-request) for a response of the wrong shape.
fn input_response<T: DeserializeOwned>(
    responses: &InputResponses,
    key: &str,
    check: fn(&Value) -> bool,
) -> Result<Option<T>, McpError> {
    let Some(raw) = responses.get(key) else {
        return Ok(None);
    };
    let invalid = || {
        McpError::invalid_params(
            format!("inputResponses.{key} does not answer the request that was sent"),
            Some(json!({"key": key})),
        )
    };
    if !check(raw) {
        return Err(invalid());
    }
    serde_json::from_value(raw.clone())
        .map(Some)
        .map_err(|_| invalid())
}

fn any(_: &Value) -> bool {
    true
}

/// A `CreateMessageResult`: role and content.
fn sampled(v: &Value) -> bool {
    v["role"].is_string() && v["content"].is_object()
}

fn sampled_text(v: &Value) -> &str {
    v["content"]["text"].as_str().unwrap_or("(no text)")
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// An `elicitation/create` input request for a form whose fields are all required.
pub fn elicit(message: &str, properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({"method": "elicitation/create", "params": {"message": message,
        "requestedSchema": {"type": "object", "properties": properties, "required": required}}})
}

fn sample(prompt: &str, max_tokens: u32) -> Value {
    json!({"method": "sampling/createMessage", "params": {"maxTokens": max_tokens,
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}]}})
}

fn list_roots() -> Value {
    json!({"method": "roots/list", "params": {}})
}

/// An `InputRequiredResult` asking the client for `requests`.
pub fn ask<'a, R, T>(requests: R, state: Option<String>) -> Result<T, McpError>
where
    R: IntoIterator<Item = (&'a str, Value)>,
    T: From<InputRequiredResult>,
{
    let mut input_requests = InputRequests::new();
    for (key, request) in requests {
        input_requests.insert(key.to_string(), parse::<InputRequest>(request)?);
    }
    Ok(InputRequiredResult::new(Some(input_requests), state).into())
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A key nobody can predict across runs: the process's random hasher seed, pid and clock.
fn fresh_key() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Sha256::new()
        .chain_update(hasher.finish().to_le_bytes())
        .chain_update(nanos.to_le_bytes())
        .finalize()
        .into()
}
