//! The application state every tool and command works from: the policy in force, the inventory
//! source, and the latest scan with its evaluation, cached in-process.
//!
//! A scan is single-flight (concurrent callers wait for the same scan) and kept for `ttl` from
//! when its data was read (a listing taken from the shared cache is as old as it is there); an
//! evaluation is kept per (scan, policy hash), so a policy reload re-evaluates without rescanning.
//! The cache of tool answers and the history store hang off the application too.
//!
//! The parts: `policy` (the policy in force), `estate` (scans and their evaluation), `costs`
//! (cost sources and the money answers carry), `quality` (the `data_quality` block), `call`
//! (what one tool call sees, and who calls), `role` (what a caller may do) and `error` (what it
//! reports).

pub(crate) mod audits;
mod call;
pub(crate) mod costs;
mod error;
mod estate;
mod policy;
pub(crate) mod quality;
mod role;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::cache::Cache;
use crate::compliance::overlay::VirtualOverlay;
use crate::inventory::InventoryProvider;
use crate::inventory::aws::writer::TagWriter;
use crate::metrics::Metrics;
use crate::store::AuditStore;
use crate::store::HistoryStore;
use crate::store::VirtualTagStore;
pub(crate) use call::{Call, Memo, Principal};
pub(crate) use costs::CostSource;
use costs::KeptCosts;
pub(crate) use error::ToolError;
use estate::Loaded;
pub(crate) use estate::{Estate, ScanSource};
pub(crate) use policy::PolicyHolder;
pub(crate) use role::Role;

pub struct App {
    policy: PolicyHolder,
    /// The audit log of tool calls, when serving (read by `get_audit_trail`).
    audit: Option<Arc<dyn AuditStore>>,
    /// Compliance snapshots, when a data directory is in use.
    history: Option<Arc<dyn HistoryStore>>,
    /// Tool answers (and, with Redis, scan listings).
    cache: Arc<Cache>,
    provider: Arc<dyn InventoryProvider>,
    ttl: Duration,
    loaded: tokio::sync::RwLock<Option<Arc<Loaded>>>,
    scan_lock: Mutex<()>,
    /// The virtual-tag store (tags, rules, feedback), when a data directory is in use.
    virtual_tags: Option<Arc<dyn VirtualTagStore>>,
    /// The approved virtual tags in effect, as last read from the store.
    overlay: RwLock<Arc<VirtualOverlay>>,
    /// Suggestion statistics of the last estate they were built for, keyed by what they
    /// depend on (inventory, policy, virtual tags, feedback).
    suggest_stats: Memo<crate::suggest::SuggestStats>,
    /// Decisions on cost anomalies, when a data directory is in use.
    anomalies: Option<Arc<dyn crate::store::AnomalyStore>>,
    /// Stored shared-cost allocation rules, when a data directory is in use.
    allocation_rules: Option<Arc<dyn crate::store::AllocationRuleStore>>,
    /// Where costs come from, when configured.
    costs: Option<CostSource>,
    /// Recent resource-level costs per question, so compliance answers do not re-read a large
    /// cost file (or pay for a Cost Explorer request) each time.
    line_costs: Mutex<rustc_hash::FxHashMap<String, KeptCosts>>,
    /// Writes real tags (promotion of virtual tags), when the inventory is the live cloud.
    tag_writer: Option<Arc<dyn TagWriter>>,
    /// The series `/metrics` serves (also held by the cache and the AWS clients).
    metrics: Arc<Metrics>,
    /// The scheduled audits of a `serve` process (`schedule_compliance_audit`).
    audits: Option<Arc<dyn audits::ScheduledAudits>>,
}

impl App {
    pub fn new(policy: PolicyHolder, provider: Arc<dyn InventoryProvider>, ttl: Duration) -> App {
        App {
            policy,
            audit: None,
            history: None,
            cache: Arc::new(Cache::in_process()),
            provider,
            ttl,
            loaded: tokio::sync::RwLock::new(None),
            scan_lock: Mutex::new(()),
            virtual_tags: None,
            suggest_stats: Memo::default(),
            // Never a store generation: the first look at a store reads it.
            overlay: RwLock::new(Arc::new(VirtualOverlay::new(u64::MAX, []))),
            anomalies: None,
            allocation_rules: None,
            costs: None,
            line_costs: Mutex::new(rustc_hash::FxHashMap::default()),
            tag_writer: None,
            metrics: Arc::default(),
            audits: None,
        }
    }

    /// The metrics this application records into (the same the cache and the AWS clients
    /// were given).
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> App {
        self.metrics = metrics;
        self
    }

    /// The series `/metrics` serves.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The scheduled audits of this `serve` process, for `schedule_compliance_audit`.
    pub(crate) fn with_audits(mut self, audits: Arc<dyn audits::ScheduledAudits>) -> App {
        self.audits = Some(audits);
        self
    }

    /// The scheduled audits, when serving.
    pub(crate) fn audits(&self) -> Option<&Arc<dyn audits::ScheduledAudits>> {
        self.audits.as_ref()
    }

    /// Where promoted virtual tags are written (the live AWS source only).
    pub(crate) fn with_tag_writer(mut self, writer: Option<Arc<dyn TagWriter>>) -> App {
        self.tag_writer = writer;
        self
    }

    /// Virtual tags: read into the effective view, and written by the virtual-tag tools.
    pub fn with_virtual_tags(mut self, store: Arc<dyn VirtualTagStore>) -> App {
        self.virtual_tags = Some(store);
        self
    }

    /// Decisions on cost anomalies: written and read by `get_cost_anomalies`.
    pub fn with_anomalies(mut self, store: Arc<dyn crate::store::AnomalyStore>) -> App {
        self.anomalies = Some(store);
        self
    }

    /// Stored allocation rules: kept by `manage_allocation_rules`, applied by the cost gap
    /// when a question gives none.
    pub(crate) fn with_allocation_rules(
        mut self,
        store: Arc<dyn crate::store::AllocationRuleStore>,
    ) -> App {
        self.allocation_rules = Some(store);
        self
    }

    pub fn with_costs(mut self, costs: Option<CostSource>) -> App {
        self.costs = costs;
        self
    }

    pub fn with_audit(mut self, audit: Arc<dyn AuditStore>) -> App {
        self.audit = Some(audit);
        self
    }

    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> App {
        self.history = Some(history);
        self
    }

    pub fn with_cache(mut self, cache: Arc<Cache>) -> App {
        self.cache = cache;
        self
    }

    /// How long scans and cached answers stay fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn source_description(&self) -> String {
        self.provider.describe()
    }

    /// The policy in force (and where it comes from, its last reload error).
    pub fn policy(&self) -> &PolicyHolder {
        &self.policy
    }

    /// The audit log of tool calls, when serving.
    pub fn audit(&self) -> Option<&Arc<dyn AuditStore>> {
        self.audit.as_ref()
    }

    /// Compliance snapshots, when a data directory is in use.
    pub fn history(&self) -> Option<&Arc<dyn HistoryStore>> {
        self.history.as_ref()
    }

    /// The virtual-tag store, when a data directory is in use.
    pub fn virtual_tags(&self) -> Option<&Arc<dyn VirtualTagStore>> {
        self.virtual_tags.as_ref()
    }

    /// Where costs come from, when configured.
    pub fn cost_source(&self) -> Option<&CostSource> {
        self.costs.as_ref()
    }
}
