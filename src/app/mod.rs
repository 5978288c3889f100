//! The application state every tool and command works from: the policy in force, the inventory
//! source, and the latest scan with its evaluation, cached in-process.
//!
//! A scan is single-flight (concurrent callers wait for the same scan) and kept for `ttl` from
//! when its data was read (a listing taken from the shared cache is as old as it is there); an
//! evaluation is kept per (scan, policy hash), so a policy reload re-evaluates without rescanning.
//! The cache of tool answers and the history store hang off the application too.

mod call;
pub mod costs;
mod error;
pub mod quality;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::cache::Cache;
use crate::compliance::overlay::{VirtualOverlay, VirtualValue, evaluate_with_overlay};
use crate::cost::explorer::CostExplorer;
use crate::cost::{CostError, CostProvider, CostQuery, LineCosts};
use crate::inventory::{
    Inventory, InventoryError, InventoryProvider, ScanOptions, ScanProgress, sort_and_dedupe,
};
use crate::policy::{Evaluations, Policy, PolicyError, default_policy, load_policy_file};
use crate::store::audit::AuditLog;
use crate::store::history::HistoryStore;
use crate::store::virtual_tags::VirtualTagStore;
pub use call::{Call, Principal};
pub use error::ToolError;

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySource {
    File(PathBuf),
    BuiltIn,
}

impl PolicySource {
    /// Shown to users: a file name, never the server's directory layout.
    pub fn display(&self) -> String {
        match self {
            PolicySource::File(p) => crate::inventory::file::display_name(p),
            PolicySource::BuiltIn => "built-in default policy".to_string(),
        }
    }
}

/// The policy in force, replaceable at run time (SIGHUP, file change) without ever leaving the
/// server without a valid policy.
pub struct PolicyStore {
    source: PolicySource,
    current: RwLock<Arc<Policy>>,
    loaded_at: RwLock<DateTime<Utc>>,
    last_error: RwLock<Option<String>>,
    mtime: RwLock<Option<std::time::SystemTime>>,
}

impl PolicyStore {
    /// Loads the policy: the given file, else `policies/tagging_policy.json` if present, else
    /// the built-in default.
    pub fn open(path: Option<&Path>) -> Result<PolicyStore, PolicyError> {
        let source = match path {
            Some(p) => PolicySource::File(p.to_path_buf()),
            None => {
                let default = Path::new("policies/tagging_policy.json");
                if default.is_file() {
                    PolicySource::File(default.to_path_buf())
                } else {
                    PolicySource::BuiltIn
                }
            }
        };
        let policy = match &source {
            PolicySource::File(p) => load_policy_file(p)?,
            PolicySource::BuiltIn => default_policy(),
        };
        Ok(PolicyStore {
            mtime: RwLock::new(modified(&source)),
            source,
            current: RwLock::new(Arc::new(policy)),
            loaded_at: RwLock::new(Utc::now()),
            last_error: RwLock::new(None),
        })
    }

    pub fn from_policy(policy: Policy) -> PolicyStore {
        PolicyStore {
            source: PolicySource::BuiltIn,
            current: RwLock::new(Arc::new(policy)),
            loaded_at: RwLock::new(Utc::now()),
            last_error: RwLock::new(None),
            mtime: RwLock::new(None),
        }
    }

    pub fn current(&self) -> Arc<Policy> {
        read(&self.current).clone()
    }

    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    pub fn loaded_at(&self) -> DateTime<Utc> {
        *read(&self.loaded_at)
    }

    /// Why the last reload was refused, if it was (the previous policy stayed in force).
    pub fn last_error(&self) -> Option<String> {
        read(&self.last_error).clone()
    }

