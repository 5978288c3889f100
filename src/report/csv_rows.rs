//! The report as CSV: one row per figure, `section,item,metric,value` — the executive summary,
//! coverage per key, each breakdown's listed groups (and `N others`), and the listed offenders.
//! A long table any spreadsheet pivots; the per-violation export is `tagwarden export
//! violations`, not this.

use crate::service::report::{Breakdown, ReportData};

struct Rows {
    w: csv::Writer<Vec<u8>>,
}

impl Rows {
    fn row(&mut self, section: &str, item: &str, metric: &str, value: impl ToString) {
        // Writing to memory fails only on a bug; the error surfaces when the buffer is taken.
        let _ = self.w.write_record([
            inert(section).as_ref(),
            inert(item).as_ref(),
            inert(metric).as_ref(),
            inert(&value.to_string()).as_ref(),
        ]);
    }

    fn opt<T: ToString>(&mut self, section: &str, item: &str, metric: &str, value: Option<T>) {
        if let Some(v) = value {
            self.row(section, item, metric, v);
        }
    }
}

pub(super) fn render(r: &ReportData) -> Result<String, String> {
    let mut out = Rows {
        w: csv::Writer::from_writer(Vec::new()),
    };
    out.row("section", "item", "metric", "value");
    let s = &r.summary;
    out.row("report", "", "generated_at", &r.generated_at);
    out.row("report", "", "source", &r.source);
    out.row("report", "", "policy_hash", &r.policy.hash);
    if let Some(p) = &r.period {
        out.row("report", "", "period_start", p.start);
        out.row("report", "", "period_end", p.end);
    }
    out.opt("summary", "", "score_pct", s.score_pct);
    out.opt("summary", "", "native_score_pct", s.native_score_pct);
    out.row("summary", "", "resources", s.resources);
    out.row("summary", "", "in_scope", s.in_scope);
    out.row("summary", "", "compliant", s.compliant);
    out.row("summary", "", "non_compliant", s.non_compliant);
    out.row("summary", "", "violations", s.violations);
    if let Some(sp) = &s.spend {
        out.row("summary", "", "currency", &sp.currency);
        out.row("summary", "", "in_scope_spend", sp.in_scope_spend);
        out.row("summary", "", "compliant_spend", sp.compliant_spend);
        out.row("summary", "", "non_compliant_spend", sp.non_compliant_spend);
        out.opt(
            "summary",
            "",
            "spend_weighted_score_pct",
            sp.spend_weighted_score_pct,
        );
        out.opt("summary", "", "total_spend", sp.total_spend);
        out.opt("summary", "", "unattributed_spend", sp.unattributed_spend);
        out.opt("summary", "", "unattributed_pct", sp.unattributed_pct);
    }
    for (name, change) in [
        ("since_previous", &s.since_previous),
        ("since_30_days", &s.since_30_days),
    ] {
        if let Some(c) = change {
            out.row("change", name, "snapshot_id", c.snapshot_id);
            out.opt(
                "change",
                name,
                "score_change_pct_points",
                c.score_change_pct_points,
            );
            out.row("change", name, "violations_change", c.violations_change);
        }
    }
    for k in &r.coverage {
        out.row("coverage", &k.key, "required", k.required);
        out.row("coverage", &k.key, "valid", k.valid);
        out.row("coverage", &k.key, "missing", k.missing);
        out.row("coverage", &k.key, "invalid", k.invalid);
        out.opt("coverage", &k.key, "coverage_pct", k.coverage_pct);
        out.opt(
            "coverage",
            &k.key,
            "attributable_spend",
            k.attributable_spend,
        );
        out.opt(
            "coverage",
            &k.key,
            "unattributable_spend",
            k.unattributable_spend,
        );
        out.opt(
            "coverage",
            &k.key,
            "spend_coverage_pct",
            k.spend_coverage_pct,
        );
        out.opt(
            "coverage",
            &k.key,
            "unattributable_after_allocation",
            k.unattributable_after_allocation,
        );
    }
    if let Some(a) = &r.allocation {
        out.row("allocation", "", "source", a.source.as_str());
        for k in &a.by_key {
            let key = &k.key;
            for (metric, value) in [
                ("total_micros", k.total_micros),
                (
                    "unattributable_before_micros",
                    k.unattributable_before_micros,
                ),
                ("allocated_micros", k.allocated_micros),
                ("unattributable_after_micros", k.unattributable_after_micros),
            ] {
                out.row("allocation", key, metric, value);
            }
            out.opt("allocation", key, "gap_pct_before", k.gap_pct_before);
            out.opt("allocation", key, "gap_pct_after", k.gap_pct_after);
        }
        for rule in &a.rules {
            out.row(
                "allocation_rule",
                &rule.name,
                "charges_micros",
                rule.charges_micros,
            );
            for p in &rule.parts {
                out.row(
                    "allocation_rule",
                    &rule.name,
                    &format!("part:{}", p.value),
                    p.amount_micros,
                );
            }
        }
    }
    for (section, b) in [
        ("by_account", &r.by_account),
        ("by_type", &r.by_type),
        ("by_region", &r.by_region),
        ("by_owner", &r.by_owner),
    ] {
        breakdown(&mut out, section, b);
    }
    for o in &r.offenders.items {
        let id = o.resource_id.as_str();
        out.row("offenders", id, "name", &o.name);
        out.row("offenders", id, "owner", &o.owner);
        out.opt("offenders", id, "cost", o.cost);
        out.row("offenders", id, "worst_severity", o.worst_severity);
        out.row("offenders", id, "violations", o.violations_total);
        if let Some(v) = o.violations.first() {
            out.row("offenders", id, "fix", &v.fix);
        }
        for s in &o.suggestions {
            out.row("offenders", id, &format!("suggested:{}", s.key), &s.value);
        }
    }
    out.row("offenders", "", "total", r.offenders.total);
    out.opt("offenders", "", "total_cost", r.offenders.total_cost);
    let bytes = out.w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// A cell a spreadsheet will not run as a formula: names and tag values come from the cloud,
/// so one starting with `=`, `+`, `-`, `@` (a negative number excepted) gets a leading `'`.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => true,
        Some(b'-') => cell[1..].parse::<f64>().is_err(),
        _ => false,
    };
    if risky {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn breakdown(out: &mut Rows, section: &str, b: &Breakdown) {
    for g in b.groups.iter().chain(b.others.iter()) {
        let n = g.name.as_str();
        out.row(section, n, "in_scope", g.in_scope);
        out.row(section, n, "non_compliant", g.non_compliant);
        out.row(section, n, "violations", g.violations);
        out.opt(section, n, "score_pct", g.score_pct);
        out.opt(section, n, "spend", g.spend);
        out.opt(section, n, "non_compliant_spend", g.non_compliant_spend);
    }
}
