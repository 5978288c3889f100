//! FOCUS cost files: CSV exports in the FinOps Open Cost and Usage Specification (1.x), from any
//! cloud, read into resource-level cost lines.
//!
//! Files are streamed row by row into an aggregate keyed by (resource, service), so memory grows
//! with the number of distinct resources, not with the size of the export. A malformed row is
//! skipped and reported with its file and line, never silently dropped and never fatal; a file
//! that cannot be read at all (missing, not CSV, no required columns) is an error naming it.
//! So are amounts too large to total exactly (their absolute values adding up beyond what
//! `Micros` holds): the read stops at the row that crosses the bound, naming file and line,
//! rather than give a wrapped total. A single amount beyond the bound is a malformed row.

use arcstr::ArcStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use compact_str::CompactString;
use csv::ByteRecord;
use rustc_hash::FxHashMap;

use super::money::{AmountError, parse_amount};
use super::{
    CostError, CostLine, CostMetric, CostProvider, CostQuery, CostReport, LineCosts, Magnitude,
    Micros, Period, RowProblem, choose_metric,
};
use crate::inventory::{Provider, Resource, Tags, id, normalise_tags};

/// The metrics a FOCUS export carries; `BilledCost` (what was invoiced) is the default.
const METRICS: &[CostMetric] = &[CostMetric::BilledCost, CostMetric::EffectiveCost];

/// Problems kept for the report: enough to diagnose an export, small enough for any output.
const MAX_PROBLEMS: usize = 50;

/// FOCUS requires `BillingCurrency`; exports trimmed to a few columns often drop it, and USD is
/// by far the most common billing currency.
const DEFAULT_CURRENCY: &str = "USD";

/// Values quoted in problem reasons are cut to this many characters, so a corrupt row cannot
/// flood the report.
const SHOWN_CHARS: usize = 60;

/// Resource-level costs from FOCUS CSV files.
pub(crate) struct FocusProvider {
    paths: Vec<PathBuf>,
}

impl FocusProvider {
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        FocusProvider { paths }
    }
}

/// The file name only: outputs never reveal the server's directory layout.
fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cost file".to_string())
}

fn file_names(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| display_name(p)).collect();
    names.join(", ")
}

fn describe_files(paths: &[PathBuf]) -> String {
    format!("FOCUS file(s) {}", file_names(paths))
}

#[async_trait]
impl CostProvider for FocusProvider {
    fn describe(&self) -> String {
        describe_files(&self.paths)
    }

    fn metrics(&self) -> &'static [CostMetric] {
        METRICS
    }

    /// Name, size and modification time of every file: any rewrite of an export changes it.
    fn version(&self) -> String {
        let parts: Vec<String> = self
            .paths
            .iter()
            .map(|p| {
                let name = display_name(p);
                match std::fs::metadata(p) {
                    Ok(m) => {
                        let mtime = m
                            .modified()
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_nanos());
                        format!("{name}:{}:{mtime}", m.len())
                    }
                    Err(_) => format!("{name}:unreadable"),
                }
            })
            .collect();
        parts.join(";")
    }

    async fn line_costs(
        &self,
        query: &CostQuery,
        _resources: &[Resource],
    ) -> Result<LineCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, &self.describe())?;
        let paths = self.paths.clone();
        let period = query.period;
        tokio::task::spawn_blocking(move || read_focus_files(&paths, metric, period))
            .await
            .map_err(|e| CostError::FileRead {
                file: file_names(&self.paths),
                reason: format!("the reader task failed: {e}"),
            })?
    }

    async fn daily_costs(
        &self,
        query: &CostQuery,
        _tag_keys: &[String],
        _resources: &[Resource],
    ) -> Result<crate::cost::daily::DailyCosts, CostError> {
        let metric = choose_metric(METRICS, query.metric, &self.describe())?;
        let paths = self.paths.clone();
        let period = query.period;
        tokio::task::spawn_blocking(move || daily::read_focus_daily(&paths, metric, period))
            .await
            .map_err(|e| CostError::FileRead {
                file: file_names(&self.paths),
                reason: format!("the reader task failed: {e}"),
            })?
    }
}

