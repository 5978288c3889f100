//! The context of one tool call, and the only way tools and use-cases reach the application's
//! state: the estate for this call (scanned or reused once, shared by the answer cache and the
//! tool), who is calling, and the costs and data-quality figures answers carry.

use std::sync::Arc;

use std::time::Duration;

use super::costs::{CostQuality, CostSource, CostsForAnswer, ResourceCosts};
use super::quality::DataQuality;
use super::role::Role;
use super::{App, Estate, PolicyHolder};
use crate::cache::Cache;
use crate::cost::{CostError, CostQuery};
use crate::inventory::{InventoryError, ScanProgress};
use crate::policy::Policy;
use crate::store::AuditStore;
use crate::store::HistoryStore;
use crate::store::VirtualTagStore;
use crate::suggest::SuggestStats;

/// Who the server verified the caller to be. Every limit and every access decision is keyed
/// on this, never on a value the client chooses (a session id, a header it made up).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Stable and not secret: `token:<12 hex of the token's SHA-256>` for a plain bearer
    /// token, `token:<name>` for a named one (`name:role:token`), `oauth:<issuer host>/<sub>`
    /// for an OAuth access token, `ip:<address>` for a tokenless loopback client, `local` for
    /// stdio and the command line.
    pub id: String,
    /// What it may do (the guard checks it against each call's needs).
    pub role: Role,
}

impl Principal {
    /// The one principal of a stdio connection or a command: the local user, with all rights.
    pub fn local() -> Principal {
        Principal {
            id: "local".into(),
            role: Role::Admin,
        }
    }

    /// May read every principal's audit rows and approve and apply promotion plans.
    pub fn is_admin(&self) -> bool {
        self.role >= Role::Admin
    }
}

/// What one tool call works with: the application, and the scan for this call — taken once,
/// shared by the answer cache and the tool — with scan progress going to the caller.
pub struct Call<'a> {
    app: &'a App,
    /// What started the call, recorded with snapshots: `tool`, `cli` or `schedule`.
    trigger: &'static str,
    /// The time a snapshot taken by this call is recorded at (backfilling history from old
    /// exports); now when unset.
    snapshot_time: Option<chrono::DateTime<chrono::Utc>>,
    progress: Option<Arc<dyn ScanProgress>>,
    estate: tokio::sync::OnceCell<Estate>,
    /// Who is acting, recorded with virtual tags and decisions (the MCP client and session,
    /// or the command line).
    actor: Option<String>,
    /// Who the server verified the caller to be; the local user for the command line.
    principal: Principal,
}

impl<'a> Call<'a> {
    pub fn new(app: &'a App) -> Call<'a> {
        Call {
            app,
            trigger: "tool",
            snapshot_time: None,
            progress: None,
            estate: tokio::sync::OnceCell::new(),
            actor: None,
            principal: Principal::local(),
        }
    }

    pub fn with_principal(mut self, principal: Principal) -> Call<'a> {
        self.principal = principal;
        self
    }

