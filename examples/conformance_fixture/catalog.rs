//! What the fixture lists: the tools, prompts and resources the scenarios name.

use serde_json::{Value, json};

use super::{mrtr, skills, tasks};

pub fn tools() -> Value {
    let no_args = json!({"type": "object", "properties": {}});
    let mut tools: Vec<Value> = [
        ("test_simple_text", "Returns simple text content"),
        ("test_image_content", "Returns a PNG image"),
        ("test_audio_content", "Returns a WAV clip"),
        ("test_embedded_resource", "Returns an embedded text resource"),
        ("test_multiple_content_types", "Returns text, an image and a resource"),
        ("test_tool_with_logging", "Logs three messages while it runs"),
        ("test_logging_tool", "Logs only when the request asks for a log level"),
        ("test_error_handling", "Always returns a tool error"),
        ("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100"),
        ("test_elicitation_sep1034_defaults", "Elicits values that all have defaults (SEP-1034)"),
        ("test_elicitation_sep1330_enums", "Elicits the five enum shapes (SEP-1330)"),
        ("test_reconnection", "Answers after a short pause on an SSE stream (SEP-1699)"),
        ("test_missing_capability", "Needs the client's sampling capability"),
        ("test_trigger_tool_change", "Announces a tool-list change to listen streams"),
        ("test_trigger_prompt_change", "Announces a prompt-list change to listen streams"),
    ]
    .into_iter()
    .chain(mrtr::TOOLS.iter().map(|name| (*name, "Asks the client for input first (SEP-2322)")))
    .map(|(name, description)| {
        json!({"name": name, "description": description, "inputSchema": no_args})
    })
    .collect();
    let string_arg = |name: &str, description: &str| {
        json!({"type": "object", "required": [name],
               "properties": {name: {"type": "string", "description": description}}})
    };
    tools.extend([
        json!({"name": "test_sampling", "description": "Asks the client's LLM (sampling)",
               "inputSchema": string_arg("prompt", "The prompt to send")}),
        json!({"name": "test_elicitation", "description": "Asks the user (elicitation)",
               "inputSchema": string_arg("message", "The message to show")}),
        json!({"name": "test_custom_header",
               "description": "Echoes a region the client mirrors into Mcp-Param-Region (SEP-2243)",
               "inputSchema": {"type": "object", "required": ["region"], "properties": {
                   "region": {"type": "string", "x-mcp-header": "Region"}}}}),
        json!({"name": "json_schema_2020_12_tool",
               "description": "Tool with JSON Schema 2020-12 features",
               "inputSchema": json_schema_2020_12()}),
    ]);
    tools.extend(tasks::definitions());
    Value::Array(tools)
}

pub fn prompts() -> Value {
    json!([
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments",
         "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource",
         "description": "A prompt embedding a resource",
         "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed",
                        "required": true}]},
        {"name": "test_prompt_with_image", "description": "A prompt with an image"},
        {"name": "test_input_required_result_prompt",
         "description": "A prompt that asks the client for context first (SEP-2322)"}
    ])
}

pub fn resources() -> Value {
    let mut resources = vec![
        json!({"uri": "test://static-text", "name": "Static Text Resource",
               "description": "A static text resource", "mimeType": "text/plain"}),
        json!({"uri": "test://static-binary", "name": "Static Binary Resource",
               "description": "A static PNG image", "mimeType": "image/png"}),
    ];
    resources.extend(skills::resources());
    Value::Array(resources)
}

pub fn resource_templates() -> Value {
    json!([{"uriTemplate": "test://template/{id}/data", "name": "Dynamic Resource",
            "description": "A JSON document for any id", "mimeType": "application/json"}])
}

/// The schema of `json_schema_2020_12_tool`, keyword for keyword as the scenario states it.
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    })
}