/// Reads FOCUS files into one set of cost lines (rows of all files are summed together).
pub(crate) fn read_focus_files(
    paths: &[PathBuf],
    metric: CostMetric,
    period: Option<Period>,
) -> Result<LineCosts, CostError> {
    if paths.is_empty() {
        return Err(CostError::Invalid(
            "no FOCUS files to read; name at least one CSV cost export".to_string(),
        ));
    }
    let mut aggregate = FocusAggregate::new();
    for path in paths {
        let name = display_name(path);
        let file = open(path, &name)?;
        read_focus(file, &name, metric, period, &mut aggregate)?;
    }
    Ok(aggregate.finish(metric, period, describe_files(paths)))
}

fn open(path: &Path, name: &str) -> Result<File, CostError> {
    let fail = |reason: String| CostError::FileRead {
        file: name.to_string(),
        reason,
    };
    if path.is_dir() {
        return Err(fail(
            "it is a directory; name the CSV files themselves".to_string(),
        ));
    }
    File::open(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file (check the path)".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        })
    })
}

/// Where each column we use sits in one file's rows.
struct Columns {
    resource_id: usize,
    resource_name: Option<usize>,
    amount: usize,
    currency: Option<usize>,
    day: usize,
    service: usize,
    region: Option<usize>,
    account: Option<usize>,
    provider: Option<usize>,
    /// `ServiceProviderName` (FOCUS 1.2), used when `ProviderName` is absent or empty.
    provider_alt: Option<usize>,
    tags: Option<usize>,
    /// `ChargeCategory` (Usage, Purchase, Tax, Credit, Adjustment): daily series keep Usage.
    charge_category: Option<usize>,
    /// `ChargeFrequency` (One-Time, Recurring, Usage-Based): daily series drop One-Time.
    charge_frequency: Option<usize>,
    /// Fields in the header: a row with another count was split or quoted wrongly.
    width: usize,
}

impl Columns {
    fn find(header: &ByteRecord, file: &str, amount_column: &str) -> Result<Columns, CostError> {
        let format_error = |reason: String| CostError::FileFormat {
            file: file.to_string(),
            reason,
        };
        let first = header.get(0).unwrap_or_default();
        if header.is_empty() || (header.len() == 1 && first.trim_ascii().is_empty()) {
            return Err(format_error(
                "the file is empty; expected a FOCUS CSV export with a header row".to_string(),
            ));
        }
        if first.starts_with(&[0x1f, 0x8b]) {
            return Err(format_error(
                "the file is gzip-compressed; decompress it first (gunzip)".to_string(),
            ));
        }
        if first.starts_with(b"PAR1") {
            return Err(format_error(
                "the file is Parquet; export the FOCUS data as CSV".to_string(),
            ));
        }
        let mut names = Vec::with_capacity(header.len());
        for field in header {
            let name = std::str::from_utf8(field).map_err(|_| {
                format_error(
                    "the header row is not UTF-8 text; save the export as UTF-8 CSV".to_string(),
                )
            })?;
            names.push(name.trim_start_matches('\u{feff}').trim());
        }
        let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
        let mut missing = Vec::new();
        let mut required = |wanted: &'static str| {
            find(wanted).unwrap_or_else(|| {
                missing.push(wanted);
                0
            })
        };
        let resource_id = required("ResourceId");
        let day = required("ChargePeriodStart");
        let service = required("ServiceName");
        let amount = required(match amount_column {
            "EffectiveCost" => "EffectiveCost",
            _ => "BilledCost",
        });
        if !missing.is_empty() {
            let mut found: Vec<String> = names
                .iter()
                .take(30)
                .map(|n| clipped(n.as_bytes(), 40))
                .collect();
            if names.len() > 30 {
                found.push(format!("... ({} in all)", names.len()));
            }
            return Err(format_error(format!(
                "missing required column(s) {} (columns found: {}); export FOCUS 1.x cost data, \
                 whose header names ResourceId, ChargePeriodStart, ServiceName, BilledCost and \
                 EffectiveCost",
                missing.join(", "),
                found.join(", ")
            )));
        }
        Ok(Columns {
            resource_id,
            resource_name: find("ResourceName"),
            amount,
            currency: find("BillingCurrency"),
            day,
            service,
            region: find("RegionId").or_else(|| find("Region")),
            account: find("SubAccountId"),
            provider: find("ProviderName"),
            provider_alt: find("ServiceProviderName"),
            tags: find("Tags"),
            charge_category: find("ChargeCategory"),
            charge_frequency: find("ChargeFrequency"),
            width: names.len(),
        })
    }
}

