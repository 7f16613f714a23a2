//! The hub's SQLite store: dossiers per source, each agent's sequence watermark, and the
//! rejections sent back to agents.
//!
//! One writer thread owns the only write connection and commits jobs from many agents together
//! (group commit). A batch is applied in one transaction together with its agent's new
//! watermark, so after a crash either the whole batch and the watermark are durable or neither
//! is, and the agent replays it. Replays (sequence numbers at or below the watermark) and
//! versions no newer than the stored one change nothing, which makes applying a batch
//! idempotent. A record is stored only when its unit lies within the sending agent's locality.
//! Readers open their own read-only connections, and in WAL mode SQLite lets the writer commit
//! while they read.

mod apply;
mod completeness;
mod gaps;
mod kinds;
mod reconcile;
mod schema;
mod watermarks;
mod writer;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{Ack, Batch, Rejection};
use chrono::NaiveDate;
use tokio::sync::oneshot;

use crate::counters::CounterRules;

pub use completeness::{
    AgentClock, agent_clocks, attach_completeness, completeness, reported_counts,
};
pub use reconcile::MAX_GAP_KEYS;
pub use watermarks::attach_watermarks;
use writer::Job;

/// Maximum number of rejections returned by one [`StoreHandle::hello`].
pub const MAX_HELLO_REJECTIONS: usize = 10_000;

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error(
        "failed to open the store database {path}: {source}; check the path and its permissions"
    )]
    Open {
        /// The database path.
        path: PathBuf,
        /// Underlying SQLite error.
        source: rusqlite::Error,
    },
    /// The database carries a schema version this build does not know.
    #[error(
        "store database {path} has schema version {found}, but this build supports version {supported}; run a hub build that matches the database"
    )]
    SchemaVersion {
        /// The database path.
        path: PathBuf,
        /// Version found in `PRAGMA user_version`.
        found: i64,
        /// Version this build reads and writes.
        supported: i64,
    },
    /// A SQLite statement failed.
    #[error("store query failed: {source}")]
    Sqlite {
        /// Underlying SQLite error.
        #[from]
        source: rusqlite::Error,
    },
    /// The group commit that contained this job failed, so none of its jobs was applied.
    #[error("store commit of {jobs} jobs failed: {source}; the agent should resend the batch")]
    Commit {
        /// Jobs in the failed group.
        jobs: usize,
        /// Underlying SQLite error, shared by every job of the group.
        source: Arc<rusqlite::Error>,
    },
    /// A batch's sequence numbers do not strictly increase; nothing of it was applied.
    #[error(
        "batch from locality {locality}: sequence number {seq} follows {previous}, but sequence numbers must strictly increase within a batch"
    )]
    OutOfOrder {
        /// The sending agent's locality.
        locality: String,
        /// The offending sequence number.
        seq: u64,
        /// The sequence number of the record before it.
        previous: u64,
    },
    /// A sequence number is 0 or too large for SQLite's signed 64-bit integers.
    #[error(
        "batch from locality {locality}: sequence number {seq} is outside 1 to 9223372036854775807"
    )]
    InvalidSeq {
        /// The sending agent's locality.
        locality: String,
        /// The offending sequence number.
        seq: u64,
    },
    /// A completeness digest breaks the protocol's rules; nothing of it was recorded.
    #[error(
        "digest {digest_id} from locality {locality} is invalid: {reason}. The agent must send real yyyymmdd days, list each unit-day once, and keep its window within {} days",
        chiso_proto::digest::MAX_WINDOW_DAYS
    )]
    InvalidDigest {
        /// The sending agent's locality.
        locality: String,
        /// The digest's id.
        digest_id: u64,
        /// What is wrong, with the value at fault.
        reason: String,
    },
    /// The writer thread has stopped, so the store accepts no more jobs.
    #[error("the store's writer thread has stopped; restart the hub")]
    Closed,
    /// The writer thread could not be started.
    #[error("failed to start the store's writer thread: {source}")]
    WriterStart {
        /// Underlying I/O error.
        source: std::io::Error,
    },
}

/// Counters of the writer's work since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Transactions committed (or attempted), each holding one or more jobs.
    pub commits: u64,
    /// Jobs processed: batches, hellos and digests.
    pub jobs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    jobs: AtomicU64,
}

/// A handle to the store, cheap to clone and shared across tasks.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    rules: CounterRules,
    catalogue: &'static UnitCatalogue,
}

/// Opens an existing store read-only after checking its schema version, for commands that
/// run beside or without the hub.
pub fn open_reader_checked(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = schema::open_reader(path)?;
    schema::check_version(&conn, path)?;
    Ok(conn)
}

/// Rebuilds every counter of an existing store from its records as of a day, in one
/// transaction; returns the number of records counted.
pub fn rebuild_counters(
    path: &Path,
    rules: &CounterRules,
    day: NaiveDate,
) -> Result<u64, StoreError> {
    let mut conn = schema::open_writer(path)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let records = crate::counters::rebuild(&tx, rules, day)?;
    tx.commit()?;
    Ok(records)
}

/// Returns today's Vietnam calendar day.
pub fn today() -> NaiveDate {
    chiso_proto::vntime::vietnam_day(chrono::Utc::now().timestamp())
}