    /// Re-reads the policy file. On error the previous policy stays in force and the error is
    /// kept for `get_tagging_policy` to report. Returns whether the policy changed.
    pub fn reload(&self) -> Result<bool, PolicyError> {
        let PolicySource::File(path) = &self.source else {
            return Ok(false);
        };
        *write(&self.mtime) = modified(&self.source);
        match load_policy_file(path) {
            Ok(policy) => {
                *write(&self.last_error) = None;
                let changed = policy.hash() != self.current().hash();
                if changed {
                    tracing::info!(hash = policy.hash(), "policy reloaded");
                    *write(&self.current) = Arc::new(policy);
                    *write(&self.loaded_at) = Utc::now();
                }
                Ok(changed)
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload refused; the previous policy stays in force");
                let shown = match &e {
                    PolicyError::Read { .. } if !path.exists() => format!(
                        "policy file {} is missing (deleted or moved); the previous policy stays \
                         in force until the file is back",
                        self.source.display()
                    ),
                    _ => e.to_string(),
                };
                *write(&self.last_error) = Some(shown);
                Err(e)
            }
        }
    }

    /// Reloads when the file's modification time changed since the last load, or the file
    /// went missing (so `last_error` says so rather than keep an older error).
    pub fn reload_if_changed(&self) {
        let PolicySource::File(_) = &self.source else {
            return;
        };
        if modified(&self.source) != *read(&self.mtime) {
            let _ = self.reload();
        }
    }
}

fn modified(source: &PolicySource) -> Option<std::time::SystemTime> {
    match source {
        PolicySource::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
        PolicySource::BuiltIn => None,
    }
}

// A poisoned lock only means another thread panicked while holding it; the data (an Arc swap
// or a timestamp) is still consistent, so keep serving.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// An inventory evaluated against one policy and one set of virtual tags.
pub struct Evaluated {
    pub policy: Arc<Policy>,
    pub evaluations: Evaluations,
    /// The virtual tags the effective view was evaluated with.
    pub overlay: Arc<VirtualOverlay>,
    /// By resource index: the tag list the effective view evaluated, where virtual tags took
    /// effect (effective violations point into it).
    pub combined: rustc_hash::FxHashMap<u32, crate::inventory::Tags>,
}

impl Evaluated {
    /// The tags the effective view of resource `index` was evaluated on.
    pub fn effective_input<'a>(
        &'a self,
        index: usize,
        native: &'a crate::inventory::Tags,
    ) -> &'a crate::inventory::Tags {
        self.combined.get(&(index as u32)).unwrap_or(native)
    }
}

/// One scan and the evaluations made of it.
struct Loaded {
    inventory: Arc<Inventory>,
    /// Content hash of the inventory (see `Inventory::fingerprint`).
    fingerprint: Arc<str>,
    /// When this process loaded it (a forced refresh must be newer than its request).
    loaded_at: Instant,
    /// When the data stops being fresh: `fetched_at + ttl`.
    expires: Instant,
    evaluated: std::sync::Mutex<Option<Arc<Evaluated>>>,
}

/// Where the inventory behind an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSource {
    /// Scanned for this call.
    FreshScan,
    /// A scan this process already held.
    InProcess,
    /// Every part taken from the shared cache (no cloud calls).
    SharedCache,
}

/// What a tool reads: an inventory, its evaluation under the current policy, and how fresh.
#[derive(Clone)]
pub struct Snapshot {
    pub inventory: Arc<Inventory>,
    pub evaluated: Arc<Evaluated>,
    /// Content hash of the inventory: part of cursor fingerprints and cache keys.
    pub inventory_version: Arc<str>,
    pub scan_source: ScanSource,
    /// How old the data is (since it was read from the cloud or files).
    pub age: Duration,
}

impl Snapshot {
    pub fn policy(&self) -> &Policy {
        &self.evaluated.policy
    }
}

pub struct App {
    pub policy: PolicyStore,
    /// The audit log of tool calls, when serving (read by `get_audit_trail`).
    pub audit: Option<Arc<AuditLog>>,
    /// Compliance snapshots, when a data directory is in use.
    pub history: Option<Arc<HistoryStore>>,
    /// Tool answers (and, with Redis, scan listings).
    pub cache: Arc<Cache>,
    provider: Arc<dyn InventoryProvider>,
    ttl: Duration,
    loaded: tokio::sync::RwLock<Option<Arc<Loaded>>>,
    scan_lock: Mutex<()>,
    /// The virtual-tag store (tags, rules, feedback), when a data directory is in use.
    pub virtual_tags: Option<Arc<VirtualTagStore>>,
    /// The approved virtual tags in effect, as last read from the store.
    overlay: RwLock<Arc<VirtualOverlay>>,
    /// Suggestion statistics of the last estate they were built for, keyed by what they
    /// depend on (inventory, policy, virtual tags, feedback).
    pub suggest_stats: std::sync::Mutex<Option<(String, Arc<crate::suggest::SuggestStats>)>>,
    /// Where costs come from, when configured.
    pub costs: Option<CostSource>,
    /// Recent resource-level costs per question, so compliance answers do not re-read a large
    /// cost file (or pay for a Cost Explorer request) each time.
    line_costs: Mutex<rustc_hash::FxHashMap<String, KeptCosts>>,
}

