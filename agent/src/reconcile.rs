//! Completeness rounds of the push loop. When nothing is in flight and the outbox is empty, the
//! agent sends the hub a digest of its ledger per unit and Vietnam day of receipt (see
//! `chiso_proto::digest`). The digest covers the last `window_days` days completely, plus any
//! older unit-day that this agent or the hub still has an open gap for. The hub returns the
//! unit-days whose count or hash differ, listing its own keys and versions. For each one the
//! agent queues again, from the retained payloads, the records the hub lacks or holds at an older
//! version. A record past retention is listed for re-export and logged at error level.
//!
//! A session runs a round as soon as its backlog is drained, and then every `interval`. A round
//! that queued records again, or that the hub asked to widen, is followed by another round once
//! those records are acknowledged, at most [`MAX_FOLLOW_UPS`] times in a row, so a gap is found,
//! filled and confirmed closed in one session. Rounds change only `retained`, `gap_days`,
//! `reexport` and the outbox, never the ledger's versions, so they cannot create a new version.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiso_proto::digest::day_to_number;
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::{
    DigestBatch, GapReport, PushRequest, PushResponse, UnitDayDigest, UnitDayGap,
};
use chiso_proto::vntime::vietnam_day;
use tokio::sync::{mpsc, watch};
use tonic::Streaming;

use crate::config::ReconcileConfig;
use crate::outbox::{GapDay, LedgerKey, LocalDigest, Outbox, OutboxError};
use crate::push::{PushError, SharedOutbox};

/// Most rounds run back to back before the loop waits for the interval again.
pub const MAX_FOLLOW_UPS: u32 = 3;

/// Most gaps logged one by one per round; the rest are only counted in the round's summary.
const MAX_LOGGED_GAPS: usize = 10;

/// A unit code and a `yyyymmdd` day.
type UnitDayKey = (String, u32);

/// Settings of completeness rounds, from [`ReconcileConfig`].
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// Send digests when the hub supports them.
    pub enabled: bool,
    /// Pause between rounds within a session.
    pub interval: Duration,
    /// Recent days of receipt, today included, that each digest covers.
    pub window_days: u32,
    /// How long acknowledged payloads are kept for resending.
    pub retention: Duration,
}

impl ReconcileSettings {
    /// Converts the configuration's units.
    pub fn from_config(config: &ReconcileConfig) -> ReconcileSettings {
        ReconcileSettings {
            enabled: config.enabled,
            interval: Duration::from_secs(config.interval_s),
            window_days: config.window_days,
            retention: Duration::from_secs(u64::from(config.retention_days) * 86_400),
        }
    }
}

/// The outcome of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The digest was compared and the report applied.
    Done,
    /// Records were pending, so no digest was sent.
    Skipped,
    /// Shutdown was requested while the hub was comparing.
    Shutdown,
}

/// The stream a round runs on, and how long it waits for the hub's report.
pub struct RoundStream<'a> {
    /// Requests to the hub.
    pub sender: &'a mpsc::Sender<PushRequest>,
    /// Responses from the hub.
    pub inbound: &'a mut Streaming<PushResponse>,
    /// Maximum wait for the gap report.
    pub timeout: Duration,
}

/// Counts of one applied gap report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RoundOutcome {
    gaps: usize,
    requeued: usize,
    reexport: usize,
    closed: usize,
    keys_omitted: bool,
}

/// The schedule of one session's rounds.
pub struct Reconciler {
    settings: ReconcileSettings,
    active: bool,
    next_due: Option<Instant>,
    follow_ups: u32,
    requested_days: BTreeSet<UnitDayKey>,
    next_digest_id: u64,
}

impl Reconciler {
    /// Starts a session's schedule: due at once when enabled and the hub compares digests.
    pub fn new(settings: &ReconcileSettings, hub_supports_digests: bool) -> Reconciler {
        Reconciler {
            settings: settings.clone(),
            active: settings.enabled && hub_supports_digests,
            next_due: None,
            follow_ups: 0,
            requested_days: BTreeSet::new(),
            next_digest_id: 1,
        }
    }

    /// Tells whether a round should run at the next idle moment.
    pub fn is_due(&self) -> bool {
        self.active && self.next_due.is_none_or(|due| Instant::now() >= due)
    }