/// The spend of one resource: its facts (from its first row) and an amount per service.
struct ResourceSpend {
    /// Everything but `service` and `amount`.
    template: CostLine,
    /// Few per resource, so a linear search beats hashing.
    services: Vec<(CompactString, Micros)>,
}

/// Running totals of one or more FOCUS files: fed by `read_focus`, turned into `LineCosts` by
/// `finish`. Holds one entry per distinct (resource, service), never the rows.
pub struct FocusAggregate {
    /// By resource id; Azure ids in lower case (see `add_owned`).
    resources: FxHashMap<CompactString, ResourceSpend>,
    /// Charges tied to no resource: key (provider, account, region, service, raw tags) → index
    /// into `unowned_lines`.
    unowned: FxHashMap<Box<[u8]>, usize>,
    unowned_lines: Vec<CostLine>,
    /// Reused to build `unowned` keys without allocating per row.
    key: Vec<u8>,
    /// Reused to lower-case Azure ids, which key `resources` case-insensitively.
    id_key: String,
    /// Set by the first used row; every later used row must match.
    currency: Option<CompactString>,
    currency_assumed: bool,
    /// Earliest and latest `YYYY-MM-DD` of used rows (ISO dates order as bytes).
    first_day: Option<[u8; 10]>,
    last_day: Option<[u8; 10]>,
    /// Absolute values of the used rows' amounts, summed: bounds every total of the lines.
    magnitude: Magnitude,
    report: CostReport,
}

/// Why a row is not used.
enum RowError {
    /// Malformed: skipped and reported with its line; the rest of the file is read.
    Skip(String),
    /// Its amount would take the used rows' magnitude past the bound: the read fails.
    TooLarge,
}

impl From<String> for RowError {
    fn from(reason: String) -> RowError {
        RowError::Skip(reason)
    }
}

impl Default for FocusAggregate {
    fn default() -> Self {
        Self::new()
    }
}

/// One file's reading state.
struct FileState<'a> {
    label: &'a str,
    columns: Columns,
    amount_column: &'static str,
    period: Option<Period>,
    /// The last day text seen and whether it is inside the period: exports list a day's rows
    /// together, so most rows skip parsing the date.
    day_cache: Option<([u8; 10], bool)>,
}

