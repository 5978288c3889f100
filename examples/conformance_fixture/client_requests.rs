//! Server-to-client requests on 2025-11-25 sessions: the sampling and elicitation tools.
//! (2026-07-28 has no server-to-client requests; see `mrtr` for its way of asking.)

use rmcp::RoleServer;
use rmcp::model::{ClientResult, CustomRequest, ServerRequest};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::{text, tool_error};

/// `sampling/createMessage` on the client (2025-11-25 sessions only); the answer as text.
pub async fn sampling_tool(context: &RequestContext<RoleServer>, args: &Value) -> Value {
    let prompt = args["prompt"].as_str().unwrap_or("Hello");
    let params = json!({"maxTokens": 100, "messages": [
        {"role": "user", "content": {"type": "text", "text": prompt}}
    ]});
    match ask_client(context, "sampling/createMessage", params).await {
        Ok(answer) => {
            let said = answer["content"]["text"].as_str().unwrap_or("(no text)");
            text(&format!("LLM response: {said}"))
        }
        Err(e) => tool_error(&format!("Sampling failed: {e}")),
    }
}

/// `elicitation/create` on the client (2025-11-25 sessions only) with the schema each
/// scenario checks; reports the action and content.
pub async fn elicitation_tool(
    name: &str,
    context: &RequestContext<RoleServer>,
    args: &Value,
) -> Value {
    let (message, schema) = match name {
        "test_elicitation" => (
            args["message"]
                .as_str()
                .unwrap_or("Please provide your information")
                .to_string(),
            json!({"type": "object", "required": ["username", "email"], "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}
            }}),
        ),
        "test_elicitation_sep1034_defaults" => (
            "Please review these values (all have defaults)".to_string(),
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "User's name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User's age", "default": 30},
                "score": {"type": "number", "description": "User's score", "default": 95.5},
                "status": {"type": "string", "description": "User's status",
                           "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Whether the user is verified",
                             "default": true}
            }}),
        ),
        _ => ("Pick some options".to_string(), enum_schema()),
    };
    let params = json!({"message": message, "requestedSchema": schema});
    match ask_client(context, "elicitation/create", params).await {
        Ok(answer) => text(&format!(
            "User response: action={}, content={}",
            answer["action"].as_str().unwrap_or("unknown"),
            answer.get("content").unwrap_or(&Value::Null)
        )),
        Err(e) => tool_error(&format!("Elicitation failed: {e}")),
    }
}

/// The five enum shapes of SEP-1330.
fn enum_schema() -> Value {
    let titled = |prefix: &str, titles: [&str; 3]| -> Vec<Value> {
        titles
            .iter()
            .enumerate()
            .map(|(i, title)| json!({"const": format!("{prefix}{}", i + 1), "title": title}))
            .collect()
    };
    json!({"type": "object", "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string",
            "oneOf": titled("value", ["First Option", "Second Option", "Third Option"])},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array",
            "items": {"anyOf": titled("value", ["First Choice", "Second Choice", "Third Choice"])}}
    }})
}

/// A server-to-client request with the exact JSON the scenario expects (sent as a custom
/// request, so the schema is not re-shaped by typed models); the client's answer as JSON.
/// rmcp refuses it on 2026-07-28, which has no server-to-client requests.
async fn ask_client(
    context: &RequestContext<RoleServer>,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let request = ServerRequest::CustomRequest(CustomRequest::new(method, Some(params)));
    let answer = context
        .peer
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match answer {
        ClientResult::CustomResult(custom) => custom.0,
        other => serde_json::to_value(other).map_err(|e| e.to_string())?,
    })
}
