//! The agent's durable outbox: one SQLite file with the records waiting for the hub (`outbox`),
//! a ledger of every key ever accepted (`ledger`), rejected records (`rejected`), the input files
//! already taken in (`input_files`) and small status values (`meta`). [`Outbox::ingest`] commits
//! a file's queued records, its rejections and its `input_files` row in one transaction, so after
//! a crash a file is either wholly stored or absent and is ingested again. A queued record stays
//! until [`Outbox::settle`] covers its sequence number. A crash after the hub commits a batch but
//! before `settle` makes the agent send those records again, and the hub counts them as replays.
//! Sequence numbers come from `AUTOINCREMENT`, so a number is never handed out twice in the same
//! file, even after its row has been settled or coalesced away. Configured limits
//! ([`OutboxLimits`]) make `ingest` refuse a whole input with [`OutboxError::Full`] rather than
//! drop anything, and a record the hub rejected can be queued again from its kept payload with
//! [`Outbox::resend_rejected`].
//!
//! Connection settings. The journal is WAL, so the push loop can read while an ingest writes.
//! `synchronous=FULL` makes SQLite sync the WAL at every commit. With `NORMAL`, WAL mode syncs
//! only at checkpoints: a committed transaction survives a crash of the agent but may roll back
//! after a power loss or an operating-system crash. The agent reports a record as accepted, and
//! a source may then drop it, so the commit must be on disk before `ingest` returns. The cost is
//! one sync per ingested file and per settled batch. The busy timeout is 5 s because
//! `chiso-agent ingest` and `chiso-agent run` are separate processes sharing the file. Write
//! transactions start with `BEGIN IMMEDIATE`, so they wait for the lock up front instead of
//! failing with `SQLITE_BUSY` when a read transaction tries to become a write transaction.
//! A new file is created with `auto_vacuum=INCREMENTAL`, so the pages freed by a drain can be
//! given back to the file system ([`Outbox::reclaim_space`]).

mod digest;
mod error;
mod gaps;
mod intake;
mod payload;
mod resend;
mod retain;
mod schema;
mod settle;
mod space;

use std::path::{Path, PathBuf};

use chiso_proto::v1::RejectCode;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub use digest::LocalDigest;
pub use error::OutboxError;
use error::sql_error;
pub use gaps::{GapDay, ReexportKey};
pub use resend::{ResendSelection, ResendSummary};
pub use retain::{LedgerKey, RequeueSummary};
pub use space::{OutboxLimits, OutboxUsage};

/// The outbox file, opened for reading and writing.
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    limits: OutboxLimits,
}

/// Outcome counts of one [`Outbox::ingest`] call.
///
/// `records == stored_new + stored_changed + unchanged + superseded + rejected.len()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestSummary {
    /// Records in the file.
    pub records: usize,
    /// Records with a key never seen before, queued at version 1.
    pub stored_new: usize,
    /// Records whose content changed, queued at the next version.
    pub stored_changed: usize,
    /// Records identical to the version already accepted, not queued.
    pub unchanged: usize,
    /// Valid records whose key appears again later in the same file, where the last one wins.
    pub superseded: usize,
    /// Records rejected at intake, in file order.
    pub rejected: Vec<IntakeRejection>,
}

/// One record rejected at intake.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeRejection {
    /// 0-based position of the record in its file.
    pub index: usize,
    /// The record's key when it could be read.
    pub key: Option<String>,
    /// The field at fault, in the portal's naming.
    pub field: String,
    /// Machine-readable reason.
    pub code: RejectCode,
    /// Description of the fault and of its fix.
    pub message: String,
}

/// Row counts of one [`Outbox::settle`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettleSummary {
    /// Pending rows removed from the outbox.
    pub deleted: usize,
    /// Hub rejections newly recorded in `rejected`.
    pub rejected: usize,
}

/// Counts for `chiso-agent status` and the push loop's hello.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Rows waiting in the outbox.
    pub backlog: u64,
    /// Lowest pending sequence number, if any row is pending.
    pub oldest_pending_seq: Option<u64>,
    /// Highest sequence number ever assigned, or 0 before the first record.
    pub last_seq: u64,
    /// Rows in `rejected`, from intake and from the hub.
    pub rejected: u64,
    /// Keys in the ledger.
    pub ledger_keys: u64,
}

/// One row of `rejected`, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// `intake` or `hub`.
    pub origin: String,
    /// The record kind, such as `dossier` or `procedure`. `None` for a hub rejection of a row
    /// that a newer version replaced before the hub's verdict, when no pending row names the
    /// kind any more.
    pub kind: Option<String>,
    /// The input file path, or `hub`.
    pub source: String,
    /// 0-based position in the input file, for intake rejections.
    pub record_index: Option<u64>,
    /// Outbox sequence number, for hub rejections.
    pub seq: Option<u64>,
    /// The record's key when known.
    pub key: Option<String>,
    /// The `RejectCode` name, such as `REJECT_CODE_UNIT_NOT_ALLOWED`.
    pub code: String,
    /// The field at fault.
    pub field: String,
    /// Description of the fault and of its fix.
    pub message: String,
    /// When the rejection was recorded, in Unix milliseconds.
    pub rejected_at_ms: i64,
}

