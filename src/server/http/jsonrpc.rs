//! The JSON-RPC gate in front of rmcp on `POST /mcp`.
//!
//! rmcp answers a body it cannot deserialise with HTTP 415 and a line of text, and serde_json
//! quietly keeps the last of two duplicate keys (so `{"name": "a", "name": "b"}` means "b" here
//! and maybe "a" to a proxy that checked it). JSON-RPC 2.0 asks for an error object instead:
//! `-32700` when the body is not JSON (invalid UTF-8 and unpaired surrogate escapes included),
//! `-32600` when it is not a valid message (a batch, `"jsonrpc"` other than "2.0", no method,
//! an id that is not a string or an integer, a duplicate key), `-32602` when a request's
//! params do not fit its method. The id is echoed when it is a valid one, else `null`.
//! A message without a method but with a result or an error is a client's reply to a server
//! request, legitimate in MCP, and passes.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, ClientJsonRpcMessage, ClientRequest,
    CompleteRequestMethod, ConstString, DiscoverRequestMethod, GetPromptRequestMethod,
    GetPromptRequestParams, InitializeRequestParams, InitializeResultMethod,
    ListPromptsRequestMethod, ListResourceTemplatesRequestMethod, ListResourcesRequestMethod,
    ListToolsRequestMethod, PingRequestMethod, ReadResourceRequestMethod,
    ReadResourceRequestParams, SetLevelRequestMethod, SubscribeRequestMethod,
    UnsubscribeRequestMethod,
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

/// What the gate learnt about an accepted message: later layers read it from the request's
/// extensions (the session gate needs the method), and the connection layer from the
/// response's (a timed-out answer names the request's id).
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub method: Option<String>,
    /// The request's id; `None` for notifications and replies.
    pub id: Option<Value>,
}

/// A refused message: the JSON-RPC error to answer with.
#[derive(Debug, PartialEq)]
struct Refusal {
    code: i64,
    message: String,
    id: Value,
}

impl Refusal {
    fn new(code: i64, message: impl Into<String>, id: Value) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            id,
        }
    }
}

/// Answers malformed, oversized or invalid POST bodies with a JSON-RPC error; passes valid
/// messages on untouched, with their [`Envelope`] in the request's extensions.
pub(super) async fn json_gate(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                &format!("Invalid Request: body larger than {limit} bytes"),
                Value::Null,
            );
        }
    };
    // From 2026-07-28 on, some methods are gone (initialize, logging/setLevel, ...) and rmcp
    // answers them "method not found": their params are not checked against the old forms.
    let modern = parts
        .headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v >= MODERN);
    let envelope = match check(&bytes, modern) {
        Ok(e) => e,
        Err(r) => return jsonrpc_error(StatusCode::BAD_REQUEST, r.code, &r.message, r.id),
    };
    parts.extensions.insert(envelope.clone());
    let mut response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    response.extensions_mut().insert(envelope);
    response
}

