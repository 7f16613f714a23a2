//! Errors of the outbox. Every variant names the outbox file, and the value at fault where there
//! is one, so an operator can find the file and decide what to do with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::ErrorCode;

/// How long a statement waits for another process's write transaction before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure to open, read or write the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite could not open or create the file.
    #[error(
        "cannot open outbox {}: {source}. Check that its directory exists and that the agent may write there",
        .path.display()
    )]
    Open {
        /// The outbox file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The file exists but is not a SQLite database.
    #[error(
        "{} is not a SQLite database, so it cannot be the outbox. The file was left unchanged: move it away or configure another outbox path",
        .path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// The file is a SQLite database that another application created.
    #[error(
        "{} is a SQLite database but not a chiso-agent outbox (application_id {application_id:#010x}, {schema_objects} schema objects). The file was left unchanged: configure another outbox path",
        .path.display()
    )]
    NotAnOutbox {
        /// The file.
        path: PathBuf,
        /// The database's `PRAGMA application_id`.
        application_id: i32,
        /// Number of tables, views, indexes and triggers in the database.
        schema_objects: i64,
    },

    /// The outbox has a schema version this build does not know.
    #[error(
        "outbox {} has schema version {found}, but this chiso-agent reads only version {supported}. Run the chiso-agent release that wrote it",
        .path.display()
    )]
    UnsupportedSchema {
        /// The outbox file.
        path: PathBuf,
        /// The file's `PRAGMA user_version`.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },

    /// SQLite kept another journal mode than WAL.
    #[error(
        "outbox {} cannot use the WAL journal (SQLite kept mode {mode:?}). Put it on a local file system",
        .path.display()
    )]
    WalUnavailable {
        /// The outbox file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },

    /// Another process held the write lock for longer than the busy timeout.
    #[error(
        "outbox {} stayed locked by another process for over {} s, so this process could not {operation}. Retry when the other chiso-agent ingest or run has finished its transaction",
        .path.display(),
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        /// The outbox file.
        path: PathBuf,
        /// The operation that failed, as a verb phrase.
        operation: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// Any other SQLite failure.
    #[error("outbox {}: failed to {operation}: {source}", .path.display())]
    Sqlite {
        /// The outbox file.
        path: PathBuf,
        /// The operation that failed, as a verb phrase.
        operation: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// A pending row whose payload does not decode as its kind.
    #[error(
        "outbox {}: pending row seq {seq} does not contain a valid {kind} payload ({source}). The file is damaged: restore it from a backup or ingest the source files again",
        .path.display()
    )]
    CorruptPayload {
        /// The outbox file.
        path: PathBuf,
        /// The row's sequence number.
        seq: u64,
        /// The row's record kind.
        kind: String,
        /// The decoder's error.
        source: prost::DecodeError,
    },

    /// The outbox is at a configured limit, so the input was refused and nothing of it stored.
    #[error(
        "outbox {} is full: {pending} records wait for the hub and {used_bytes} bytes are in use, and storing this input would pass {limit}. Nothing of this input was stored; send it again once the backlog has drained (check the hub connection with chiso-agent status), or raise the limit",
        .path.display()
    )]
    Full {
        /// The outbox file.
        path: PathBuf,
        /// Records waiting for the hub.
        pending: u64,
        /// Bytes of the pages in use.
        used_bytes: u64,
        /// The limit reached, with its configuration key, such as `limits.outbox_max_records = 1000`.
        limit: String,
    },

    /// SQLite's integrity check found damage in the file.
    #[error(
        "outbox {} is damaged ({detail}). The agent did not start and left the file unchanged. Keep a copy of it, restore the newest backup, or configure a new outbox path and ingest the source files again",
        .path.display()
    )]
    Damaged {
        /// The outbox file.
        path: PathBuf,
        /// The first problems SQLite reported.
        detail: String,
    },

    /// A pending row of a record kind this build cannot send.
    #[error(
        "outbox {}: pending row seq {seq} has record kind {kind:?}, which this chiso-agent cannot send. Run the chiso-agent release that wrote it",
        .path.display()
    )]
    UnknownKind {
        /// The outbox file.
        path: PathBuf,
        /// The row's sequence number.
        seq: u64,
        /// The row's record kind.
        kind: String,
    },
}

impl OutboxError {
    /// Wraps a SQLite error from `operation`, separating lock timeouts from other failures.
    pub(crate) fn sqlite(path: &Path, operation: &'static str, source: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        if source.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
            OutboxError::Busy {
                path,
                operation,
                source,
            }
        } else {
            OutboxError::Sqlite {
                path,
                operation,
                source,
            }
        }
    }
}

/// Returns a `map_err` adapter that wraps SQLite errors from `operation` on the outbox at `path`.
pub(crate) fn sql_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl Fn(rusqlite::Error) -> OutboxError + 'a {
    move |source| OutboxError::sqlite(path, operation, source)
}