/// Builds the counters when they were never built or were built with other rules, and moves
/// them to `day` when they are older, in one transaction.
pub fn prepare_counters(
    conn: &mut rusqlite::Connection,
    rules: &CounterRules,
    day: NaiveDate,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (as_of, built_with) = crate::counters::read_meta(&tx)?;
    let fingerprint = rules.fingerprint();
    match as_of {
        Some(as_of) if built_with.as_deref() == Some(fingerprint.as_str()) => {
            if as_of < day {
                let recounted = crate::counters::advance(&tx, rules, day)?;
                tracing::info!(from = %as_of, to = %day, recounted, "counters moved to today");
            }
        }
        _ => {
            let records = crate::counters::rebuild(&tx, rules, day)?;
            tracing::info!(
                records,
                rules = %fingerprint,
                previous = built_with.as_deref().unwrap_or("none"),
                "counters rebuilt from the stored records"
            );
        }
    }
    tx.commit()?;
    Ok(())
}

impl StoreHandle {
    /// Opens or creates the database and starts the writer thread that owns the write connection.
    ///
    /// The thread stops when the last handle is dropped, after finishing the jobs already queued.
    pub fn open(path: &Path, catalogue: &'static UnitCatalogue) -> Result<StoreHandle, StoreError> {
        StoreHandle::open_with_rules(path, catalogue, CounterRules::default())
    }

    /// Opens the store like [`StoreHandle::open`] with the given counter rules. Counters built
    /// with other rules, or never built, are rebuilt first; counters of an earlier day are moved
    /// to today.
    pub fn open_with_rules(
        path: &Path,
        catalogue: &'static UnitCatalogue,
        rules: CounterRules,
    ) -> Result<StoreHandle, StoreError> {
        let mut conn = schema::open_writer(path)?;
        prepare_counters(&mut conn, &rules, today())?;
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());

        let writer = writer::Writer::new(conn, catalogue, rules, Arc::clone(&counters));
        std::thread::Builder::new()
            .name("chiso-store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| StoreError::WriterStart { source })?;

        tracing::info!(path = %path.display(), "store opened");
        Ok(StoreHandle {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: sender,
                counters,
                rules,
                catalogue,
            }),
        })
    }

    /// Moves the counters to a new as-of day and returns how many records were recounted, or
    /// `None` when the counters were never built.
    pub fn advance_counters(
        &self,
        day: NaiveDate,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send + 'static {
        let (reply, response) = oneshot::channel();
        let queued = self.inner.jobs.send(Job::Advance { day, reply }).is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            response.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Returns the rules the counters are built with.
    pub fn counter_rules(&self) -> CounterRules {
        self.inner.rules
    }

    /// Returns the unit catalogue the store checks records against.
    pub fn unit_catalogue(&self) -> &'static UnitCatalogue {
        self.inner.catalogue
    }

    /// Applies one batch from the agent of `locality` and returns its Ack once it is committed.
    ///
    /// The job is queued when this function is called, not when the future is first polled, so
    /// batches of one locality are applied in the order of the calls. Callers that keep several
    /// batches of one agent in flight must call this in the agent's sequence order: a later
    /// batch committed first raises the watermark and turns the earlier batch into a replay.
    pub fn apply_batch(
        &self,
        locality: &str,
        batch: Batch,
    ) -> impl Future<Output = Result<Ack, StoreError>> + Send + 'static {
        let (reply, response) = oneshot::channel();
        let queued = self.inner.jobs.send(Job::Batch {
            locality: locality.to_string(),
            batch,
            reply,
        });
        let queued = queued.is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            response.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Records a hello and returns the agent's last committed sequence number and the
    /// rejections recorded at or above `oldest_pending_seq`, at most [`MAX_HELLO_REJECTIONS`].
    ///
    /// An `oldest_pending_seq` of 0 means the agent's outbox is empty, so no rejection is
    /// returned.
    pub fn hello(
        &self,
        locality: &str,
        agent_version: &str,
        clock_offset_ms: i64,
        oldest_pending_seq: u64,
    ) -> impl Future<Output = Result<(u64, Vec<Rejection>), StoreError>> + Send + 'static {
        self.hello_with_certificate(
            locality,
            agent_version,
            clock_offset_ms,
            oldest_pending_seq,
            None,
        )
    }

    /// Records a hello like [`StoreHandle::hello`], and also the end of validity (Unix seconds)
    /// of the client certificate the agent presented, kept in `agents.cert_not_after`.
    pub fn hello_with_certificate(
        &self,
        locality: &str,
        agent_version: &str,
        clock_offset_ms: i64,
        oldest_pending_seq: u64,
        cert_not_after: Option<i64>,
    ) -> impl Future<Output = Result<(u64, Vec<Rejection>), StoreError>> + Send + 'static {
        let (reply, response) = oneshot::channel();
        let queued = self.inner.jobs.send(Job::Hello {
            locality: locality.to_string(),
            agent_version: agent_version.to_string(),
            clock_offset_ms,
            oldest_pending_seq,
            cert_not_after,
            reply,
        });
        let queued = queued.is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            response.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Opens a read-only connection for queries.
    pub fn reader(&self) -> Result<rusqlite::Connection, StoreError> {
        schema::open_reader(&self.inner.path)
    }

    /// Returns the database path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Returns how many commits and jobs the writer has processed.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            jobs: self.inner.counters.jobs.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