/// A JSON-RPC error response (`application/json`).
pub(super) fn jsonrpc_error(status: StatusCode, code: i64, message: &str, id: Value) -> Response {
    let mut response = (
        status,
        axum::Json(json!({
            "jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The first protocol version whose requests carry their version in `_meta`.
const MODERN: &str = "2026-07-28";

/// Validates one body: JSON, no duplicate keys, a JSON-RPC 2.0 message rmcp can read.
/// `modern`: the request says it speaks 2026-07-28 or later (header).
fn check(bytes: &[u8], modern: bool) -> Result<Envelope, Refusal> {
    if !crate::util::json_depth_within(bytes, crate::util::MAX_JSON_DEPTH) {
        return Err(Refusal::new(
            -32600,
            format!(
                "Invalid Request: JSON nested deeper than {} levels",
                crate::util::MAX_JSON_DEPTH
            ),
            Value::Null,
        ));
    }
    // serde_json checks UTF-8 and surrogate escapes when it builds strings.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::new(
            -32700,
            format!("Parse error: the request body is not valid JSON ({e})"),
            Value::Null,
        )
    })?;
    let id = value.get("id").filter(|id| valid_id(id)).cloned();
    if let Err(key) = no_duplicate_keys(bytes) {
        // A duplicated id cannot be echoed: which one would it be?
        let echo = if key.at_top && key.name == "id" {
            Value::Null
        } else {
            id.clone().unwrap_or(Value::Null)
        };
        return Err(Refusal::new(
            -32600,
            format!(
                "Invalid Request: the key \"{}\" appears twice in one object",
                key.name
            ),
            echo,
        ));
    }
    let envelope = envelope(&value)?;
    // The message rmcp will read: what does not fit its method's params is an invalid-params
    // error for that request (not rmcp's HTTP 415).
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let invalid_params = |detail: String| {
        let method = envelope.method.as_deref().unwrap_or("");
        Refusal::new(
            -32602,
            format!("Invalid params for {method}: {detail}"),
            envelope.id.clone().unwrap_or(Value::Null),
        )
    };
    match serde_path_to_error::deserialize::<_, ClientJsonRpcMessage>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            let detail = format!("{path}: {}", e.into_inner());
            Err(match &envelope.method {
                Some(_) => invalid_params(detail),
                None => Refusal::new(
                    -32600,
                    format!("Invalid Request: not a valid reply: {detail}"),
                    id.unwrap_or(Value::Null),
                ),
            })
        }
        // rmcp reads a standard method whose params do not fit as a custom request (and would
        // answer "method not found"): say what does not fit instead.
        Ok(ClientJsonRpcMessage::Request(r))
            if matches!(r.request, ClientRequest::CustomRequest(_))
                && STANDARD_REQUESTS.contains(&r.request.method())
                && !modern
                && value
                    .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
                    .is_none() =>
        {
            let params = value.get("params").cloned().unwrap_or(Value::Null);
            Err(invalid_params(params_problem(r.request.method(), params)))
        }
        Ok(_) => Ok(envelope),
    }
}

/// The request methods rmcp reads into typed requests.
const STANDARD_REQUESTS: &[&str] = &[
    PingRequestMethod::VALUE,
    InitializeResultMethod::VALUE,
    DiscoverRequestMethod::VALUE,
    CompleteRequestMethod::VALUE,
    SetLevelRequestMethod::VALUE,
    GetPromptRequestMethod::VALUE,
    ListPromptsRequestMethod::VALUE,
    ListResourcesRequestMethod::VALUE,
    ListResourceTemplatesRequestMethod::VALUE,
    ReadResourceRequestMethod::VALUE,
    SubscribeRequestMethod::VALUE,
    UnsubscribeRequestMethod::VALUE,
    CallToolRequestMethod::VALUE,
    ListToolsRequestMethod::VALUE,
];

/// Why params do not fit a standard method: the field and the reason, for the common ones.
fn params_problem(method: &str, params: Value) -> String {
    fn why<T: serde::de::DeserializeOwned>(params: Value) -> Option<String> {
        serde_path_to_error::deserialize::<_, T>(params)
            .err()
            .map(|e| {
                let path = e.path().to_string();
                format!("params.{path}: {}", e.into_inner())
            })
    }
    let detail = match method {
        CallToolRequestMethod::VALUE => why::<CallToolRequestParams>(params),
        InitializeResultMethod::VALUE => why::<InitializeRequestParams>(params),
        ReadResourceRequestMethod::VALUE => why::<ReadResourceRequestParams>(params),
        GetPromptRequestMethod::VALUE => why::<GetPromptRequestParams>(params),
        _ => None,
    };
    detail.unwrap_or_else(|| "the params do not fit the method".to_string())
}

/// JSON-RPC ids MCP accepts: a string or an integer (no fractions, booleans or null).
fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64(),
        _ => false,
    }
}