    /// Runs one round: prune, digest, compare at the hub, queue again what it lacks.
    ///
    /// Call it only when no batch is in flight, so the next response is the gap report.
    pub async fn run_round(
        &mut self,
        outbox: &SharedOutbox,
        stream: RoundStream<'_>,
        locality: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Round, PushError> {
        let (first_day, last_day) = window(self.settings.window_days, now_unix_seconds());
        let retention_ms = i64::try_from(self.settings.retention.as_millis()).unwrap_or(i64::MAX);
        let acked_before_ms = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(retention_ms);
        let requested: Vec<UnitDayKey> = self.requested_days.iter().cloned().collect();
        let digests = with_outbox(outbox, move |outbox| {
            outbox.prune_retained(acked_before_ms)?;
            let mut extra = requested;
            extra.extend(
                outbox
                    .open_gap_days()?
                    .into_iter()
                    .map(|gap| (gap.unit_code, gap.day)),
            );
            outbox.day_digests(first_day, last_day, &extra)
        })
        .await?;
        let Some(digests) = digests else {
            return Ok(Round::Skipped);
        };

        let digest_id = self.next_digest_id;
        self.next_digest_id += 1;
        let compared: Vec<UnitDayKey> = digests
            .iter()
            .map(|digest| (digest.unit_code.clone(), digest.day))
            .collect();
        let batch = DigestBatch {
            digest_id,
            first_day,
            last_day,
            days: digests.into_iter().map(to_proto).collect(),
        };
        stream
            .sender
            .send(PushRequest {
                msg: Some(RequestMsg::Digest(batch)),
            })
            .await
            .map_err(|_| PushError::Protocol("the request stream closed".into()))?;

        let report = tokio::select! {
            report = receive_report(stream.inbound, digest_id, stream.timeout) => report?,
            _ = shutdown.changed() => return Ok(Round::Shutdown),
        };
        self.requested_days = report
            .open_days
            .iter()
            .map(|day| (day.unit_code.clone(), day.day))
            .collect();
        let window = (first_day, last_day);
        let outcome = with_outbox(outbox, move |outbox| {
            apply_report(outbox, &report, window, &compared)
        })
        .await?;

        tracing::info!(
            locality,
            digest_id,
            first_day,
            last_day,
            gaps = outcome.gaps,
            requeued = outcome.requeued,
            reexport = outcome.reexport,
            closed = outcome.closed,
            "completeness round finished"
        );
        self.schedule(&outcome);
        Ok(Round::Done)
    }

    /// Sets the next round: at once to confirm a resend or to cover the days the hub requested,
    /// else after the interval.
    fn schedule(&mut self, outcome: &RoundOutcome) {
        let more = outcome.requeued > 0 || outcome.keys_omitted || !self.requested_days.is_empty();
        if more && self.follow_ups < MAX_FOLLOW_UPS {
            self.follow_ups += 1;
            self.next_due = None;
        } else {
            self.follow_ups = 0;
            self.next_due = Some(Instant::now() + self.settings.interval);
        }
    }
}

/// Returns the window's first and last day as `yyyymmdd`: the last `days` Vietnam days up to the
/// day of `now`.
fn window(days: u32, now: i64) -> (u32, u32) {
    let today = vietnam_day(now);
    let first = today
        .checked_sub_days(chrono::Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(today);
    (day_to_number(first), day_to_number(today))
}

fn now_unix_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

fn to_proto(digest: LocalDigest) -> UnitDayDigest {
    UnitDayDigest {
        unit_code: digest.unit_code,
        day: digest.day,
        count: digest.digest.count,
        hash: digest.digest.hash,
        rejected: digest.rejected,
    }
}

async fn receive_report(
    inbound: &mut Streaming<PushResponse>,
    digest_id: u64,
    timeout: Duration,
) -> Result<GapReport, PushError> {
    let response = tokio::time::timeout(timeout, inbound.message())
        .await
        .map_err(|_| PushError::Stalled {
            awaited: "GapReport",
            timeout,
        })??;
    match response.and_then(|response| response.msg) {
        Some(ResponseMsg::Gaps(report)) if report.digest_id == digest_id => Ok(report),
        Some(ResponseMsg::Gaps(report)) => Err(PushError::Protocol(format!(
            "GapReport for digest {} arrived, expected digest {digest_id}",
            report.digest_id
        ))),
        None => Err(PushError::Protocol("hub closed the stream".into())),
        Some(other) => Err(PushError::Protocol(format!(
            "expected GapReport, got {other:?}"
        ))),
    }
}

/// Runs blocking outbox work on the blocking thread pool.
async fn with_outbox<T: Send + 'static>(
    outbox: &SharedOutbox,
    work: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, PushError> {
    let outbox = Arc::clone(outbox);
    let result = tokio::task::spawn_blocking(move || {
        let mut guard = outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut guard)
    })
    .await
    .map_err(|join| PushError::Protocol(format!("outbox task failed: {join}")))?;
    Ok(result?)
}

/// Queues again what each gap lacks, records the gaps, and closes the agent's open gaps that the
/// digest covered and the hub no longer reports.
fn apply_report(
    outbox: &mut Outbox,
    report: &GapReport,
    (first_day, last_day): (u32, u32),
    compared: &[UnitDayKey],
) -> Result<RoundOutcome, OutboxError> {
    let checked_at_ms = chrono::Utc::now().timestamp_millis();
    let mut outcome = RoundOutcome {
        gaps: report.gaps.len(),
        ..RoundOutcome::default()
    };
    for (index, gap) in report.gaps.iter().enumerate() {
        let keys = outbox.day_keys(&gap.unit_code, gap.day)?;
        let plan = plan_resend(&keys, gap);
        let summary = outbox.requeue(&gap.unit_code, gap.day, &plan.resend)?;
        outbox.record_gap_day(&GapDay {
            unit_code: gap.unit_code.clone(),
            day: gap.day,
            agent_count: gap.agent_count,
            hub_count: gap.hub_count,
            resent: (summary.queued + summary.pending) as u64,
            reexport: summary.reexport.len() as u64,
            detected_at_ms: checked_at_ms,
            checked_at_ms,
        })?;
        if index < MAX_LOGGED_GAPS || !summary.reexport.is_empty() {
            log_gap(gap, &plan, summary.queued, summary.reexport.len());
        }
        outcome.requeued += summary.queued;
        outcome.reexport += summary.reexport.len();
        outcome.keys_omitted |= gap.hub_keys_omitted;
    }

    let reported: BTreeSet<UnitDayKey> = report
        .gaps
        .iter()
        .map(|gap| (gap.unit_code.clone(), gap.day))
        .collect();
    let compared: BTreeSet<&UnitDayKey> = compared.iter().collect();
    let closable: Vec<UnitDayKey> = outbox
        .open_gap_days()?
        .into_iter()
        .map(|gap| (gap.unit_code, gap.day))
        .filter(|unit_day| {
            let covered =
                (first_day..=last_day).contains(&unit_day.1) || compared.contains(unit_day);
            covered && !reported.contains(unit_day)
        })
        .collect();
    outcome.closed = outbox.close_gap_days(&closable)?;
    Ok(outcome)
}

fn log_gap(gap: &UnitDayGap, plan: &ResendPlan, queued: usize, reexport: usize) {
    tracing::warn!(
        unit = %gap.unit_code,
        day = gap.day,
        agent_count = gap.agent_count,
        hub_count = gap.hub_count,
        queued,
        hub_only = plan.hub_only,
        "hub lacks records of a unit-day; queued them again"
    );
    if reexport > 0 {
        tracing::error!(
            unit = %gap.unit_code,
            day = gap.day,
            keys = reexport,
            "records the hub lacks are past retention; re-export them from the source and ingest them again (list: chiso-agent gaps)"
        );
    }
}

/// The keys of one unit-day to queue again, and how many hub keys the ledger cannot match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ResendPlan {
    resend: Vec<LedgerKey>,
    /// Hub keys the ledger lacks or has at an older version. Resending cannot fix those.
    hub_only: usize,
}

