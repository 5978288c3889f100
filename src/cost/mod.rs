//! Cost data: what each resource (or each resource-less charge) cost in a period, from one of
//! three sources behind one trait — FOCUS CSV files (any cloud), the demo estate's generated
//! costs, and AWS Cost Explorer — and the pure attribution of that spend to tags
//! (`attribution`).
//!
//! Amounts are integer micro-units of the currency (`Micros`), so sums are exact and the parts
//! of a total always add up to it; they become decimal numbers only in outputs. Every source
//! keeps the absolute values of one answer's amounts within `Micros` (`LineCosts::check_sums`),
//! which is what makes every sum of them exact (`money` explains why).

pub(crate) mod allocation;
pub(crate) mod anomaly;
pub(crate) mod attribution;
pub(crate) mod daily;
pub(crate) mod demo;
pub(crate) mod explorer;
pub(crate) mod focus;
pub(crate) mod money;

use async_trait::async_trait;
use chrono::NaiveDate;
use compact_str::CompactString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::inventory::{Provider, Resource, Tags, id, index_of};

pub(crate) use money::{Magnitude, Micros, micros_to_amount, parse_micros};

/// A half-open range of days, `[start, end)`, as Cost Explorer takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Period {
    /// First day included (YYYY-MM-DD).
    pub start: NaiveDate,
    /// First day *not* included (YYYY-MM-DD).
    pub end: NaiveDate,
}

impl Period {
    /// Days in the period (`end` is exclusive).
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// Whether a day (`YYYY-MM-DD…`, as FOCUS and Cost Explorer write dates) falls inside.
    /// Compares the first ten characters as text: ISO dates sort as text.
    pub fn contains_day_text(&self, day: &str) -> bool {
        let Some(day) = day.get(..10) else {
            return false;
        };
        let (start, end) = (self.start.to_string(), self.end.to_string());
        day >= start.as_str() && day < end.as_str()
    }
}

/// Which cost figure is used. Cost Explorer offers the first three, FOCUS files the last two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CostMetric {
    /// Cost Explorer: what was charged, without spreading up-front fees (default there).
    UnblendedCost,
    /// Cost Explorer: reservation and savings-plan fees spread over the usage they cover.
    AmortizedCost,
    /// Cost Explorer: amortized, after discounts.
    NetAmortizedCost,
    /// FOCUS: what was invoiced for the line (default for files and the demo).
    BilledCost,
    /// FOCUS: amortized cost after discounts and commitments.
    EffectiveCost,
}

impl CostMetric {
    /// The metric's name as Cost Explorer spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CostMetric::UnblendedCost => "UnblendedCost",
            CostMetric::AmortizedCost => "AmortizedCost",
            CostMetric::NetAmortizedCost => "NetAmortizedCost",
            CostMetric::BilledCost => "BilledCost",
            CostMetric::EffectiveCost => "EffectiveCost",
        }
    }
}

/// One line of spend: one resource in one service (or a charge tied to no resource, such as
/// support, tax or an account-level credit), summed over the period. A resource billed under
/// several services has several lines; no spend is in two lines.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    /// The resource's id (ARN for AWS, the provider's id otherwise); empty when the charge is
    /// tied to no resource.
    pub resource_id: CompactString,
    pub provider: Provider,
    pub account: arcstr::ArcStr,
    pub region: arcstr::ArcStr,
    /// The service the spend is billed under (`Amazon Elastic Compute Cloud`, ...).
    pub service: CompactString,
    /// Canonical `service:kind` when the source tells (from the id), else empty.
    pub resource_type: arcstr::ArcStr,
    /// Display name when the source gives one, else empty.
    pub name: arcstr::ArcStr,
    /// Tags the cost source carries for the line (FOCUS `Tags`), normalised: used when the
    /// resource is not in the inventory (another cloud's resources come only from cost files).
    pub tags: Tags,
    pub amount: Micros,
}

