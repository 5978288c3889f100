//! The estate a call works on: the latest scan of the inventory and its evaluation under the
//! current policy and virtual tags. A scan is single-flight and kept for the TTL; an evaluation
//! is kept per (scan, policy hash, virtual-tag generation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::App;
use super::policy::{read, write};
use crate::compliance::overlay::{VirtualOverlay, VirtualValue, evaluate_with_overlay};
use crate::inventory::{Inventory, InventoryError, ScanOptions, ScanProgress, sort_and_dedupe};
use crate::policy::{Evaluations, Policy};

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
pub(super) struct Loaded {
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
pub struct Estate {
    pub inventory: Arc<Inventory>,
    pub evaluated: Arc<Evaluated>,
    /// Content hash of the inventory: part of cursor fingerprints and cache keys.
    pub inventory_version: Arc<str>,
    pub scan_source: ScanSource,
    /// How old the data is (since it was read from the cloud or files).
    pub age: Duration,
}

impl Estate {
    pub fn policy(&self) -> &Policy {
        &self.evaluated.policy
    }
}

impl App {
    /// For a command about to exit: hands the scan this process holds to the operating system
    /// instead of freeing it. Freeing a million resources one allocation at a time took 0.8 s
    /// of a 4.5 s `check`; the estate owns only memory (no files, sockets or locks), so
    /// nothing is lost by not running its destructors.
    pub async fn release_estate_at_exit(&self) {
        if let Some(loaded) = self.loaded.write().await.take() {
            std::mem::forget(loaded);
        }
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

    /// The approved virtual tags in effect, re-read from the store when its generation moved
    /// (this server or another process sharing history.db changed them). A store that cannot
    /// be read keeps the last overlay (and says so in the log).
    pub async fn overlay(&self) -> Arc<VirtualOverlay> {
        let current = read(&self.overlay).clone();
        let Some(store) = &self.virtual_tags else {
            return current;
        };
        let generation = match store.generation().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "virtual tags unreadable; using the last ones read");
                return current;
            }
        };
        if generation == current.generation {
            return current;
        }
        match store.active().await {
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

    /// The current inventory evaluated under the current policy, scanning when there is no
    /// scan yet, it is older than the TTL, or `force_refresh` is set.
    pub async fn estate(&self, force_refresh: bool) -> Result<Estate, InventoryError> {
        self.estate_with(force_refresh, None).await
    }

    /// As `estate`, telling `progress` how a scan goes when one is needed.
    pub async fn estate_with(
        &self,
        force_refresh: bool,
        progress: Option<Arc<dyn ScanProgress>>,
    ) -> Result<Estate, InventoryError> {
        let options = ScanOptions {
            force_refresh,
            progress,
        };
        let (loaded, reused) = self.loaded_inventory(&options).await?;
        let policy = self.policy.current();
        let overlay = self.overlay().await;
        let evaluated = evaluated_for(&loaded, policy, overlay).await;
        let parts = &loaded.inventory.report.parts;
        let scan_source = if reused {
            ScanSource::InProcess
        } else if !parts.is_empty() && parts.iter().all(|p| p.cached) {
            ScanSource::SharedCache
        } else {
            ScanSource::FreshScan
        };
        Ok(Estate {
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
        let scan_started = Instant::now();
        let scanned = self.provider.scan(options).await;
        self.metrics
            .scan(self.provider.metrics_source(), scan_started.elapsed());
        let mut inventory = scanned?;
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