impl FocusAggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        FocusAggregate {
            resources: FxHashMap::default(),
            unowned: FxHashMap::default(),
            unowned_lines: Vec::new(),
            key: Vec::new(),
            id_key: String::new(),
            currency: None,
            currency_assumed: false,
            first_day: None,
            last_day: None,
            magnitude: Magnitude::default(),
            report: CostReport::default(),
        }
    }

    /// The cost lines, sorted by (resource id, service), and the report. With no `period`, the
    /// lines cover the days of the rows used (today when there were none).
    pub fn finish(self, metric: CostMetric, period: Option<Period>, source: String) -> LineCosts {
        let period = period.unwrap_or_else(|| {
            let today = chrono::Utc::now().date_naive();
            let start = self.first_day.and_then(|d| valid_day(&d)).unwrap_or(today);
            let last = self.last_day.and_then(|d| valid_day(&d)).unwrap_or(start);
            Period {
                start,
                end: last.checked_add_days(Days::new(1)).unwrap_or(last),
            }
        });
        let mut lines: Vec<CostLine> = Vec::with_capacity(
            self.unowned_lines.len()
                + self
                    .resources
                    .values()
                    .map(|r| r.services.len())
                    .sum::<usize>(),
        );
        for spend in self.resources.into_values() {
            for (service, amount) in spend.services {
                let mut line = spend.template.clone();
                line.service = service;
                line.amount = amount;
                lines.push(line);
            }
        }
        lines.extend(self.unowned_lines);
        lines.sort_by(|a, b| {
            (&a.resource_id, &a.service, a.provider.as_str())
                .cmp(&(&b.resource_id, &b.service, b.provider.as_str()))
                .then_with(|| (&a.account, &a.region).cmp(&(&b.account, &b.region)))
                .then_with(|| a.tags.cmp(&b.tags))
        });
        let mut report = self.report;
        report.source = source;
        report.complete = report.rows_skipped == 0;
        if report.rows_skipped > report.problems.len() as u64 {
            report.notes.push(format!(
                "{} rows were skipped; the first {} are listed",
                report.rows_skipped,
                report.problems.len()
            ));
        }
        if self.currency_assumed {
            report.notes.push(format!(
                "a file has no BillingCurrency column: its amounts are taken to be \
                 {DEFAULT_CURRENCY}"
            ));
        }
        LineCosts {
            lines,
            currency: self
                .currency
                .map_or_else(|| DEFAULT_CURRENCY.to_string(), |c| c.to_string()),
            period,
            metric,
            report,
        }
    }

    fn problem(&mut self, file: &str, line: u64, reason: String) {
        self.report.rows_skipped += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(RowProblem {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }

    /// Adds one data row, or says why it cannot be used. Rows outside the period are read but
    /// not checked beyond their date.
    fn add_row(&mut self, row: &ByteRecord, f: &mut FileState) -> Result<(), RowError> {
        let c = &f.columns;
        c.check_width(row)?;
        let day = c.day_bytes(row)?;
        let in_period = match f.day_cache {
            Some((cached, inside)) if cached == day => inside,
            _ => {
                valid_day(&day).ok_or_else(|| c.bad_day(row))?;
                // `valid_day` accepted only ASCII digits and dashes.
                let text = std::str::from_utf8(&day).unwrap_or_default();
                let inside = f.period.is_none_or(|p| p.contains_day_text(text));
                f.day_cache = Some((day, inside));
                inside
            }
        };
        if !in_period {
            return Ok(());
        }

        let amount = c.amount(row, f.amount_column)?;
        let currency = c.currency(row);
        match &self.currency {
            Some(known) if known.as_bytes().eq_ignore_ascii_case(currency) => {}
            Some(known) => {
                return Err(RowError::Skip(format!(
                    "currency {} differs from {known} of earlier rows; convert the export or \
                     pass files of one currency",
                    clipped(currency, 12)
                )));
            }
            None => {}
        }

        let id = text_field(row, c.resource_id, "ResourceId")?;
        let service = text_field(row, c.service, "ServiceName")?;
        let magnitude = self
            .magnitude
            .plus(amount)
            .map_err(|_| RowError::TooLarge)?;
        if id.is_empty() {
            self.add_unowned(row, c, service, amount)?;
        } else {
            self.add_owned(row, c, id, service, amount)?;
        }
        self.magnitude = magnitude;

        if self.currency.is_none() {
            let code = String::from_utf8_lossy(currency).to_ascii_uppercase();
            self.currency = Some(code.into());
        }
        if c.currency.is_none() {
            self.currency_assumed = true;
        }
        self.report.rows_used += 1;
        if f.period.is_none() {
            if self.first_day.is_none_or(|d| day < d) {
                self.first_day = Some(day);
            }
            if self.last_day.is_none_or(|d| day > d) {
                self.last_day = Some(day);
            }
        }
        Ok(())
    }

    fn add_owned(
        &mut self,
        row: &ByteRecord,
        c: &Columns,
        id: &str,
        service: &str,
        amount: Micros,
    ) -> Result<(), String> {
        // Azure ids differ in case between exports (and between rows of one export): one
        // resource is one entry whatever the case; its first row's spelling is kept. Other
        // ids pay one byte comparison.
        let key: &str = if id::azure::looks_like_azure_id(id) {
            self.id_key.clear();
            self.id_key.push_str(id);
            self.id_key.make_ascii_lowercase();
            &self.id_key
        } else {
            id
        };
        // The common case: a resource seen before, found by the borrowed id (no allocation).
        if let Some(spend) = self.resources.get_mut(key) {
            return add_to_service(&mut spend.services, service, amount);
        }
        let template = resource_template(row, c, id)?;
        self.resources.insert(
            key.into(),
            ResourceSpend {
                template,
                services: vec![(service.into(), amount)],
            },
        );
        Ok(())
    }

    fn add_unowned(
        &mut self,
        row: &ByteRecord,
        c: &Columns,
        service: &str,
        amount: Micros,
    ) -> Result<(), String> {
        let provider = row_provider(row, c).unwrap_or(Provider::File);
        let account = optional_field(row, c.account).trim_ascii();
        let region = optional_field(row, c.region).trim_ascii();
        let raw_tags = optional_field(row, c.tags).trim_ascii();
        self.key.clear();
        self.key.push(provider as u8);
        for part in [account, region, service.as_bytes(), raw_tags] {
            self.key
                .extend_from_slice(&(part.len() as u64).to_le_bytes());
            self.key.extend_from_slice(part);
        }
        if let Some(&at) = self.unowned.get(self.key.as_slice()) {
            let line = &mut self.unowned_lines[at];
            line.amount = line
                .amount
                .checked_add(amount)
                .ok_or_else(|| overflow(service))?;
            return Ok(());
        }
        let tags = parse_tags(raw_tags)?;
        self.unowned_lines.push(CostLine {
            resource_id: CompactString::default(),
            provider,
            account: text_or_empty(account),
            region: text_or_empty(region),
            service: service.into(),
            resource_type: arcstr::ArcStr::new(),
            name: arcstr::ArcStr::new(),
            tags,
            amount,
        });
        self.unowned
            .insert(self.key.as_slice().into(), self.unowned_lines.len() - 1);
        Ok(())
    }
}

fn add_to_service(
    services: &mut Vec<(CompactString, Micros)>,
    service: &str,
    amount: Micros,
) -> Result<(), String> {
    match services.iter_mut().find(|(s, _)| s.as_str() == service) {
        Some((_, total)) => {
            *total = total.checked_add(amount).ok_or_else(|| overflow(service))?;
        }
        None => services.push((service.into(), amount)),
    }
    Ok(())
}

fn overflow(service: &str) -> String {
    format!("the amount makes the total of service {service} overflow; check the amount column")
}

/// The facts of a resource from its first row: columns first, then what its id tells.
fn resource_template(row: &ByteRecord, c: &Columns, id: &str) -> Result<CostLine, String> {
    let tags = parse_tags(optional_field(row, c.tags))?;
    let facts = id::facts(id);
    let column = |i: Option<usize>| text_or_empty(optional_field(row, i).trim_ascii());
    let pick = |column: ArcStr, from_id: &str| {
        if column.is_empty() {
            ArcStr::from(from_id)
        } else {
            column
        }
    };
    Ok(CostLine {
        resource_id: id.into(),
        provider: row_provider(row, c)
            .or(facts.provider)
            .unwrap_or(Provider::File),
        account: pick(column(c.account), facts.account),
        region: pick(column(c.region), facts.region),
        service: CompactString::default(),
        resource_type: facts.resource_type.as_str().into(),
        name: pick(column(c.resource_name), facts.name),
        tags,
        amount: 0,
    })
}

/// The provider a row's `ProviderName` (or `ServiceProviderName`) names, when it is one we know.
fn row_provider(row: &ByteRecord, c: &Columns) -> Option<Provider> {
    let named = |i: Option<usize>| {
        let text = optional_field(row, i).trim_ascii();
        (!text.is_empty()).then_some(text)
    };
    let text = named(c.provider).or_else(|| named(c.provider_alt))?;
    let is = |names: &[&str]| {
        names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(text))
    };
    if is(&["AWS", "Amazon Web Services", "Amazon"]) {
        Some(Provider::Aws)
    } else if is(&["Microsoft", "Azure", "Microsoft Azure"]) {
        Some(Provider::Azure)
    } else if is(&["Google Cloud", "Google", "GCP", "Google Cloud Platform"]) {
        Some(Provider::Gcp)
    } else {
        Some(Provider::File)
    }
}

