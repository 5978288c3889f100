//! Rendering a compliance result for people: plain text for terminals, Markdown for reports and
//! pull requests. Both read the same `ComplianceReport` the MCP tool returns.

use std::fmt::Write;

use crate::util::thousands;

use crate::app::quality::DataStatus;
use crate::compliance::GroupCount;
use crate::cost::money::format_amount;
use crate::service::compliance::ComplianceReport as Output;
use crate::service::costs::GapReport;

fn pct(p: Option<f64>) -> String {
    p.map(|v| format!("{v:.1}%"))
        .unwrap_or_else(|| "n/a".into())
}

fn status(o: &Output) -> String {
    let q = &o.data_quality;
    match q.status {
        DataStatus::Complete => "complete".into(),
        DataStatus::Partial if !q.failures.is_empty() => format!(
            "PARTIAL — {} of {} parts failed",
            q.failures.len(),
            q.parts_total
        ),
        DataStatus::Partial if !q.coverage.never_tagged_included => {
            "PARTIAL — never-tagged resources are not listed (Tagging API only)".into()
        }
        DataStatus::Partial => "PARTIAL — see the coverage warnings".into(),
    }
}

/// The coverage warnings, one paragraph each: what the answer leaves out and why.
fn warnings(o: &Output) -> impl Iterator<Item = &String> {
    o.data_quality.coverage.warnings.iter()
}

fn fixed_by_normalisation(o: &Output) -> isize {
    o.effective.compliant as isize - o.native.compliant as isize
}

pub(super) fn render_text(o: &Output, policy_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Tagwarden compliance check");
    let _ = writeln!(s, "  source  {} — {}", o.data_quality.source, status(o));
    let _ = writeln!(
        s,
        "  policy  {policy_name} (hash {}), a resource fails at {} or above",
        &o.policy_hash[..12.min(o.policy_hash.len())],
        o.fail_threshold
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Score   {} compliant on effective tags ({} of {} in-scope resources; {} resources scanned)",
        pct(o.score_pct),
        thousands(o.effective.compliant),
        thousands(o.in_scope),
        thousands(o.resources)
    );
    let _ = writeln!(
        s,
        "        {} on native tags; key and value aliases make {} more resources compliant",
        pct(o.native_score_pct),
        fixed_by_normalisation(o)
    );
    if let Some(spend) = &o.spend {
        let _ = writeln!(
            s,
            "        {} weighted by spend ({} {} of {} {} in-scope spend is on compliant resources, {} to {})",
            pct(spend.spend_weighted_score_pct),
            spend.currency,
            money(spend.compliant_spend),
            spend.currency,
            money(spend.in_scope_spend),
            spend.period.start,
            spend.period.end
        );
    }
    if let Some(why) = &o.spend_unavailable {
        let _ = writeln!(s, "        spend unknown: {why}");
    }
    let _ = writeln!(s);
    let sev = &o.by_severity;
    let _ = writeln!(
        s,
        "Violations  {} in all: critical {}, high {}, medium {}, low {}",
        thousands(o.violations_total),
        sev.critical,
        sev.high,
        sev.medium,
        sev.low
    );
    let kinds: Vec<String> = sort_desc(o.by_kind.iter().map(|(k, n)| (k.as_str().to_string(), *n)))
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(s, "  by kind   {}", kinds.join(", "));
    let keys: Vec<String> = sort_desc(o.by_key.iter().map(|(k, n)| (k.clone(), *n)))
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(s, "  by key    {}", keys.join(", "));
    let native: Vec<String> = sort_desc(
        o.native_by_kind
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), *n)),
    )
    .into_iter()
    .map(|(k, n)| format!("{k} {n}"))
    .collect();
    let _ = writeln!(
        s,
        "  native    {} in all: {}",
        thousands(o.native.violations),
        native.join(", ")
    );
    for (title, groups) in [
        ("resource type", &o.by_type),
        ("region", &o.by_region),
        ("account", &o.by_account),
    ] {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "  {:<36} {:>9} {:>10} {:>8}",
            format!("By {title}"),
            "in scope",
            "compliant",
            "score"
        );
        for g in groups.iter().take(15) {
            let _ = writeln!(
                s,
                "  {:<36} {:>9} {:>10} {:>8}",
                group_label(g),
                thousands(g.in_scope),
                thousands(g.compliant),
                pct(g.score_pct)
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Worst violations ({} of {})",
        o.violations.len(),
        thousands(o.violations_total)
    );
    for v in &o.violations {
        let d = &v.detail;
        let cost = match (v.resource_cost, &o.spend) {
            (Some(c), Some(spend)) => format!(", {} {}", spend.currency, money(c)),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<8} {} ({}, {}{cost})",
            d.severity.as_str().to_uppercase(),
            d.resource_id,
            v.resource_name,
            v.resource_type
        );
        let _ = writeln!(
            s,
            "           {} {}: {}",
            d.tag_key.as_deref().unwrap_or("tags"),
            d.kind.as_str(),
            d.fix
        );
    }
    for warning in warnings(o) {
        let _ = writeln!(s, "\nwarning: {warning}");
    }
    s
}

