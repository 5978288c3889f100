//! The violation export use-case: every counted effective-view violation of the selected
//! resources as a row (`compliance::export`), in resource-id order, with the resource's cost
//! over the cost period, the best suggested value at or above a confidence threshold and the
//! owner. Rows are produced one resource at a time and handed to the caller, so the CLI
//! streams a million-resource estate to a file and the export_violations_csv tool renders one
//! page. The same filters as the compliance question select the same violations: the row
//! count equals check_tag_compliance's `violations_total`.

use std::ops::ControlFlow;

use crate::app::costs::{CostQuality, CostsForAnswer};
use crate::app::{Call, Estate, ToolError};
use crate::compliance::Scope;
use crate::compliance::export::to_csv::CsvRows;
use crate::compliance::export::to_junit::Totals;
use crate::compliance::export::{
    ResourceFacts, Row, Suggestions, counted, owner_of, rows_of, wants_suggestion,
};
use crate::cost::CostQuery;
use crate::history::SnapshotFilters;
use crate::inventory::Resource;
use crate::policy::Severity;
use crate::service::compliance::Scoped;
use crate::service::paging::Paging;
use crate::service::suggestions::SuggestionInputs;
use crate::suggest::Suggester;

/// What to export, in plain types.
#[derive(Debug, Clone)]
pub(crate) struct ExportQuestion {
    pub scope: Scope,
    pub tag_keys: Vec<String>,
    /// Default: `low`.
    pub min_severity: Option<Severity>,
    pub force_refresh: bool,
    /// The cost period and metric (None: the source's defaults).
    pub costs: CostQuery,
    /// Look up suggested values (the statistics take a few hundred ms per 100k resources).
    pub suggestions: bool,
    /// The lowest confidence a suggested value is exported with.
    pub min_confidence: f64,
    /// Keys whose effective value is the owner, first present wins.
    pub owner_keys: Vec<String>,
}

/// An export ready to be walked: the estate, the filters applied to it, and the costs.
pub(crate) struct Export {
    pub estate: Estate,
    scoped: Scoped,
    /// Resource-level costs, when a cost source is configured and answered.
    pub costs: Option<CostsForAnswer>,
    /// Why costs are missing although a cost source is configured.
    pub cost_unavailable: Option<String>,
    inputs: Option<SuggestionInputs>,
    min_confidence: f64,
    owner_keys: Vec<String>,
    min_severity: Severity,
}

/// One selected resource and its rows.
pub(crate) struct Judged<'a> {
    pub resource: &'a Resource,
    /// False when no rule of the policy applies to its type (it then has no rows).
    pub in_scope: bool,
    pub rows: Vec<Row>,
}