/// A FOCUS `Tags` cell: a JSON object of tag names to values. AWS writes cost-allocation tags
/// as `user:Name`; the prefix is dropped so they match the inventory's keys. Keys keep their
/// case (the policy normalises it).
fn parse_tags(raw: &[u8]) -> Result<Tags, String> {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return Ok(Tags::new());
    }
    let not_object = |detail: String| {
        format!(
            "Tags {} is not a JSON object of tag names to values{detail}",
            shown(raw, SHOWN_CHARS)
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| not_object(format!(" ({e})")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(not_object(String::new()));
    };
    let tags = map
        .into_iter()
        .map(|(key, value)| {
            let key = match key.strip_prefix("user:") {
                Some(bare) if !bare.is_empty() => ArcStr::from(bare),
                _ => ArcStr::from(key),
            };
            let value = match value {
                serde_json::Value::String(s) => ArcStr::from(s),
                serde_json::Value::Null => ArcStr::new(),
                other => ArcStr::from(other.to_string()),
            };
            (key, value)
        })
        .collect();
    Ok(normalise_tags(tags))
}

/// `YYYY-MM-DD` as a date, when it is one.
/// The checks every reader of a FOCUS row makes first (the period totals here, the daily
/// series in `daily`), so both refuse a row for the same reason in the same words.
impl Columns {
    /// Refuses a row whose field count differs from the header's.
    fn check_width(&self, row: &ByteRecord) -> Result<(), String> {
        if row.len() == self.width {
            return Ok(());
        }
        Err(format!(
            "the row has {} fields where the header has {}; check the row's quoting",
            row.len(),
            self.width
        ))
    }

    /// The first ten bytes of `ChargePeriodStart` (`YYYY-MM-DD`, checked by `valid_day`).
    fn day_bytes(&self, row: &ByteRecord) -> Result<[u8; 10], String> {
        field(row, self.day)
            .get(..10)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| self.bad_day(row))
    }

    /// Why the row's `ChargePeriodStart` is not a date.
    fn bad_day(&self, row: &ByteRecord) -> String {
        format!(
            "ChargePeriodStart {} is not a date (expected YYYY-MM-DD, e.g. \
             2026-10-01T00:00:00Z)",
            shown(field(row, self.day), SHOWN_CHARS)
        )
    }

    /// The row's amount in the chosen cost column.
    fn amount(&self, row: &ByteRecord, amount_column: &str) -> Result<Micros, String> {
        let text = field(row, self.amount);
        std::str::from_utf8(text)
            .map_err(|_| AmountError::NotANumber)
            .and_then(parse_amount)
            .map_err(|e| format!("{amount_column} {} {e}", shown(text, SHOWN_CHARS)))
    }

    /// The row's currency code; FOCUS's `BillingCurrency` when it is missing or empty.
    fn currency<'r>(&self, row: &'r ByteRecord) -> &'r [u8] {
        match optional_field(row, self.currency).trim_ascii() {
            b"" => DEFAULT_CURRENCY.as_bytes(),
            text => text,
        }
    }
}