/// A cost source: resource-level lines (FOCUS files, the demo), or Cost Explorer, which
/// answers the gap from aggregates and gives resource-level lines only for recent EC2.
#[derive(Clone)]
pub enum CostSource {
    Lines(Arc<dyn CostProvider>),
    Explorer(Arc<CostExplorer>),
}

impl CostSource {
    pub fn provider(&self) -> Arc<dyn CostProvider> {
        match self {
            CostSource::Lines(p) => p.clone(),
            CostSource::Explorer(e) => e.clone(),
        }
    }
}

/// Resource-level costs for an answer, and whether they were read for it (else reused).
#[derive(Clone)]
pub struct CostsForAnswer {
    pub costs: Arc<LineCosts>,
    /// Each resource's cost over all its lines, computed once when the costs are read.
    pub by_resource: Arc<rustc_hash::FxHashMap<compact_str::CompactString, crate::cost::Micros>>,
    pub reused: bool,
}

/// Resource-level costs read at an instant (or why they could not be).
type KeptCosts = (Instant, Result<CostsForAnswer, CostError>);

/// Cost questions kept at once (a handful of periods and metrics).
const LINE_COSTS_KEPT: usize = 8;

impl App {
    pub fn new(policy: PolicyStore, provider: Arc<dyn InventoryProvider>, ttl: Duration) -> App {
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
            suggest_stats: std::sync::Mutex::new(None),
            // Never a store generation: the first look at a store reads it.
            overlay: RwLock::new(Arc::new(VirtualOverlay::new(u64::MAX, []))),
            costs: None,
            line_costs: Mutex::new(rustc_hash::FxHashMap::default()),
        }
    }

    /// Virtual tags: read into the effective view, and written by the virtual-tag tools.
    pub fn with_virtual_tags(mut self, store: Arc<VirtualTagStore>) -> App {
        self.virtual_tags = Some(store);
        self
    }

    /// The approved virtual tags in effect, re-read from the store when its generation moved
    /// (this server or another process sharing history.db changed them). A store that cannot
    /// be read keeps the last overlay (and says so in the log).
    pub fn overlay(&self) -> Arc<VirtualOverlay> {
        let current = read(&self.overlay).clone();
        let Some(store) = &self.virtual_tags else {
            return current;
        };
        let generation = match store.generation() {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "virtual tags unreadable; using the last ones read");
                return current;
            }
        };
        if generation == current.generation {
            return current;
        }
        match store.active() {
            Ok(active) => {
                let overlay = Arc::new(VirtualOverlay::new(
                    generation,
                    active.into_iter().map(|t| {
                        (
                            t.resource_id.into(),
                            VirtualValue {
                                key: t.key.into(),
                                value: t.value.into(),
                                override_native: t.override_native,
                            },
                        )
                    }),
                ));
                *write(&self.overlay) = overlay.clone();
                overlay
            }
            Err(e) => {
                tracing::warn!(error = %e, "virtual tags unreadable; using the last ones read");
                current
            }
        }
    }

    pub fn with_costs(mut self, costs: Option<CostSource>) -> App {
        self.costs = costs;
        self
    }

    /// What identifies the cost data in cached answers' keys (empty without a cost source).
    pub fn costs_version(&self) -> String {
        self.costs
            .as_ref()
            .map(|c| c.provider().version())
            .unwrap_or_default()
    }

    /// Resource-level costs for a question, read once per TTL (failures too: a refused Cost
    /// Explorer request is not repeated on every answer). None without a cost source.
    pub async fn line_costs(
        &self,
        query: &CostQuery,
        resources: &[crate::inventory::Resource],
        inventory_version: &str,
        force_refresh: bool,
    ) -> Option<Result<CostsForAnswer, CostError>> {
        let provider = self.costs.as_ref()?.provider();
        // Lines are joined to the inventory when read: a rescan reads them again.
        let key = format!("{}|{:?}|{inventory_version}", provider.version(), query);
        let mut kept = self.line_costs.lock().await;
        if !force_refresh
            && let Some((at, result)) = kept.get(&key)
            && at.elapsed() < self.ttl
        {
            return Some(result.clone().map(|costs| CostsForAnswer {
                reused: true,
                ..costs
            }));
        }
        let result = provider
            .line_costs(query, resources)
            .await
            // Sources check their sums; this keeps a wrong total out of every answer whatever
            // the source.
            .and_then(|costs| costs.check_sums().map(|()| costs))
            .map(|mut costs| {
                crate::cost::join_to_inventory(&mut costs.lines, resources);
                CostsForAnswer {
                    by_resource: Arc::new(crate::cost::attribution::cost_by_resource(&costs.lines)),
                    costs: Arc::new(costs),
                    reused: false,
                }
            });
        if let Err(e) = &result {
            tracing::warn!(error = %e, "costs unavailable");
        }
        if kept.len() >= LINE_COSTS_KEPT {
            kept.clear();
        }
        if !self.ttl.is_zero() {
            kept.insert(key, (Instant::now(), result.clone()));
        }
        Some(result)
    }

    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> App {
        self.audit = Some(audit);
        self
    }

    pub fn with_history(mut self, history: Arc<HistoryStore>) -> App {
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

    /// Resources currently cached (0 before the first scan).
    pub async fn cached_resources(&self) -> usize {
        self.loaded
            .read()
            .await
            .as_ref()
            .map(|l| l.inventory.resources.len())
            .unwrap_or(0)
    }

    /// The current inventory evaluated under the current policy, scanning when there is no
    /// scan yet, it is older than the TTL, or `force_refresh` is set.
    pub async fn snapshot(&self, force_refresh: bool) -> Result<Snapshot, InventoryError> {
        self.snapshot_with(force_refresh, None).await
    }

    /// As `snapshot`, telling `progress` how a scan goes when one is needed.
    pub async fn snapshot_with(
        &self,
        force_refresh: bool,
        progress: Option<Arc<dyn ScanProgress>>,
    ) -> Result<Snapshot, InventoryError> {
        let options = ScanOptions {
            force_refresh,
            progress,
        };
        let (loaded, reused) = self.loaded_inventory(&options).await?;
        let policy = self.policy.current();
        let overlay = self.overlay();
        let evaluated = evaluated_for(&loaded, policy, overlay).await;
        let parts = &loaded.inventory.report.parts;
        let scan_source = if reused {
            ScanSource::InProcess
        } else if !parts.is_empty() && parts.iter().all(|p| p.cached) {
            ScanSource::SharedCache
        } else {
            ScanSource::FreshScan
        };
        Ok(Snapshot {
            inventory: loaded.inventory.clone(),
            evaluated,
            inventory_version: loaded.fingerprint.clone(),
            scan_source,
            age: (chrono::Utc::now() - loaded.inventory.fetched_at)
                .to_std()
                .unwrap_or_default(),
        })
    }

    async fn loaded_inventory(
        &self,
        options: &ScanOptions,
    ) -> Result<(Arc<Loaded>, bool), InventoryError> {
        if !options.force_refresh
            && let Some(l) = self.fresh().await
        {
            return Ok((l, true));
        }
        let started_waiting = Instant::now();
        let _guard = self.scan_lock.lock().await;
        // Another caller may have scanned while we waited: use that scan, even when forced,
        // if it was made after we asked and read the source itself (not listings from the
        // shared cache, which may be up to a TTL old).
        if let Some(l) = self.fresh().await
            && (!options.force_refresh
                || (l.loaded_at >= started_waiting
                    && l.inventory.report.parts.iter().all(|p| !p.cached)))
        {
            return Ok((l, true));
        }
        let mut inventory = self.provider.scan(options).await?;
        inventory.report.duplicates_dropped = sort_and_dedupe(&mut inventory.resources);
        let inventory = Arc::new(inventory);
        let for_hash = inventory.clone();
        let fingerprint = tokio::task::spawn_blocking(move || for_hash.fingerprint())
            .await
            .unwrap_or_else(|_| inventory.fingerprint());
        let age = (chrono::Utc::now() - inventory.fetched_at)
            .to_std()
            .unwrap_or_default();
        let now = Instant::now();
        let loaded = Arc::new(Loaded {
            inventory,
            fingerprint: fingerprint.into(),
            loaded_at: now,
            expires: now + self.ttl.saturating_sub(age),
            evaluated: std::sync::Mutex::new(None),
        });
        *self.loaded.write().await = Some(loaded.clone());
        Ok((loaded, false))
    }

    async fn fresh(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .await
            .as_ref()
            .filter(|l| Instant::now() < l.expires)
            .cloned()
    }
}

