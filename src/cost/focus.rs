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
pub struct FocusProvider {
    paths: Vec<PathBuf>,
}

impl FocusProvider {
    pub fn new(paths: Vec<PathBuf>) -> Self {
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
}

/// Reads FOCUS files into one set of cost lines (rows of all files are summed together).
pub fn read_focus_files(
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
    resources: FxHashMap<CompactString, ResourceSpend>,
    /// Charges tied to no resource: key (provider, account, region, service, raw tags) → index
    /// into `unowned_lines`.
    unowned: FxHashMap<Box<[u8]>, usize>,
    unowned_lines: Vec<CostLine>,
    /// Reused to build `unowned` keys without allocating per row.
    key: Vec<u8>,
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
    pub fn new() -> Self {
        FocusAggregate {
            resources: FxHashMap::default(),
            unowned: FxHashMap::default(),
            unowned_lines: Vec::new(),
            key: Vec::new(),
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
        if row.len() != c.width {
            return Err(RowError::Skip(format!(
                "the row has {} fields where the header has {}; check the row's quoting",
                row.len(),
                c.width
            )));
        }
        let day_text = field(row, c.day);
        let bad_day = || {
            format!(
                "ChargePeriodStart {} is not a date (expected YYYY-MM-DD, e.g. \
                 2026-10-01T00:00:00Z)",
                shown(day_text, SHOWN_CHARS)
            )
        };
        let day: [u8; 10] = day_text
            .get(..10)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(bad_day)?;
        let in_period = match f.day_cache {
            Some((cached, inside)) if cached == day => inside,
            _ => {
                valid_day(&day).ok_or_else(bad_day)?;
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

        let amount_text = field(row, c.amount);
        let amount = std::str::from_utf8(amount_text)
            .map_err(|_| AmountError::NotANumber)
            .and_then(parse_amount)
            .map_err(|e| {
                format!(
                    "{} {} {e}",
                    f.amount_column,
                    shown(amount_text, SHOWN_CHARS)
                )
            })?;

        let currency = match c.currency {
            Some(i) => match field(row, i).trim_ascii() {
                b"" => DEFAULT_CURRENCY.as_bytes(),
                text => text,
            },
            None => DEFAULT_CURRENCY.as_bytes(),
        };
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
        // The common case: a resource seen before, found by the borrowed id (no allocation).
        if let Some(spend) = self.resources.get_mut(id) {
            return add_to_service(&mut spend.services, service, amount);
        }
        let template = resource_template(row, c, id)?;
        self.resources.insert(
            id.into(),
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
            resource_type: CompactString::default(),
            name: CompactString::default(),
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
    let pick = |column: CompactString, from_id: &str| {
        if column.is_empty() {
            CompactString::from(from_id)
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
        resource_type: facts.resource_type,
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
                Some(bare) if !bare.is_empty() => CompactString::from(bare),
                _ => CompactString::from(key),
            };
            let value = match value {
                serde_json::Value::String(s) => CompactString::from(s),
                serde_json::Value::Null => CompactString::default(),
                other => CompactString::from(other.to_string()),
            };
            (key, value)
        })
        .collect();
    Ok(normalise_tags(tags))
}

/// `YYYY-MM-DD` as a date, when it is one.
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

fn text_or_empty(bytes: &[u8]) -> CompactString {
    CompactString::from_utf8_lossy(bytes)
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
mod tests {
    use super::*;

    const HEADER: &str = "ResourceId,ResourceName,ServiceName,BilledCost,EffectiveCost,\
        BillingCurrency,ChargePeriodStart,ProviderName,SubAccountId,RegionId,Tags";

    fn oct() -> Period {
        Period {
            start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        }
    }

    fn read_with(
        text: &str,
        metric: CostMetric,
        period: Option<Period>,
    ) -> Result<LineCosts, CostError> {
        let mut agg = FocusAggregate::new();
        read_focus(text.as_bytes(), "t.csv", metric, period, &mut agg)?;
        Ok(agg.finish(metric, period, "FOCUS file(s) t.csv".into()))
    }

    fn read(text: &str) -> LineCosts {
        read_with(text, CostMetric::BilledCost, Some(oct())).unwrap()
    }

    fn line<'a>(costs: &'a LineCosts, id: &str, service: &str) -> &'a CostLine {
        costs
            .lines
            .iter()
            .find(|l| l.resource_id == id && l.service == service)
            .unwrap_or_else(|| panic!("no line {id} / {service}: {:#?}", costs.lines))
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn problem_lines(costs: &LineCosts) -> Vec<u64> {
        costs.report.problems.iter().map(|p| p.line).collect()
    }

    #[test]
    fn columns_in_any_order_and_casing() {
        let text = "tags,CHARGEPERIODSTART,servicename,Unknown,billedcost,RESOURCEID\n\
            \"{\"\"team\"\":\"\"a\"\"}\",2026-10-02T00:00:00Z,S3,x,1.5,res-1\n";
        let c = read(text);
        assert_eq!(c.lines.len(), 1);
        let l = &c.lines[0];
        assert_eq!(
            (l.resource_id.as_str(), l.service.as_str(), l.amount),
            ("res-1", "S3", 1_500_000)
        );
        assert_eq!(l.tags, tags(&[("team", "a")]));
        assert_eq!(l.provider, Provider::File);
        assert_eq!(c.currency, "USD");
        assert!(c.report.complete);
        assert!(
            c.report.notes.iter().any(|n| n.contains("BillingCurrency")),
            "{:?}",
            c.report.notes
        );
    }

    #[test]
    fn both_metrics() {
        let text = format!(
            "{HEADER}\nr1,,EC2,10.00,8.50,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,1.00,0.75,USD,2026-10-02,AWS,,,\n"
        );
        let billed = read_with(&text, CostMetric::BilledCost, Some(oct())).unwrap();
        let effective = read_with(&text, CostMetric::EffectiveCost, Some(oct())).unwrap();
        assert_eq!(billed.total(), 11_000_000);
        assert_eq!(effective.total(), 9_250_000);
        assert_eq!(effective.metric, CostMetric::EffectiveCost);
        let err = read_with(&text, CostMetric::UnblendedCost, Some(oct())).unwrap_err();
        assert!(matches!(err, CostError::Invalid(_)), "{err}");
    }

    #[test]
    fn the_metric_column_is_required_only_when_chosen() {
        let text = "ResourceId,ServiceName,ChargePeriodStart,BilledCost\nr,S,2026-10-01,1\n";
        assert_eq!(read(text).total(), 1_000_000);
        let err = read_with(text, CostMetric::EffectiveCost, Some(oct())).unwrap_err();
        assert!(err.to_string().contains("EffectiveCost"), "{err}");
    }

    #[test]
    fn period_filter_and_whole_file_period() {
        let text = format!(
            "{HEADER}\nr1,,EC2,1,1,USD,2026-09-30T23:00:00Z,AWS,,,\n\
             r1,,EC2,2,2,USD,2026-10-01T00:00:00Z,AWS,,,\n\
             r1,,EC2,4,4,USD,2026-10-31 23:59:59,AWS,,,\n\
             r1,,EC2,8,8,USD,2026-11-01T00:00:00Z,AWS,,,\n"
        );
        let c = read(&text);
        assert_eq!(c.total(), 6_000_000);
        assert_eq!(
            (
                c.report.rows_read,
                c.report.rows_used,
                c.report.rows_skipped
            ),
            (4, 2, 0)
        );
        assert_eq!(c.period, oct());

        let all = read_with(&text, CostMetric::BilledCost, None).unwrap();
        assert_eq!(all.total(), 15_000_000);
        assert_eq!(all.report.rows_used, 4);
        assert_eq!(
            all.period,
            Period {
                start: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
                end: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            }
        );

        let empty = read_with(HEADER, CostMetric::BilledCost, None).unwrap();
        let today = chrono::Utc::now().date_naive();
        assert_eq!(empty.period.start, today);
        assert_eq!(empty.period.days(), 1);
        assert!(empty.lines.is_empty());
        assert!(empty.report.complete);
    }

    #[test]
    fn a_resource_aggregates_across_rows_and_services() {
        let text = format!(
            "{HEADER}\n\
             r1,web,EC2,10,0,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,1,0,USD,2026-10-01,AWS,,,\n\
             r1,other-name,EC2,5.25,0,USD,2026-10-02,AWS,,,\n\
             r1,,CloudWatch,0.75,0,USD,2026-10-02,AWS,,,\n\
             r1,,EC2,-3.5,0,USD,2026-10-03,AWS,,,\n"
        );
        let c = read(&text);
        let keys: Vec<(&str, &str)> = c
            .lines
            .iter()
            .map(|l| (l.resource_id.as_str(), l.service.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![("r1", "CloudWatch"), ("r1", "EC2"), ("r2", "EC2")]
        );
        assert_eq!(line(&c, "r1", "EC2").amount, 11_750_000);
        assert_eq!(line(&c, "r1", "CloudWatch").amount, 750_000);
        assert_eq!(line(&c, "r1", "CloudWatch").name, "web", "first row's name");
        assert_eq!(c.total(), 13_500_000);
        assert_eq!(c.report.rows_used, 5);
    }

    #[test]
    fn credits_can_make_a_line_negative() {
        let text = format!(
            "{HEADER}\nr1,,EC2,2,2,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,-5.000001,-5,USD,2026-10-02,AWS,,,\n\
             ,,Credits,-100,-100,USD,2026-10-02,AWS,111,,\n"
        );
        let c = read(&text);
        assert_eq!(line(&c, "r1", "EC2").amount, -3_000_001);
        assert_eq!(line(&c, "", "Credits").amount, -100_000_000);
        assert_eq!(c.total(), -103_000_001);
    }

    /// Issue 12: two rows of 9,000,000,000,000 (each below the bound) summed to a negative
    /// total. Now the read fails naming the file and the line that crossed the bound, for
    /// different resources, the same line, and a charge against a credit alike.
    #[test]
    fn amounts_too_large_to_total_are_refused_not_wrapped() {
        for (second, why) in [
            ("r2,,EC2,9000000000000", "another resource"),
            ("r1,,EC2,9000000000000", "the same line"),
            (",,Credit,-9000000000000", "a credit tied to no resource"),
        ] {
            let text = format!(
                "{HEADER}\nr1,,EC2,9000000000000,1,USD,2026-10-01,AWS,,,\n\
                 r3,,EC2,1,1,USD,2026-09-01,AWS,,,\n\
                 {second},1,USD,2026-10-02,AWS,,,\n"
            );
            let err = read_with(&text, CostMetric::BilledCost, Some(oct())).unwrap_err();
            assert!(matches!(err, CostError::TooLarge(_)), "{why}: {err}");
            let message = err.to_string();
            assert!(
                message.contains("t.csv") && message.contains("line 4"),
                "{why}: {message}"
            );
            assert!(message.contains("9,223,372,036,854.78"), "{message}");
            // The other metric's small amounts are fine.
            let effective = read_with(&text, CostMetric::EffectiveCost, Some(oct())).unwrap();
            assert_eq!(effective.total(), 2_000_000);
        }
        // One such row is exact; rows outside the period do not count.
        let text = format!(
            "{HEADER}\nr1,,EC2,9000000000000,1,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,9000000000000,1,USD,2026-09-30,AWS,,,\n"
        );
        assert_eq!(read(&text).total(), 9_000_000_000_000_000_000);
        assert!(read_with(&text, CostMetric::BilledCost, None).is_err());
    }

    #[test]
    fn an_amount_beyond_the_bound_is_a_malformed_row() {
        let text = format!(
            "{HEADER}\nr1,,EC2,99999999999999,1,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,1e300,1,USD,2026-10-01,AWS,,,\n\
             r1,,EC2,2.5,1,USD,2026-10-01,AWS,,,\n"
        );
        let c = read(&text);
        assert_eq!(c.total(), 2_500_000);
        assert_eq!(problem_lines(&c), vec![2, 3]);
        let reason = &c.report.problems[0].reason;
        assert!(
            reason.contains("99999999999999") && reason.contains("largest amount"),
            "{reason}"
        );
        assert!(!reason.contains("not a number"), "{reason}");
    }

    #[test]
    fn resource_less_charges_group_by_account_region_service_and_tags() {
        let text = format!(
            "{HEADER}\n\
             ,,Support,10,10,USD,2026-10-01,AWS,111,,\n\
             ,,Support,5,5,USD,2026-10-02,AWS,111,,\n\
             ,,Support,1,1,USD,2026-10-02,AWS,222,,\n\
             ,,Tax,2,2,USD,2026-10-02,AWS,111,us-east-1,\n\
             ,,Tax,3,3,USD,2026-10-02,AWS,111,us-east-1,\"{{\"\"user:team\"\":\"\"x\"\"}}\"\n\
             ,,Tax,4,4,USD,2026-10-03,AWS,111,us-east-1,\"{{\"\"user:team\"\":\"\"x\"\"}}\"\n"
        );
        let c = read(&text);
        assert_eq!(c.lines.len(), 4);
        assert!(c.lines.iter().all(|l| l.resource_id.is_empty()));
        let support: Vec<(&str, Micros)> = c
            .lines
            .iter()
            .filter(|l| l.service == "Support")
            .map(|l| (l.account.as_str(), l.amount))
            .collect();
        assert_eq!(support, vec![("111", 15_000_000), ("222", 1_000_000)]);
        let tagged = c
            .lines
            .iter()
            .find(|l| l.service == "Tax" && !l.tags.is_empty())
            .unwrap();
        assert_eq!(tagged.amount, 7_000_000);
        assert_eq!(tagged.tags, tags(&[("team", "x")]));
        assert_eq!(tagged.region, "us-east-1");
        assert_eq!(tagged.provider, Provider::Aws);
        assert_eq!(c.total(), 25_000_000);
    }

    #[test]
    fn tags_keep_casing_drop_user_prefix_and_stringify() {
        let cell = r#"{"user:TEAM":"payments","environment":"Prod","user:CostCenter":12,"on":true,"gone":null,"team":"kept"}"#;
        let text = format!(
            "{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\"{}\"\n",
            cell.replace('"', "\"\"")
        );
        let c = read(&text);
        assert_eq!(
            c.lines[0].tags,
            tags(&[
                ("CostCenter", "12"),
                ("TEAM", "payments"),
                ("environment", "Prod"),
                ("gone", ""),
                ("on", "true"),
                ("team", "kept"),
            ])
        );
    }

    #[test]
    fn tags_are_read_from_a_resources_first_row_only() {
        let text = format!(
            "{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\"{{\"\"a\"\":\"\"1\"\"}}\"\n\
             r1,,EC2,1,1,USD,2026-10-02,AWS,,,\"{{\"\"a\"\":\"\"2\"\"}}\"\n\
             r1,,EBS,1,1,USD,2026-10-02,AWS,,,not json\n"
        );
        let c = read(&text);
        assert!(c.report.complete, "later rows' tags are not parsed");
        assert!(c.lines.iter().all(|l| l.tags == tags(&[("a", "1")])));
    }

    #[test]
    fn ids_give_types_names_accounts_and_regions() {
        let text = format!(
            "{HEADER}\n\
             arn:aws:ec2:us-east-1:111122223333:instance/i-0abc,,EC2,1,1,USD,2026-10-01,AWS,,,\n\
             arn:aws:s3:::logs,pretty-logs,S3,1,1,USD,2026-10-01,AWS,999,eu-west-1,\n\
             /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1,,VMs,1,1,USD,2026-10-01,Microsoft,,westeurope,\n\
             /subscriptions/sub-2/resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1,,SQL,1,1,USD,2026-10-01,Azure,,,\n\
             //compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm-9,,GCE,1,1,USD,2026-10-01,Google Cloud,,,\n\
             //storage.googleapis.com/projects/_/buckets/lake,,GCS,1,1,USD,2026-10-01,,proj-x,EU,\n\
             i-plain,,Other,1,1,USD,2026-10-01,Oracle,acc,r,\n"
        );
        let c = read(&text);
        let facts = |id: &str, service: &str| {
            let l = line(&c, id, service);
            (
                l.provider,
                l.resource_type.to_string(),
                l.name.to_string(),
                l.account.to_string(),
                l.region.to_string(),
            )
        };
        let f = |p, t: &str, n: &str, a: &str, r: &str| {
            (
                p,
                t.to_string(),
                n.to_string(),
                a.to_string(),
                r.to_string(),
            )
        };
        assert_eq!(
            facts("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc", "EC2"),
            f(
                Provider::Aws,
                "ec2:instance",
                "i-0abc",
                "111122223333",
                "us-east-1"
            )
        );
        assert_eq!(
            facts("arn:aws:s3:::logs", "S3"),
            f(
                Provider::Aws,
                "s3:bucket",
                "pretty-logs",
                "999",
                "eu-west-1"
            ),
            "columns win over the ARN"
        );
        assert_eq!(
            facts(
                "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
                "VMs"
            ),
            f(
                Provider::Azure,
                "compute:virtualmachines",
                "vm-1",
                "sub-1",
                "westeurope"
            )
        );
        assert_eq!(
            facts(
                "/subscriptions/sub-2/resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1",
                "SQL"
            ),
            f(Provider::Azure, "sql:servers", "db1", "sub-2", "")
        );
        assert_eq!(
            facts(
                "//compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm-9",
                "GCE"
            ),
            f(
                Provider::Gcp,
                "compute:instances",
                "vm-9",
                "p1",
                "europe-west1-b"
            )
        );
        assert_eq!(
            facts("//storage.googleapis.com/projects/_/buckets/lake", "GCS"),
            f(Provider::Gcp, "storage:buckets", "lake", "proj-x", "EU"),
            "no provider column value: the id tells"
        );
        assert_eq!(
            facts("i-plain", "Other"),
            f(Provider::File, "", "", "acc", "r")
        );
    }

    #[test]
    fn provider_names() {
        let cases = [
            ("AWS", Provider::Aws),
            ("Amazon Web Services", Provider::Aws),
            ("microsoft", Provider::Azure),
            ("Microsoft Azure", Provider::Azure),
            ("Azure", Provider::Azure),
            ("Google Cloud", Provider::Gcp),
            ("GCP", Provider::Gcp),
            ("google", Provider::Gcp),
            ("Oracle", Provider::File),
        ];
        for (name, expected) in cases {
            let text = format!(
                "ResourceId,ServiceName,ChargePeriodStart,BilledCost,ServiceProviderName\n\
                 r,S,2026-10-01,1,{name}\n"
            );
            assert_eq!(read(&text).lines[0].provider, expected, "{name}");
        }
        let region = "ResourceId,ServiceName,ChargePeriodStart,BilledCost,Region\n\
                      r,S,2026-10-01,1,us-west-2\n";
        assert_eq!(read(region).lines[0].region, "us-west-2");
    }

    #[test]
    fn malformed_rows_are_skipped_and_reported_with_their_line() {
        let text = format!(
            "{HEADER}\n\
             r1,,EC2,1,1,USD,2026-10-01,AWS,,,\n\
             r2,,EC2,abc,1,USD,2026-10-01,AWS,,,\n\
             r3,,EC2,1,1,USD,10/01/2026,AWS,,,\n\
             r4,,EC2,1,1,USD,2026-10-01,AWS\n\
             r5,,EC2,1,1,USD,2026-10-01,AWS,,,{{team: x}}\n\
             r6,,EC2,1,1,USD,2026-13-01,AWS,,,\n\
             r7,,EC2,,1,USD,2026-10-01,AWS,,,\n\
             r8,,EC2,1,1,USD,2026-10-01,AWS,,,[1]\n\
             r1,,EC2,2,1,USD,2026-10-02,AWS,,,\n"
        );
        let c = read(&text);
        assert_eq!(problem_lines(&c), vec![3, 4, 5, 6, 7, 8, 9]);
        let reasons: Vec<&str> = c
            .report
            .problems
            .iter()
            .map(|p| p.reason.as_str())
            .collect();
        assert!(
            reasons[0].contains("BilledCost \"abc\" is not a number"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("ChargePeriodStart \"10/01/2026\""),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].contains("8 fields where the header has 11"),
            "{}",
            reasons[2]
        );
        assert!(
            reasons[3].contains("Tags \"{team: x}\" is not a JSON object"),
            "{}",
            reasons[3]
        );
        assert!(reasons[4].contains("2026-13-01"), "{}", reasons[4]);
        assert!(reasons[5].contains("BilledCost \"\""), "{}", reasons[5]);
        assert!(reasons[6].contains("Tags \"[1]\""), "{}", reasons[6]);
        assert!(c.report.problems.iter().all(|p| p.file == "t.csv"));
        assert_eq!(
            (
                c.report.rows_read,
                c.report.rows_used,
                c.report.rows_skipped
            ),
            (9, 2, 7)
        );
        assert!(!c.report.complete);
        assert_eq!(c.total(), 3_000_000);
        assert_eq!(c.lines.len(), 1);
    }

    #[test]
    fn only_the_first_fifty_problems_are_kept() {
        let mut text = format!("{HEADER}\n");
        for _ in 0..70 {
            text.push_str("r,,EC2,x,1,USD,2026-10-01,AWS,,,\n");
        }
        let c = read(&text);
        assert_eq!(c.report.rows_skipped, 70);
        assert_eq!(c.report.problems.len(), 50);
        assert_eq!(c.report.problems[49].line, 51);
        assert!(
            c.report
                .notes
                .iter()
                .any(|n| n.contains("70 rows were skipped"))
        );
    }

    #[test]
    fn missing_required_columns_are_named() {
        let err = read_with(
            "ResourceId,BilledCost,Foo\nr,1,x\n",
            CostMetric::BilledCost,
            None,
        )
        .unwrap_err();
        let CostError::FileFormat { file, reason } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(file, "t.csv");
        assert!(
            reason.contains("missing required column(s) ChargePeriodStart, ServiceName"),
            "{reason}"
        );
        assert!(reason.contains("ResourceId, BilledCost, Foo"), "{reason}");
        let empty = read_with("", CostMetric::BilledCost, None).unwrap_err();
        assert!(empty.to_string().contains("the file is empty"), "{empty}");
    }

    #[test]
    fn other_currencies_are_skipped_after_the_first() {
        let text = format!(
            "{HEADER}\nr1,,EC2,1,1,eur,2026-09-01,AWS,,,\n\
             r1,,EC2,1,1,usd,2026-10-01,AWS,,,\n\
             r1,,EC2,2,1,EUR,2026-10-02,AWS,,,\n\
             r1,,EC2,4,1,,2026-10-03,AWS,,,\n"
        );
        let c = read(&text);
        assert_eq!(c.currency, "USD", "the first *used* row sets it");
        assert_eq!(problem_lines(&c), vec![4]);
        assert!(
            c.report.problems[0]
                .reason
                .contains("currency EUR differs from USD of earlier rows"),
            "{}",
            c.report.problems[0].reason
        );
        assert_eq!(c.total(), 5_000_000, "an empty currency cell is USD");
    }

    #[test]
    fn bom_crlf_and_quoted_fields() {
        let text = "\u{feff}ResourceId,ResourceName,ServiceName,BilledCost,ChargePeriodStart,Tags\r\n\
            r1,\"web, primary\",EC2,1,2026-10-01,\r\n\
            r2,\"two\r\nline\nname\",EC2,2,2026-10-01,\"{\"\"note\"\":\"\"a,b\"\"}\"\r\n\
            r3,,EC2,bad,2026-10-01,\r\n\
            \r\n\
            r4,\"x\",EC2,4,2026-10-01,\"{\"\"k\"\":\"\"v\"\"}\"\r\n\
            r5,,EC2,1,2026-10-01,nope";
        let c = read(text);
        assert_eq!(line(&c, "r1", "EC2").name, "web, primary");
        assert_eq!(line(&c, "r2", "EC2").name, "two\r\nline\nname");
        assert_eq!(line(&c, "r2", "EC2").tags, tags(&[("note", "a,b")]));
        assert_eq!(line(&c, "r4", "EC2").tags, tags(&[("k", "v")]));
        assert_eq!(problem_lines(&c), vec![6, 9], "{:?}", c.report.problems);
        assert!(c.report.problems[0].reason.contains("\"bad\" is not"));
        assert!(c.report.problems[1].reason.contains("Tags \"nope\""));
        assert_eq!(c.report.rows_read, 5, "the blank line is not a row");
        assert_eq!(c.total(), 7_000_000);
    }

    #[test]
    fn line_numbers_survive_blank_lines() {
        let text = "ResourceId,ServiceName,BilledCost,ChargePeriodStart\n\
            r1,EC2,1,2026-10-01\n\n\n\
            r2,EC2,x,2026-10-01\n\
            r3,EC2,y,2026-10-01\n";
        let c = read(text);
        assert_eq!(problem_lines(&c), vec![5, 6]);
        assert_eq!(c.report.rows_read, 3);
    }

    #[test]
    fn parts_always_add_up() {
        let mut text = format!("{HEADER}\n");
        let mut expected: Micros = 0;
        let mut state: u64 = 7;
        for i in 0..2_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let micros = (state >> 33) as i64 % 50_000_000 - 5_000_000;
            let day = 1 + (i % 40);
            let (month, day) = if day > 31 { (11, day - 31) } else { (10, day) };
            let id = if i.is_multiple_of(13) {
                String::new()
            } else {
                format!("r{}", i % 97)
            };
            let service = ["EC2", "S3", "RDS"][(i % 3) as usize];
            let account = i % 4;
            let amount = format!(
                "{}{}.{:06}",
                if micros < 0 { "-" } else { "" },
                micros.abs() / 1_000_000,
                micros.abs() % 1_000_000
            );
            text.push_str(&format!(
                "{id},,{service},{amount},0,USD,2026-{month:02}-{day:02},AWS,{account},,\n"
            ));
            if month == 10 {
                expected += micros;
            }
        }
        let c = read(&text);
        assert_eq!(c.total(), expected);
        assert_eq!(c.report.rows_read, 2_000);
        assert!(c.report.complete);
        let mut seen = std::collections::HashSet::new();
        for l in &c.lines {
            assert!(
                seen.insert((l.resource_id.clone(), l.service.clone(), l.account.clone())),
                "one line per key"
            );
        }
        let mut sorted = c.lines.clone();
        sorted.sort_by(|a, b| (&a.resource_id, &a.service).cmp(&(&b.resource_id, &b.service)));
        assert_eq!(sorted, c.lines, "lines are sorted");
    }

    #[test]
    fn several_files_share_one_aggregate_and_currency() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, format!("{HEADER}\nr1,,EC2,1,1,USD,2026-10-01,AWS,,,\n")).unwrap();
        std::fs::write(
            &b,
            format!(
                "{HEADER}\nr1,,EC2,2,1,USD,2026-10-02,AWS,,,\nr2,,EC2,2,1,EUR,2026-10-02,AWS,,,\n"
            ),
        )
        .unwrap();
        let c = read_focus_files(&[a.clone(), b.clone()], CostMetric::BilledCost, None).unwrap();
        assert_eq!(c.total(), 3_000_000);
        assert_eq!(c.report.source, "FOCUS file(s) a.csv, b.csv");
        assert_eq!(
            c.report.problems,
            vec![RowProblem {
                file: "b.csv".into(),
                line: 3,
                reason: "currency EUR differs from USD of earlier rows; convert the export \
                         or pass files of one currency"
                    .into(),
            }]
        );

        let missing = dir.path().join("nope.csv");
        let err = read_focus_files(&[a, missing], CostMetric::BilledCost, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read cost file nope.csv: no such file (check the path)"
        );
        let err = read_focus_files(&[dir.path().to_path_buf()], CostMetric::BilledCost, None)
            .unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert!(matches!(
            read_focus_files(&[], CostMetric::BilledCost, None),
            Err(CostError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn provider_reads_in_the_background_and_versions_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("costs.csv");
        std::fs::write(&a, format!("{HEADER}\nr1,,EC2,1,2,USD,2026-10-01,AWS,,,\n")).unwrap();
        let provider = FocusProvider::new(vec![a.clone()]);
        assert_eq!(provider.describe(), "FOCUS file(s) costs.csv");
        assert_eq!(provider.metrics()[0], CostMetric::BilledCost);
        let v1 = provider.version();
        assert!(v1.starts_with("costs.csv:"), "{v1}");
        assert!(!v1.contains(dir.path().to_str().unwrap()));
        let c = provider
            .line_costs(
                &CostQuery {
                    period: Some(oct()),
                    metric: Some(CostMetric::EffectiveCost),
                },
                &[],
            )
            .await
            .unwrap();
        assert_eq!(c.total(), 2_000_000);
        assert_eq!(c.report.source, "FOCUS file(s) costs.csv");
        let err = provider
            .line_costs(
                &CostQuery {
                    period: None,
                    metric: Some(CostMetric::AmortizedCost),
                },
                &[],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, CostError::Invalid(_)), "{err}");
        std::fs::write(
            &a,
            format!("{HEADER}\nr1,,EC2,1,2,USD,2026-10-01,AWS,,,\n\n"),
        )
        .unwrap();
        assert_ne!(
            provider.version(),
            v1,
            "a rewritten file changes the version"
        );
    }

    /// The hand-computed figures of tests/fixtures/focus/README.md.
    #[test]
    fn multicloud_fixture_matches_its_readme() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/focus/multicloud.csv");
        let c = read_focus_files(
            std::slice::from_ref(&path),
            CostMetric::BilledCost,
            Some(oct()),
        )
        .unwrap();
        assert_eq!(c.currency, "USD");
        assert_eq!(
            (
                c.report.rows_read,
                c.report.rows_used,
                c.report.rows_skipped
            ),
            (25, 19, 2)
        );
        assert_eq!(problem_lines(&c), vec![14, 19]);
        assert!(c.report.problems[0].reason.contains("BilledCost \"n/a\""));
        assert!(c.report.problems[1].reason.contains("Tags \"team=batch\""));
        assert!(c.report.problems.iter().all(|p| p.file == "multicloud.csv"));
        assert_eq!(c.total(), 1_358_465_678);
        assert_eq!(c.lines.len(), 13);
        let resources: std::collections::HashSet<&str> = c
            .lines
            .iter()
            .filter(|l| !l.resource_id.is_empty())
            .map(|l| l.resource_id.as_str())
            .collect();
        assert_eq!(resources.len(), 10);
        let by_provider = |p: Provider| -> Micros {
            c.lines
                .iter()
                .filter(|l| l.provider == p)
                .map(|l| l.amount)
                .sum()
        };
        assert_eq!(by_provider(Provider::Aws), 810_795_678);
        assert_eq!(by_provider(Provider::Azure), 423_400_000);
        assert_eq!(by_provider(Provider::Gcp), 124_270_000);

        let web = "arn:aws:ec2:us-east-1:111122223333:instance/i-0web1";
        let vm = "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01";
        let etl = "//compute.googleapis.com/projects/proj-analytics/zones/europe-west1-b/instances/vm-etl-1";
        let expected: &[(&str, &str, Micros)] = &[
            ("", "AWS Support (Business)", 100_000_000),
            ("", "Amazon Elastic Compute Cloud", 24_100_000),
            (
                "//bigquery.googleapis.com/projects/proj-analytics/datasets/sales",
                "BigQuery",
                7_770_000,
            ),
            (etl, "Compute Engine", 104_500_000),
            (
                "//storage.googleapis.com/projects/_/buckets/analytics-lake",
                "Cloud Storage",
                12_000_000,
            ),
            (
                "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01",
                "Storage",
                18_400_000,
            ),
            (vm, "Virtual Machines", 405_000_000),
            (
                "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                "Amazon DynamoDB",
                15_000_000,
            ),
            (web, "Amazon CloudWatch", 4_250_000),
            (web, "Amazon Elastic Compute Cloud", 220_000_000),
            (
                "arn:aws:lambda:us-east-1:111122223333:function:settle",
                "AWS Lambda",
                2_345_678,
            ),
            (
                "arn:aws:rds:us-east-1:111122223333:db:orders",
                "Amazon Relational Database Service",
                410_000_000,
            ),
            (
                "arn:aws:s3:::payments-invoices",
                "Amazon Simple Storage Service",
                35_100_000,
            ),
        ];
        let got: Vec<(&str, &str, Micros)> = c
            .lines
            .iter()
            .map(|l| (l.resource_id.as_str(), l.service.as_str(), l.amount))
            .collect();
        assert_eq!(got, expected);

        let web_ec2 = line(&c, web, "Amazon Elastic Compute Cloud");
        assert_eq!(
            web_ec2.tags,
            tags(&[
                ("CostCenter", "cc-100"),
                ("Environment", "prod"),
                ("team", "payments")
            ])
        );
        assert_eq!(
            (web_ec2.resource_type.as_str(), web_ec2.name.as_str()),
            ("ec2:instance", "i-0web1")
        );
        let dynamo = line(
            &c,
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
            "Amazon DynamoDB",
        );
        assert_eq!(
            dynamo.tags,
            tags(&[("TEAM", "orders"), ("environment", "Prod")])
        );
        let vm_line = line(&c, vm, "Virtual Machines");
        assert_eq!(
            (vm_line.resource_type.as_str(), vm_line.name.as_str()),
            ("compute:virtualmachines", "vm-web-01")
        );
        let etl_line = line(&c, etl, "Compute Engine");
        assert_eq!(
            (etl_line.resource_type.as_str(), etl_line.name.as_str()),
            ("compute:instances", "etl worker 1")
        );
        assert_eq!(
            etl_line.tags,
            tags(&[("cost-center", "1234"), ("env", "dev"), ("team", "data")])
        );
        let lake = line(
            &c,
            "//storage.googleapis.com/projects/_/buckets/analytics-lake",
            "Cloud Storage",
        );
        assert_eq!(
            lake.tags,
            tags(&[("archived", "false"), ("owner", ""), ("team", "data")])
        );

        let effective = read_focus_files(
            std::slice::from_ref(&path),
            CostMetric::EffectiveCost,
            Some(oct()),
        )
        .unwrap();
        assert_eq!(effective.total(), 1_238_465_678);
        let effective_of = |p: Provider| -> Micros {
            effective
                .lines
                .iter()
                .filter(|l| l.provider == p)
                .map(|l| l.amount)
                .sum()
        };
        assert_eq!(effective_of(Provider::Aws), 740_795_678);
        assert_eq!(effective_of(Provider::Azure), 383_400_000);
        assert_eq!(effective_of(Provider::Gcp), 114_270_000);
        assert_eq!(
            line(&effective, web, "Amazon Elastic Compute Cloud").amount,
            180_000_000
        );
        assert_eq!(line(&effective, vm, "Virtual Machines").amount, 365_000_000);
        assert_eq!(line(&effective, etl, "Compute Engine").amount, 94_500_000);
        let unowned: Vec<(&str, &str, Provider, usize)> = c
            .lines
            .iter()
            .filter(|l| l.resource_id.is_empty())
            .map(|l| {
                (
                    l.account.as_str(),
                    l.region.as_str(),
                    l.provider,
                    l.tags.len(),
                )
            })
            .collect();
        assert_eq!(
            unowned,
            vec![
                ("111122223333", "", Provider::Aws, 0),
                ("111122223333", "", Provider::Aws, 0)
            ]
        );
        assert_eq!(
            (vm_line.account.as_str(), vm_line.region.as_str()),
            ("00000000-0000-0000-0000-0000000000a1", "westeurope")
        );
        assert_eq!(lake.resource_type, "storage:buckets");
        assert_eq!(problem_lines(&effective), vec![14, 19]);

        let whole = read_focus_files(&[path], CostMetric::BilledCost, None).unwrap();
        assert_eq!(whole.total(), 3_365_465_678);
        assert_eq!(whole.report.rows_used, 23);
        assert_eq!(
            whole.period,
            Period {
                start: NaiveDate::from_ymd_opt(2026, 9, 15).unwrap(),
                end: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
            }
        );
    }
}