pub(super) fn render_markdown(o: &Output, policy_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Tag compliance\n");
    let _ = writeln!(
        s,
        "Source: {} ({}). Policy: `{policy_name}` (hash `{}`); a resource fails at **{}** or above.\n",
        o.data_quality.source,
        status(o),
        &o.policy_hash[..12.min(o.policy_hash.len())],
        o.fail_threshold
    );
    let _ = writeln!(
        s,
        "| view | score | compliant | non-compliant | violations |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (name, score) in [("effective", &o.effective), ("native", &o.native)] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            pct(score.score_pct),
            score.compliant,
            score.non_compliant,
            score.violations
        );
    }
    let _ = writeln!(
        s,
        "\n{} resources scanned, {} in scope.\n",
        o.resources, o.in_scope
    );
    let _ = writeln!(s, "## Violations by severity and kind\n");
    let sev = &o.by_severity;
    let _ = writeln!(
        s,
        "critical **{}**, high **{}**, medium **{}**, low **{}**\n",
        sev.critical, sev.high, sev.medium, sev.low
    );
    let _ = writeln!(s, "| kind | effective | native |");
    let _ = writeln!(s, "|---|---:|---:|");
    let mut kinds: Vec<_> = o.by_kind.keys().chain(o.native_by_kind.keys()).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            k.as_str(),
            o.by_kind.get(k).copied().unwrap_or(0),
            o.native_by_kind.get(k).copied().unwrap_or(0)
        );
    }
    for (title, groups) in [
        ("resource type", &o.by_type),
        ("region", &o.by_region),
        ("account", &o.by_account),
    ] {
        let _ = writeln!(s, "\n## By {title}\n");
        markdown_groups(&mut s, groups);
    }
    let _ = writeln!(
        s,
        "\n## Worst violations ({} of {})\n",
        o.violations.len(),
        o.violations_total
    );
    let _ = writeln!(s, "| severity | resource | key | kind | fix |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for v in &o.violations {
        let d = &v.detail;
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} |",
            d.severity,
            v.resource_name,
            d.tag_key.as_deref().unwrap_or("-"),
            d.kind.as_str(),
            d.fix.replace('|', "\\|")
        );
    }
    for warning in warnings(o) {
        let _ = writeln!(s, "\n> **Warning:** {warning}");
    }
    s
}

/// `111111111111 (prod)` for an account whose name is known, else the group's name.
fn group_label(g: &GroupCount) -> String {
    match &g.account_name {
        Some(n) => format!("{} ({n})", g.name),
        None => g.name.clone(),
    }
}

fn markdown_groups(s: &mut String, groups: &[GroupCount]) {
    let _ = writeln!(s, "| name | in scope | compliant | score |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for g in groups {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            group_label(g),
            g.in_scope,
            g.compliant,
            pct(g.score_pct)
        );
    }
}

