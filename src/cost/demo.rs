//! Costs of the demo estate: deterministic, resource-level, so every cost feature works
//! offline and gives the same figures on every machine.
//!
//! Each resource has a daily cost derived from its type and a hash of its id (log-uniform
//! within the type's range); a period's cost is that rate times its days. EC2 instances also
//! pay data transfer (a second service line), every account pays support (a line tied to no
//! resource), and the development account receives a promotional credit (a negative line).
//! `EffectiveCost` is `BilledCost` with a 12% commitment discount on EC2 and RDS.

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, Utc};
use compact_str::CompactString;

use super::{
    CostError, CostLine, CostMetric, CostProvider, CostQuery, CostReport, LineCosts, Micros,
    Period, choose_metric,
};
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
        resource_type: CompactString::default(),
        name: CompactString::default(),
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
}
