//! The hub's per-agent limits, each configured in `[limits]` and each refused with its own gRPC
//! status, so an agent (and its operator) can tell them apart:
//!
//! | limit | where | status |
//! |---|---|---|
//! | `max_message_bytes` | tonic, when a message is decoded | RESOURCE_EXHAUSTED on a push stream, OUT_OF_RANGE (tonic's) on a unary call |
//! | `max_batch_records` | each batch | RESOURCE_EXHAUSTED |
//! | `max_batches_in_flight` | batches of one stream not yet acknowledged | RESOURCE_EXHAUSTED |
//! | `records_per_second`, `burst_records` | records per agent locality, all its streams together | the batch is held until the rate allows it; RESOURCE_EXHAUSTED when that takes over `max_rate_hold_ms` |
//! | `max_streams_per_agent` | open push streams per agent locality | RESOURCE_EXHAUSTED |
//! | `max_string_bytes` | strings outside records (agent version, request fields) | INVALID_ARGUMENT |
//! | `max_connections`, `handshake_timeout_ms` | the accept loop (`tls::acceptor`) | the connection is closed |
//!
//! A refused batch is not applied, so the agent resends it after it reconnects. Record fields
//! have their own rules in `chiso_proto::validate`, which reject one record, not the stream.
//!
//! The rate limit applies backpressure rather than ending the stream. A batch above the
//! agent's rate is held before it is queued, and the stream's reader reads nothing else
//! meanwhile. The agent's Acks then come at the allowed rate, its window fills and it waits, and
//! HTTP/2 flow control stops a client that ignores its window. A valid configuration lets a
//! batch of a lone stream wait `max_batch_records / records_per_second` seconds, so it is never
//! refused for the rate. Two streams of one agent sharing its budget, or a digest of more
//! unit-days than `max_batch_records`, can be. [`AgentLimits::rate_holds`] counts the holds and
//! refusals, and holds are logged at most [`HOLD_LOG_LINES_PER_MINUTE`] times a minute.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tonic::Status;

use crate::config::Limits;

/// Most log lines a minute about batches held for the rate limit.
pub const HOLD_LOG_LINES_PER_MINUTE: u32 = 6;

/// Shortest pause of a hold between two checks of the rate budget, so that a wait the limiter
/// rounds down to zero does not spin.
const MIN_HOLD_STEP: Duration = Duration::from_millis(1);

/// The limits of all agents, shared by every stream.
#[derive(Debug)]
pub struct AgentLimits {
    settings: Limits,
    records: DefaultKeyedRateLimiter<String>,
    streams: Mutex<HashMap<String, u32>>,
    log: LogBudget,
    hold_log: LogBudget,
    holds: HoldCounters,
}

/// Counts of rate-limit holds since the hub started, all agents together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHolds {
    /// Batches and digests held until the agent's rate allowed them.
    pub held: u64,
    /// Total time they were held, in milliseconds.
    pub held_ms: u64,
    /// Batches and digests refused because the hold would have passed `max_rate_hold_ms`.
    pub refused: u64,
}

#[derive(Debug, Default)]
struct HoldCounters {
    held: AtomicU64,
    held_ms: AtomicU64,
    refused: AtomicU64,
}

/// One open push stream, counted under `max_streams_per_agent` until dropped.
#[derive(Debug)]
pub struct StreamSlot {
    limits: Arc<AgentLimits>,
    locality: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.limits.lock_streams();
        if let Some(open) = streams.get_mut(&self.locality) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.locality);
            }
        }
    }
}

impl AgentLimits {
    /// Builds the limiters from validated settings.
    pub fn new(settings: &Limits) -> Arc<AgentLimits> {
        let rate = NonZeroU32::new(settings.records_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst_records).unwrap_or(rate);
        Arc::new(AgentLimits {
            settings: settings.clone(),
            records: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            streams: Mutex::new(HashMap::new()),
            log: LogBudget::per_minute(20),
            hold_log: LogBudget::per_minute(HOLD_LOG_LINES_PER_MINUTE),
            holds: HoldCounters::default(),
        })
    }