impl CostLine {
    /// The line seen as a resource, for evaluating its own tags when the inventory does not
    /// hold it.
    pub fn as_resource(&self) -> Resource {
        Resource {
            id: self.resource_id.clone(),
            provider: self.provider,
            account: self.account.clone(),
            region: self.region.clone(),
            resource_type: self.resource_type.clone(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            attributes: Default::default(),
        }
    }
}

/// A row of a cost file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RowProblem {
    /// File name (no directories).
    pub file: String,
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// How reading costs went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    /// What the costs came from (`FOCUS file(s) a.csv`, `demo estate costs`, `AWS Cost
    /// Explorer`).
    pub source: String,
    /// True when every row or request was read; false when rows were skipped or a request
    /// failed (see `problems` and `notes`).
    pub complete: bool,
    /// Rows read from cost files (0 for other sources).
    pub rows_read: u64,
    /// Of those, rows inside the period and used.
    pub rows_used: u64,
    /// Rows skipped as malformed (each is in `problems`, up to the first 50).
    pub rows_skipped: u64,
    pub problems: Vec<RowProblem>,
    /// Cost Explorer requests made for this answer (each is billed by AWS).
    pub api_calls: u64,
    /// What else the user should know about these figures (fallbacks, limits).
    pub notes: Vec<String>,
}

/// Resource-level costs for a period.
#[derive(Debug, Clone, PartialEq)]
pub struct LineCosts {
    pub lines: Vec<CostLine>,
    /// ISO 4217 code of every amount (`USD`).
    pub currency: String,
    /// The period the lines cover.
    pub period: Period,
    pub metric: CostMetric,
    pub report: CostReport,
}

impl LineCosts {
    /// The sum of every line: exact, since the lines passed `check_sums`.
    pub fn total(&self) -> Micros {
        self.lines.iter().map(|l| l.amount).sum()
    }

    /// Refuses lines whose absolute values add up beyond what `Micros` holds: no sum of them
    /// (total, group, key, resource) could then be trusted. Every source calls it on what it
    /// returns.
    pub fn check_sums(&self) -> Result<(), CostError> {
        Magnitude::of(self.lines.iter().map(|l| l.amount))
            .map(|_| ())
            .map_err(|e| {
                CostError::TooLarge(format!(
                    "costs from {}: {e}; check the source's amounts (a unit or decimal-point \
                     error?) or ask for a shorter period",
                    self.report.source
                ))
            })
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CostError {
    /// The question cannot be asked of this source (wrong metric, bad period, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read cost file {file}: {reason}")]
    FileRead { file: String, reason: String },
    #[error("cost file {file} is not a FOCUS export: {reason}")]
    FileFormat { file: String, reason: String },
    /// The cost source could not answer (Cost Explorer down, not enabled, ...).
    #[error("{0}")]
    Unavailable(String),
    /// Amounts too large to total exactly (the message names the file or source): refused
    /// rather than summed into a wrong figure.
    #[error("{0}")]
    TooLarge(String),
}

/// What to read: a period (None: everything the source has — whole files; sources that need a
/// period use the default) and a metric (None: the source's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CostQuery {
    pub period: Option<Period>,
    pub metric: Option<CostMetric>,
}

/// A source of resource-level costs. Implementations do I/O; attribution is pure.
#[async_trait]
pub trait CostProvider: Send + Sync {
    /// What the costs come from, for `data_quality`.
    fn describe(&self) -> String;
    /// The metrics this source offers, default first.
    fn metrics(&self) -> &'static [CostMetric];
    /// Changes whenever the data may have changed (file sizes and times, the day): part of
    /// cached answers' keys.
    fn version(&self) -> String;
    /// Resource-level costs of the period; `resources` is the inventory (the demo prices it).
    /// The lines pass `LineCosts::check_sums` (else `CostError::TooLarge`).
    async fn line_costs(
        &self,
        query: &CostQuery,
        resources: &[Resource],
    ) -> Result<LineCosts, CostError>;