/// Chooses the keys the hub lacks or stores at an older version. A version the hub rejected is
/// never resent. When the report left the hub's keys out, every key is resent, and the hub counts
/// the ones it already stores as unchanged.
fn plan_resend(keys: &[LedgerKey], gap: &UnitDayGap) -> ResendPlan {
    let hub: HashMap<&str, u64> = gap
        .hub_keys
        .iter()
        .map(|key| (key.key.as_str(), key.version))
        .collect();
    let resend = keys
        .iter()
        .filter(|key| !key.rejected)
        .filter(|key| {
            gap.hub_keys_omitted
                || hub
                    .get(key.key.as_str())
                    .is_none_or(|held| *held < key.version)
        })
        .cloned()
        .collect();

    let ledger: HashMap<&str, u64> = keys
        .iter()
        .map(|key| (key.key.as_str(), key.version))
        .collect();
    let hub_only = gap
        .hub_keys
        .iter()
        .filter(|held| {
            ledger
                .get(held.key.as_str())
                .is_none_or(|version| *version < held.version)
        })
        .count();
    ResendPlan { resend, hub_only }
}

#[cfg(test)]
mod tests {
    use chiso_proto::v1::KeyVersion;

    use super::*;

    fn key(key: &str, version: u64, rejected: bool) -> LedgerKey {
        LedgerKey {
            key: key.to_string(),
            version,
            rejected,
        }
    }

