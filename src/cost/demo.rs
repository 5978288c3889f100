//! Costs of the demo estate: deterministic, resource-level, so every cost feature works
//! offline and gives the same figures on every machine.
//!
//! Each resource has a daily cost derived from its type and a hash of its id (log-uniform
//! within the type's range); a period's cost is that rate times its days. EC2 instances also
//! pay data transfer (a second service line), every account pays support (a line tied to no
//! resource), and the development account receives a promotional credit (a negative line).
//! `EffectiveCost` is `BilledCost` with a 12% commitment discount on EC2 and RDS.

use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use compact_str::CompactString;

use super::{
    CostError, CostLine, CostMetric, CostProvider, CostQuery, CostReport, LineCosts, Micros,
    Period, choose_metric,
};
use crate::cost::daily::{DailyCosts, DailyLine};
use crate::inventory::{Provider, Resource, Tags};

const METRICS: &[CostMetric] = &[CostMetric::BilledCost, CostMetric::EffectiveCost];

pub(crate) struct DemoCosts {
    seed: u64,
}

impl DemoCosts {
    pub(crate) fn new(seed: u64) -> DemoCosts {
        DemoCosts { seed }
    }
}

#[async_trait]
impl CostProvider for DemoCosts {
    fn describe(&self) -> String {
        format!("demo estate costs (seed {})", self.seed)
    }

    fn metrics(&self) -> &'static [CostMetric] {
        METRICS
    }

    fn version(&self) -> String {
        format!("demo:{}", self.seed)
    }

    async fn line_costs(
        &self,
        query: &CostQuery,
        resources: &[Resource],
    ) -> Result<LineCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, "the demo estate")?;
        let period = query
            .period
            .unwrap_or_else(|| default_period(Utc::now().date_naive()));
        let costs = demo_line_costs(self.seed, resources, period, metric, self.describe());
        costs.check_sums()?;
        Ok(costs)
    }

    async fn daily_costs(
        &self,
        query: &CostQuery,
        _tag_keys: &[String],
        resources: &[Resource],
    ) -> Result<DailyCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, "the demo estate")?;
        let today = Utc::now().date_naive();
        let period = query.period.unwrap_or(Period {
            start: today - Duration::days(DAILY_DAYS),
            end: today + Duration::days(1),
        });
        Ok(demo_daily_costs(
            self.seed,
            resources,
            period,
            metric,
            self.describe(),
        ))
    }
}

/// Days of daily demo costs by default: 10 weeks up to today.
const DAILY_DAYS: i64 = 70;

/// Planted spikes: (days before the period's last day, extra cost on one resource as a % of
/// the estate's usual daily usage spend) — a runaway job, a forgotten load test.
pub(crate) const PLANTED_SPIKES: [(i64, i64); 3] = [(2, 25), (5, 12), (9, 6)];

/// Share of a day's cost the period's last day has (it is still accruing).
const LAST_DAY_SHARE_PCT: i64 = 40;

