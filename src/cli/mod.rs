//! The `tagwarden` command line: flags are declared here once, with their docs and
//! environment variables, and `--help` is generated from them.

mod alerts;
mod allocation;
mod anomalies;
mod check;
mod commands;
mod cost;
mod database;
mod export;
mod identity;
mod policy;
mod progress;
mod promote;
mod report;
mod source;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use commands::run;
pub(crate) use source::SourceArgs;

pub(crate) use crate::util::parse_duration;

use crate::guard::{BudgetConfig, GuardConfig, Limits, LoopConfig};
use crate::policy::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "tagwarden",
    version,
    about = "Tag governance for cloud cost attribution, served to AI assistants over MCP",
    long_about = "Tag governance for cloud cost attribution.\n\n\
        `tagwarden check --demo` evaluates the built-in demo estate; `tagwarden serve --stdio` \
        serves the MCP tools to Claude Desktop or any MCP client.\n\n\
        Logs go to stderr; set TAGWARDEN_LOG (e.g. debug, or tagwarden=debug) to change the level."
)]
/// The `tagwarden` command line.
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing worth a Box.
/// The subcommands.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate the estate once and print a compliance summary.
    ///
    /// Exit codes: 0 ok, 2 score below --fail-under, 1 error.
    Check(CheckArgs),
    /// Write a compliance report: Markdown, one self-contained HTML file, CSV or JSON.
    Report(ReportArgs),
    /// Serve the MCP tools over stdio (for Claude Desktop) or Streamable HTTP.
    Serve(ServeArgs),
    /// Work with the MCP tool definitions.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Work with the built-in demo estate.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read and verify the audit log of tool calls.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Work with cost files.
    #[command(subcommand)]
    Cost(CostCommand),
    /// Measure how well tag suggestions are calibrated.
    Suggest(SuggestArgs),
    /// Find cost anomalies in daily costs (FOCUS files or the demo's), with the resources
    /// and owners behind each.
    Anomalies(anomalies::AnomaliesArgs),
    /// Promote approved virtual tags to real AWS tags: plan → approve → apply (→ show).
    Promote(promote::PromoteArgs),
    /// Write the estate's violations for spreadsheets and CI systems.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Alert on compliance regressions between snapshots (webhook, Slack, e-mail).
    #[command(subcommand)]
    Alerts(AlertsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Compare the latest snapshot (or --snapshot) with the one before it in its scope and,
    /// when the score fell, critical violations grew or unattributed spend grew beyond the
    /// thresholds, send one alert to each channel. Prints the outcome as JSON.
    ///
    /// Exit codes: 0 compared and every alert delivered, 1 error or an alert undelivered.
    Check(alerts::AlertsCheckArgs),
    /// List the alerts that stayed undelivered after their retries (newest first, JSON):
    /// channel, error, the snapshot and the exact body.
    DeadLetters(alerts::DeadLettersArgs),
    /// Send kept dead letters again (all, oldest first, or --id N) on the channels configured
    /// now: delivered ones are removed, failing ones stay with their attempts raised. Prints
    /// the outcome as JSON.
    ///
    /// Exit codes: 0 every letter delivered (or none kept), 1 error or a letter undelivered.
    Resend(alerts::ResendArgs),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Every violation, one CSV row each (or JUnit XML: each resource a test case, each
    /// violation a failure), streamed to --out or stdout.
    ///
    /// Exit codes: 0 written (violations or not; gate with `check --fail-under` or on the
    /// JUnit failures), 1 error.
    Violations(export::ExportViolationsArgs),
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// Hide tags a generated estate's truth knows, predict them back, and print precision and
    /// coverage per confidence band (≥ 0.9, 0.7–0.9, < 0.7), per key and per allowed-value
    /// pattern.
    #[arg(long)]
    pub evaluate: bool,
    /// Evaluate on the built-in demo estate (same as `--estate demo`).
    #[arg(long)]
    pub demo: bool,
    /// The generated estate: `demo` (one stack per deployment) or `irregular` (shared stacks,
    /// per-person sandboxes, mixed accounts and VPCs, inconsistent names; built independently
    /// of the demo).
    #[arg(long, value_enum, conflicts_with = "demo")]
    pub estate: Option<Estate>,
    /// Seed of the generated estate.
    #[arg(long, visible_alias = "seed", default_value_t = crate::inventory::demo::DEFAULT_SEED)]
    pub demo_seed: u64,
    /// Resources in the generated estate.
    #[arg(long, visible_alias = "size", default_value_t = crate::inventory::demo::DEFAULT_SIZE)]
    pub demo_size: usize,
    /// Policy file (default: policies/tagging_policy.json if present, else the built-in policy).
    #[arg(long, env = "TAGWARDEN_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// A generated estate with known truth, for `suggest --evaluate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Estate {
    Demo,
    Irregular,
}

#[derive(Debug, Subcommand)]
pub enum CostCommand {
    /// Read FOCUS cost file(s) and summarise them: rows read, used and skipped (with line
    /// numbers), the period, totals per provider and service. Checks an export before use.
    Inspect(cost::CostInspectArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format. `json` is exactly what the check_tag_compliance tool returns.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit with code 2 when the effective score (%) is below this.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub fail_under: Option<f64>,
    /// Only these resource types (patterns such as `ec2:*`, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub resource_types: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long = "only-regions", value_delimiter = ',', value_name = "REGIONS")]
    pub only_regions: Vec<String>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ACCOUNTS")]
    pub accounts: Vec<String>,
    /// Only violations of these keys (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub tag_keys: Vec<String>,
    /// Only violations at or above this severity.
    #[arg(long, value_enum)]
    pub min_severity: Option<SeverityArg>,
    /// How many violations to list (worst first).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=200))]
    pub limit: u32,
    /// Store the result as a snapshot in history.db (for trends and drift).
    #[arg(long)]
    pub snapshot: bool,
    /// Record the snapshot as taken at this time (RFC 3339), to backfill history from archived
    /// inventory exports. Default: now.
    #[arg(long, requires = "snapshot", value_name = "TIME", value_parser = parse_time)]
    pub taken_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Shared-cost allocation rules (JSON or YAML: a list of rules as manage_allocation_rules
    /// takes them) applied to the cost gap. Default: the rules stored in history.db.
    #[arg(long, value_name = "FILE")]
    pub allocation_rules: Option<PathBuf>,
    /// Rescan instead of reusing a scan in the shared cache.
    #[arg(long)]
    pub force_refresh: bool,
    /// Directory of the SQLite databases (history.db). Default: history/ if it exists here,
    /// else $XDG_DATA_HOME/tagwarden (~/.local/share/tagwarden).
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: database::DatabaseArgs,
}

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormatArg {
    /// Tables and lists, for tickets and pull requests.
    Markdown,
    /// One self-contained file (inline CSS and SVG charts) that opens offline.
    Html,
    /// One row per figure: `section,item,metric,value`.
    Csv,
    /// The report's data (what the generate_compliance_report tool renders).
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormatArg,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How many offenders and groups per breakdown to list (the rest are summed).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub top: u32,
    /// Only these resource types (patterns such as `ec2:*`, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub resource_types: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long = "only-regions", value_delimiter = ',', value_name = "REGIONS")]
    pub only_regions: Vec<String>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ACCOUNTS")]
    pub accounts: Vec<String>,
    /// The tag key of the owner/team breakdown (default: the first required key named like
    /// `owner`, else `team`).
    #[arg(long, value_name = "KEY")]
    pub owner_key: Option<String>,
    /// Shared-cost allocation rules (JSON or YAML: a list of rules as manage_allocation_rules
    /// takes them): the report shows unattributed spend before and after them. Default: the
    /// rules stored in history.db.
    #[arg(long, value_name = "FILE")]
    pub allocation_rules: Option<PathBuf>,
    /// Rescan instead of reusing a scan in the shared cache.
    #[arg(long)]
    pub force_refresh: bool,
    /// Directory of history.db (snapshots for the trend and the change, approved virtual
    /// tags). Default: history/ if it exists here, else $XDG_DATA_HOME/tagwarden.
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: database::DatabaseArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("transport").required(true).args(["stdio", "http"])))]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Serve one MCP session on stdin/stdout (what Claude Desktop launches).
    #[arg(long)]
    pub stdio: bool,
    /// Serve MCP Streamable HTTP at http://ADDR/mcp (and /healthz, and /metrics behind the
    /// same tokens), e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", env = "TAGWARDEN_HTTP")]
    pub http: Option<SocketAddr>,
    /// Also serve /metrics (OpenMetrics) on this loopback address without a token, for a
    /// scraper on the same host, e.g. 127.0.0.1:9464. A non-loopback address is refused.
    #[arg(long, value_name = "ADDR", env = "TAGWARDEN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer tokens accepted over HTTP (comma-separated): a plain token is an approver;
    /// `name:role:token` gives the role (viewer, approver, admin) and names the principal
    /// (`token:<name>`). Tokens or OAuth are required to bind a non-loopback address.
    #[arg(
        long,
        env = "TAGWARDEN_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
    /// Bearer tokens of administrators (comma-separated plain tokens): the admin role, which
    /// approves and applies promotion plans and reads every principal's audit rows.
    #[arg(
        long,
        env = "TAGWARDEN_ADMIN_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_tokens: Vec<String>,
    /// Host header values accepted over HTTP (DNS-rebinding protection). Default: localhost,
    /// 127.0.0.1, ::1 and the bound address.
    #[arg(long, env = "TAGWARDEN_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted over HTTP (`scheme://host:port`, `:*` for any port). Default:
    /// http://localhost:*, http://127.0.0.1:*, http://[::1]:*.
    #[arg(long, env = "TAGWARDEN_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Do not start scanning at start-up (the first tool call scans instead).
    #[arg(long, env = "TAGWARDEN_NO_PREWARM")]
    pub no_prewarm: bool,
    /// HTTP requests per minute allowed per bearer token (or per client address without
    /// tokens); 0 = unlimited.
    #[arg(long, env = "TAGWARDEN_HTTP_RATE_LIMIT", default_value_t = 600)]
    pub http_rate_limit: u32,
    /// Directory of the SQLite databases (audit.db, history.db). Default: history/ if it
    /// exists here, else $XDG_DATA_HOME/tagwarden (~/.local/share/tagwarden).
    #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub database: database::DatabaseArgs,
    /// Largest size of audit.db (e.g. 500M, 2G; bytes without a unit). When it is reached,
    /// calls are answered with an error until the log is archived or the bound raised.
    /// Default: unbounded. Not with --database-url.
    #[arg(long, env = "TAGWARDEN_AUDIT_MAX_BYTES", value_name = "SIZE", value_parser = source::parse_bytes, conflicts_with = "database_url")]
    pub audit_max_bytes: Option<u64>,
    /// Take a compliance snapshot of the whole estate this often in the background (e.g. 6h;
    /// a rescan each time). Off by default.
    #[arg(long, visible_alias = "audit-every", env = "TAGWARDEN_SNAPSHOT_EVERY", value_name = "INTERVAL", value_parser = parse_duration)]
    pub snapshot_every: Option<Duration>,
    /// Delete snapshots older than this many days (checked after each snapshot and at start).
    #[arg(long, env = "TAGWARDEN_KEEP_DAYS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub keep_days: u32,
    /// Alerts after each scheduled snapshot (with --snapshot-every).
    #[command(flatten)]
    pub alerts: alerts::AlertArgs,
    /// Tokens file and OAuth.
    #[command(flatten)]
    pub identity: identity::IdentityArgs,
    #[command(flatten)]
    pub http_limits: HttpLimitArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// Limits of the HTTP transport: slow clients, connections, failed logins, sessions, shutdown.
#[derive(Debug, Clone, Args)]
pub struct HttpLimitArgs {
    /// A client must send a whole request head within this long of connecting, or of the first
    /// byte of its next request (partial or trickled headers are cut off).
    #[arg(long, env = "TAGWARDEN_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,
    /// An idle keep-alive connection is closed after this long.
    #[arg(long, env = "TAGWARDEN_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_idle_timeout: Duration,
    /// The longest a request may take, from its head to the end of its answer (a call still
    /// running then is answered with a timeout error); SSE streams opened with GET excepted.
    #[arg(long, env = "TAGWARDEN_HTTP_REQUEST_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub http_request_timeout: Duration,
    /// Open HTTP connections in all (0 = three quarters of the open-file limit, at most 4096).
    /// At the cap, idle connections are closed to make room; new ones are refused only when
    /// none is idle.
    #[arg(long, env = "TAGWARDEN_HTTP_MAX_CONNECTIONS", default_value_t = 0)]
    pub http_max_connections: usize,
    /// Open HTTP connections per client address (IPv6: per /64).
    #[arg(
        long,
        env = "TAGWARDEN_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 128
    )]
    pub http_max_connections_per_address: usize,
    /// Failed logins (wrong or missing bearer token) per minute per client address; past it
    /// every request from that address gets 429 for a while (0 = unlimited).
    #[arg(
        long,
        env = "TAGWARDEN_HTTP_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 20
    )]
    pub http_auth_failures_per_minute: u32,
    /// Open MCP sessions in all (0 = unlimited); beyond it `initialize` gets 503.
    #[arg(long, env = "TAGWARDEN_HTTP_MAX_SESSIONS", default_value_t = 1000)]
    pub http_max_sessions: usize,
    /// Open MCP sessions per token (or client address without tokens; 0 = unlimited); beyond
    /// it `initialize` gets 429.
    #[arg(
        long,
        env = "TAGWARDEN_HTTP_MAX_SESSIONS_PER_PRINCIPAL",
        default_value_t = 100
    )]
    pub http_max_sessions_per_principal: usize,
    /// A session with no request for this long is closed (its client must initialize again).
    #[arg(long, env = "TAGWARDEN_HTTP_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub http_session_idle_timeout: Duration,
    /// A web console session (`/ui`, after logging in with a token) with no request for this
    /// long is ended; the browser must log in again.
    #[arg(long, env = "TAGWARDEN_CONSOLE_SESSION_IDLE", default_value = "30m", value_parser = parse_duration)]
    pub console_session_idle: Duration,
    /// Mark the web console's session cookie `Secure` even when the server listens on a
    /// loopback address: set this when a TLS proxy on the same machine serves the console over
    /// HTTPS (without it, the cookie of an HTTPS console could be sent over plain HTTP).
    #[arg(long, env = "TAGWARDEN_CONSOLE_SECURE_COOKIE")]
    pub console_secure_cookie: bool,
    /// Reverse proxies or load balancers in front of the server (addresses or CIDR blocks,
    /// comma-separated): a request from one of them has its failed logins counted under the
    /// client its `X-Forwarded-For` names (the rightmost entry that is not such a proxy), not
    /// under the proxy. Without it, the TCP peer is the client.
    #[arg(
        long,
        env = "TAGWARDEN_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = crate::server::http::parse_trusted_proxy
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// On SIGTERM or Ctrl-C, how long calls in flight may take to finish before the server
    /// exits anyway.
    #[arg(long, env = "TAGWARDEN_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Guard rails applied to every tool call.
