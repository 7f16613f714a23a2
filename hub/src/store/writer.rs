//! The writer thread: the only owner of the write connection, committing jobs in groups.
//!
//! The thread blocks for one job, takes up to [`MAX_GROUP_JOBS`] − 1 more that are already
//! queued, and runs them in one IMMEDIATE transaction with a savepoint per job. A job that fails
//! is rolled back to its savepoint alone and gets its own error. One COMMIT then makes every
//! successful job durable at once, and only after it does any job get its reply. If anything
//! outside a single job fails (BEGIN, a savepoint, COMMIT), the whole group is rolled back and
//! every job of it gets [`StoreError::Commit`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{Ack, Batch, DigestBatch, GapReport, Rejection};
use chrono::NaiveDate;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{Counters, StoreError, apply, reconcile};
use crate::counters::{self, CounterRules, Delta};

/// Most jobs committed in one transaction.
const MAX_GROUP_JOBS: usize = 64;

/// Result of a hello: the watermark and the rejections to resend.
pub(super) type Welcome = (u64, Vec<Rejection>);

/// One unit of work for the writer, with the channel its result goes back on.
pub(super) enum Job {
    Batch {
        locality: String,
        batch: Batch,
        reply: oneshot::Sender<Result<Ack, StoreError>>,
    },
    Hello {
        locality: String,
        agent_version: String,
        clock_offset_ms: i64,
        oldest_pending_seq: u64,
        cert_not_after: Option<i64>,
        reply: oneshot::Sender<Result<Welcome, StoreError>>,
    },
    Reconcile {
        locality: String,
        digest: DigestBatch,
        reply: oneshot::Sender<Result<GapReport, StoreError>>,
    },
    /// Moves the counters to a new as-of day.
    Advance {
        day: NaiveDate,
        reply: oneshot::Sender<Result<Option<u64>, StoreError>>,
    },
}

/// A job's result, held until the group's COMMIT has finished.
enum Outcome {
    Ack(Result<Ack, StoreError>),
    Welcome(Result<Welcome, StoreError>),
    Gaps(Result<GapReport, StoreError>),
    Advanced(Result<Option<u64>, StoreError>),
}

impl Job {
    fn locality(&self) -> &str {
        match self {
            Job::Batch { locality, .. }
            | Job::Hello { locality, .. }
            | Job::Reconcile { locality, .. } => locality,
            Job::Advance { .. } => "",
        }
    }

    fn record_count(&self) -> usize {
        match self {
            Job::Batch { batch, .. } => batch.records.len(),
            Job::Hello { .. } | Job::Reconcile { .. } | Job::Advance { .. } => 0,
        }
    }

    /// Runs the job; counter changes of a batch go to `delta` for the group to write.
    fn run(
        &self,
        conn: &Connection,
        catalogue: &UnitCatalogue,
        rules: &CounterRules,
        now_ms: i64,
        delta: &mut Delta,
    ) -> Outcome {
        match self {
            Job::Batch {
                locality, batch, ..
            } => Outcome::Ack(apply::apply_batch(
                conn, catalogue, rules, locality, batch, now_ms, delta,
            )),
            Job::Advance { day, .. } => {
                Outcome::Advanced(counters::advance(conn, rules, *day).map_err(StoreError::from))
            }
            Job::Hello {
                locality,
                agent_version,
                clock_offset_ms,
                oldest_pending_seq,
                cert_not_after,
                ..
            } => Outcome::Welcome(apply::record_hello(
                conn,
                locality,
                agent_version,
                *clock_offset_ms,
                *oldest_pending_seq,
                *cert_not_after,
                now_ms,
            )),
            Job::Reconcile {
                locality, digest, ..
            } => Outcome::Gaps(reconcile::reconcile(
                conn, catalogue, locality, digest, now_ms,
            )),
        }
    }

