//! One integration-test binary: the crate is linked once, not once per file. Each former
//! `tests/<name>.rs` is a module here (filter with `cargo test --test it <name>::`); helpers
//! live in `common`. Data the tests read stays in tests/{fixtures,support,clients,js,conformance}.
//!
//! All modules run in one process, concurrently: a module whose tests must take turns keeps
//! its own lock, and process-wide state (the moto servers) lives in statics until exit.

mod common;

mod alerts;
mod allocation;
mod anomalies;
mod audit_failclosed;
mod aws_cache;
mod aws_faults;
mod aws_moto;
mod cache_redis;
mod cli;
mod cloud_files;
mod config_moto;
mod conformance;
mod console;
mod cost;
mod cost_moto;
mod coverage_moto;
mod export;
mod fuzz;
mod guards;
mod history;
mod history_moto;
mod http_hardening;
mod identity;
mod inspector;
mod interchange;
mod mcp_app;
mod mcp_http;
mod mcp_stdio;
mod metrics;
mod oauth;
mod org_moto;
mod postgres;
mod promote_moto;
mod python_sdk;
mod redaction;
mod report;
mod roles;
mod shared_guard;
mod virtual_tags;