#[derive(Debug, Clone, Args)]
pub struct GuardArgs {
    /// Tool calls each session may make per hour (0 = unlimited).
    #[arg(long, env = "TAGWARDEN_BUDGET_PER_HOUR", default_value_t = 100)]
    pub budget_per_hour: u32,
    /// Tool calls each session may make per minute (0 = unlimited).
    #[arg(long, env = "TAGWARDEN_BUDGET_BURST", default_value_t = 20)]
    pub budget_burst: u32,
    /// Tool calls each principal (a bearer token; the client address without tokens) may
    /// make per hour, all its sessions together (0 = unlimited). Keep it below the global
    /// budget so that one client cannot lock out the others.
    #[arg(
        long,
        env = "TAGWARDEN_BUDGET_PRINCIPAL_PER_HOUR",
        default_value_t = 500
    )]
    pub budget_principal_per_hour: u32,
    /// Tool calls each principal may make per minute, all its sessions together (0 =
    /// unlimited). Default: the same as --budget-burst.
    #[arg(long, env = "TAGWARDEN_BUDGET_PRINCIPAL_BURST")]
    pub budget_principal_burst: Option<u32>,
    /// Tool calls all clients together may make per hour (0 = unlimited).
    #[arg(long, env = "TAGWARDEN_BUDGET_GLOBAL_PER_HOUR", default_value_t = 2000)]
    pub budget_global_per_hour: u32,
    /// Identical calls (same tool, same arguments once defaults are applied) allowed per
    /// principal, all its sessions together, within the loop window (0 = loop detection off).
    #[arg(long, env = "TAGWARDEN_LOOP_MAX_REPEATS", default_value_t = 3)]
    pub loop_max_repeats: u32,
    /// The loop-detection window (e.g. 5m).
    #[arg(long, env = "TAGWARDEN_LOOP_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub loop_window: Duration,
    /// Largest tool-argument object, in bytes.
    #[arg(long, env = "TAGWARDEN_MAX_ARGUMENT_BYTES", default_value_t = 65536)]
    pub max_argument_bytes: usize,
    /// Largest string in tool arguments, in bytes.
    #[arg(long, env = "TAGWARDEN_MAX_STRING_BYTES", default_value_t = 2048)]
    pub max_string_bytes: usize,
    /// Most items in a list in tool arguments.
    #[arg(long, env = "TAGWARDEN_MAX_LIST_ITEMS", default_value_t = 1000)]
    pub max_list_items: usize,
    /// Deepest nesting of objects and lists in tool arguments.
    #[arg(long, env = "TAGWARDEN_MAX_DEPTH", default_value_t = 8)]
    pub max_depth: usize,
    /// How long a call waits for its audit row to be on disk; past it, the call is answered
    /// with an error (no call is answered unrecorded).
    #[arg(long, env = "TAGWARDEN_AUDIT_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub audit_wait: Duration,
}