    /// Usage costs per line and day (for anomalies). Sources without daily figures say so.
    /// `tag_keys` are the keys whose series the question needs: a grouped source (Cost
    /// Explorer) asks for each; resource-level sources carry every line's tags anyway.
    async fn daily_costs(
        &self,
        _query: &CostQuery,
        _tag_keys: &[String],
        _resources: &[Resource],
    ) -> Result<daily::DailyCosts, CostError> {
        Err(CostError::Unavailable(format!(
            "{} gives no daily costs yet, so cost anomalies cannot be found from it; give FOCUS \
             cost files (--cost FILE) or use the demo's costs (--demo alone)",
            self.describe()
        )))
    }
}

/// Finds inventory resources by the id billing uses: the full ARN, or its last segment
/// (`i-0abc...` for `arn:aws:ec2:...:instance/i-0abc...`). Azure ids match in any case (cost
/// exports often lowercase them); GCP resources also match by their relative name
/// (`projects/p/zones/z/instances/vm-1`) and by the other ids their inventory gave
/// (`Attributes::alt_ids`: the full name with the numeric id, as Cloud Billing writes Compute
/// Engine resources). AWS ids never reach those lookups: an exact or short id finds them.
pub(crate) struct ResourceIndex<'a> {
    by_short: rustc_hash::FxHashMap<&'a str, &'a Resource>,
    /// Azure join keys (lower case), GCP relative names and alternative ids. Empty for an
    /// AWS-only inventory.
    by_alias: rustc_hash::FxHashMap<CompactString, &'a Resource>,
    resources: &'a [Resource],
}

impl<'a> ResourceIndex<'a> {
    pub(crate) fn new(resources: &'a [Resource]) -> ResourceIndex<'a> {
        let by_short = resources
            .iter()
            .filter_map(|r| {
                r.id.rsplit(['/', ':'])
                    .next()
                    .filter(|s| !s.is_empty())
                    .map(|s| (s, r))
            })
            .collect();
        let mut by_alias = rustc_hash::FxHashMap::default();
        for r in resources {
            match r.provider {
                Provider::Azure => {
                    if let Some(key) = id::azure::join_key(&r.id) {
                        by_alias.entry(key.into()).or_insert(r);
                    }
                }
                Provider::Gcp => {
                    if let Some(relative) = id::gcp::relative_name(&r.id) {
                        by_alias.entry(relative.into()).or_insert(r);
                    }
                    for alt in &r.attributes.alt_ids {
                        by_alias.entry(alt.clone()).or_insert(r);
                        if let Some(relative) = id::gcp::relative_name(alt) {
                            by_alias.entry(relative.into()).or_insert(r);
                        }
                    }
                }
                Provider::Aws | Provider::File => {}
            }
        }
        ResourceIndex {
            by_short,
            by_alias,
            resources,
        }
    }

    pub(crate) fn find(&self, id: &str) -> Option<&'a Resource> {
        index_of(self.resources, id)
            .map(|i| &self.resources[i])
            .or_else(|| self.by_short.get(id).copied())
            .or_else(|| self.find_alias(id))
    }

    /// The Azure or GCP resource `id` names in another form (case, relative name, numeric id).
    fn find_alias(&self, id: &str) -> Option<&'a Resource> {
        if self.by_alias.is_empty() {
            return None;
        }
        match id::azure::join_key(id) {
            Some(key) => self.by_alias.get(key.as_str()).copied(),
            None => self.by_alias.get(id).copied(),
        }
    }
}

