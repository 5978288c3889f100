//! Daily usage costs from Cost Explorer (`GetCostAndUsage`, `DAILY` granularity), for cost
//! anomalies. Cost Explorer answers grouped figures, not resources, so a question makes a fixed
//! number of requests whatever the estate's size (each billed USD 0.01):
//!
//! 1. grouped by `SERVICE` and `LINKED_ACCOUNT` — the service and account series;
//! 2. grouped by `TAG` for each key the question needs, in the order given — that key's series
//!    (untagged spend is the `Key$` group).
//!
//! Every request is filtered to `RECORD_TYPE = Usage`: credits, refunds, taxes, support fees and
//! upfront purchases are not consumption, and their lumpy days would be false anomalies. Each
//! grouping's lines count only in their own series (`Feeds`), so no spend is counted twice.
//! They name no resources, and the tags of service and account spend are unknown.

use std::collections::BTreeMap;

use aws_sdk_costexplorer::types::{
    Dimension, DimensionValues, Expression, Granularity, GroupDefinition, GroupDefinitionType,
    ResultByTime,
};
use chrono::{Duration, NaiveDate};

use super::{Session, interval, metric_amount};
use crate::aws::summarise_sdk_error;
use crate::cost::daily::{DailyCosts, DailyLine, Feeds, days_of, settle_days};
use crate::cost::{CostError, CostLine, CostMetric, CostReport, Micros, Period};
use crate::inventory::{Provider, Tags};

/// Days asked for when the question names no period: the longest baseline (8 weeks) plus the
/// most days an anomaly question checks (90), plus the day still accruing.
pub(super) const DEFAULT_DAYS: i64 = 8 * 7 + 90 + 1;

/// The period a daily question covers: the one asked for, else the `DEFAULT_DAYS` before
/// `today` (Cost Explorer's end date is exclusive, so today, barely begun, is left out).
pub(super) fn daily_period(asked: Option<Period>, today: NaiveDate) -> Period {
    asked.unwrap_or(Period {
        start: today - Duration::days(DEFAULT_DAYS),
        end: today,
    })
}

/// The `RECORD_TYPE = Usage` filter every daily request carries.
fn usage_only() -> Expression {
    let values = DimensionValues::builder()
        .key(Dimension::RecordType)
        .values("Usage")
        .build();
    Expression::builder().dimensions(values).build()
}

/// Amounts per group label (the group's keys joined) and day, over every page.
type Grouped = BTreeMap<Vec<String>, Vec<(NaiveDate, Micros)>>;