impl Outbox {
    /// Opens the outbox at `path`, creating it if the file is new or empty.
    ///
    /// Fails without changing the file if it is not a SQLite database, belongs to another
    /// application, or has an unknown schema version.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let conn = schema::open_connection(path)?;
        retain::create_tables(&conn, path)?;
        schema::add_columns(&conn, path)?;
        Ok(Outbox {
            conn,
            path: path.to_path_buf(),
            limits: OutboxLimits::default(),
        })
    }

    /// Returns the path the outbox was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a status value such as the last ack time, replacing any previous value.
    pub fn set_meta(&self, name: &str, value: &str) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(sql_error(&self.path, "store a meta value"))?;
        Ok(())
    }

    /// Returns a status value stored with [`Outbox::set_meta`].
    pub fn meta(&self, name: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sql_error(&self.path, "read a meta value"))
    }

    /// Tells whether this exact file content was already ingested from `path`.
    pub fn file_already_ingested(&self, path: &str, sha256: &str) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM input_files WHERE path = ?1 AND sha256 = ?2)",
                params![path, sha256],
                |row| row.get(0),
            )
            .map_err(sql_error(&self.path, "look up an input file"))
    }

    /// Counts pending, rejected and ledger rows, all from one snapshot.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        // One statement reads one snapshot, so the counts agree even while an ingest commits.
        let sql = "SELECT
                (SELECT COUNT(*) FROM outbox),
                (SELECT MIN(seq) FROM outbox),
                COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
                (SELECT COUNT(*) FROM rejected),
                (SELECT COUNT(*) FROM ledger)";
        self.conn
            .query_row(sql, [], |row| {
                Ok(OutboxStats {
                    backlog: get_u64(row, 0)?,
                    oldest_pending_seq: get_optional_u64(row, 1)?,
                    last_seq: get_u64(row, 2)?,
                    rejected: get_u64(row, 3)?,
                    ledger_keys: get_u64(row, 4)?,
                })
            })
            .map_err(sql_error(&self.path, "count outbox rows"))
    }

    /// Returns the newest `limit` rejected rows, newest first.
    pub fn rejects(&self, limit: usize) -> Result<Vec<RejectedRow>, OutboxError> {
        let fail = sql_error(&self.path, "read rejected rows");
        let mut statement = self
            .conn
            .prepare(
                "SELECT origin, source, record_index, seq, key, code, field, message,
                        rejected_at_ms, kind
                 FROM rejected ORDER BY id DESC LIMIT ?1",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map([clamp_to_i64(limit)], |row| {
                Ok(RejectedRow {
                    origin: row.get(0)?,
                    source: row.get(1)?,
                    record_index: get_optional_u64(row, 2)?,
                    seq: get_optional_u64(row, 3)?,
                    key: row.get(4)?,
                    code: row.get(5)?,
                    field: row.get(6)?,
                    message: row.get(7)?,
                    rejected_at_ms: row.get(8)?,
                    kind: row.get(9)?,
                })
            })
            .map_err(&fail)?;
        rows.collect::<Result<_, _>>().map_err(&fail)
    }
}

/// Current wall-clock time in Unix milliseconds.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts a count, index, version or sequence number to SQLite's integer type, saturating at
/// `i64::MAX`, the largest value SQLite can store or assign as a sequence number.
fn clamp_to_i64<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// Reads a column of sequence numbers, counts or indexes, which are never negative.
fn get_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// Reads a nullable column like [`get_u64`].
fn get_optional_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(_) => get_u64(row, index).map(Some),
    }
}

/// Returns the stored name of a reject code, or its number when this build does not know it.
fn reject_code_name(code: i32) -> String {
    match RejectCode::try_from(code) {
        Ok(known) => known.as_str_name().to_string(),
        Err(_) => code.to_string(),
    }
}

#[cfg(test)]
mod kind_tests;
#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{dossier, open_temp};
    use super::*;
    use crate::record::RecordOutcome;

    #[test]
    fn meta_values_replace_and_survive_reopen() {
        let (dir, mut outbox) = open_temp();
        assert_eq!(outbox.meta("last_ack_ms").unwrap(), None);

        outbox.set_meta("last_ack_ms", "100").unwrap();
        outbox.set_meta("last_ack_ms", "200").unwrap();
        outbox.set_meta("last_error", "hub unreachable").unwrap();
        assert_eq!(outbox.meta("last_ack_ms").unwrap().as_deref(), Some("200"));

        let outcomes = vec![RecordOutcome {
            index: 0,
            result: Ok(dossier("HS-1", "01", 1)),
        }];
        outbox.ingest("in/a.json", "aa", outcomes).unwrap();
        drop(outbox);

        let reopened = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        assert_eq!(
            reopened.meta("last_ack_ms").unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            reopened.meta("last_error").unwrap().as_deref(),
            Some("hub unreachable")
        );
        assert!(reopened.file_already_ingested("in/a.json", "aa").unwrap());
        assert!(!reopened.file_already_ingested("in/a.json", "bb").unwrap());

        let stats = reopened.stats().unwrap();
        assert_eq!(stats.backlog, 1);
        assert_eq!(stats.ledger_keys, 1);
        assert_eq!(stats.last_seq, 1);
        let batch = reopened.pending_batch(0, 10).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].seq, 1);
    }

    #[test]
    fn stats_of_new_outbox_are_zero() {
        let (_dir, outbox) = open_temp();
        assert_eq!(outbox.stats().unwrap(), OutboxStats::default());
        assert!(outbox.rejects(10).unwrap().is_empty());
    }

    #[test]
    fn reject_code_names_unknown_codes_by_number() {
        assert_eq!(reject_code_name(1), "REJECT_CODE_UNIT_NOT_ALLOWED");
        assert_eq!(reject_code_name(99), "99");
    }
}
