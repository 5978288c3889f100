//! The console's pages: each asks the tools an assistant would ask (through the guard, as the
//! viewer) and renders their answers; the queue's form decides through `review_virtual_tags`.
//! Filters and paging are GET query parameters, so every page is a link and works without
//! JavaScript.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::Value as Jv;
use serde_json::{Value, json};

use super::{ConsoleError, ConsoleState, Viewer, check_write, field, fields};

/// Rows per page of the resource and queue lists.
const PAGE: u32 = 50;

type St = State<Arc<ConsoleState>>;
type Me = Extension<Viewer>;

fn query(request: &Request) -> Vec<(String, String)> {
    fields(request.uri().query().unwrap_or_default().as_bytes())
}

/// A non-empty, trimmed query value.
fn param(q: &[(String, String)], name: &str) -> Option<String> {
    field(q, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn list(v: Option<String>) -> Value {
    json!(v.into_iter().collect::<Vec<_>>())
}

/// A tool's answer as a template value.
fn jv(v: &Value) -> Jv {
    Jv::from(minijinja::value::Serde(v))
}

/// The answer as a template value, or the tool's error as text for the page to show.
fn shown(r: Result<Value, ConsoleError>) -> (Jv, Option<String>) {
    match r {
        Ok(v) => (jv(&v), None),
        Err(e) => (Jv::from(()), Some(e.to_string())),
    }
}

fn fail(state: &ConsoleState, me: &Viewer, e: ConsoleError) -> Response {
    state.error(Some(me), StatusCode::BAD_GATEWAY, &e.to_string())
}

/// `/ui`: scores and counts (check_tag_compliance), per-key coverage, per-team bars and the
/// top offenders with cost (generate_compliance_report's data), the cost gap before and after
/// virtual tags (get_cost_attribution_gap).
pub(super) async fn overview(State(state): St, Extension(me): Me) -> Response {
    let check = match state
        .tool(&me, "check_tag_compliance", json!({"limit": 0}))
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(&state, &me, e),
    };
    let report = state
        .tool(
            &me,
            "generate_compliance_report",
            json!({"format": "json", "top": 10}),
        )
        .await
        .and_then(|r| {
            let text = r["content"].as_str().unwrap_or_default();
            serde_json::from_str::<Value>(text)
                .map_err(|e| ConsoleError::Tool(format!("the report's data did not parse: {e}")))
        });
    let (report, report_error) = shown(report);
    let (gap, gap_error) = shown(state.tool(&me, "get_cost_attribution_gap", json!({})).await);
    state.page(
        Some(&me),
        "overview.html.j2",
        context! {
            nav => "overview",
            check => jv(&check),
            report, report_error, gap, gap_error,
        },
    )
}

/// `/ui/resources`: the violations of the filtered resources (account, type, region, key),
/// worst first, paged with check_tag_compliance's cursor.
pub(super) async fn resources(State(state): St, Extension(me): Me, request: Request) -> Response {
    let q = query(&request);
    let (account, rtype, region, key) = (
        param(&q, "account"),
        param(&q, "type"),
        param(&q, "region"),
        param(&q, "key"),
    );
    let mut args = json!({
        "accounts": list(account.clone()),
        "resource_types": list(rtype.clone()),
        "regions": list(region.clone()),
        "tag_keys": list(key.clone()),
        "limit": PAGE,
    });
    if let Some(cursor) = param(&q, "cursor") {
        args["cursor"] = json!(cursor);
    }
    let (answer, error) = shown(state.tool(&me, "check_tag_compliance", args).await);
    // The filter choices: the whole estate's accounts, types, regions and keys.
    let (all, _) = shown(
        state
            .tool(&me, "check_tag_compliance", json!({"limit": 0}))
            .await,
    );
    state.page(
        Some(&me),
        "resources.html.j2",
        context! {
            nav => "resources",
            answer, error, all,
            filter => context! { account, rtype, region, key },
        },
    )
}

/// `/ui/resource?id=…`: native and effective tags and violations (validate_resource_tags),
/// suggestions (suggest_tags) and every virtual tag of the resource (review_virtual_tags).
pub(super) async fn resource(State(state): St, Extension(me): Me, request: Request) -> Response {
    let q = query(&request);
    let Some(id) = param(&q, "id") else {
        return state.error(
            Some(&me),
            StatusCode::BAD_REQUEST,
            "which resource? open it from the resources list (?id=ARN)",
        );
    };
    resource_page(&state, &me, id).await
}

/// `/ui/resources/{id}`: the same page, the id (an ARN, slashes and all) in the path.
pub(super) async fn resource_at(
    State(state): St,
    Extension(me): Me,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    resource_page(&state, &me, id).await
}

async fn resource_page(state: &ConsoleState, me: &Viewer, id: String) -> Response {
    let (state, me) = (state, me.clone());
    let validated = match state
        .tool(
            &me,
            "validate_resource_tags",
            json!({"resource_ids": [id.clone()]}),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(state, &me, e),
    };
    let (suggested, suggest_error) = shown(
        state
            .tool(&me, "suggest_tags", json!({"resource_ids": [id.clone()]}))
            .await,
    );
    let (virtual_tags, virtual_error) = shown(
        state
            .tool(
                &me,
                "review_virtual_tags",
                json!({"filter": {
                    "statuses": ["pending", "approved", "denied", "superseded", "promoted"],
                    "resource_ids": [id.clone()],
                }, "limit": 100}),
            )
            .await,
    );
    state.page(
        Some(&me),
        "resource.html.j2",
        context! {
            nav => "resources",
            id,
            validated => jv(&validated),
            suggested, suggest_error, virtual_tags, virtual_error,
        },
    )
}

/// `/ui/queue`: pending virtual tags, paged, with per-row and bulk approve/deny for approvers.
pub(super) async fn queue(State(state): St, Extension(me): Me, request: Request) -> Response {
    let q = query(&request);
    let offset: u32 = param(&q, "offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let answer = match state
        .tool(
            &me,
            "review_virtual_tags",
            json!({"limit": PAGE, "offset": offset}),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(&state, &me, e),
    };
    state.page(
        Some(&me),
        "queue.html.j2",
        context! {
            nav => "queue",
            answer => jv(&answer),
            offset,
            page => PAGE,
            // Only what the decide handler itself puts in the redirect: a crafted link must
            // not make the console show text of its choosing.
            done => param(&q, "done").filter(|d| d == "approved" || d == "denied"),
            decided => param(&q, "decided").and_then(|n| n.parse::<u64>().ok()),
        },
    )
}

/// `POST /ui/queue`: approve or deny the checked tags (`action` + `id`s) or one row's (`one` =
/// `approve:ID` / `deny:ID`), with the form's `reason`. CSRF and origin first, then the role
/// (a viewer is refused here, before any tool runs; the guard would refuse too), then
/// review_virtual_tags through the guard — audited with the principal like any other call.
pub(super) async fn decide(
    State(state): St,
    Extension(me): Me,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = fields(&body);
    if let Some(refusal) = check_write(&state, &me, &headers, &form) {
        return refusal;
    }
    if !me.can_decide() {
        return state.error(
            Some(&me),
            StatusCode::FORBIDDEN,
            &format!(
                "refused: approving and denying virtual tags needs the approver role; {} is a {}",
                me.principal.id, me.principal.role
            ),
        );
    }
    let (action, ids) = match field(&form, "one").and_then(|o| o.split_once(':')) {
        Some((action, id)) => (action.to_string(), vec![id.to_string()]),
        None => (
            field(&form, "action").unwrap_or_default().to_string(),
            form.iter()
                .filter(|(k, _)| k == "id")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
    };
    if !matches!(action.as_str(), "approve" | "deny") {
        return state.error(Some(&me), StatusCode::BAD_REQUEST, "say approve or deny");
    }
    let ids: Result<Vec<i64>, _> = ids.iter().map(|i| i.parse::<i64>()).collect();
    let ids = match ids {
        Ok(ids) if !ids.is_empty() => ids,
        _ => {
            return state.error(
                Some(&me),
                StatusCode::BAD_REQUEST,
                "choose the tags to decide (tick their boxes), or use a row's own button",
            );
        }
    };
    let reason = field(&form, "reason")
        .unwrap_or_default()
        .trim()
        .to_string();
    let args = json!({"action": action, "ids": ids, "reason": reason});
    match state.tool(&me, "review_virtual_tags", args).await {
        Ok(answer) => {
            let n = answer["total"].as_u64().unwrap_or(0);
            let done = if action == "approve" {
                "approved"
            } else {
                "denied"
            };
            Redirect::to(&format!("/ui/queue?done={done}&decided={n}")).into_response()
        }
        Err(e) => state.error(Some(&me), StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// `/ui/rules`: the tag rules with their counters and what they would set now (test).
pub(super) async fn rules(State(state): St, Extension(me): Me) -> Response {
    let (rules, rules_error) = shown(
        state
            .tool(&me, "manage_tag_rules", json!({"action": "list"}))
            .await,
    );
    let (test, test_error) = shown(
        state
            .tool(
                &me,
                "manage_tag_rules",
                json!({"action": "test", "limit": 20}),
            )
            .await,
    );
    state.page(
        Some(&me),
        "rules.html.j2",
        context! { nav => "rules", rules, rules_error, test, test_error },
    )
}

/// `/ui/history`: the snapshots and score trend (get_violation_history), and the drift
/// between two chosen snapshots (detect_tag_drift), both given as `from` and `to`.
pub(super) async fn history(State(state): St, Extension(me): Me, request: Request) -> Response {
    let q = query(&request);
    let days: u32 = param(&q, "days")
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=400).contains(d))
        .unwrap_or(90);
    let (history, history_error) = shown(
        state
            .tool(
                &me,
                "get_violation_history",
                json!({"days_back": days, "top_violations": 10}),
            )
            .await,
    );
    let from = param(&q, "from").and_then(|v| v.parse::<i64>().ok());
    let to = param(&q, "to").and_then(|v| v.parse::<i64>().ok());
    let (drift, drift_error) = match from {
        Some(from) => {
            let mut args = json!({"from_snapshot": from, "limit": 50});
            if let Some(to) = to {
                args["to_snapshot"] = json!(to);
            }
            shown(state.tool(&me, "detect_tag_drift", args).await)
        }
        None => (Jv::from(()), None),
    };
    state.page(
        Some(&me),
        "history.html.j2",
        context! {
            nav => "history", days, from, to,
            history, history_error, drift, drift_error,
        },
    )
}

/// `/ui/costs`: the cost gap grouped by `group` (service, account, region, resource type, or
/// a tag key's values).
pub(super) async fn costs(State(state): St, Extension(me): Me, request: Request) -> Response {
    let q = query(&request);
    let group = param(&q, "group").unwrap_or_else(|| "service".into());
    let tag_key = param(&q, "tag_key");
    let mut args = json!({"group_by": group, "top": 20});
    if let Some(k) = &tag_key {
        args["tag_key"] = json!(k);
    }
    let (gap, error) = shown(state.tool(&me, "get_cost_attribution_gap", args).await);
    state.page(
        Some(&me),
        "costs.html.j2",
        context! { nav => "costs", group, tag_key, gap, error },
    )
}
