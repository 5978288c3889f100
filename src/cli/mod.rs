//! The `tagwarden` command line: flags are declared here once, with their docs and
//! environment variables, and `--help` is generated from them.

mod check;
mod commands;
mod source;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use commands::run;
pub use source::SourceArgs;

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate the estate once and print a compliance summary.
    ///
    /// Exit codes: 0 ok, 2 score below --fail-under, 1 error.
    Check(CheckArgs),
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
    /// Serve MCP Streamable HTTP at http://ADDR/mcp (and /healthz), e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", env = "TAGWARDEN_HTTP")]
    pub http: Option<SocketAddr>,
    /// Bearer tokens accepted over HTTP (comma-separated). Required to bind a non-loopback
    /// address.
    #[arg(
        long,
        env = "TAGWARDEN_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
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
