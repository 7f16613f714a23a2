//! The inbox folder watched by `chiso-agent run`. Every `*.json` file dropped there is taken in
//! and moved to `done/` only after its records have committed. A file that cannot be read or is
//! not in an accepted shape moves to `failed/`, with a `<name>.error.txt` beside it.
//!
//! A file in the inbox itself contains the kind its envelope's `service` names, or dossiers. A
//! file in a kind's subfolder (`dossiers/`, `procedures/`, `feedback/`, `ratings/`, `steps/`)
//! contains that kind, so bare arrays and JSON Lines of any kind can be dropped there. An
//! envelope there that names another kind fails. Files of every folder move to the same `done/` and
//! `failed/`.
//!
//! A file the outbox refuses because it is full stays where it is and is tried again at a later
//! scan, so nothing is dropped. A crash between the commit and the move leaves the file in the
//! inbox; the next scan ingests it again, which changes nothing, and moves it. Files are taken in
//! name order, and a file changed within [`MIN_FILE_AGE`] waits for the next scan, so that one
//! still being written is not read half-way. Sources should still write under another name
//! (such as `export.json.part`) and rename the file into place when it is complete.

use crate::dvcqg::folder_of;
use crate::intake::{self, IntakeError, IntakeSettings};
use crate::log_limit::{DEFAULT_BURST, DEFAULT_PERIOD, LogLimiter};
use crate::outbox::Outbox;
use crate::push::SharedOutbox;
use chiso_proto::record::Kind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Subfolder of files taken in.
pub const DONE_DIR: &str = "done";
/// Subfolder of files that could not be read.
pub const FAILED_DIR: &str = "failed";
/// A file modified more recently than this is left for the next scan.
///
/// NOTE: this guards against reading a file while a source writes it in place. One second is an
/// estimate that covers a local copy of a day's export, but a slow network share may need the
/// rename convention of the module documentation.
pub const MIN_FILE_AGE: Duration = Duration::from_secs(1);

/// Failure to watch the inbox.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// A folder could not be created or listed.
    #[error(
        "cannot use inbox folder {path}: {source}. Create it and let the agent read and write there"
    )]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Location and scan timing of the inbox.
#[derive(Debug, Clone)]
pub struct InboxSettings {
    /// The inbox folder.
    pub dir: PathBuf,
    /// Pause between scans.
    pub scan_interval: Duration,
    /// Files modified more recently are left for the next scan.
    pub min_age: Duration,
}

/// Outcome of one scan.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Files taken in and moved to `done/`.
    pub done: usize,
    /// Files moved to `failed/`.
    pub failed: usize,
    /// Reason the scan stopped with files left in place, such as a full outbox.
    pub waiting: Option<String>,
}

/// Watches the inbox until `shutdown` turns true.
pub async fn run(
    outbox: SharedOutbox,
    settings: InboxSettings,
    intake_settings: IntakeSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), InboxError> {
    prepare(&settings.dir)?;
    tracing::info!(inbox = %settings.dir.display(), "inbox watched");
    let mut log_limit = LogLimiter::new(DEFAULT_BURST, DEFAULT_PERIOD);
    loop {
        let (outbox_ref, dir, intake_ref, min_age) = (
            outbox.clone(),
            settings.dir.clone(),
            intake_settings.clone(),
            settings.min_age,
        );
        let scan =
            tokio::task::spawn_blocking(move || scan_once(&outbox_ref, &dir, &intake_ref, min_age))
                .await;
        match scan {
            Ok(Ok(summary)) => report(&settings.dir, &summary, &mut log_limit),
            Ok(Err(error)) => return Err(error),
            Err(join) => {
                tracing::error!(inbox = %settings.dir.display(), error = %join, "inbox scan failed")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.scan_interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(inbox = %settings.dir.display(), "inbox no longer watched");
                return Ok(());
            }
        }
    }
}

fn report(dir: &Path, summary: &ScanSummary, log_limit: &mut LogLimiter) {
    match &summary.waiting {
        None => {
            let left_out = log_limit.reset();
            if left_out > 0 {
                tracing::info!(inbox = %dir.display(), left_out, "inbox intake resumed");
            }
        }
        Some(reason) => {
            if let Some(left_out) = log_limit.admit() {
                tracing::warn!(inbox = %dir.display(), left_out, reason = %reason, "inbox files left in place, retried at the next scan");
            }
        }
    }
}

/// Creates the inbox, its `done/` and `failed/` subfolders and one subfolder per record kind if
/// missing.
pub fn prepare(dir: &Path) -> Result<(), InboxError> {
    let kind_folders = Kind::ALL.into_iter().map(|kind| dir.join(folder_of(kind)));
    let folders = [dir.to_path_buf(), dir.join(DONE_DIR), dir.join(FAILED_DIR)]
        .into_iter()
        .chain(kind_folders);
    for path in folders {
        std::fs::create_dir_all(&path).map_err(|source| InboxError::Folder { path, source })?;
    }
    Ok(())
}