/// The demo's daily usage costs (pure): each line's rate, with weekly seasonality (compute and
/// functions cost 40% less on weekends), a small deterministic day-to-day wobble (±3% on
/// compute, databases and functions; storage and support are flat), three planted spikes on
/// the costliest-rate resources whose hash picks them (`PLANTED_SPIKES`), and a last day that
/// is only 40% in (an export's incomplete day). The promotional credit is not usage and is
/// left out. Period totals (`demo_line_costs`) stay rate × days: the daily view is its own.
pub(crate) fn demo_daily_costs(
    seed: u64,
    resources: &[Resource],
    period: Period,
    metric: CostMetric,
    source: String,
) -> DailyCosts {
    let one_day = Period {
        start: period.start,
        end: period.start + Duration::days(1),
    };
    let rates = demo_line_costs(seed, resources, one_day, metric, String::new());
    let last = period.end - Duration::days(1);
    let days: Vec<NaiveDate> = crate::cost::daily::days_of(period).collect();
    // Spiking lines: by hash among resource lines of at least $5 a day, one per planted day.
    let mut candidates: Vec<(u64, usize)> = rates
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.resource_id.is_empty() && l.amount >= 5_000_000)
        .map(|(i, l)| {
            (
                hash(seed ^ 0xa11e, &format!("{}|{}", l.resource_id, l.service)),
                i,
            )
        })
        .collect();
    candidates.sort_unstable();
    let usual: Micros = rates.lines.iter().map(|l| l.amount.max(0)).sum();
    let spikes: Vec<(usize, NaiveDate, Micros)> = candidates
        .iter()
        .zip(PLANTED_SPIKES)
        .map(|(&(_, line), (back, pct))| (line, last - Duration::days(back), usual * pct / 100))
        .collect();
    let lines = rates
        .lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.amount > 0)
        .map(|(i, line)| {
            let kind = line.resource_type.split(':').next().unwrap_or_default();
            let seasonal = matches!(kind, "ec2" | "lambda") && line.resource_type != "ec2:volume";
            let wobbles = matches!(kind, "ec2" | "rds" | "lambda" | "elasticache");
            let day_costs: Vec<(NaiveDate, Micros)> = days
                .iter()
                .map(|&day| {
                    let mut amount = line.amount;
                    if seasonal && day.weekday().number_from_monday() >= 6 {
                        amount = amount * 60 / 100;
                    }
                    if wobbles {
                        let wobble = (hash(seed ^ 0xd1ce, &format!("{}|{day}", line.resource_id))
                            % 61) as i64
                            - 30;
                        amount += amount * wobble / 1000;
                    }
                    if let Some((_, _, extra)) =
                        spikes.iter().find(|(l, d, _)| *l == i && *d == day)
                    {
                        amount += extra;
                    }
                    if day == last {
                        amount = amount * LAST_DAY_SHARE_PCT / 100;
                    }
                    (day, amount)
                })
                .collect();
            DailyLine {
                line: CostLine {
                    amount: day_costs.iter().map(|(_, a)| a).sum(),
                    ..line
                },
                days: day_costs,
                feeds: super::daily::Feeds::All,
            }
        })
        .collect();
    DailyCosts {
        lines,
        currency: "USD".to_string(),
        period,
        metric,
        days_with_data: days,
        non_usage_rows: 0,
        report: CostReport {
            source,
            complete: true,
            notes: vec![format!(
                "generated daily costs: each resource's rate with weekly seasonality, a small \
                 wobble and {} planted spikes; the last day is only {LAST_DAY_SHARE_PCT}% in, \
                 as in a billing export",
                PLANTED_SPIKES.len()
            )],
            ..CostReport::default()
        },
    }
}

/// The last 30 complete days before `today`.
pub(crate) fn default_period(today: NaiveDate) -> Period {
    Period {
        start: today - Duration::days(30),
        end: today,
    }
}

/// The demo's cost lines for `resources` over `period` (pure).
pub fn demo_line_costs(
    seed: u64,
    resources: &[Resource],
    period: Period,
    metric: CostMetric,
    source: String,
) -> LineCosts {
    let days = period.days().max(0);
    let mut lines = Vec::new();
    let mut accounts: Vec<(&str, &str)> = Vec::new();
    for r in resources {
        if !accounts.iter().any(|(a, _)| *a == r.account.as_str()) {
            accounts.push((r.account.as_str(), r.region.as_str()));
        }
        let Some((service, low, high)) = price_band(&r.resource_type) else {
            continue;
        };
        let daily = daily_micros(seed, &r.id, low, high);
        let discounted = metric == CostMetric::EffectiveCost
            && matches!(r.resource_type.split(':').next(), Some("ec2" | "rds"));
        let daily = if discounted { daily * 88 / 100 } else { daily };
        lines.push(line_for(r, service, daily * days));
        if r.resource_type == "ec2:instance" {
            // Data transfer: 3–12% of the instance's compute.
            let share = 3 + (hash(seed ^ 0x5eed, &r.id) % 10) as i64;
            lines.push(line_for(r, "AWS Data Transfer", daily * share / 100 * days));
        }
    }
    accounts.sort_unstable();
    for (i, (account, _)) in accounts.iter().enumerate() {
        lines.push(account_line(
            account,
            "AWS Support (Business)",
            12_500_000 * days,
        ));
        if i + 1 == accounts.len() {
            lines.push(account_line(
                account,
                "AWS Promotional Credit",
                -4_000_000 * days,
            ));
        }
    }
    lines.retain(|l| l.amount != 0);
    lines.sort_by(|a, b| {
        a.resource_id
            .cmp(&b.resource_id)
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.account.cmp(&b.account))
    });
    LineCosts {
        report: CostReport {
            source,
            complete: true,
            notes: vec![format!(
                "generated costs: each resource's daily rate times the {days} days of the period"
            )],
            ..CostReport::default()
        },
        lines,
        currency: "USD".to_string(),
        period,
        metric,
    }
}