    /// Sends the outcome; a caller that stopped waiting is not an error.
    fn reply(self, outcome: Outcome) {
        match (self, outcome) {
            (Job::Batch { reply, .. }, Outcome::Ack(result)) => {
                let _ = reply.send(result);
            }
            (Job::Hello { reply, .. }, Outcome::Welcome(result)) => {
                let _ = reply.send(result);
            }
            (Job::Reconcile { reply, .. }, Outcome::Gaps(result)) => {
                let _ = reply.send(result);
            }
            (Job::Advance { reply, .. }, Outcome::Advanced(result)) => {
                let _ = reply.send(result);
            }
            // Outcomes are built from their own job, so the kinds always match; dropping the
            // reply makes the caller see StoreError::Closed should that ever change.
            _ => {}
        }
    }
}

impl Outcome {
    fn error(&self) -> Option<&StoreError> {
        match self {
            Outcome::Ack(Err(error))
            | Outcome::Welcome(Err(error))
            | Outcome::Gaps(Err(error))
            | Outcome::Advanced(Err(error)) => Some(error),
            _ => None,
        }
    }

    fn group_failed(job: &Job, jobs: usize, source: &Arc<rusqlite::Error>) -> Outcome {
        let error = StoreError::Commit {
            jobs,
            source: Arc::clone(source),
        };
        match job {
            Job::Batch { .. } => Outcome::Ack(Err(error)),
            Job::Hello { .. } => Outcome::Welcome(Err(error)),
            Job::Reconcile { .. } => Outcome::Gaps(Err(error)),
            Job::Advance { .. } => Outcome::Advanced(Err(error)),
        }
    }
}

/// State of the writer thread.
pub(super) struct Writer {
    conn: Connection,
    catalogue: &'static UnitCatalogue,
    rules: CounterRules,
    counters: Arc<Counters>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        catalogue: &'static UnitCatalogue,
        rules: CounterRules,
        counters: Arc<Counters>,
    ) -> Writer {
        Writer {
            conn,
            catalogue,
            rules,
            counters,
        }
    }

    /// Processes jobs until every sender is dropped.
    pub(super) fn run(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP_JOBS {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
        tracing::info!("store writer stopped");
    }

    fn commit_group(&mut self, group: Vec<Job>) {
        let started = Instant::now();
        let jobs = group.len();
        let records: usize = group.iter().map(Job::record_count).sum();

        let outcomes = match self.apply_group(&group) {
            Ok(outcomes) => outcomes,
            Err(source) => {
                tracing::error!(jobs, records, error = %source, "store group commit failed");
                let source = Arc::new(source);
                group
                    .iter()
                    .map(|job| Outcome::group_failed(job, jobs, &source))
                    .collect()
            }
        };
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.jobs.fetch_add(jobs as u64, Ordering::Relaxed);
        tracing::debug!(
            jobs,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store group committed"
        );

        for (job, outcome) in group.into_iter().zip(outcomes) {
            if let Some(error) = outcome.error() {
                tracing::error!(locality = job.locality(), %error, "store job failed");
            }
            job.reply(outcome);
        }
    }

    /// Runs every job in its own savepoint inside one transaction and commits it.
    fn apply_group(&mut self, group: &[Job]) -> Result<Vec<Outcome>, rusqlite::Error> {
        let now_ms = unix_now_ms();
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(group.len());
        // The counter changes of every successful job, summed and written once before COMMIT:
        // batches of one group touch the same units and periods, so this saves most writes.
        let mut group_delta = Delta::default();

        for job in group {
            let savepoint = tx.savepoint()?;
            let mut delta = Delta::default();
            let outcome = job.run(&savepoint, self.catalogue, &self.rules, now_ms, &mut delta);
            if outcome.error().is_none() {
                savepoint.commit()?;
                group_delta.merge(delta);
            } else {
                // Rolls back to the savepoint and releases it. If even that fails, the
                // transaction may hold part of the failed job, so the whole group is abandoned.
                savepoint.finish()?;
            }
            outcomes.push(outcome);
        }

        group_delta.flush(&tx)?;
        tx.commit()?;
        Ok(outcomes)
    }
}

/// Returns the wall clock in Unix milliseconds, or 0 if the clock is before 1970.
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
