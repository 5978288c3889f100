use super::*;

/// Every `name="value"` label pair of the rendered text.
fn label_values(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(open) = line.find('{') else { continue };
        let Some(close) = line.rfind('}') else {
            continue;
        };
        for pair in line[open + 1..close].split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').expect("a label is key=value");
            pairs.push((key.to_string(), value.trim_matches('"').to_string()));
        }
    }
    pairs
}

#[test]
fn nothing_recorded_shows_build_info_and_no_gauge_value() {
    let m = Metrics::new();
    let text = m.render();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains(&format!(
        "tagwarden_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    // Gauges without a value yet are absent, not a misleading 0.
    assert!(!text.contains("tagwarden_compliance_score_ratio{"));
    assert!(!text.contains("\ntagwarden_unattributed_cost_ratio "));
    assert!(
        text.contains("tagwarden_cost_explorer_charge_usd_total 0"),
        "{text}"
    );
}

#[test]
fn recordings_become_series_with_exact_values() {
    let m = Metrics::new();
    let check = ToolName::registered("check_tag_compliance");
    m.tool_call(check, ToolOutcome::Ok, Duration::from_millis(3));
    m.tool_call(check, ToolOutcome::Ok, Duration::from_millis(40));
    m.tool_call(ToolName::OTHER, ToolOutcome::ToolError, Duration::ZERO);
    m.guard_refusal(GuardName::Budget);
    m.cloud_request(
        CloudProvider::Aws,
        CloudOperation::from_sdk("GetCostAndUsage"),
        CloudOutcome::of_status(Some(200)),
    );
    m.cloud_request(
        CloudProvider::Aws,
        CloudOperation::from_sdk("GetResources"),
        CloudOutcome::of_status(Some(429)),
    );
    m.scan(InventorySource::Demo, Duration::from_millis(20));
    m.cache_lookup(CacheLayer::InProcess, CacheResult::Miss);
    m.compliance_score_pct(ScoreView::Effective, 62.5);
    m.compliance_score_pct(ScoreView::Native, 140.0);
    m.unattributed_cost_pct(12.0);
    m.audit_queue_depth(3);
    let text = m.render();
    for line in [
        "tagwarden_tool_calls_total{tool=\"check_tag_compliance\",outcome=\"ok\"} 2",
        "tagwarden_tool_calls_total{tool=\"other\",outcome=\"tool_error\"} 1",
        "tagwarden_tool_call_duration_seconds_count{tool=\"check_tag_compliance\",outcome=\"ok\"} 2",
        "tagwarden_guard_refusals_total{guard=\"budget\"} 1",
        "tagwarden_cloud_requests_total{provider=\"aws\",operation=\"GetCostAndUsage\",outcome=\"ok\"} 1",
        "tagwarden_cloud_requests_total{provider=\"aws\",operation=\"GetResources\",outcome=\"throttled\"} 1",
        "tagwarden_cost_explorer_charge_usd_total 0.01",
        "tagwarden_scan_duration_seconds_count{source=\"demo\"} 1",
        "tagwarden_cache_lookups_total{layer=\"in_process\",result=\"miss\"} 1",
        "tagwarden_compliance_score_ratio{view=\"effective\"} 0.625",
        "tagwarden_compliance_score_ratio{view=\"native\"} 1.0",
        "tagwarden_unattributed_cost_ratio 0.12",
        "tagwarden_audit_queue_depth 3",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

/// What a client or the cloud can choose (an operation name, a status) never reaches a label:
/// every label value rendered is one of the closed sets, whatever was recorded.
#[test]
fn no_label_value_is_a_free_string() {
    let m = Metrics::new();
    let hostile = [
        "arn:aws:s3:::secret-bucket",
        "Bearer s3cr3t-token",
        "GetResources\"} 1\nfake_metric 1",
        "",
        "getresources",
    ];
    for name in hostile {
        let op = CloudOperation::from_sdk(name);
        assert_eq!(op, CloudOperation::Other, "{name}");
        m.cloud_request(CloudProvider::Aws, op, CloudOutcome::of_status(Some(500)));
    }
    for status in [
        None,
        Some(0),
        Some(204),
        Some(403),
        Some(429),
        Some(503),
        Some(999),
    ] {
        m.cloud_request(
            CloudProvider::Aws,
            CloudOperation::ListAccounts,
            CloudOutcome::of_status(status),
        );
    }
    for op in CloudOperation::ALL {
        m.cloud_request(CloudProvider::Aws, *op, CloudOutcome::Ok);
    }
    for g in GuardName::ALL {
        m.guard_refusal(*g);
    }
    for s in InventorySource::ALL {
        m.scan(*s, Duration::from_secs(1));
    }
    for l in CacheLayer::ALL {
        for r in CacheResult::ALL {
            m.cache_lookup(*l, *r);
        }
    }
    for v in ScoreView::ALL {
        m.compliance_score_pct(*v, f64::NAN);
    }
    for o in ToolOutcome::ALL {
        m.tool_call(
            ToolName::registered("get_tagging_policy"),
            *o,
            Duration::ZERO,
        );
        m.tool_call(ToolName::OTHER, *o, Duration::ZERO);
    }

    let closed: Vec<&str> = [
        ToolOutcome::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>(),
        GuardName::ALL.iter().map(|v| v.as_str()).collect(),
        CloudProvider::ALL.iter().map(|v| v.as_str()).collect(),
        CloudOperation::ALL.iter().map(|v| v.as_str()).collect(),
        CloudOutcome::ALL.iter().map(|v| v.as_str()).collect(),
        InventorySource::ALL.iter().map(|v| v.as_str()).collect(),
        CacheLayer::ALL.iter().map(|v| v.as_str()).collect(),
        CacheResult::ALL.iter().map(|v| v.as_str()).collect(),
        ScoreView::ALL.iter().map(|v| v.as_str()).collect(),
        vec![
            "get_tagging_policy",
            ToolName::OTHER.as_str(),
            env!("CARGO_PKG_VERSION"),
        ],
    ]
    .concat();
    let text = m.render();
    let pairs = label_values(&text);
    assert!(pairs.len() > 50, "{text}");
    for (key, value) in pairs {
        // Histogram buckets carry their bound.
        if key == "le" {
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{value}");
            continue;
        }
        assert!(
            closed.contains(&value.as_str()),
            "free label value {key}={value:?}"
        );
    }
    assert!(!text.contains("secret") && !text.contains("fake_metric"));
    assert!(text.contains("tagwarden_compliance_score_ratio{view=\"native\"} 0.0"));
}

#[test]
fn outcomes_of_statuses() {
    assert_eq!(CloudOutcome::of_status(None), CloudOutcome::NoResponse);
    assert_eq!(CloudOutcome::of_status(Some(200)), CloudOutcome::Ok);
    assert_eq!(CloudOutcome::of_status(Some(429)), CloudOutcome::Throttled);
    assert_eq!(
        CloudOutcome::of_status(Some(400)),
        CloudOutcome::ClientError
    );
    assert_eq!(
        CloudOutcome::of_status(Some(503)),
        CloudOutcome::ServerError
    );
    assert_eq!(ratio(-3.0), 0.0);
    assert_eq!(ratio(50.0), 0.5);
}