fn line_for(r: &Resource, service: &str, amount: Micros) -> CostLine {
    CostLine {
        resource_id: r.id.clone(),
        provider: r.provider,
        account: r.account.clone(),
        region: r.region.clone(),
        service: service.into(),
        resource_type: r.resource_type.clone(),
        name: r.name.clone(),
        tags: r.tags.clone(),
        amount,
    }
}

fn account_line(account: &str, service: &str, amount: Micros) -> CostLine {
    CostLine {
        resource_id: CompactString::default(),
        provider: Provider::Aws,
        account: account.into(),
        region: "global".into(),
        service: service.into(),
        resource_type: arcstr::ArcStr::new(),
        name: arcstr::ArcStr::new(),
        tags: Tags::new(),
        amount,
    }
}

/// Billing service and daily cost range (USD) per type; free types (security groups) have no
/// line.
fn price_band(resource_type: &str) -> Option<(&'static str, f64, f64)> {
    Some(match resource_type {
        "ec2:instance" => ("Amazon Elastic Compute Cloud", 2.0, 40.0),
        "ec2:volume" => ("Amazon Elastic Compute Cloud", 0.3, 5.0),
        "ec2:snapshot" => ("Amazon Elastic Compute Cloud", 0.05, 1.0),
        "rds:db" => ("Amazon Relational Database Service", 5.0, 60.0),
        "elasticache:cluster" => ("Amazon ElastiCache", 3.0, 30.0),
        "elasticloadbalancing:loadbalancer" => ("Elastic Load Balancing", 0.6, 3.0),
        "lambda:function" => ("AWS Lambda", 0.01, 3.0),
        "logs:log-group" => ("AmazonCloudWatch", 0.05, 2.0),
        "s3:bucket" => ("Amazon Simple Storage Service", 0.1, 20.0),
        "dynamodb:table" => ("Amazon DynamoDB", 0.5, 15.0),
        "sqs:queue" => ("Amazon Simple Queue Service", 0.01, 0.5),
        "sns:topic" => ("Amazon Simple Notification Service", 0.01, 0.2),
        "kms:key" => ("AWS Key Management Service", 0.033, 0.033),
        _ => return None,
    })
}

/// Log-uniform in `[low, high]` from the id's hash, to the micro-unit.
fn daily_micros(seed: u64, id: &str, low: f64, high: f64) -> Micros {
    let unit = (hash(seed, id) % 1_000_000) as f64 / 1_000_000.0;
    let value = low * (high / low).powf(unit);
    (value * 1_000_000.0).round() as Micros
}