fn valid_day(day: &[u8; 10]) -> Option<NaiveDate> {
    let digits = |range: std::ops::Range<usize>| {
        day[range].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    if day[4] != b'-' || day[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

fn field(row: &ByteRecord, i: usize) -> &[u8] {
    row.get(i).unwrap_or_default()
}

fn optional_field(row: &ByteRecord, i: Option<usize>) -> &[u8] {
    i.and_then(|i| row.get(i)).unwrap_or_default()
}

fn text_field<'r>(row: &'r ByteRecord, i: usize, column: &str) -> Result<&'r str, String> {
    std::str::from_utf8(field(row, i))
        .map(str::trim)
        .map_err(|_| format!("{column} is not UTF-8 text; save the export as UTF-8 CSV"))
}

fn text_or_empty(bytes: &[u8]) -> ArcStr {
    ArcStr::from(&*String::from_utf8_lossy(bytes))
}

/// A cell's text for a message: trimmed, cut short, control characters escaped.
fn clipped(bytes: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes.trim_ascii());
    let mut cut: String = text.chars().take(max_chars).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.escape_debug().to_string()
}

/// A cell's text for a problem reason, quoted.
fn shown(bytes: &[u8], max_chars: usize) -> String {
    format!("\"{}\"", clipped(bytes, max_chars))
}

