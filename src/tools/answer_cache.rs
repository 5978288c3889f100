//! Cached answers of read-only tools. The key is the SHA-256 of the tool name, the canonical
//! arguments (without `force_refresh`/`store_snapshot`), the policy hash, a content hash of the
//! virtual tags in effect, the inventory's content hash, the cost data's version and the stored
//! allocation rules (which the cost gap applies when a question gives none) — so a policy
//! change, a virtual-tag change, a rescan that found different data, new costs or a changed
//! allocation rule simply asks for another key. A cached answer gets the current `data_quality` (its data is the same; its
//! freshness and cache facts are now), and its `cost_quality` says no cost request was made.

use serde_json::Value;

use super::{Call, CallFn, ToolError};
use crate::app::Estate;
use crate::app::quality::CacheInfo;

/// Arguments that change how an answer is obtained, not what it is.
const NOT_PART_OF_THE_QUESTION: [&str; 2] = ["force_refresh", "store_snapshot"];

pub(super) async fn cached_call(
    tool: &str,
    run: CallFn,
    call: &Call<'_>,
    args: Value,
) -> Result<Value, ToolError> {
    let flag = |name: &str| args.get(name).and_then(Value::as_bool) == Some(true);
    let force = flag("force_refresh");
    let writes = flag("store_snapshot");
    let estate = call.estate(force).await?;
    let (cache, ttl) = call.answer_cache();
    let rules = stored_rules_fingerprint(call).await;
    let key = answer_key(call, tool, &args, &estate, &rules);
    if !force
        && !writes
        && !ttl.is_zero()
        && let Some(hit) = cache.get(&key, ttl).await
    {
        match serde_json::from_slice::<Value>(&hit.value) {
            Ok(mut answer) => {
                stamp(&mut answer, call, &estate, "hit", Some(hit.layer));
                return Ok(answer);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable cached answer ignored"),
        }
    }
    let mut answer = run(call, args).await?;
    let outcome = if force || writes { "bypassed" } else { "miss" };
    // Stored as the tool made it: a hit gets its data_quality stamped when it is served.
    if !writes && !ttl.is_zero() {
        match serde_json::to_vec(&answer) {
            Ok(bytes) => cache.put(&key, &bytes, ttl).await,
            Err(e) => tracing::warn!(error = %e, "answer not cached"),
        }
    }
    // After storing, so the shared cache's state is reported as of now.
    stamp(&mut answer, call, &estate, outcome, None);
    Ok(answer)
}

/// The stored allocation rules by content (empty without a store). A store that cannot be read
/// gives a key of its own; the tool's own read then reports the failure (errors are not cached).
async fn stored_rules_fingerprint(call: &Call<'_>) -> String {
    let Some(store) = call.allocation_rules() else {
        return String::new();
    };
    match store.list().await {
        Ok(rows) => {
            let specs: Vec<(&str, &str)> = rows
                .iter()
                .map(|r| (r.name.as_str(), r.spec.as_str()))
                .collect();
            serde_json::to_string(&specs).unwrap_or_default()
        }
        Err(e) => {
            tracing::warn!(error = %e, "stored allocation rules unreadable");
            format!("unreadable:{}", uuid::Uuid::new_v4())
        }
    }
}

fn answer_key(
    call: &Call<'_>,
    tool: &str,
    args: &Value,
    estate: &Estate,
    allocation_rules: &str,
) -> String {
    let mut question = args.clone();
    if let Some(map) = question.as_object_mut() {
        for name in NOT_PART_OF_THE_QUESTION {
            map.remove(name);
        }
    }
    call.answer_cache().0.key(
        "answer",
        &[
            tool.as_bytes(),
            crate::util::canonical_json(&question).as_bytes(),
            estate.policy().hash().as_bytes(),
            // The virtual tags this answer was evaluated with (not the store's latest
            // generation, which may have moved meanwhile), by content.
            estate.evaluated.overlay.fingerprint.as_bytes(),
            estate.inventory_version.as_bytes(),
            call.costs_version().as_bytes(),
            allocation_rules.as_bytes(),
        ],
    )
}

/// Replaces the answer's `data_quality` with the current one and records how the answer was
/// obtained. Answers without `data_quality` (none of the data was read) are left alone.
fn stamp(
    answer: &mut Value,
    call: &Call<'_>,
    estate: &Estate,
    outcome: &str,
    layer: Option<crate::cache::Layer>,
) {
    let Some(slot) = answer.get_mut("data_quality").filter(|v| !v.is_null()) else {
        return;
    };
    let mut quality = call.data_quality(estate);
    quality.cache = CacheInfo {
        hit: quality.cache.hit || outcome == "hit",
        result: outcome.to_string(),
        result_layer: layer,
        ..quality.cache
    };
    if let Ok(v) = serde_json::to_value(quality) {
        *slot = v;
    }
    if outcome == "hit" {
        for costs in cost_quality_blocks(answer) {
            costs.insert("api_calls".into(), 0.into());
            costs.insert("estimated_api_charge_usd".into(), 0.0.into());
            costs.insert("cached".into(), true.into());
        }
    }
}

/// The `cost_quality` blocks of an answer (top level, or inside `spend`).
fn cost_quality_blocks(answer: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let Some(map) = answer.as_object_mut() else {
        return Vec::new();
    };
    let mut blocks = Vec::new();
    for (name, value) in map.iter_mut() {
        let block = match name.as_str() {
            "cost_quality" => Some(value),
            "spend" => value.get_mut("cost_quality"),
            _ => None,
        };
        if let Some(Value::Object(b)) = block {
            blocks.push(b);
        }
    }
    blocks
}