/// One daily grouping, every page of it.
async fn fetch_daily(
    session: &Session,
    period: Period,
    metric: CostMetric,
    groups: Vec<GroupDefinition>,
    currency: &mut Option<String>,
    days_seen: &mut Vec<NaiveDate>,
) -> Result<Grouped, CostError> {
    let mut out = Grouped::new();
    let mut token: Option<String> = None;
    let interval = interval(period)?;
    loop {
        let answer = session
            .client
            .get_cost_and_usage()
            .time_period(interval.clone())
            .granularity(Granularity::Daily)
            .metrics(metric.as_str())
            .set_group_by(Some(groups.clone()))
            .filter(usage_only())
            .set_next_page_token(token.take())
            .send()
            .await
            .map_err(|e| {
                CostError::Unavailable(summarise_sdk_error(
                    "Cost Explorer GetCostAndUsage (DAILY)",
                    "us-east-1",
                    &e,
                ))
            })?;
        add_daily(
            answer.results_by_time(),
            metric,
            &mut out,
            currency,
            days_seen,
        )?;
        match answer.next_page_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

/// Adds each day's groups to `out`; every day Cost Explorer answered for is a day with data.
fn add_daily(
    results: &[ResultByTime],
    metric: CostMetric,
    out: &mut Grouped,
    currency: &mut Option<String>,
    days_seen: &mut Vec<NaiveDate>,
) -> Result<(), CostError> {
    for result in results {
        let start = result.time_period().map(|p| p.start()).unwrap_or("");
        let day = NaiveDate::parse_from_str(start, "%Y-%m-%d").map_err(|_| {
            CostError::Unavailable(format!(
                "Cost Explorer returned a day that is not a date ({start:?})"
            ))
        })?;
        days_seen.push(day);
        for group in result.groups() {
            let Some(value) = group.metrics().and_then(|m| m.get(metric.as_str())) else {
                continue;
            };
            let amount = metric_amount(value, currency, &format!("on {day}"))?;
            out.entry(group.keys().to_vec())
                .or_default()
                .push((day, amount));
        }
    }
    Ok(())
}

fn line(service: &str, account: &str, tags: Tags) -> CostLine {
    CostLine {
        resource_id: Default::default(),
        provider: Provider::Aws,
        account: account.into(),
        region: Default::default(),
        service: service.into(),
        resource_type: Default::default(),
        name: Default::default(),
        tags,
        amount: 0,
    }
}

/// Turns the groupings into daily lines: service × account lines, then each key's value lines
/// (`Key$value`; `Key$` is untagged spend, a line without the tag).
fn lines_of(by_service: Grouped, by_key: Vec<(String, Grouped)>) -> Vec<DailyLine> {
    let mut lines = Vec::new();
    for (keys, days) in by_service {
        let service = keys.first().map(String::as_str).unwrap_or("");
        let account = keys.get(1).map(String::as_str).unwrap_or("");
        lines.push(daily_line(
            line(service, account, Tags::new()),
            days,
            Feeds::ServiceAndAccount,
        ));
    }
    for (key, grouped) in by_key {
        let prefix = format!("{key}$");
        for (keys, days) in grouped {
            let raw = keys.first().map(String::as_str).unwrap_or("");
            let value = raw.strip_prefix(&prefix).unwrap_or(raw);
            let mut tags = Tags::new();
            if !value.is_empty() {
                tags.push((key.as_str().into(), value.into()));
            }
            lines.push(daily_line(
                line("", "", tags),
                days,
                Feeds::TagKey(key.clone()),
            ));
        }
    }
    lines
}

fn daily_line(mut line: CostLine, mut days: Vec<(NaiveDate, Micros)>, feeds: Feeds) -> DailyLine {
    settle_days(&mut days);
    line.amount = days
        .iter()
        .fold(0, |sum: Micros, (_, a)| sum.saturating_add(*a));
    DailyLine { line, days, feeds }
}

/// Daily usage costs of `period` for the service and account series and the series of `keys`.
pub(super) async fn daily_costs(
    session: &Session,
    period: Period,
    metric: CostMetric,
    keys: &[String],
    source: String,
) -> Result<DailyCosts, CostError> {
    let mut currency = None;
    let mut days_seen = Vec::new();
    let dimension = |d: &str| {
        GroupDefinition::builder()
            .r#type(GroupDefinitionType::Dimension)
            .key(d)
            .build()
    };
    let by_service = fetch_daily(
        session,
        period,
        metric,
        vec![dimension("SERVICE"), dimension("LINKED_ACCOUNT")],
        &mut currency,
        &mut days_seen,
    )
    .await?;
    let mut by_key = Vec::new();
    for key in keys {
        let tag = GroupDefinition::builder()
            .r#type(GroupDefinitionType::Tag)
            .key(key)
            .build();
        let grouped = fetch_daily(
            session,
            period,
            metric,
            vec![tag],
            &mut currency,
            &mut days_seen,
        )
        .await?;
        by_key.push((key.clone(), grouped));
    }
    days_seen.sort();
    days_seen.dedup();
    days_seen.retain(|d| days_of(period).any(|p| p == *d));
    let lines = lines_of(by_service, by_key);
    Ok(DailyCosts {
        lines,
        currency: currency.unwrap_or_else(|| "USD".to_string()),
        period,
        metric,
        days_with_data: days_seen,
        non_usage_rows: 0,
        report: CostReport {
            source,
            complete: true,
            api_calls: session.counter.attempts(),
            notes: vec![
                "daily usage from Cost Explorer (RECORD_TYPE Usage: credits, refunds, tax, \
                 support fees and purchases left out), grouped by service and account and by \
                 each tag key's values as billing records them: anomalies name no resources, \
                 and a service or account anomaly's untagged share is unknown"
                    .to_string(),
            ],
            ..CostReport::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, day).unwrap()
    }

    /// Each grouping's lines feed only their own series; `Key$` is a line without the tag.
    #[test]
    fn groupings_become_lines_of_their_own_series() {
        let mut by_service = Grouped::new();
        by_service.insert(
            vec!["Amazon EC2".into(), "111122223333".into()],
            vec![(d(2), 5), (d(1), 3), (d(2), 1)],
        );
        let mut team = Grouped::new();
        team.insert(vec!["Team$payments".into()], vec![(d(1), 2)]);
        team.insert(vec!["Team$".into()], vec![(d(1), 1)]);
        let lines = lines_of(by_service, vec![("Team".into(), team)]);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].feeds, Feeds::ServiceAndAccount);
        assert_eq!(lines[0].line.service, "Amazon EC2");
        assert_eq!(lines[0].line.account, "111122223333");
        assert_eq!(lines[0].days, vec![(d(1), 3), (d(2), 6)]);
        assert_eq!(lines[0].line.amount, 9);
        // BTreeMap order: `Team$` before `Team$payments`.
        assert_eq!(lines[1].feeds, Feeds::TagKey("Team".into()));
        assert!(lines[1].line.tags.is_empty());
        assert_eq!(lines[2].line.tags.len(), 1);
        assert_eq!(lines[2].line.tags[0].1, "payments");
        assert!(lines.iter().all(|l| l.line.resource_id.is_empty()));
    }

    #[test]
    fn the_default_period_covers_the_longest_question() {
        let p = daily_period(None, d(31));
        assert_eq!(p.end, d(31));
        assert_eq!(p.days(), DEFAULT_DAYS);
        let asked = Period {
            start: d(1),
            end: d(5),
        };
        assert_eq!(daily_period(Some(asked), d(31)), asked);
    }
}