/// Scans (or reuses the scan), evaluates, applies the filters and reads the costs.
pub(crate) async fn prepare(call: &Call<'_>, q: ExportQuestion) -> Result<Export, ToolError> {
    let estate = call.estate(q.force_refresh).await?;
    let min_severity = q.min_severity.unwrap_or(Severity::Low);
    let filters = SnapshotFilters {
        resource_types: q.scope.resource_types,
        regions: q.scope.regions,
        accounts: q.scope.accounts,
        tag_keys: q.tag_keys,
        min_severity,
    };
    let scoped = Scoped::new(&estate, &filters).map_err(|unknown| {
        ToolError::invalid(format!(
            "argument `tag_keys`: the policy has no key {}; its keys are: {}",
            unknown.join(", "),
            estate.policy().required_key_names().join(", ")
        ))
    })?;
    let (costs, cost_unavailable) = match call.line_costs(&q.costs, &estate, q.force_refresh).await
    {
        None => (None, None),
        Some(Ok(costs)) => (Some(costs), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let inputs = if q.suggestions {
        Some(SuggestionInputs::read(call).await?)
    } else {
        None
    };
    Ok(Export {
        estate,
        scoped,
        costs,
        cost_unavailable,
        inputs,
        min_confidence: q.min_confidence,
        owner_keys: q.owner_keys,
        min_severity,
    })
}

impl Export {
    /// Rows in all: the violations the filters count (check_tag_compliance's
    /// `violations_total` for the same filters).
    pub(crate) fn total(&self) -> usize {
        self.scoped.summary.effective.violations
    }

    /// A violation at or above this fails its resource.
    pub(crate) fn fail_threshold(&self) -> Severity {
        self.estate.policy().fail_at().max(self.min_severity)
    }

    /// How the costs were obtained, when there are costs.
    pub(crate) fn cost_quality(&self) -> Option<CostQuality> {
        self.costs
            .as_ref()
            .map(|c| CostQuality::of(&c.costs.report, c.reused))
    }

    /// The counts a JUnit suite declares before its cases.
    pub(crate) fn junit_totals(&self) -> Totals {
        let threshold = self.fail_threshold();
        let filter = &self.scoped.violation_filter;
        let mut t = Totals::default();
        let evaluations = &self.estate.evaluated.evaluations;
        for (r, e) in self
            .estate
            .inventory
            .resources
            .iter()
            .zip(evaluations.iter())
        {
            if !self.scoped.resource_filter.matches(r) {
                continue;
            }
            t.resources += 1;
            if !e.in_scope {
                t.skipped += 1;
                continue;
            }
            let failures = e
                .effective
                .iter()
                .filter(|v| v.severity >= threshold && filter.selects(v))
                .count();
            t.violations += failures;
            t.failing += usize::from(failures > 0);
        }
        t
    }

    /// Hands each selected resource with rows — or every selected resource, when
    /// `every_resource` — to `visit`, in resource-id order, starting at row `from_row` (the
    /// rows before it are skipped without being built). `visit` may stop the walk.
    pub(crate) fn walk<E>(
        &self,
        call: &Call<'_>,
        from_row: usize,
        every_resource: bool,
        mut visit: impl FnMut(Judged<'_>) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let estate = &self.estate;
        let policy = estate.policy();
        let filter = &self.scoped.violation_filter;
        let resources = &estate.inventory.resources;
        let evaluations = &estate.evaluated.evaluations;
        let suggester = match &self.inputs {
            Some(inputs) if self.total() > from_row => Some(inputs.suggester(call, estate)),
            _ => None,
        };
        let mut seen = 0usize;
        for (i, r) in resources.iter().enumerate() {
            if !self.scoped.resource_filter.matches(r) {
                continue;
            }
            let e = evaluations.get(i);
            let count = if e.in_scope {
                counted(filter, e.effective)
            } else {
                0
            };
            let before_the_start = from_row > 0 && seen + count <= from_row;
            if before_the_start || (count == 0 && !every_resource) {
                seen += count;
                continue;
            }
            let rows = if count == 0 {
                Vec::new()
            } else {
                let tags = estate.evaluated.effective_input(i, &r.tags);
                let facts = self.facts(i, r, tags, e.effective, suggester.as_ref());
                let mut rows = rows_of(policy, filter, r, tags, e.effective, &facts);
                if seen < from_row {
                    rows.drain(..from_row - seen);
                }
                rows
            };
            seen += count;
            let judged = Judged {
                resource: r,
                in_scope: e.in_scope,
                rows,
            };
            if visit(judged)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The cost, owner and suggestions of a resource that has rows.
    fn facts(
        &self,
        index: usize,
        r: &Resource,
        tags: &crate::inventory::Tags,
        violations: &[crate::policy::Violation],
        suggester: Option<&Suggester<'_>>,
    ) -> ResourceFacts {
        let policy = self.estate.policy();
        let effective = policy.effective_tags(tags);
        let filter = &self.scoped.violation_filter;
        let mut suggestions = Suggestions::new();
        if let Some(suggester) = suggester {
            let keys: Vec<String> = violations
                .iter()
                .filter(|v| filter.counts(v) && wants_suggestion(v))
                .map(|v| policy.key_name(v.key).to_string())
                .collect();
            if !keys.is_empty() {
                for s in suggester.suggest(index, &keys) {
                    if let Some(best) = s
                        .candidates
                        .first()
                        .filter(|c| c.confidence >= self.min_confidence)
                    {
                        suggestions.insert(s.key, (best.value.clone(), best.confidence));
                    }
                }
            }
        }
        ResourceFacts {
            cost: self
                .costs
                .as_ref()
                .and_then(|c| c.by_resource.get(r.id.as_str()).copied()),
            owner: owner_of(policy, &effective, &self.owner_keys),
            suggestions,
        }
    }

    /// One page of the export as CSV text (header included): up to `max_rows` rows from the
    /// cursor's position, and the cursor of the next page. `question` is the canonical form
    /// of what shapes the rows (cursors are bound to it and to the data).
    pub(crate) fn csv_page(
        &self,
        call: &Call<'_>,
        paging_name: &str,
        question: &serde_json::Value,
        cursor: Option<&str>,
        max_rows: usize,
        guard: bool,
    ) -> Result<CsvPage, ToolError> {
        let paging = Paging::new(paging_name, question, &self.estate);
        let offset = paging.offset(cursor)?;
        let broken = |e: ::csv::Error| ToolError::Internal(format!("could not write CSV: {e}"));
        let mut out = CsvRows::new(Vec::new(), guard).map_err(broken)?;
        let mut written = 0usize;
        self.walk(call, offset, false, |judged| {
            for row in &judged.rows {
                if written == max_rows {
                    return Ok(ControlFlow::Break(()));
                }
                out.row(row)?;
                written += 1;
            }
            Ok(if written == max_rows {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .map_err(broken)?;
        let bytes = out
            .finish()
            .map_err(|e| ToolError::Internal(format!("could not write CSV: {e}")))?;
        Ok(CsvPage {
            csv: String::from_utf8(bytes)
                .map_err(|_| ToolError::Internal("the CSV was not UTF-8".into()))?,
            offset,
            rows: written,
            next_cursor: paging.next(offset, written, self.total()),
        })
    }
}

/// A page of CSV.
pub(crate) struct CsvPage {
    pub csv: String,
    /// Rows before this page.
    pub offset: usize,
    /// Rows on this page.
    pub rows: usize,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::app::{App, CostSource, PolicyHolder};
    use crate::cost::demo::DemoCosts;
    use crate::inventory::demo::DemoProvider;

    fn app() -> App {
        let policy = PolicyHolder::open(None).unwrap();
        App::new(
            policy,
            Arc::new(DemoProvider::new(7, 400)),
            Duration::from_secs(3600),
        )
        .with_costs(Some(CostSource::Lines(Arc::new(DemoCosts::new(7)))))
    }

    fn question() -> ExportQuestion {
        ExportQuestion {
            scope: Scope::default(),
            tag_keys: Vec::new(),
            min_severity: None,
            force_refresh: false,
            costs: CostQuery {
                period: None,
                metric: None,
            },
            suggestions: true,
            min_confidence: 0.7,
            owner_keys: vec!["Owner".into()],
        }
    }

    fn all_rows(export: &Export, call: &Call<'_>, from: usize) -> Vec<Row> {
        let mut rows = Vec::new();
        export
            .walk(call, from, false, |j| -> Result<_, ()> {
                rows.extend(j.rows);
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        rows
    }

    #[tokio::test]
    async fn rows_are_the_counted_violations_in_id_order_and_resume_anywhere() {
        let app = app();
        let call = Call::new(&app);
        let export = prepare(&call, question()).await.unwrap();
        let rows = all_rows(&export, &call, 0);
        assert_eq!(rows.len(), export.total());
        assert!(export.total() > 100, "{}", export.total());
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.resource_id.as_str(), r.key.as_str()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "resource id, then key");
        let costs = export.costs.as_ref().unwrap();
        for r in &rows {
            let cost = costs.by_resource.get(r.resource_id.as_str()).copied();
            assert_eq!(r.monthly_cost, cost, "{}", r.resource_id);
        }
        assert!(rows.iter().any(|r| r.monthly_cost.is_some()));
        assert!(rows.iter().any(|r| r.suggestion.is_some()));
        assert!(rows.iter().any(|r| r.owner.is_some()));
        for from in [1, 2, 3, 57, rows.len() - 1, rows.len()] {
            assert_eq!(
                all_rows(&export, &call, from),
                rows[from..],
                "from row {from}"
            );
        }
        let high_only = prepare(
            &call,
            ExportQuestion {
                min_confidence: 0.999_9,
                ..question()
            },
        )
        .await
        .unwrap();
        let strict = all_rows(&high_only, &call, 0);
        assert!(
            strict
                .iter()
                .all(|r| r.suggestion.as_ref().is_none_or(|(_, c)| *c >= 0.999_9))
        );
        assert!(
            strict.iter().filter(|r| r.suggestion.is_some()).count()
                < rows.iter().filter(|r| r.suggestion.is_some()).count()
        );
    }

    #[tokio::test]
    async fn pages_of_csv_walk_every_row_once() {
        let app = app();
        let call = Call::new(&app);
        let export = prepare(&call, question()).await.unwrap();
        let q = serde_json::json!({"q": 1});
        let whole = export
            .csv_page(&call, "t", &q, None, usize::MAX, true)
            .unwrap();
        assert_eq!(whole.rows, export.total());
        assert_eq!(whole.next_cursor, None);
        let (header, body) = whole.csv.split_once("\r\n").unwrap();
        let mut joined = String::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = export
                .csv_page(&call, "t", &q, cursor.as_deref(), 37, true)
                .unwrap();
            let (h, rest) = page.csv.split_once("\r\n").unwrap();
            assert_eq!(h, header);
            assert_eq!(page.offset, pages * 37);
            joined.push_str(rest);
            pages += 1;
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(joined, body);
        assert_eq!(pages, export.total().div_ceil(37));
        let other = serde_json::json!({"q": 2});
        let e = export.csv_page(&call, "t", &other, cursor.as_deref(), 37, true);
        assert!(
            matches!(e, Err(ToolError::InvalidArgument(_))),
            "a cursor of another question"
        );
    }

    #[tokio::test]
    async fn junit_totals_add_up() {
        let app = app();
        let call = Call::new(&app);
        let export = prepare(&call, question()).await.unwrap();
        let t = export.junit_totals();
        let (mut cases, mut failing, mut skipped) = (0, 0, 0);
        export
            .walk(&call, 0, true, |j| -> Result<_, ()> {
                cases += 1;
                failing += usize::from(!j.rows.is_empty());
                skipped += usize::from(!j.in_scope);
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        assert_eq!(
            (t.resources, t.failing, t.skipped),
            (cases, failing, skipped)
        );
        assert_eq!(t.resources, 400);
        assert_eq!(
            t.violations,
            export.total(),
            "fail_at low: every violation fails"
        );
    }
}