    /// Returns the configured settings.
    pub fn settings(&self) -> &Limits {
        &self.settings
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new push stream of `locality`, or refuses it when the agent has
    /// `max_streams_per_agent` open.
    pub fn open_stream(self: &Arc<Self>, locality: &str) -> Result<StreamSlot, Status> {
        let max = self.settings.max_streams_per_agent;
        let mut streams = self.lock_streams();
        let open = streams.entry(locality.to_string()).or_insert(0);
        if *open >= max {
            self.log_refusal(locality, "max_streams_per_agent");
            return Err(Status::resource_exhausted(format!(
                "locality {locality} already has {open} open push streams, the maximum (limits.max_streams_per_agent = {max}); close the other stream or wait until the hub notices it ended"
            )));
        }
        *open += 1;
        Ok(StreamSlot {
            limits: Arc::clone(self),
            locality: locality.to_string(),
        })
    }

    /// Refuses a batch larger than `max_batch_records`.
    pub fn check_batch_size(
        &self,
        locality: &str,
        batch_id: u64,
        records: usize,
    ) -> Result<(), Status> {
        let max = self.settings.max_batch_records;
        if records > max as usize {
            self.log_refusal(locality, "max_batch_records");
            return Err(Status::resource_exhausted(format!(
                "batch {batch_id} has {records} records; the maximum is {max} (limits.max_batch_records, announced in Welcome)"
            )));
        }
        Ok(())
    }

    /// Waits until the locality's rate budget has `records`, then takes them. Message `id` (a
    /// batch or digest id) is refused with RESOURCE_EXHAUSTED as soon as the hold would pass
    /// `max_rate_hold_ms` in total, or at once when it is larger than the burst. A refusal takes
    /// nothing from the budget. An empty message costs one record, so that empty batches cannot
    /// flood the store.
    pub async fn hold_for_rate(
        &self,
        locality: &str,
        id: u64,
        records: usize,
    ) -> Result<(), Status> {
        let count = u32::try_from(records.max(1)).unwrap_or(u32::MAX);
        let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        let key = locality.to_string();
        let max_hold = Duration::from_millis(self.settings.max_rate_hold_ms);
        let started = Instant::now();
        let mut held = false;
        loop {
            let wait = match self.records.check_key_n(&key, count) {
                Ok(Ok(())) => break,
                Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
                // More than the burst at once. Validation keeps burst_records at or above
                // max_batch_records, so only a digest of many unit-days can be.
                Err(_) => return Err(self.refuse_rate(locality, id, records, None)),
            };
            let total = started.elapsed() + wait;
            if total > max_hold {
                return Err(self.refuse_rate(locality, id, records, Some(total)));
            }
            held = true;
            tokio::time::sleep(wait.max(MIN_HOLD_STEP)).await;
        }
        if held {
            self.count_hold(locality, id, records, started.elapsed());
        }
        Ok(())
    }

    fn count_hold(&self, locality: &str, id: u64, records: usize, held: Duration) {
        let held_ms = u64::try_from(held.as_millis()).unwrap_or(u64::MAX);
        self.holds.held.fetch_add(1, Ordering::Relaxed);
        self.holds.held_ms.fetch_add(held_ms, Ordering::Relaxed);
        if let Some(suppressed) = self.hold_log.admit() {
            tracing::info!(
                locality,
                id,
                records,
                held_ms,
                suppressed,
                records_per_second = self.settings.records_per_second,
                "message held by the rate limit"
            );
        }
    }

    fn refuse_rate(
        &self,
        locality: &str,
        id: u64,
        records: usize,
        wait: Option<Duration>,
    ) -> Status {
        self.holds.refused.fetch_add(1, Ordering::Relaxed);
        self.log_refusal(locality, "records_per_second");
        let rate = self.settings.records_per_second;
        let burst = self.settings.burst_records;
        let max_hold_ms = self.settings.max_rate_hold_ms;
        let reason = match wait {
            Some(wait) => format!(
                "admitting its {records} records needs a wait of {} ms, more than limits.max_rate_hold_ms = {max_hold_ms}; send smaller batches, or ask the hub operator to raise the limits",
                wait.as_millis()
            ),
            None => format!(
                "its {records} records are more than the burst of {burst}; send smaller batches"
            ),
        };
        Status::resource_exhausted(format!(
            "message {id} of locality {locality} refused by the rate limit of {rate} records per second: {reason}"
        ))
    }

    /// Returns the counts of rate-limit holds since the hub started.
    pub fn rate_holds(&self) -> RateHolds {
        RateHolds {
            held: self.holds.held.load(Ordering::Relaxed),
            held_ms: self.holds.held_ms.load(Ordering::Relaxed),
            refused: self.holds.refused.load(Ordering::Relaxed),
        }
    }

    /// Creates the in-flight window of one push stream.
    pub fn batch_window(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(self.settings.max_batches_in_flight as usize))
    }

    /// Returns the message that refuses a batch beyond `max_batches_in_flight`.
    pub fn too_many_in_flight(&self, locality: &str, batch_id: u64) -> Status {
        let max = self.settings.max_batches_in_flight;
        self.log_refusal(locality, "max_batches_in_flight");
        Status::resource_exhausted(format!(
            "batch {batch_id} arrived while {max} batches of this stream were unacknowledged, the maximum (limits.max_batches_in_flight, announced in Welcome); wait for an Ack before sending more"
        ))
    }

