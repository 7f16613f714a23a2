//! [`TlsReloader`]: the current [`TlsSnapshot`], rebuilt when a TLS file changes on disk.
//!
//! Every new connection requests the current snapshot, and so does every batch on a running
//! stream. A request compares each file's size, modification time and inode with those of the
//! snapshot, which costs one `stat` per file, and rebuilds the snapshot only when one differs.
//! Tools that replace a file through a rename (as `chiso-certs` does) always change the inode.
//! A rebuild that fails keeps the previous snapshot and logs the error once for that state of
//! the files, so a half-finished renewal (new key, old certificate) never stops the hub.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{TlsError, TlsSnapshot};
use crate::config::TlsConfig;

/// The state of a file: size, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

type Fingerprint = Vec<Option<FileStamp>>;

/// The current TLS snapshot and the file states it was built from.
#[derive(Debug)]
pub struct TlsReloader {
    tls: TlsConfig,
    state: Mutex<ReloadState>,
}

#[derive(Debug)]
struct ReloadState {
    fingerprint: Fingerprint,
    snapshot: Arc<TlsSnapshot>,
    failed: Option<Fingerprint>,
}

impl TlsReloader {
    /// Loads the first snapshot; unlike a reload, a failure here is returned.
    pub fn load(tls: &TlsConfig) -> Result<TlsReloader, TlsError> {
        let fingerprint = fingerprint(&files(tls));
        let snapshot = Arc::new(TlsSnapshot::load(tls)?);
        warn_if_hub_expiring(tls, &snapshot);
        Ok(TlsReloader {
            tls: tls.clone(),
            state: Mutex::new(ReloadState {
                fingerprint,
                snapshot,
                failed: None,
            }),
        })
    }

    /// Returns the snapshot for the files as they are now, rebuilding it if any changed.
    pub fn current(&self) -> Arc<TlsSnapshot> {
        let now = fingerprint(&files(&self.tls));
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.fingerprint == now || state.failed.as_ref() == Some(&now) {
            return Arc::clone(&state.snapshot);
        }

        match TlsSnapshot::load(&self.tls) {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                tracing::info!(
                    revoked = snapshot.revoked.len(),
                    hub_not_after = snapshot.hub_not_after,
                    "TLS files reloaded"
                );
                warn_if_hub_expiring(&self.tls, &snapshot);
                state.fingerprint = now;
                state.snapshot = Arc::clone(&snapshot);
                state.failed = None;
                snapshot
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    "TLS files changed but cannot be loaded; still using the previous ones"
                );
                state.failed = Some(now);
                Arc::clone(&state.snapshot)
            }
        }
    }

    /// Returns the configured TLS settings.
    pub fn config(&self) -> &TlsConfig {
        &self.tls
    }
}

fn files(tls: &TlsConfig) -> Vec<PathBuf> {
    let mut files = vec![tls.cert.clone(), tls.key.clone(), tls.client_ca.clone()];
    files.extend(tls.revoked_serials.iter().cloned());
    files.extend(tls.crl.iter().cloned());
    files
}

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|path| {
            let metadata = std::fs::metadata(path).ok()?;
            Some(FileStamp {
                len: metadata.len(),
                modified: metadata.modified().ok(),
                inode: metadata.ino(),
            })
        })
        .collect()
}

fn warn_if_hub_expiring(tls: &TlsConfig, snapshot: &TlsSnapshot) {
    let now = chrono::Utc::now().timestamp();
    let days_left = (snapshot.hub_not_after - now).div_euclid(86_400);
    if days_left < i64::from(tls.expiry_warning_days) {
        tracing::warn!(
            cert = %tls.cert.display(),
            days_left,
            not_after = snapshot.hub_not_after,
            "hub certificate expires soon; renew it with chiso-certs renew, and the hub will use the new files without a restart"
        );
    }
}