/// Returns the folders scanned, each with the kind its files must contain: the inbox itself
/// (`None`: the envelope decides), then each kind's subfolder.
fn scanned_folders(dir: &Path) -> Vec<(PathBuf, Option<Kind>)> {
    let kind_folders = Kind::ALL
        .into_iter()
        .map(|kind| (dir.join(folder_of(kind)), Some(kind)));
    std::iter::once((dir.to_path_buf(), None))
        .chain(kind_folders)
        .collect()
}

/// Takes in every ready `*.json` file of `dir` and of its kind subfolders once, folder by folder
/// and in name order within a folder. Stops at the first file the outbox could not store,
/// leaving it and the later ones in place.
pub fn scan_once(
    outbox: &SharedOutbox,
    dir: &Path,
    intake_settings: &IntakeSettings,
    min_age: Duration,
) -> Result<ScanSummary, InboxError> {
    let mut summary = ScanSummary::default();
    for (folder, kind) in scanned_folders(dir) {
        // A kind folder removed while the agent runs is skipped rather than fatal.
        if kind.is_some() && !folder.is_dir() {
            continue;
        }
        for path in ready_files(&folder, min_age)? {
            take_in(outbox, dir, &path, kind, intake_settings, &mut summary);
            if summary.waiting.is_some() {
                return Ok(summary);
            }
        }
    }
    Ok(summary)
}

/// Takes in one file and moves it, or records in `summary` why it waits.
fn take_in(
    outbox: &SharedOutbox,
    dir: &Path,
    path: &Path,
    kind: Option<Kind>,
    intake_settings: &IntakeSettings,
    summary: &mut ScanSummary,
) {
    // A full outbox refuses before the file is read.
    if let Err(error) = lock(outbox).check_room() {
        summary.waiting = Some(error.to_string());
        return;
    }
    let result = intake::read_file(path, kind, &intake_settings.context())
        .and_then(|input| intake::store(&mut lock(outbox), input));
    match result {
        Ok(_) => {
            move_into(path, &dir.join(DONE_DIR), None);
            summary.done += 1;
        }
        Err(error) if error.is_bad_input() => {
            move_into(path, &dir.join(FAILED_DIR), Some(&error));
            summary.failed += 1;
        }
        Err(error) => summary.waiting = Some(error.to_string()),
    }
}

fn lock(outbox: &SharedOutbox) -> std::sync::MutexGuard<'_, Outbox> {
    outbox
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lists the `*.json` files of `dir` modified at least `min_age` ago, sorted by name. Hidden
/// files and folders are skipped.
fn ready_files(dir: &Path, min_age: Duration) -> Result<Vec<PathBuf>, InboxError> {
    let folder_error = |source| InboxError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder_error)? {
        let entry = entry.map_err(folder_error)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_json = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("json"));
        if !is_json || name.starts_with('.') {
            continue;
        }
        // A file that vanished or cannot be inspected is left for the next scan.
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let age = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if metadata.is_file() && age.is_some_and(|age| age >= min_age) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Moves `path` into `folder` under a name not yet taken there, and writes `<name>.error.txt`
/// beside it when `error` is given. A failed move is logged: the file stays in the inbox and
/// the next scan takes it again, which changes nothing in the outbox.
fn move_into(path: &Path, folder: &Path, error: Option<&IntakeError>) {
    let target = free_name(folder, path);
    if let Err(move_error) = std::fs::rename(path, &target) {
        tracing::error!(file = %path.display(), target = %target.display(), error = %move_error, "cannot move inbox file; it will be taken again");
        return;
    }
    match error {
        None => {
            tracing::info!(file = %path.display(), target = %target.display(), "inbox file done")
        }
        Some(error) => {
            let mut note = target.clone().into_os_string();
            note.push(".error.txt");
            let note = PathBuf::from(note);
            if let Err(write_error) = std::fs::write(&note, format!("{error}\n")) {
                tracing::error!(file = %note.display(), error = %write_error, "cannot write the error file of a failed inbox file");
            }
            tracing::warn!(file = %path.display(), target = %target.display(), %error, "inbox file failed");
        }
    }
}