/// FNV-1a of the id, mixed with the seed: stable across platforms and versions.
fn hash(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::demo::generate;

    fn period() -> Period {
        Period {
            start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        }
    }

    #[test]
    fn costs_are_deterministic_and_scale_with_days() {
        let estate = generate(42, 500);
        let a = demo_line_costs(
            42,
            &estate.resources,
            period(),
            CostMetric::BilledCost,
            "d".into(),
        );
        let b = demo_line_costs(
            42,
            &estate.resources,
            period(),
            CostMetric::BilledCost,
            "d".into(),
        );
        assert_eq!(a, b);
        let one_day = Period {
            start: period().start,
            end: period().start + Duration::days(1),
        };
        let c = demo_line_costs(
            42,
            &estate.resources,
            one_day,
            CostMetric::BilledCost,
            "d".into(),
        );
        assert_eq!(a.lines.len(), c.lines.len());
        for (x, y) in a.lines.iter().zip(&c.lines) {
            assert_eq!(x.amount, y.amount * 31, "{}", x.resource_id);
        }
        assert!(a.total() > 0);
    }

    #[test]
    fn lines_cover_services_credits_and_resource_less_charges() {
        let estate = generate(42, 500);
        let costs = demo_line_costs(
            42,
            &estate.resources,
            period(),
            CostMetric::BilledCost,
            "d".into(),
        );
        assert!(costs.lines.iter().any(|l| l.amount < 0), "a credit");
        assert!(
            costs.lines.iter().any(|l| l.resource_id.is_empty()),
            "support"
        );
        let transfer = costs
            .lines
            .iter()
            .find(|l| l.service == "AWS Data Transfer")
            .expect("data transfer line");
        let services: Vec<&str> = costs
            .lines
            .iter()
            .filter(|l| l.resource_id == transfer.resource_id)
            .map(|l| l.service.as_str())
            .collect();
        assert_eq!(
            services,
            vec!["AWS Data Transfer", "Amazon Elastic Compute Cloud"]
        );
        // Security groups are free: no line.
        assert!(
            costs
                .lines
                .iter()
                .all(|l| l.resource_type != "ec2:security-group")
        );
    }

    #[test]
    fn effective_cost_discounts_compute_only() {
        let estate = generate(42, 300);
        let billed = demo_line_costs(
            42,
            &estate.resources,
            period(),
            CostMetric::BilledCost,
            "d".into(),
        );
        let effective = demo_line_costs(
            42,
            &estate.resources,
            period(),
            CostMetric::EffectiveCost,
            "d".into(),
        );
        for (b, e) in billed.lines.iter().zip(&effective.lines) {
            assert_eq!(b.resource_id, e.resource_id);
            if b.resource_type.starts_with("s3:") {
                assert_eq!(b.amount, e.amount);
            }
            if b.resource_type == "rds:db" {
                assert!(e.amount < b.amount);
            }
        }
    }

    /// Daily demo costs: deterministic, seasonal, the credit left out, the last day partial,
    /// and the planted spikes on their days.
    #[test]
    fn daily_costs_plant_spikes_and_a_partial_last_day() {
        let estate = generate(42, 500);
        let period = Period {
            start: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
        };
        let daily = |seed| {
            demo_daily_costs(
                seed,
                &estate.resources,
                period,
                CostMetric::BilledCost,
                "d".into(),
            )
        };
        let a = daily(42);
        assert_eq!(a, daily(42));
        assert_eq!(a.days_with_data.len(), 70);
        assert!(a.lines.iter().all(|l| l.line.amount > 0), "no credit");
        let series = a.series(a.lines.iter());
        let values: Vec<Micros> = series.values.iter().map(|v| v.unwrap()).collect();
        let last = values.len() - 1;
        // The last day is 40% in.
        assert!(
            values[last] * 2 < values[last - 7],
            "{} {}",
            values[last],
            values[last - 7]
        );
        // Each planted day is above the same weekday two weeks before (-2 and -9 are a week
        // apart) by about its share.
        let usual: Micros = demo_line_costs(
            42,
            &estate.resources,
            Period {
                start: period.start,
                end: period.start + Duration::days(1),
            },
            CostMetric::BilledCost,
            "d".into(),
        )
        .lines
        .iter()
        .map(|l| l.amount.max(0))
        .sum();
        for (back, pct) in PLANTED_SPIKES {
            let i = last - back as usize;
            let rise = values[i] - values[i - 14];
            let planted = usual * pct / 100;
            assert!(
                (rise - planted).abs() * 20 < planted,
                "day -{back}: rise {rise}, planted {planted}"
            );
        }
        // Weekends are quieter than the weekdays around them.
        let saturday = (0..7)
            .find(|i| {
                (period.start + Duration::days(*i))
                    .weekday()
                    .number_from_monday()
                    == 6
            })
            .unwrap() as usize;
        assert!(values[saturday] < values[saturday - 1]);
    }
}
