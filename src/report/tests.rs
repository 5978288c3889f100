use super::*;
use crate::service::report::{KeyCoverage, TrendPoint};

#[test]
fn markdown_escape_neutralises_links_tables_and_html() {
    let md = |s: &str| md(Value::from(s));
    assert_eq!(md("a|b"), "a\\|b");
    assert_eq!(md("[x](http://e)"), "\\[x\\](http://e)");
    assert_eq!(md("<script>"), "&lt;script&gt;");
    assert_eq!(
        md("a\\[b"),
        "a\\\\\\[b",
        "a backslash cannot undo an escape"
    );
    assert_eq!(md("two\nlines"), "two lines");
    assert_eq!(md("plain *text* `code`"), "plain *text* `code`");
    assert_eq!(super::md(Value::from(())), "");
}

#[test]
fn number_filters() {
    assert_eq!(money(Value::from(1234.5)), "1,234.50");
    assert_eq!(money(Value::from(())), "n/a");
    assert_eq!(pct(Value::from(87.25)), "87.2%");
    assert_eq!(pct2(Value::from(87.25)), "87.25%");
    assert_eq!(pct(Value::from(())), "n/a");
    assert_eq!(num(Value::from(1234567)), "1,234,567");
    assert_eq!(num(Value::from(-1200)), "-1,200");
    assert_eq!(signed(Value::from(3)), "+3");
    assert_eq!(signed(Value::from(-2)), "-2");
    assert_eq!(signed(Value::from(1.5)), "+1.50");
    assert_eq!(signed(Value::from(())), "n/a");
}

fn coverage(
    key: &str,
    required: usize,
    valid: usize,
    missing: usize,
    invalid: usize,
) -> KeyCoverage {
    KeyCoverage {
        key: key.into(),
        required,
        valid,
        missing,
        invalid,
        coverage_pct: crate::compliance::pct(valid, required),
        attributable_spend: None,
        unattributable_spend: None,
        spend_coverage_pct: None,
        unattributable_after_allocation: None,
    }
}

#[test]
fn coverage_bars_stack_valid_invalid_missing_to_full_width() {
    let mut r = sample();
    r.coverage = vec![coverage("Owner", 4, 2, 1, 1), coverage("Env", 0, 0, 0, 0)];
    let c = charts::Charts::of(&r).coverage;
    assert_eq!(c.height, 52.0);
    let owner = &c.bars[0];
    let parts: Vec<(f64, f64, &str)> = owner
        .segments
        .iter()
        .map(|s| (s.x, s.width, s.class))
        .collect();
    let w = charts::BAR_WIDTH;
    assert_eq!(
        parts,
        [
            (0.0, w / 2.0, "ok"),
            (w / 2.0, w / 4.0, "invalid"),
            (w * 0.75, w / 4.0, "missing")
        ]
    );
    assert_eq!(owner.text, "50.0%");
    assert!(c.bars[1].segments.is_empty());
    assert_eq!(c.bars[1].text, "not required");
}

#[test]
fn trend_needs_two_scored_points_and_maps_100_to_the_top() {
    let mut r = sample();
    let point = |day: &str, score: Option<f64>| TrendPoint {
        period: day.into(),
        score_pct: score,
        spend_score_pct: None,
    };
    r.trend = vec![point("2026-11-01", Some(50.0)), point("2026-11-02", None)];
    assert!(charts::Charts::of(&r).trend.is_none());
    r.trend.push(point("2026-11-03", Some(100.0)));
    let t = charts::Charts::of(&r).trend.unwrap();
    assert_eq!(t.line, "44,94 628,10");
    assert_eq!(
        (t.first.as_str(), t.last.as_str()),
        ("2026-11-01", "2026-11-03")
    );
    assert_eq!(t.dots[1].title, "2026-11-03: 100.00%");
}

#[test]
fn html_escapes_and_markdown_renders_an_empty_report() {
    let mut r = sample();
    r.source = "<script>alert(1)</script>".into();
    let html = render(&r, ReportFormat::Html).unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    let at = html.find(r#"id="score""#).expect("the score element");
    assert!(
        html[at..].starts_with(r#"id="score" data-score="">n&#x2f;a<"#),
        "{}",
        &html[at..at + 60]
    );
    let md = render(&r, ReportFormat::Markdown).unwrap();
    assert!(
        md.contains("from &lt;script&gt;alert(1)&lt;/script&gt;."),
        "{md}"
    );
    let csv = render(&r, ReportFormat::Csv).unwrap();
    assert!(csv.starts_with("section,item,metric,value\n"), "{csv}");
    assert!(
        csv.contains("report,,source,<script>alert(1)</script>\n"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(&r, ReportFormat::Json).unwrap()).unwrap();
    assert_eq!(json["source"], "<script>alert(1)</script>");
}

#[test]
fn csv_cells_never_start_a_formula() {
    let mut r = sample();
    r.source = "=cmd()".into();
    r.policy.hash = "-x".into();
    let csv = render(&r, ReportFormat::Csv).unwrap();
    assert!(csv.contains("report,,source,'=cmd()\n"), "{csv}");
    assert!(csv.contains("report,,policy_hash,'-x\n"), "{csv}");
    assert!(csv.contains("summary,,resources,0\n"), "{csv}");
}

/// A report of nothing: every list empty, nothing scored.
fn sample() -> ReportData {
    serde_json::from_value(serde_json::json!({
        "generated_at": "2026-12-01T00:00:00Z",
        "source": "test",
        "policy": {"name": "p.json", "hash": "abcdef0123456789", "fail_at": "low", "required_keys": []},
        "scope": {"resource_types": [], "regions": [], "accounts": []},
        "period": null,
        "summary": {"score_pct": null, "native_score_pct": null, "resources": 0, "in_scope": 0,
                    "compliant": 0, "non_compliant": 0, "violations": 0,
                    "by_severity": {"critical": 0, "high": 0, "medium": 0, "low": 0},
                    "spend": null, "spend_unavailable": null, "since_previous": null,
                    "since_30_days": null},
        "trend": [],
        "coverage": [],
        "by_account": {"dimension": "account", "groups": [], "groups_total": 0, "others": null},
        "by_type": {"dimension": "resource type", "groups": [], "groups_total": 0, "others": null},
        "by_region": {"dimension": "region", "groups": [], "groups_total": 0, "others": null},
        "by_owner": {"dimension": "Owner", "groups": [], "groups_total": 0, "others": null},
        "offenders": {"ranked_by": "severity", "items": [], "total": 0, "total_cost": null,
                      "listed_cost": null},
        "notes": [],
        "data_quality": {"status": "complete", "source": "test", "resources_scanned": 0,
            "failures": [], "parts_total": 1, "api_calls": 0, "retries": 0,
            "parts_from_shared_cache": 0, "duplicates_dropped": 0,
            "fetched_at": "2026-12-01T00:00:00Z",
            "cache": {"hit": false, "age_seconds": 0, "layer": "fresh_scan", "result": "not_cached",
                      "shared_cache": "not_configured"},
            "coverage": {"complete": true, "never_tagged_included": true, "sources": [], "warnings": []}},
        "cost_quality": null
    }))
    .expect("a valid empty report")
}