    /// Refuses a string field outside records that is longer than `max_string_bytes`.
    pub fn check_string(&self, field: &'static str, value: &str) -> Result<(), Status> {
        let max = self.settings.max_string_bytes;
        if value.len() > max {
            return Err(Status::invalid_argument(format!(
                "{field} is {} bytes long; the maximum is {max} (limits.max_string_bytes)",
                value.len()
            )));
        }
        Ok(())
    }

    fn log_refusal(&self, locality: &str, limit: &'static str) {
        if let Some(suppressed) = self.log.admit() {
            tracing::warn!(locality, limit, suppressed, "request refused by a limit");
        }
    }
}

/// A budget of log lines for a repeated event, so that a flood of failures cannot flood the log.
#[derive(Debug)]
pub struct LogBudget {
    limiter: DefaultDirectRateLimiter,
    suppressed: AtomicU64,
}

impl LogBudget {
    /// Allows `lines` log lines a minute, in a burst of as many.
    pub fn per_minute(lines: u32) -> LogBudget {
        let lines = NonZeroU32::new(lines).unwrap_or(NonZeroU32::MIN);
        LogBudget {
            limiter: RateLimiter::direct(Quota::per_minute(lines)),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Returns `Some(events suppressed since the last logged one)` when a line may be logged now.
    pub fn admit(&self) -> Option<u64> {
        if self.limiter.check().is_ok() {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(edit: impl FnOnce(&mut Limits)) -> Arc<AgentLimits> {
        let mut settings = Limits::default();
        edit(&mut settings);
        AgentLimits::new(&settings)
    }

    #[test]
    fn streams_counted_per_locality() {
        let limits = limits(|l| l.max_streams_per_agent = 1);
        let first = limits.open_stream("01").unwrap();
        let refused = limits.open_stream("01").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("max_streams_per_agent"),
            "{refused:?}"
        );
        let other = limits.open_stream("79");
        assert!(other.is_ok(), "another locality has its own count");
        drop(first);
        assert!(
            limits.open_stream("01").is_ok(),
            "a closed stream frees its slot"
        );
    }

    #[tokio::test]
    async fn rate_limit_holds_then_admits() {
        let limits = limits(|l| {
            l.max_batch_records = 100;
            l.records_per_second = 1_000;
            l.burst_records = 100;
        });
        limits.hold_for_rate("01", 1, 100).await.unwrap();
        assert_eq!(
            limits.rate_holds(),
            RateHolds::default(),
            "within the burst"
        );

        // The burst is spent, so the second batch waits about 100 ms for its budget.
        limits.hold_for_rate("01", 2, 100).await.unwrap();
        let holds = limits.rate_holds();
        assert_eq!(holds.held, 1);
        assert_eq!(holds.refused, 0);
        limits.hold_for_rate("79", 1, 100).await.unwrap();
        assert_eq!(
            limits.rate_holds().held,
            1,
            "each locality has its own budget"
        );
    }

    #[tokio::test]
    async fn rate_hold_beyond_max_refused() {
        let limits = limits(|l| {
            l.max_batch_records = 100;
            l.records_per_second = 1;
            l.burst_records = 150;
            l.max_rate_hold_ms = 2_000;
        });
        limits.hold_for_rate("01", 1, 100).await.unwrap();

        // 100 more records at 1 a second would need a hold of about 50 s.
        let refused = limits.hold_for_rate("01", 2, 100).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("max_rate_hold_ms"),
            "{refused:?}"
        );
        assert!(refused.message().contains("message 2"), "{refused:?}");
        let above_burst = limits.hold_for_rate("79", 1, 151).await.unwrap_err();
        assert_eq!(above_burst.code(), tonic::Code::ResourceExhausted);
        assert!(above_burst.message().contains("burst"), "{above_burst:?}");
        let holds = limits.rate_holds();
        assert_eq!(holds.refused, 2);
        assert_eq!(holds.held, 0, "a refused message is not held");
        assert!(
            limits.hold_for_rate("79", 2, 100).await.is_ok(),
            "a refusal takes nothing from the budget"
        );
    }

    #[test]
    fn batch_size_and_strings_checked() {
        let limits = limits(|l| {
            l.max_batch_records = 10;
            l.max_string_bytes = 16;
        });
        assert!(limits.check_batch_size("01", 1, 10).is_ok());
        let big = limits.check_batch_size("01", 2, 11).unwrap_err();
        assert_eq!(big.code(), tonic::Code::ResourceExhausted);
        assert!(limits.check_string("agent_version", "0.1.0").is_ok());
        let long = limits
            .check_string("agent_version", &"v".repeat(17))
            .unwrap_err();
        assert_eq!(long.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn log_budget_counts_suppressed() {
        let budget = LogBudget::per_minute(2);
        assert_eq!(budget.admit(), Some(0));
        assert_eq!(budget.admit(), Some(0));
        assert_eq!(budget.admit(), None);
        assert_eq!(budget.admit(), None);
        assert_eq!(budget.suppressed.load(Ordering::Relaxed), 2);
    }
}