    fn gap(hub_keys: &[(&str, u64)], omitted: bool) -> UnitDayGap {
        UnitDayGap {
            unit_code: "00004".into(),
            day: 20261201,
            hub_keys: hub_keys
                .iter()
                .map(|(key, version)| KeyVersion {
                    key: key.to_string(),
                    version: *version,
                })
                .collect(),
            hub_keys_omitted: omitted,
            ..UnitDayGap::default()
        }
    }

    fn resent(plan: &ResendPlan) -> Vec<&str> {
        plan.resend.iter().map(|key| key.key.as_str()).collect()
    }

    #[test]
    fn plan_resends_missing_and_older() {
        let keys = [key("A", 1, false), key("B", 3, false), key("C", 1, false)];
        let plan = plan_resend(&keys, &gap(&[("A", 1), ("B", 2)], false));
        assert_eq!(resent(&plan), vec!["B", "C"]);
        assert_eq!(plan.hub_only, 0);
    }

    #[test]
    fn plan_skips_rejected_versions() {
        let keys = [key("A", 2, true), key("B", 1, false)];
        let plan = plan_resend(&keys, &gap(&[], false));
        assert_eq!(resent(&plan), vec!["B"]);
    }

    #[test]
    fn plan_counts_hub_only_keys() {
        let keys = [key("A", 1, false)];
        let plan = plan_resend(&keys, &gap(&[("A", 2), ("Z", 1)], false));
        assert!(plan.resend.is_empty(), "the hub holds A at a newer version");
        assert_eq!(plan.hub_only, 2);
    }

    #[test]
    fn plan_resends_all_when_keys_omitted() {
        let keys = [key("A", 1, false), key("B", 1, false), key("C", 1, true)];
        let plan = plan_resend(&keys, &gap(&[], true));
        assert_eq!(resent(&plan), vec!["A", "B"]);
    }

    #[test]
    fn window_ends_today_in_vietnam() {
        // 2026-12-01 18:00 UTC is 2026-12-02 01:00 in Vietnam.
        let now = 1_796_148_000;
        assert_eq!(window(62, now), (20261002, 20261202));
        assert_eq!(window(1, now), (20261202, 20261202));
    }

    fn settings() -> ReconcileSettings {
        ReconcileSettings {
            enabled: true,
            interval: Duration::from_secs(3600),
            window_days: 62,
            retention: Duration::from_secs(35 * 86_400),
        }
    }

    #[test]
    fn reconciler_due_only_when_hub_supports() {
        assert!(Reconciler::new(&settings(), true).is_due());
        assert!(!Reconciler::new(&settings(), false).is_due());
        let disabled = ReconcileSettings {
            enabled: false,
            ..settings()
        };
        assert!(!Reconciler::new(&disabled, true).is_due());
    }

    #[test]
    fn follow_ups_are_bounded() {
        let mut reconciler = Reconciler::new(&settings(), true);
        let resent = RoundOutcome {
            requeued: 1,
            ..RoundOutcome::default()
        };
        for _ in 0..MAX_FOLLOW_UPS {
            reconciler.schedule(&resent);
            assert!(reconciler.is_due(), "a resend is confirmed at once");
        }
        reconciler.schedule(&resent);
        assert!(
            !reconciler.is_due(),
            "after the follow-ups the interval applies"
        );

        reconciler.next_due = None;
        reconciler.schedule(&RoundOutcome::default());
        assert!(!reconciler.is_due(), "a clean round waits for the interval");
    }
}