/// Returns `folder/<file name>`, or `folder/<stem>.<n>.json` with the first free `n` when that
/// name is taken, so an earlier file of the same name is never overwritten.
fn free_name(folder: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "input.json".into(), |name| name.to_os_string());
    let first = folder.join(&name);
    if !first.exists() {
        return first;
    }
    let stem = path.file_stem().map_or_else(
        || "input".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    (1u64..)
        .map(|n| folder.join(format!("{stem}.{n}.json")))
        .find(|candidate| !candidate.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxLimits;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    fn record(code: &str) -> String {
        format!(
            r#"{{"MaHoSo":"{code}","MaDonVi":"01","MaTTHC":"1.001612","KenhThucHien":"2","TrangThaiHoSo":"2","NgayTiepNhan":"20261001080000","NgayHenTra":"20261010170000"}}"#
        )
    }

    fn setup(limits: OutboxLimits) -> (tempfile::TempDir, SharedOutbox, PathBuf, IntakeSettings) {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        outbox.set_limits(limits);
        let inbox = dir.path().join("inbox");
        prepare(&inbox).unwrap();
        let settings = IntakeSettings {
            locality: "01".into(),
            agency_map: HashMap::new(),
            catalogue: chiso_proto::units::UnitCatalogue::official(),
        };
        (dir, Arc::new(Mutex::new(outbox)), inbox, settings)
    }

    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn good_done_bad_failed_with_reason() {
        let (_dir, outbox, inbox, settings) = setup(OutboxLimits::default());
        std::fs::write(inbox.join("a.json"), format!("[{}]", record("A-1"))).unwrap();
        std::fs::write(inbox.join("b.json"), "not json at all").unwrap();
        std::fs::write(inbox.join("c.txt"), "ignored").unwrap();

        let summary = scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        assert_eq!(
            (summary.done, summary.failed, summary.waiting),
            (1, 1, None)
        );
        assert_eq!(names(&inbox.join(DONE_DIR)), vec!["a.json"]);
        assert_eq!(
            names(&inbox.join(FAILED_DIR)),
            vec!["b.json", "b.json.error.txt"]
        );
        let reason =
            std::fs::read_to_string(inbox.join(FAILED_DIR).join("b.json.error.txt")).unwrap();
        assert!(reason.contains("invalid JSON"), "{reason}");
        assert_eq!(
            names(&inbox),
            vec![
                "c.txt",
                "done",
                "dossiers",
                "failed",
                "feedback",
                "procedures",
                "ratings",
                "steps"
            ]
        );
        assert_eq!(outbox.lock().unwrap().stats().unwrap().backlog, 1);
    }

    #[test]
    fn full_outbox_leaves_files_in_place() {
        let limits = OutboxLimits {
            max_bytes: None,
            max_records: Some(2),
        };
        let (_dir, outbox, inbox, settings) = setup(limits);
        std::fs::write(
            inbox.join("1.json"),
            format!("[{}, {}]", record("A-1"), record("A-2")),
        )
        .unwrap();
        std::fs::write(inbox.join("2.json"), format!("[{}]", record("A-3"))).unwrap();

        let first = scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        assert_eq!(first.done, 1);
        assert!(first.waiting.unwrap().contains("is full"));
        assert!(inbox.join("2.json").exists());

        outbox.lock().unwrap().settle(u64::MAX, &[]).unwrap();
        let second = scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        assert_eq!((second.done, second.waiting), (1, None));
        assert_eq!(names(&inbox.join(DONE_DIR)), vec!["1.json", "2.json"]);
    }

    #[test]
    fn repeated_name_and_fresh_file() {
        let (_dir, outbox, inbox, settings) = setup(OutboxLimits::default());
        std::fs::write(inbox.join("x.json"), format!("[{}]", record("A-1"))).unwrap();
        scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        std::fs::write(inbox.join("x.json"), format!("[{}]", record("A-2"))).unwrap();

        let waiting = scan_once(&outbox, &inbox, &settings, Duration::from_secs(3600)).unwrap();
        assert_eq!(waiting.done, 0, "a file just written waits");
        scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        assert_eq!(names(&inbox.join(DONE_DIR)), vec!["x.1.json", "x.json"]);
        assert_eq!(outbox.lock().unwrap().stats().unwrap().backlog, 2);
    }

    #[test]
    fn kind_folders_give_the_kind() {
        let (_dir, outbox, inbox, settings) = setup(OutboxLimits::default());
        let feedback = r#"{"MaPAKN":"PAKN-1","MaDonVi":"01","NgayTiepNhan":"20261001090000"}"#;
        // JSON Lines without an envelope: only the folder makes them feedback items.
        std::fs::write(
            inbox.join("feedback").join("pakn.json"),
            format!("{feedback}\n{}\n", feedback.replace("PAKN-1", "PAKN-2")),
        )
        .unwrap();
        // An envelope naming feedback in the ratings folder fails whole.
        std::fs::write(
            inbox.join("ratings").join("wrong.json"),
            format!(r#"{{"service": "DongBoPAKN", "data": [{feedback}]}}"#),
        )
        .unwrap();
        std::fs::write(inbox.join("a.json"), format!("[{}]", record("A-1"))).unwrap();

        let summary = scan_once(&outbox, &inbox, &settings, Duration::ZERO).unwrap();
        assert_eq!(
            (summary.done, summary.failed, summary.waiting),
            (2, 1, None)
        );
        assert_eq!(names(&inbox.join(DONE_DIR)), vec!["a.json", "pakn.json"]);
        let reason =
            std::fs::read_to_string(inbox.join(FAILED_DIR).join("wrong.json.error.txt")).unwrap();
        assert!(reason.contains("--kind feedback"), "{reason}");
        assert!(names(&inbox.join("feedback")).is_empty());

        let kinds: Vec<&str> = outbox
            .lock()
            .unwrap()
            .pending_batch(0, 10)
            .unwrap()
            .iter()
            .map(|record| match &record.body {
                Some(chiso_proto::v1::record::Body::Dossier(_)) => "dossier",
                Some(chiso_proto::v1::record::Body::Feedback(_)) => "feedback",
                other => panic!("unexpected record {other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["dossier", "feedback", "feedback"]);
    }
}