/// The evaluation of a scan under `policy` and `overlay`, computed once per (policy hash,
/// virtual-tag generation).
async fn evaluated_for(
    loaded: &Arc<Loaded>,
    policy: Arc<Policy>,
    overlay: Arc<VirtualOverlay>,
) -> Arc<Evaluated> {
    {
        let cached = loaded.evaluated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = cached.as_ref()
            && e.policy.hash() == policy.hash()
            && e.overlay.generation == overlay.generation
        {
            return e.clone();
        }
    }
    let inventory = loaded.inventory.clone();
    let (for_task, overlay_for_task) = (policy.clone(), overlay.clone());
    // Evaluation is CPU work (tens of ms per 100k resources): keep it off the async threads.
    let (evaluations, combined) = tokio::task::spawn_blocking(move || {
        evaluate_with_overlay(&for_task, &inventory.resources, &overlay_for_task)
    })
    .await
    .unwrap_or_else(|e| {
        // Cancelled only at shutdown; a panic would be a bug worth logging loudly.
        if e.is_panic() {
            tracing::error!(error = %e, "evaluation task panicked; evaluating inline");
        }
        evaluate_with_overlay(&policy, &loaded.inventory.resources, &overlay)
    });
    let evaluated = Arc::new(Evaluated {
        policy,
        evaluations,
        overlay,
        combined,
    });
    *loaded.evaluated.lock().unwrap_or_else(|e| e.into_inner()) = Some(evaluated.clone());
    evaluated
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` with a modification time of `second` (seconds past the epoch), so each
    /// write is a change the watcher sees, however coarse the file system's clock.
    fn write_at(path: &Path, text: &str, second: u64) {
        std::fs::write(path, text).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(second))
            .unwrap();
    }

    /// Issue 12: after the policy file was deleted, `reload_error` still showed the error of an
    /// earlier broken version.
    #[test]
    fn a_deleted_policy_file_is_reported_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        write_at(&path, r#"{"required_tags": [{"name": "team"}]}"#, 1_000);
        let store = PolicyStore::open(Some(&path)).unwrap();
        let hash = store.current().hash().to_string();

        write_at(&path, "{ broken", 2_000);
        store.reload_if_changed();
        let broken = store.last_error().unwrap();
        assert!(broken.contains("not valid JSON"), "{broken}");

        std::fs::remove_file(&path).unwrap();
        store.reload_if_changed();
        let missing = store.last_error().unwrap();
        assert!(
            missing.contains("policy.json is missing") && missing.contains("previous policy"),
            "{missing}"
        );
        assert!(
            !missing.contains(&dir.path().display().to_string()),
            "no directories"
        );
        assert_eq!(
            store.current().hash(),
            hash,
            "the previous policy stays in force"
        );
        // Nothing changes while the file stays away.
        store.reload_if_changed();
        assert_eq!(store.last_error().unwrap(), missing);

        write_at(&path, r#"{"required_tags": [{"name": "owner"}]}"#, 3_000);
        store.reload_if_changed();
        assert_eq!(store.last_error(), None);
        assert_ne!(store.current().hash(), hash);
    }
}