/// Points each line at the inventory's resource when the cost source names it by its short id
/// (`i-0abc…`, a bucket name) rather than the ARN, so lines join the inventory (its tags,
/// virtual tags, money on findings) whatever the export's habit.
pub(crate) fn join_to_inventory(lines: &mut [CostLine], resources: &[Resource]) {
    let index = ResourceIndex::new(resources);
    for line in lines.iter_mut().filter(|l| !l.resource_id.is_empty()) {
        if let Some(r) = index.find(&line.resource_id)
            && r.id != line.resource_id
        {
            line.resource_id = r.id.clone();
            line.resource_type = r.resource_type.clone();
            if line.account.is_empty() {
                line.account = r.account.clone();
            }
            if line.region.is_empty() {
                line.region = r.region.clone();
            }
        }
    }
}

/// Checks `metric` against what a source offers and gives the one to use.
pub(crate) fn choose_metric(
    offered: &'static [CostMetric],
    asked: Option<CostMetric>,
    source: &str,
) -> Result<CostMetric, CostError> {
    match asked {
        None => Ok(offered[0]),
        Some(m) if offered.contains(&m) => Ok(m),
        Some(m) => Err(CostError::Invalid(format!(
            "argument `metric`: {} is not available from {source}; use one of {}",
            m.as_str(),
            offered
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Attributes, Attrs};

    fn resource(id: &str, provider: Provider, alt_ids: &[&str]) -> Resource {
        Resource {
            id: id.into(),
            provider,
            account: "a".into(),
            region: "r".into(),
            resource_type: "t:x".into(),
            name: "n".into(),
            tags: Tags::new(),
            attributes: Attrs::from(Attributes {
                alt_ids: alt_ids.iter().map(|a| CompactString::from(*a)).collect(),
                ..Attributes::default()
            }),
        }
    }

    fn line(id: &str) -> CostLine {
        CostLine {
            resource_id: id.into(),
            provider: Provider::File,
            account: arcstr::ArcStr::new(),
            region: arcstr::ArcStr::new(),
            service: "s".into(),
            resource_type: arcstr::ArcStr::new(),
            name: arcstr::ArcStr::new(),
            tags: Tags::new(),
            amount: 1,
        }
    }

    const VM: &str =
        "/subscriptions/Sub-1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/Vm-1";
    const GCE: &str = "//compute.googleapis.com/projects/p/zones/z/instances/web-1";

    /// Cost ids in other forms join the inventory's resource: Azure ids in any case, GCP
    /// relative names and numeric ids; AWS ids only exactly or by their last segment.
    #[test]
    fn ids_in_other_forms_join_the_inventory() {
        let mut resources = vec![
            resource(VM, Provider::Azure, &[]),
            resource(
                GCE,
                Provider::Gcp,
                &["//compute.googleapis.com/projects/p/zones/z/instances/8812"],
            ),
            resource(
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
                Provider::Aws,
                &[],
            ),
        ];
        crate::inventory::sort_and_dedupe(&mut resources);
        let mut lines: Vec<CostLine> = [
            VM.to_ascii_lowercase().as_str(),
            VM.to_ascii_uppercase().as_str(),
            "projects/p/zones/z/instances/web-1",
            "//compute.googleapis.com/projects/p/zones/z/instances/8812",
            "projects/p/zones/z/instances/8812",
            "i-0abc",
            "ARN:AWS:EC2:US-EAST-1:111122223333:INSTANCE/I-0ABC",
            "//compute.googleapis.com/projects/p/zones/z/instances/WEB-1",
        ]
        .into_iter()
        .map(line)
        .collect();
        join_to_inventory(&mut lines, &resources);
        let ids: Vec<&str> = lines.iter().map(|l| l.resource_id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                VM,
                VM,
                GCE,
                GCE,
                GCE,
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
                "ARN:AWS:EC2:US-EAST-1:111122223333:INSTANCE/I-0ABC",
                "//compute.googleapis.com/projects/p/zones/z/instances/WEB-1",
            ],
            "ARNs and GCP names stay case-sensitive"
        );
        assert_eq!(lines[0].resource_type, "t:x", "the inventory's type");
        assert_eq!(lines[0].account, "a");
    }
}
