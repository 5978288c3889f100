//! The tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`): task-supporting tools run
//! on rmcp's `TaskManager`, which answers `tasks/get`, `tasks/update` and `tasks/cancel`.

use std::future::Future;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
    CreateTaskResult, GetTaskResult, InputRequest, InputResponses,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

use super::mrtr::{accepted_form, ask, elicit, str_of};
use super::{Needs, done, parse, require};

/// `(name, description, taskSupport)`: `forbidden` runs synchronously, `optional` becomes a task
/// when the client declared the extension, `required` needs the extension.
const TOOLS: &[(&str, &str, &str)] = &[
    ("greet", "Says hello to `name` (synchronous)", "forbidden"),
    (
        "slow_compute",
        "Sleeps `seconds`, then reports `label`",
        "optional",
    ),
    (
        "failing_job",
        "Reports a tool error after a second",
        "required",
    ),
    (
        "protocol_error_job",
        "Fails with a protocol error",
        "required",
    ),
    (
        "confirm_delete",
        "Asks to confirm deleting `filename`",
        "required",
    ),
    ("multi_input", "Asks two questions at once", "required"),
    (
        "test_tool_with_task",
        "Asks a name, then greets in a task",
        "required",
    ),
];

pub fn is_task_tool(name: &str) -> bool {
    TOOLS.iter().any(|(tool, ..)| *tool == name)
}

pub fn definitions() -> Vec<Value> {
    TOOLS
        .iter()
        .map(|(name, description, support)| {
            let properties = match *name {
                "greet" => json!({"name": {"type": "string"}}),
                "slow_compute" => json!({"seconds": {"type": "number", "minimum": 0},
                                         "label": {"type": "string"}}),
                "confirm_delete" => json!({"filename": {"type": "string"}}),
                _ => json!({}),
            };
            json!({"name": name, "description": description,
                   "inputSchema": {"type": "object", "properties": properties},
                   "execution": {"taskSupport": support}})
        })
        .collect()
}

#[derive(Default)]
pub struct Tasks {
    manager: TaskManager,
}

impl Tasks {
    pub async fn call_tool(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let name = request.name.as_ref();
        let declared = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        let required = TOOLS.iter().any(|(t, _, s)| *t == name && *s == "required");
        if required && !declared {
            let tasks = ClientCapabilities::builder().enable_tasks().build();
            return Err(McpError::missing_required_client_capability(tasks));
        }
        match name {
            "greet" => done(&format!("Hello, {}!", str_of(&args, "name"))),
            "slow_compute" => {
                let seconds = args["seconds"].as_f64().unwrap_or(1.0).clamp(0.0, 600.0);
                let label = str_of(&args, "label").to_string();
                let pause = Duration::from_secs_f64(seconds);
                if !declared {
                    // Without the extension the tool runs synchronously (SEP-2663).
                    tokio::time::sleep(pause).await;
                    return Ok(text(&format!("Computed {label}")).into());
                }
                Ok(self.spawn(move |task| async move {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => Ok(text(&format!("Computed {label}"))),
                        _ = task.cancelled() => Err(TaskExit::Cancelled),
                    }
                }))
            }
            "failing_job" => Ok(self.spawn(|_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(CallToolResult::error(vec![ContentBlock::text(
                    "failing_job failed, as it always does",
                )]))
            })),
            "protocol_error_job" => Ok(self.spawn(|_| async {
                Err(TaskExit::Error(McpError::internal_error(
                    "protocol_error_job broke down, as it always does",
                    None,
                )))
            })),
            "confirm_delete" => {
                require(context, Needs::Elicitation)?;
                let filename = str_of(&args, "filename").to_string();
                let question = confirmation(&format!("Delete {filename}?"))?;
                Ok(self.spawn(move |task| async move {
                    let answer = task.request_input("confirm", question).await?;
                    Ok(text(&if confirmed(&answer) {
                        format!("Deleted {filename}")
                    } else {
                        format!("Kept {filename}")
                    }))
                }))
            }
            "multi_input" => {
                require(context, Needs::Elicitation)?;
                let name_question = parse::<InputRequest>(elicit(
                    "What is your name?",
                    json!({"name": {"type": "string"}}),
                ))?;
                let go_ahead = confirmation("Go ahead?")?;
                Ok(self.spawn(move |task| async move {
                    let (name, go) = futures_util::future::try_join(
                        task.request_input("name", name_question),
                        task.request_input("confirm", go_ahead),
                    )
                    .await?;
                    let name = name["content"]["name"].as_str().unwrap_or("someone");
                    Ok(text(&format!("{name} confirmed: {}", confirmed(&go))))
                }))
            }
            _ => {
                // test_tool_with_task: input first (SEP-2322), then a task (SEP-2663).
                let responses = request.input_responses.clone().unwrap_or_default();
                let Some(answer) = accepted_form(&responses, "user_name")? else {
                    require(context, Needs::Elicitation)?;
                    let question =
                        elicit("What is your name?", json!({"name": {"type": "string"}}));
                    return ask([("user_name", question)], None);
                };
                let greeting = format!("Hello, {}!", str_of(&answer, "name"));
                Ok(self.spawn(move |_| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(text(&greeting))
                }))
            }
        }
    }

    pub fn get(&self, task_id: &str) -> Result<GetTaskResult, McpError> {
        self.manager.get_task(task_id).map(GetTaskResult::new)
    }

    pub fn update(&self, task_id: &str, responses: InputResponses) -> Result<(), McpError> {
        self.manager.update_task(task_id, responses)
    }

    pub fn cancel(&self, task_id: &str) -> Result<(), McpError> {
        self.manager.cancel_task(task_id)
    }

    /// Starts `work` as a task; the task is visible to `tasks/get` before this returns.
    fn spawn<F, Fut>(&self, work: F) -> CallToolResponse
    where
        F: FnOnce(TaskContext) -> Fut,
        Fut: Future<Output = Result<CallToolResult, TaskExit>> + Send + 'static,
    {
        let task = self
            .manager
            .spawn(TaskOptions::new(), |context| Box::pin(work(context)));
        CallToolResponse::Task(CreateTaskResult::new(task))
    }
}

fn text(message: &str) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(message)])
}

fn confirmation(message: &str) -> Result<InputRequest, McpError> {
    parse(elicit(message, json!({"confirm": {"type": "boolean"}})))
}

/// An accepted elicitation whose `confirm` field is true.
fn confirmed(answer: &Value) -> bool {
    answer["action"] == "accept" && answer["content"]["confirm"] == true
}