    /// Who the server verified the caller to be (what access checks and records rely on; the
    /// actor is what the client says about itself).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn with_actor(mut self, actor: String) -> Call<'a> {
        self.actor = Some(actor);
        self
    }

    /// Who is acting: the caller's identity when known, else the trigger (`cli`, ...).
    pub fn actor(&self) -> &str {
        self.actor.as_deref().unwrap_or(self.trigger)
    }

    pub fn with_trigger(mut self, trigger: &'static str) -> Call<'a> {
        self.trigger = trigger;
        self
    }

    pub fn trigger(&self) -> &'static str {
        self.trigger
    }

    pub fn with_snapshot_time(mut self, at: Option<chrono::DateTime<chrono::Utc>>) -> Call<'a> {
        self.snapshot_time = at;
        self
    }

    pub fn snapshot_time(&self) -> chrono::DateTime<chrono::Utc> {
        self.snapshot_time.unwrap_or_else(chrono::Utc::now)
    }

    pub fn with_progress(mut self, progress: Option<Arc<dyn ScanProgress>>) -> Call<'a> {
        self.progress = progress;
        self
    }

    /// The inventory for this call, evaluated under the current policy (see `App::estate`);
    /// the first request decides `force_refresh`, later ones reuse it.
    pub async fn estate(&self, force_refresh: bool) -> Result<Estate, InventoryError> {
        self.estate
            .get_or_try_init(|| self.app.estate_with(force_refresh, self.progress.clone()))
            .await
            .cloned()
    }

    /// How complete and fresh the data behind an answer built on `estate` is.
    pub fn data_quality(&self, estate: &Estate) -> DataQuality {
        DataQuality::of(estate, &self.app.cache)
    }

    /// The resource costs for money on findings: per resource id, over the cost source's
    /// default period. `Ok(None)` when no cost source is configured; `Err` says why costs are
    /// missing.
    pub async fn resource_costs(
        &self,
        estate: &Estate,
        force_refresh: bool,
    ) -> Result<Option<ResourceCosts>, String> {
        let query = CostQuery {
            period: None,
            metric: None,
        };
        let resources = &estate.inventory.resources;
        let version = &estate.inventory_version;
        match self
            .app
            .line_costs(&query, resources, version, force_refresh)
            .await
        {
            None => Ok(None),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(found)) => Ok(Some(ResourceCosts {
                by_resource: found.by_resource,
                quality: CostQuality::of(&found.costs.report, found.reused),
                costs: found.costs,
            })),
        }
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        self.app.policy.current()
    }

    /// The policy in force with where it comes from and its last reload error.
    pub fn policy_holder(&self) -> &PolicyHolder {
        &self.app.policy
    }

    /// The history store; `None` without a data directory (the caller says what to do).
    pub fn history(&self) -> Option<&Arc<dyn HistoryStore>> {
        self.app.history.as_ref()
    }

    /// The virtual-tag store; `None` without a data directory (the caller says what to do).
    pub fn virtual_tags(&self) -> Option<&Arc<dyn VirtualTagStore>> {
        self.app.virtual_tags.as_ref()
    }

    /// The scheduled audits of this `serve` process; `None` elsewhere.
    pub(crate) fn audits(&self) -> Option<&Arc<dyn super::audits::ScheduledAudits>> {
        self.app.audits()
    }

    /// The anomaly-decision store; `None` without a data directory.
    pub fn anomalies(&self) -> Option<&Arc<dyn crate::store::AnomalyStore>> {
        self.app.anomalies.as_ref()
    }

    /// The stored allocation rules; `None` without a data directory.
    pub(crate) fn allocation_rules(&self) -> Option<&Arc<dyn crate::store::AllocationRuleStore>> {
        self.app.allocation_rules.as_ref()
    }

    /// Where promoted virtual tags are written; `None` unless the inventory is live AWS.
    pub(crate) fn tag_writer(&self) -> Option<&Arc<dyn crate::inventory::aws::writer::TagWriter>> {
        self.app.tag_writer.as_ref()
    }

    /// The series `/metrics` serves (answers that describe the whole estate set its gauges).
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        self.app.metrics()
    }

    /// The audit log of tool calls; `None` when not serving.
    pub fn audit(&self) -> Option<&Arc<dyn AuditStore>> {
        self.app.audit.as_ref()
    }

    /// Where costs come from, when configured.
    pub fn cost_source(&self) -> Option<&CostSource> {
        self.app.costs.as_ref()
    }

    /// What identifies the cost data in cached answers' keys (empty without a cost source).
    pub fn costs_version(&self) -> String {
        self.app.costs_version()
    }

    /// Resource-level costs for a question on `estate` (see `App::line_costs`). None without
    /// a cost source.
    pub async fn line_costs(
        &self,
        query: &CostQuery,
        estate: &Estate,
        force_refresh: bool,
    ) -> Option<Result<CostsForAnswer, CostError>> {
        self.app
            .line_costs(
                query,
                &estate.inventory.resources,
                &estate.inventory_version,
                force_refresh,
            )
            .await
    }

    /// Suggestion statistics of the last estate they were built for.
    pub fn suggest_stats(&self) -> &Memo<SuggestStats> {
        &self.app.suggest_stats
    }

    /// The cache of tool answers and how long answers stay fresh (for `tools::answer_cache`).
    pub(crate) fn answer_cache(&self) -> (&Cache, Duration) {
        (&self.app.cache, self.app.ttl())
    }
}

/// One value kept with the key it was built for (what it depends on); a value built for
/// another key replaces it.
pub struct Memo<T> {
    kept: std::sync::Mutex<Option<(String, Arc<T>)>>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            kept: std::sync::Mutex::new(None),
        }
    }
}

impl<T> Memo<T> {
    /// The value kept, if it was built for `key`.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        // A poisoned lock only means another thread panicked while holding it; the pair is
        // still whole.
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` as the one built for `key`.
    pub fn put(&self, key: String, value: Arc<T>) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, value));
    }
}
