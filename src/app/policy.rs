//! The policy in force and where it comes from: loaded once, replaced at run time (SIGHUP, a
//! changed file) only by a policy that loads, so the server is never without a valid one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::policy::{Policy, PolicyError, default_policy, load_policy_file};

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
pub struct PolicyHolder {
    source: PolicySource,
    current: RwLock<Arc<Policy>>,
    loaded_at: RwLock<DateTime<Utc>>,
    last_error: RwLock<Option<String>>,
    mtime: RwLock<Option<std::time::SystemTime>>,
}

impl PolicyHolder {
    /// Loads the policy: the given file, else `policies/tagging_policy.json` if present, else
    /// the built-in default.
    pub fn open(path: Option<&Path>) -> Result<PolicyHolder, PolicyError> {
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
        Ok(PolicyHolder {
            mtime: RwLock::new(modified(&source)),
            source,
            current: RwLock::new(Arc::new(policy)),
            loaded_at: RwLock::new(Utc::now()),
            last_error: RwLock::new(None),
        })
    }

    pub fn from_policy(policy: Policy) -> PolicyHolder {
        PolicyHolder {
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
pub(super) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let store = PolicyHolder::open(Some(&path)).unwrap();
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