impl GuardArgs {
    pub fn config(&self) -> GuardConfig {
        GuardConfig {
            limits: Limits {
                max_argument_bytes: self.max_argument_bytes,
                max_string_bytes: self.max_string_bytes,
                max_list_items: self.max_list_items,
                max_depth: self.max_depth,
            },
            budget: BudgetConfig {
                per_session_per_hour: self.budget_per_hour,
                burst_per_minute: self.budget_burst,
                per_principal_per_hour: self.budget_principal_per_hour,
                principal_burst_per_minute: self
                    .budget_principal_burst
                    .unwrap_or(self.budget_burst),
                global_per_hour: self.budget_global_per_hour,
            },
            loops: LoopConfig {
                max_repeats: self.loop_max_repeats,
                window: self.loop_window,
            },
            audit_wait: self.audit_wait,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; name the first broken row (exit 1) if any.
    Verify {
        /// Directory holding audit.db (as for `serve --data-dir`).
        #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The log on PostgreSQL instead (as for `serve --database-url`).
        #[command(flatten)]
        database: database::DatabaseArgs,
    },
    /// Print the last rows of the audit log.
    Tail {
        #[arg(long, env = "TAGWARDEN_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        database: database::DatabaseArgs,
        /// How many rows.
        #[arg(short = 'n', long, default_value_t = 20)]
        rows: usize,
        /// Print rows as JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Write one JSON file per tool (the exact definition served) into DIR.
    Export {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Exit with an error when DIR's files differ from the definitions served.
    Check {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// List the tool names.
    List,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write the demo estate as `aws resourcegroupstaggingapi get-resources` JSON.
    Export {
        #[arg(long, default_value_t = crate::inventory::demo::DEFAULT_SEED)]
        seed: u64,
        /// Number of resources.
        #[arg(long, default_value_t = crate::inventory::demo::DEFAULT_SIZE)]
        size: usize,
        /// Which generator: `demo` (the built-in estate) or `irregular` (a second, uneven
        /// one: five accounts, stacks that mix environments, resources without stack or
        /// network, tags copied between resources) — for figures on data not shaped like the
        /// demo.
        #[arg(long, value_enum, default_value = "demo")]
        estate: Estate,
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file; print its summary, or the field and reason it is refused.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Convert an AWS Organizations tag policy (a file, or an account's effective policy) into
    /// a Tagwarden policy; what cannot be carried over is listed on stderr.
    Import(policy::PolicyImportArgs),
    /// Write the policy as an AWS tag policy (--aws) or Cloud Custodian policies
    /// (--custodian); what cannot be carried over is listed on stderr.
    Export(policy::PolicyExportArgs),
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-01T00:00:00Z: {e}"))
}

fn parse_pct(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 100".into())
    }
}
