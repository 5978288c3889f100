//! The numbers an operator watches, served as OpenMetrics text at `/metrics`: tool calls and
//! their durations, guard refusals, cloud requests and the Cost Explorer charge, scan
//! durations, cache lookups, the last compliance score and cost gap, the audit queue, and the
//! HTTP side (requests by route, method and status, open connections, MCP sessions).
//!
//! One `Metrics` per server, no global recorder: tests run several servers in one process.
//! Recording is a lock-free atomic add once a series exists (a read lock to find it). Every
//! label value comes from a closed set — an enum here, or a `&'static str` tool name from the
//! registry — so no ARN, tag value, session, token or principal can become a label, and the
//! number of series is bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The content type of the text `render` writes.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Cost Explorer API's price per request, in USD (as AWS bills it).
const COST_EXPLORER_USD_PER_REQUEST: f64 = 0.01;

/// A label whose values are the variants of an enum: `ALL` lists every value it can take.
macro_rules! closed_label {
    ($(#[$doc:meta])* $vis:vis $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $(#[doc = $text] $variant),+ }

        impl $name {
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            pub(crate) fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

closed_label!(
    /// How a tool call ended: answered, answered with an `isError` result (bad arguments, an
    /// unavailable source, an unknown tool), or refused by a guard before it ran.
    pub(crate) ToolOutcome { Ok => "ok", ToolError => "tool_error", Refused => "refused" }
);

closed_label!(
    /// The guard that refused a call.
    pub(crate) GuardName {
        Validation => "validation",
        Audit => "audit",
        Budget => "budget",
        Loop => "loop",
        Other => "other",
    }
);

closed_label!(
    /// Whose API a request went to.
    pub(crate) CloudProvider { Aws => "aws" }
);

closed_label!(
    /// The cloud operations Tagwarden makes; any other is `other`.
    pub(crate) CloudOperation {
        GetResources => "GetResources",
        TagResources => "TagResources",
        ListAccounts => "ListAccounts",
        AssumeRole => "AssumeRole",
        DescribeEffectivePolicy => "DescribeEffectivePolicy",
        GetCostAndUsage => "GetCostAndUsage",
        GetCostAndUsageWithResources => "GetCostAndUsageWithResources",
        SelectAggregateResourceConfig => "SelectAggregateResourceConfig",
        SelectResourceConfig => "SelectResourceConfig",
        ListIndexes => "ListIndexes",
        ListResources => "ListResources",
        Other => "other",
    }
);

impl CloudOperation {
    /// The operation an SDK names (`Metadata::name`), or `Other`: never the name itself.
    pub(crate) fn from_sdk(name: &str) -> CloudOperation {
        CloudOperation::ALL
            .iter()
            .copied()
            .find(|op| *op != CloudOperation::Other && op.as_str() == name)
            .unwrap_or(CloudOperation::Other)
    }

    fn is_cost_explorer(self) -> bool {
        matches!(
            self,
            CloudOperation::GetCostAndUsage | CloudOperation::GetCostAndUsageWithResources
        )
    }
}

closed_label!(
    /// What became of one HTTP request to a cloud API.
    pub(crate) CloudOutcome {
        Ok => "ok",
        Throttled => "throttled",
        ClientError => "client_error",
        ServerError => "server_error",
        NoResponse => "no_response",
    }
);

impl CloudOutcome {
    /// The outcome of a request answered with `status`, or that got no answer (`None`).
    pub(crate) fn of_status(status: Option<u16>) -> CloudOutcome {
        match status {
            None => CloudOutcome::NoResponse,
            Some(200..=399) => CloudOutcome::Ok,
            Some(429) => CloudOutcome::Throttled,
            Some(400..=499) => CloudOutcome::ClientError,
            Some(_) => CloudOutcome::ServerError,
        }
    }
}

closed_label!(
    /// Which part of the HTTP listener a request was for (by path prefix; never the path).
    pub(crate) HttpRoute {
        Mcp => "mcp",
        Console => "console",
        Metrics => "metrics",
        Health => "healthz",
        OAuthMetadata => "oauth_metadata",
        Other => "other"
    }
);

impl HttpRoute {
    pub(crate) fn of_path(path: &str) -> HttpRoute {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/mcp") {
            HttpRoute::Mcp
        } else if under("/ui") {
            HttpRoute::Console
        } else if under("/metrics") {
            HttpRoute::Metrics
        } else if under("/healthz") {
            HttpRoute::Health
        } else if path.starts_with("/.well-known/") {
            HttpRoute::OAuthMetadata
        } else {
            HttpRoute::Other
        }
    }
}

closed_label!(
    /// An HTTP request's method, the ones the listener serves named.
    pub(crate) HttpMethod { Get => "GET", Post => "POST", Delete => "DELETE", Other => "other" }
);

impl HttpMethod {
    pub(crate) fn of(method: &str) -> HttpMethod {
        match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "DELETE" => HttpMethod::Delete,
            _ => HttpMethod::Other,
        }
    }
}

/// An HTTP status code (100-599: a closed set by the protocol; anything else is `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HttpStatus(u16);

impl HttpStatus {
    pub(crate) fn of(code: u16) -> HttpStatus {
        HttpStatus(if (100..=599).contains(&code) { code } else { 0 })
    }
}

impl EncodeLabelValue for HttpStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

closed_label!(
    /// Where an inventory scan read from (public: inventory providers name theirs).
    pub InventorySource { Aws => "aws", File => "file", Demo => "demo", Other => "other" }
);

closed_label!(
    /// Which cache layer was asked.
    pub(crate) CacheLayer { InProcess => "in_process", Redis => "redis" }
);

closed_label!(
    /// What a cache lookup found.
    pub(crate) CacheResult { Hit => "hit", Miss => "miss", Error => "error" }
);

closed_label!(
    /// Which tags a compliance score counts: effective (normalised, with virtual tags) or
    /// native (as the cloud holds them).
    pub(crate) ScoreView { Effective => "effective", Native => "native" }
);

/// A tool's name as registered (`Tool::NAME`), or `other` for a name the registry does not
/// know. Only a `&'static str` makes one, so a name a client sent cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ToolName(&'static str);

impl ToolName {
    pub(crate) const OTHER: ToolName = ToolName("other");

    /// A registered tool (its `Tool::NAME`).
    pub(crate) fn registered(name: &'static str) -> ToolName {
        ToolName(name)
    }

    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        self.0
    }
}

impl EncodeLabelValue for ToolName {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ToolLabels {
    tool: ToolName,
    outcome: ToolOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: HttpRoute,
    method: HttpMethod,
    status: HttpStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: HttpRoute,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GuardLabels {
    guard: GuardName,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CloudLabels {
    provider: CloudProvider,
    operation: CloudOperation,
    outcome: CloudOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScanLabels {
    source: InventorySource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    layer: CacheLayer,
    result: CacheResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ViewLabels {
    view: ScoreView,
}

/// The label set of a series without labels, so that a gauge can stay absent until it has a
/// value (a family shows only the series recorded).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Unlabelled;

impl EncodeLabelSet for Unlabelled {
    fn encode(&self, _encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

type Ratio = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Tool calls: from a millisecond (a cached answer) to the HTTP request timeout.
const CALL_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];
/// Scans: a demo estate in milliseconds to an organisation in many minutes.
const SCAN_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0,
];

fn call_histogram() -> Histogram {
    Histogram::new(CALL_BUCKETS)
}

fn scan_histogram() -> Histogram {
    Histogram::new(SCAN_BUCKETS)
}

/// Every series of one server and the registry that renders them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    tool_calls: Family<ToolLabels, Counter>,
    tool_durations: HistogramFamily<ToolLabels>,
    guard_refusals: Family<GuardLabels, Counter>,
    cloud_requests: Family<CloudLabels, Counter>,
    cost_explorer_charge: Counter<f64, AtomicU64>,
    scan_durations: HistogramFamily<ScanLabels>,
    cache_lookups: Family<CacheLabels, Counter>,
    compliance_score: Family<ViewLabels, Ratio>,
    unattributed_cost: Family<Unlabelled, Ratio>,
    audit_queue_depth: Family<Unlabelled, Gauge<i64, AtomicI64>>,
    http_requests: Family<HttpLabels, Counter>,
    http_durations: HistogramFamily<RouteLabels>,
    http_connections: Gauge<i64, AtomicI64>,
    mcp_sessions: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tagwarden");
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (ok, tool_error, refused)",
            tool_calls.clone(),
        );
        let tool_durations =
            HistogramFamily::<ToolLabels>::new_with_constructor(call_histogram as fn() -> _);
        registry.register_with_unit(
            "tool_call_duration",
            "Time a tool call took through the guards and the tool (the audit write excluded)",
            Unit::Seconds,
            tool_durations.clone(),
        );
        let guard_refusals = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_refusals",
            "Tool calls refused by a guard before running, by guard",
            guard_refusals.clone(),
        );
        let cloud_requests = Family::<CloudLabels, Counter>::default();
        registry.register(
            "cloud_requests",
            "HTTP requests to cloud APIs (retries included), by provider, operation and outcome",
            cloud_requests.clone(),
        );
        let cost_explorer_charge = Counter::<f64, AtomicU64>::default();
        registry.register(
            "cost_explorer_charge_usd",
            "What the Cost Explorer requests made cost (USD 0.01 each, retries included)",
            cost_explorer_charge.clone(),
        );
        let scan_durations =
            HistogramFamily::<ScanLabels>::new_with_constructor(scan_histogram as fn() -> _);
        registry.register_with_unit(
            "scan_duration",
            "Inventory scans (failed ones included), by source",
            Unit::Seconds,
            scan_durations.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by layer (in_process, redis) and result (hit, miss, error)",
            cache_lookups.clone(),
        );
        let compliance_score = Family::<ViewLabels, Ratio>::default();
        registry.register_with_unit(
            "compliance_score",
            "Share of in-scope resources without violations, 0-1, from the last whole-estate \
             check or snapshot, by view (effective, native)",
            Unit::Other("ratio".into()),
            compliance_score.clone(),
        );
        let unattributed_cost = Family::<Unlabelled, Ratio>::default();
        registry.register_with_unit(
            "unattributed_cost",
            "Share of spend that cannot be attributed, 0-1, from the last whole-estate cost \
             attribution gap",
            Unit::Other("ratio".into()),
            unattributed_cost.clone(),
        );
        let audit_queue_depth = Family::<Unlabelled, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "audit_queue_depth",
            "Audit rows queued for the writer, not yet on disk",
            audit_queue_depth.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route (mcp, console, metrics, healthz, oauth_metadata, \
             other), method and status (401: no or a bad token, 429: over the request rate)",
            http_requests.clone(),
        );
        let http_durations =
            HistogramFamily::<RouteLabels>::new_with_constructor(call_histogram as fn() -> _);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its answer's head (a stream's body excluded), by route",
            Unit::Seconds,
            http_durations.clone(),
        );
        let http_connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_connections_open",
            "Client connections open on the HTTP listener",
            http_connections.clone(),
        );
        let mcp_sessions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "mcp_sessions_open",
            "MCP sessions open on this replica (and ones being opened)",
            mcp_sessions.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            tool_calls,
            tool_durations,
            guard_refusals,
            cloud_requests,
            cost_explorer_charge,
            scan_durations,
            cache_lookups,
            compliance_score,
            unattributed_cost,
            audit_queue_depth,
            http_requests,
            http_durations,
            http_connections,
            mcp_sessions,
        }
    }

    /// One HTTP request answered, and how long until its answer's head.
    pub(crate) fn http_request(
        &self,
        route: HttpRoute,
        method: HttpMethod,
        status: HttpStatus,
        took: Duration,
    ) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
        self.http_durations
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// Client connections open now.
    pub(crate) fn http_connections_open(&self, open: usize) {
        self.http_connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// MCP sessions open (or being opened) now.
    pub(crate) fn mcp_sessions_open(&self, open: usize) {
        self.mcp_sessions
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// One tool call and how long it took.
    pub(crate) fn tool_call(&self, tool: ToolName, outcome: ToolOutcome, took: Duration) {
        let labels = ToolLabels { tool, outcome };
        self.tool_calls.get_or_create(&labels).inc();
        self.tool_durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A guard refused a call (counted in `tool_call` too, as `refused`).
    pub(crate) fn guard_refusal(&self, guard: GuardName) {
        self.guard_refusals
            .get_or_create(&GuardLabels { guard })
            .inc();
    }

    /// One HTTP request to a cloud API; a Cost Explorer request adds its charge.
    pub(crate) fn cloud_request(
        &self,
        provider: CloudProvider,
        operation: CloudOperation,
        outcome: CloudOutcome,
    ) {
        self.cloud_requests
            .get_or_create(&CloudLabels {
                provider,
                operation,
                outcome,
            })
            .inc();
        if operation.is_cost_explorer() {
            self.cost_explorer_charge
                .inc_by(COST_EXPLORER_USD_PER_REQUEST);
        }
    }

    /// One inventory scan, finished or failed.
    pub(crate) fn scan(&self, source: InventorySource, took: Duration) {
        self.scan_durations
            .get_or_create(&ScanLabels { source })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn cache_lookup(&self, layer: CacheLayer, result: CacheResult) {
        self.cache_lookups
            .get_or_create(&CacheLabels { layer, result })
            .inc();
    }

    /// The score of the whole estate in `view`, in % (0-100) as answers carry it.
    pub(crate) fn compliance_score_pct(&self, view: ScoreView, pct: f64) {
        self.compliance_score
            .get_or_create(&ViewLabels { view })
            .set(ratio(pct));
    }

    /// The cost attribution gap of the whole estate, in % (0-100) as answers carry it.
    pub(crate) fn unattributed_cost_pct(&self, pct: f64) {
        self.unattributed_cost
            .get_or_create(&Unlabelled)
            .set(ratio(pct));
    }

    /// Audit rows waiting for the writer (read when rendering).
    pub(crate) fn audit_queue_depth(&self, rows: usize) {
        self.audit_queue_depth
            .get_or_create(&Unlabelled)
            .set(i64::try_from(rows).unwrap_or(i64::MAX));
    }

    /// Every series as OpenMetrics text (ending in `# EOF`), served as `CONTENT_TYPE`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; an encoder error would be a bug in a label type.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// A percentage as a 0-1 ratio, clamped (a rounding error must not leave the range).
fn ratio(pct: f64) -> f64 {
    if pct.is_finite() {
        (pct / 100.0).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