fn sort_desc(items: impl Iterator<Item = (String, usize)>) -> Vec<(String, usize)> {
    let mut v: Vec<_> = items.collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// An output amount (exact to the millionth) as text, to the cent.
fn money(amount: f64) -> String {
    format_amount((amount * 1_000_000.0).round() as i64)
}

/// The dollar gap, for the end of `check`'s text output.
pub(super) fn render_gap_text(g: &GapReport) -> String {
    let mut s = String::new();
    let c = &g.currency;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Cost attribution gap  {c} {} of {c} {} ({}) cannot be allocated by tags, {} to {} ({})",
        money(g.figures.unattributable),
        money(g.total),
        pct(g.figures.gap_pct),
        g.period.start,
        g.period.end,
        g.metric.as_str()
    );
    let keys: Vec<String> = g
        .by_key
        .iter()
        .map(|k| format!("{} {c} {}", k.key, money(k.figures.unattributable)))
        .collect();
    let _ = writeln!(s, "  unattributed by key  {}", keys.join(", "));
    if let Some(a) = &g.allocation {
        let _ = writeln!(
            s,
            "  shared-cost allocation ({} rules: {})",
            a.source.as_str(),
            a.applied.join(", ")
        );
        for k in &a.by_key {
            let _ = writeln!(
                s,
                "    {}  unattributed {c} {} before ({}), {c} {} allocated, {c} {} after ({})",
                k.key,
                format_amount(k.unattributable_before_micros),
                pct(k.gap_pct_before),
                format_amount(k.allocated_micros),
                format_amount(k.unattributable_after_micros),
                pct(k.gap_pct_after)
            );
        }
        for rule in &a.rules {
            let parts: Vec<String> = rule
                .parts
                .iter()
                .map(|p| format!("{} {}", p.value, format_amount(p.amount_micros)))
                .collect();
            let _ = writeln!(
                s,
                "    rule {} onto {} ({}): {c} {} = {}",
                rule.name,
                rule.key,
                rule.method.as_str(),
                format_amount(rule.charges_micros),
                if parts.is_empty() {
                    "nothing to split".to_string()
                } else {
                    parts.join(", ")
                }
            );
        }
        for skipped in &a.skipped {
            let _ = writeln!(s, "    not applied: {} — {}", skipped.name, skipped.reason);
        }
    }
    let _ = writeln!(
        s,
        "  top unattributed resources ({} in all)",
        g.unattributed_total
    );
    for u in g.top_unattributed.iter().take(5) {
        let problems: Vec<String> = u
            .problems
            .iter()
            .map(|p| format!("{} {}", p.key, p.problem))
            .collect();
        let id = if u.resource_id.is_empty() {
            format!("(no resource: {})", u.services.join(", "))
        } else {
            u.resource_id.clone()
        };
        let _ = writeln!(
            s,
            "    {c} {:>12}  {id}  [{}]",
            money(u.cost),
            problems.join(", ")
        );
    }
    let _ = writeln!(s, "  costs from {}", g.cost_quality.source);
    if g.cost_quality.rows_skipped > 0 {
        let _ = writeln!(
            s,
            "  {} malformed cost row(s) skipped; `tagwarden cost inspect` lists them",
            g.cost_quality.rows_skipped
        );
    }
    s
}

/// The dollar gap as a Markdown section.
pub(super) fn render_gap_markdown(g: &GapReport) -> String {
    let mut s = String::new();
    let c = &g.currency;
    let _ = writeln!(s, "\n## Cost attribution gap\n");
    let _ = writeln!(
        s,
        "**{c} {}** of {c} {} ({}) cannot be allocated by tags, {} to {} ({}, {}).\n",
        money(g.figures.unattributable),
        money(g.total),
        pct(g.figures.gap_pct),
        g.period.start,
        g.period.end,
        g.metric.as_str(),
        g.cost_quality.source
    );
    let _ = writeln!(s, "| key | attributable | unattributable | gap |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for k in &g.by_key {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            k.key,
            money(k.figures.attributable),
            money(k.figures.unattributable),
            pct(k.figures.gap_pct)
        );
    }
    if let Some(a) = &g.allocation {
        let _ = writeln!(
            s,
            "\nShared-cost allocation ({} rules: {}):\n",
            a.source.as_str(),
            a.applied.join(", ")
        );
        let _ = writeln!(
            s,
            "| key | unattributed before | allocated | unattributed after | gap before | gap after |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        for k in &a.by_key {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                k.key,
                format_amount(k.unattributable_before_micros),
                format_amount(k.allocated_micros),
                format_amount(k.unattributable_after_micros),
                pct(k.gap_pct_before),
                pct(k.gap_pct_after)
            );
        }
        for skipped in &a.skipped {
            let _ = writeln!(s, "\nNot applied: {} — {}", skipped.name, skipped.reason);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