/// The physical line a record starts on. The record's own position is where the reader stood
/// before it, which is before any blank lines it skipped; the end position less the record's
/// line breaks corrects that (the `- 1` is the row's own `\n`; the last row may lack one).
fn start_line(row: &ByteRecord, end: &csv::Position) -> u64 {
    let before = row.position().map_or(1, |p| p.line());
    let inner = row.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
    before.max(end.line().saturating_sub(inner + 1))
}

/// Streams one FOCUS CSV into `into`. Malformed rows are skipped and recorded in the report;
/// the error cases are a header without the required columns and a read failure.
pub fn read_focus<R: Read>(
    reader: R,
    file_label: &str,
    metric: CostMetric,
    period: Option<Period>,
    into: &mut FocusAggregate,
) -> Result<(), CostError> {
    let amount_column = match metric {
        CostMetric::BilledCost => "BilledCost",
        CostMetric::EffectiveCost => "EffectiveCost",
        other => {
            return Err(CostError::Invalid(format!(
                "argument `metric`: {} is not in FOCUS files; use BilledCost or EffectiveCost",
                other.as_str()
            )));
        }
    };
    let read_error = |e: csv::Error| {
        let at = e
            .position()
            .map(|p| format!(" at line {}", p.line()))
            .unwrap_or_default();
        match e.kind() {
            csv::ErrorKind::Io(io) => CostError::FileRead {
                file: file_label.to_string(),
                reason: format!("{io}{at}"),
            },
            _ => CostError::FileFormat {
                file: file_label.to_string(),
                reason: format!("{e}"),
            },
        }
    };
    // Records end at `\n` only: with the default CRLF terminator the reader stops at `\r` and
    // the record after it is positioned a line early. A `\r` before `\n` stays at the end of
    // the row's last field, and every field is trimmed before use.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(1 << 18)
        .from_reader(reader);
    let header = csv.byte_headers().map_err(read_error)?;
    let columns = Columns::find(header, file_label, amount_column)?;
    let mut state = FileState {
        label: file_label,
        columns,
        amount_column,
        period,
        day_cache: None,
    };
    let mut row = ByteRecord::new();
    while csv.read_byte_record(&mut row).map_err(read_error)? {
        if row.len() == 1 && field(&row, 0).trim_ascii().is_empty() {
            continue; // a blank line (`\r\n` in a Windows file)
        }
        into.report.rows_read += 1;
        match into.add_row(&row, &mut state) {
            Ok(()) => {}
            Err(RowError::Skip(reason)) => {
                let line = start_line(&row, csv.position());
                into.problem(state.label, line, reason);
            }
            Err(RowError::TooLarge) => {
                let line = start_line(&row, csv.position());
                return Err(CostError::TooLarge(format!(
                    "cost file {file_label}: {amount_column} amounts add up (in absolute value) \
                     beyond {}, the largest total kept exactly, at line {line}; no total is \
                     given rather than a wrong one. Check the {amount_column} column for a unit \
                     or decimal-point error, or read fewer files or a shorter period",
                    super::money::format_amount(super::money::MAX_MICROS)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

pub(crate) mod daily;