/// The envelope rules of JSON-RPC 2.0 as MCP uses them (one message per body, no batches).
fn envelope(value: &Value) -> Result<Envelope, Refusal> {
    let object = match value {
        Value::Object(o) => o,
        Value::Array(a) if a.is_empty() => {
            return Err(Refusal::new(
                -32600,
                "Invalid Request: an empty batch",
                Value::Null,
            ));
        }
        Value::Array(_) => {
            return Err(Refusal::new(
                -32600,
                "Invalid Request: batches are not supported; send one JSON-RPC message per \
                 request",
                Value::Null,
            ));
        }
        _ => {
            return Err(Refusal::new(
                -32600,
                "Invalid Request: a JSON-RPC message is a JSON object",
                Value::Null,
            ));
        }
    };
    let raw_id = object.get("id");
    let id = raw_id.filter(|id| valid_id(id)).cloned();
    let echo = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Refusal::new(
            -32600,
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
            echo,
        ));
    }
    if raw_id.is_some() && id.is_none() {
        return Err(Refusal::new(
            -32600,
            "Invalid Request: \"id\" must be a string or an integer",
            Value::Null,
        ));
    }
    match object.get("method") {
        Some(Value::String(method)) => {
            if object.get("params").is_some_and(|p| !p.is_object()) {
                return Err(Refusal::new(
                    -32602,
                    format!("Invalid params for {method}: \"params\" must be an object"),
                    echo,
                ));
            }
            Ok(Envelope {
                method: Some(method.clone()),
                id,
            })
        }
        Some(_) => Err(Refusal::new(
            -32600,
            "Invalid Request: \"method\" must be a string",
            echo,
        )),
        None => {
            let is_reply =
                id.is_some() && (object.contains_key("result") != object.contains_key("error"));
            if is_reply {
                Ok(Envelope {
                    method: None,
                    id: None,
                })
            } else {
                Err(Refusal::new(
                    -32600,
                    "Invalid Request: no \"method\" (a request or notification), and not a \
                     reply (an id with a result or an error)",
                    echo,
                ))
            }
        }
    }
}

/// A key that appears twice in one object.
#[derive(Debug)]
struct Duplicate {
    name: String,
    /// In the top-level object (the envelope itself).
    at_top: bool,
}

/// Walks the document without building it, stopping at the first object with a repeated key.
fn no_duplicate_keys(bytes: &[u8]) -> Result<(), Duplicate> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Any other error was reported by the parse before this walk.
    let _ = Walk {
        depth: 0,
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner().map_or(Ok(()), Err)
}

struct Walk<'a> {
    depth: usize,
    found: &'a RefCell<Option<Duplicate>>,
}

impl Walk<'_> {
    fn child(&self) -> Self {
        Walk {
            depth: self.depth + 1,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.child())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(self.child())?;
            if seen.contains(&key) {
                *self.found.borrow_mut() = Some(Duplicate {
                    name: key,
                    at_top: self.depth == 0,
                });
                return Err(serde::de::Error::custom("duplicate key"));
            }
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_legacy(bytes: &[u8]) -> Result<Envelope, Refusal> {
        check(bytes, false)
    }

    #[test]
    fn methods_gone_in_2026_are_left_to_rmcp() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert!(check(body, false).is_ok());
        let bare = br#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{}}"#;
        assert!(check(bare, true).is_ok());
        assert_eq!(check(bare, false).unwrap_err().code, -32602);
    }

    fn refusal(body: &str) -> (i64, Value) {
        let r = check(body.as_bytes(), false).unwrap_err();
        (r.code, r.id)
    }

    #[test]
    fn valid_messages_pass() {
        let e = check_legacy(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(e.method.as_deref(), Some("ping"));
        assert_eq!(e.id, Some(json!(1)));
        let n = check_legacy(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.id, None);
        // A reply to a server request.
        let r = check_legacy(br#"{"jsonrpc":"2.0","id":"s-1","result":{}}"#).unwrap();
        assert_eq!(r.method, None);
        // Duplicates in different objects are fine.
        check_legacy(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"name":"y"}}}"#)
            .unwrap();
    }

    #[test]
    fn malformed_messages_get_their_codes_and_ids() {
        assert_eq!(refusal("{nope"), (-32700, Value::Null));
        assert_eq!(refusal(r#"[]"#), (-32600, Value::Null));
        assert_eq!(
            refusal(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            (-32600, Value::Null)
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#),
            (-32600, json!(3))
        );
        assert_eq!(refusal(r#"{"jsonrpc":"2.0","id":4}"#), (-32600, json!(4)));
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            (-32600, Value::Null)
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            (-32600, Value::Null)
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":"a","method":["x"]}"#),
            (-32600, json!("a"))
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":[1]}"#),
            (-32602, json!(5))
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":5}}"#),
            (-32602, json!(6))
        );
        assert_eq!(
            refusal(
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","name":"b"}}"#
            ),
            (-32600, json!(7))
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":7,"id":8,"method":"ping"}"#),
            (-32600, Value::Null)
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":{"s":"\ud800"}}"#).0,
            -32700
        );
        let bad_utf8 =
            b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{\"s\":\"\xff\"}}";
        assert_eq!(check_legacy(bad_utf8).unwrap_err().code, -32700);
    }
}
