//! The push loop: one gRPC stream to the hub at a time, carrying the outbox in sequence order.
//!
//! A session says Hello (backlog and the oldest pending sequence number), learns from Welcome
//! the hub's last committed sequence for this agent, settles everything up to it, and then keeps
//! up to `window` batches in flight. A row leaves the outbox only when an Ack (or a Welcome)
//! says the hub committed it, stored or rejected. Any failure ends the session; the loop
//! reconnects after an exponential backoff with jitter and a cap, forever, so nothing is lost
//! and a replay after a crash changes nothing at the hub. A hub that stops answering is noticed
//! by HTTP/2 keepalive pings and by `ack_timeout`, the maximum wait for Welcome or for the
//! oldest batch's Ack. A stalled session is dropped and a new one opened. Failures are logged
//! five times, then once a minute with the count of those left out ([`LogLimiter`]). A hub that
//! ends the stream for one of its limits is reported with the status it sent. The hub's rate
//! limit does not end the stream: the hub holds the next batch, and the Acks slow down.
//!
//! Order and fairness. Records go out in strict sequence order, because the hub takes every
//! sequence number at or below its watermark for a replay: a newer record sent before an older
//! one would make the hub skip the older one. Fresh records cannot starve behind a backlog:
//! the loop reads whatever is pending as soon as a window slot is free, without waiting to fill
//! a batch, so a record ingested now waits only for the records ahead of it, that is at most
//! backlog / drain rate. The drain rate (about 35,000 records per second on two cores in
//! BENCHMARKS.md, or the hub's per-agent limit, 2,000 by default) is far above what a province's
//! one-stop systems produce, so any backlog shrinks. An intake faster than the drain is held
//! back by the outbox limits (HTTP 503, files left in place) instead of growing the wait without
//! bound.
//!
//! When the outbox is idle, the pages freed by settled rows are given back to the file system a
//! chunk at a time ([`Outbox::reclaim_space`]).

use crate::config::Config;
use crate::log_limit::{DEFAULT_BURST, DEFAULT_PERIOD, LogLimiter};
use crate::outbox::{Outbox, OutboxError};
use crate::reconcile::{ReconcileSettings, Reconciler, Round, RoundStream};
use backon::{BackoffBuilder, ExponentialBuilder};
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::sync_client::SyncClient;
use chiso_proto::v1::{Batch, Hello, PushRequest, Rejection};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Failure of a push session or of the push loop.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The connection or the stream failed; the loop retries.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An error status returned by the hub; the loop retries.
    #[error("hub returned {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The hub broke the protocol; the loop retries.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The hub sent nothing for too long; the loop drops the connection and retries.
    #[error(
        "no {awaited} from the hub within {} ms; the connection is taken as stalled",
        .timeout.as_millis()
    )]
    Stalled {
        /// The message waited for.
        awaited: &'static str,
        /// How long the loop waited.
        timeout: Duration,
    },
    /// The outbox failed; the loop stops because an operator must act.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The hub has committed more than this outbox ever numbered, so the outbox was replaced
    /// or restored from an old copy. Sending would be taken as replays and ignored.
    #[error(
        "the hub has committed sequence {hub_seq} for locality {locality}, but this outbox has only numbered up to {local_seq}; the outbox file was replaced or restored from an older copy. Restore the newest outbox, or ask the hub operator to reset this agent's watermark"
    )]
    SequenceBehindHub {
        /// The agent's locality.
        locality: String,
        /// The hub's watermark.
        hub_seq: u64,
        /// The outbox's highest sequence number.
        local_seq: u64,
    },
    /// The hub holds a watermark for this locality, but this outbox has never been
    /// acknowledged by the hub, so the watermark came from another outbox file. Resuming after
    /// it would settle rows the hub never received.
    #[error(
        "the hub has committed sequence {hub_seq} for locality {locality} from another outbox, and this outbox ({path}) has never been acknowledged by the hub; resuming would drop its rows up to {hub_seq}. Restore the outbox file this agent used before, or move the other agent's outbox here"
    )]
    ForeignWatermark {
        /// The agent's locality.
        locality: String,
        /// The hub's watermark.
        hub_seq: u64,
        /// The outbox file.
        path: String,
    },
    /// The hub bound the stream to another locality than the configured one, because the
    /// certificate names another locality.
    #[error(
        "the hub identified this agent as locality {certificate} from its certificate, but the configuration says locality = {configured}; use the certificate issued for {configured}"
    )]
    LocalityMismatch {
        /// The configured locality.
        configured: String,
        /// The locality in the certificate, as the hub read it.
        certificate: String,
    },
}

impl PushError {
    /// Tells whether the loop should retry after this error rather than stop.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PushError::Transport(_)
                | PushError::Status(_)
                | PushError::Protocol(_)
                | PushError::Stalled { .. }
                | PushError::Outbox(OutboxError::Busy { .. })
        )
    }
}

/// Reason a session ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The outbox was empty and the caller asked to stop then.
    Drained,
    /// Shutdown was requested.
    Shutdown,
}

/// The outbox shared between the push loop and blocking SQLite calls.
pub type SharedOutbox = Arc<Mutex<Outbox>>;

/// Settings of the push loop, derived from [`Config`].
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Hub address.
    pub hub_url: String,
    /// The agent's locality.
    pub locality: String,
    /// Client TLS settings, as read when the settings were built.
    pub tls: ClientTlsConfig,
    /// The files `tls` was read from. When set, each session reads them again, so a renewed
    /// certificate and key are used from the next connection on without a restart.
    pub tls_files: Option<TlsFiles>,
    /// Records per batch.
    pub batch_records: usize,
    /// Batches in flight.
    pub window: usize,
    /// Pause between polls when nothing is pending.
    pub poll_interval: Duration,
    /// Cap of the reconnect backoff.
    pub max_backoff: Duration,
    /// Maximum wait for Welcome or for the oldest batch's Ack.
    pub ack_timeout: Duration,
    /// Stop once the outbox is empty and every batch is acknowledged.
    pub stop_when_drained: bool,
    /// Completeness digests sent when the outbox is idle.
    pub reconcile: ReconcileSettings,
}

impl PushSettings {
    /// Builds the settings, reading the TLS files named by the configuration.
    pub fn from_config(
        config: &Config,
        stop_when_drained: bool,
    ) -> Result<PushSettings, PushError> {
        let tls_files = TlsFiles {
            cert: config.tls.cert.clone(),
            key: config.tls.key.clone(),
            ca: config.tls.ca.clone(),
            server_name: config.server_name(),
        };
        let tls = tls_files.load()?;
        Ok(PushSettings {
            hub_url: config.hub_url.clone(),
            locality: config.locality.clone(),
            tls,
            tls_files: Some(tls_files),
            batch_records: config.push.batch_records,
            window: config.push.window,
            poll_interval: config.push.poll_interval(),
            max_backoff: Duration::from_millis(config.push.max_backoff_ms),
            ack_timeout: Duration::from_millis(config.push.ack_timeout_ms),
            stop_when_drained,
            reconcile: ReconcileSettings::from_config(&config.reconcile),
        })
    }
}

/// The agent's certificate, key and hub CA files, PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The agent's certificate.
    pub cert: std::path::PathBuf,
    /// The agent's private key.
    pub key: std::path::PathBuf,
    /// The CA that signed the hub's certificate.
    pub ca: std::path::PathBuf,
    /// Name the hub's certificate must carry.
    pub server_name: String,
}

impl TlsFiles {
    /// Reads the files into client TLS settings.
    pub fn load(&self) -> Result<ClientTlsConfig, PushError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| PushError::TlsFile {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?))
            .domain_name(self.server_name.clone()))
    }
}

impl PushSettings {
    /// Returns the TLS settings for a new session: the files read again when they are known,
    /// else (or when they cannot be read now) the settings read at start.
    pub fn session_tls(&self) -> ClientTlsConfig {
        let Some(files) = &self.tls_files else {
            return self.tls.clone();
        };
        files.load().unwrap_or_else(|error| {
            tracing::warn!(
                locality = %self.locality,
                %error,
                "cannot read the TLS files again; using the ones read at start"
            );
            self.tls.clone()
        })
    }
}

/// Opens a TLS channel to the hub.
pub async fn connect(hub_url: &str, tls: ClientTlsConfig) -> Result<Channel, PushError> {
    let endpoint = Endpoint::from_shared(hub_url.to_string())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    Ok(endpoint.connect().await?)
}

/// Runs sessions until shutdown, or until drained when asked, reconnecting with backoff.
pub async fn run(
    outbox: SharedOutbox,
    settings: PushSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, PushError> {
    let backoff_builder = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(settings.max_backoff)
        .with_jitter()
        .without_max_times();
    let mut backoff = backoff_builder.build();
    let mut attempt: u64 = 0;
    let mut log_limit = LogLimiter::new(DEFAULT_BURST, DEFAULT_PERIOD);

    loop {
        let progress_before = settled_total(&outbox);
        match session(&outbox, &settings, &mut shutdown).await {
            Ok(end) => return Ok(end),
            Err(error) if error.is_retryable() => {
                if settled_total(&outbox) != progress_before {
                    backoff = backoff_builder.build();
                    attempt = 0;
                }
                attempt += 1;
                let delay = backoff.next().unwrap_or(settings.max_backoff);
                if let Some(left_out) = log_limit.admit() {
                    tracing::warn!(
                        locality = %settings.locality,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        left_out,
                        %error,
                        "push session failed, reconnecting"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(SessionEnd::Shutdown),
                }
            }
            Err(error) => {
                tracing::error!(locality = %settings.locality, %error, "push loop stopped");
                return Err(error);
            }
        }
    }
}

fn settled_total(outbox: &SharedOutbox) -> u64 {
    outbox
        .lock()
        .ok()
        .and_then(|outbox| outbox.stats().ok())
        .map_or(0, |stats| stats.last_seq.saturating_sub(stats.backlog))
}

async fn blocking<T: Send + 'static>(
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

async fn settle(
    outbox: &SharedOutbox,
    locality: &str,
    up_to_seq: u64,
    rejections: Vec<Rejection>,
) -> Result<(), PushError> {
    for rejection in &rejections {
        tracing::warn!(
            locality,
            seq = rejection.seq,
            key = %rejection.key,
            field = %rejection.field,
            reason = %rejection.message,
            "hub rejected a record; kept in the rejected table"
        );
    }
    let summary = blocking(outbox, move |outbox| outbox.settle(up_to_seq, &rejections)).await?;
    tracing::debug!(
        locality,
        up_to_seq,
        deleted = summary.deleted,
        rejected = summary.rejected,
        "settled"
    );
    Ok(())
}

async fn session(
    outbox: &SharedOutbox,
    settings: &PushSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<SessionEnd, PushError> {
    let locality = settings.locality.as_str();
    let channel = connect(&settings.hub_url, settings.session_tls()).await?;
    let mut client = SyncClient::new(channel);

    let stats = blocking(outbox, |outbox| outbox.stats()).await?;
    let (sender, receiver) = mpsc::channel::<PushRequest>(settings.window + 1);
    let hello = Hello {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        backlog: stats.backlog,
        oldest_pending_seq: stats.oldest_pending_seq.unwrap_or(0),
        agent_time_unix_ms: chrono::Utc::now().timestamp_millis(),
    };
    send(&sender, RequestMsg::Hello(hello)).await?;
    let stalled = |awaited| PushError::Stalled {
        awaited,
        timeout: settings.ack_timeout,
    };
    let mut inbound = tokio::time::timeout(
        settings.ack_timeout,
        client.push(ReceiverStream::new(receiver)),
    )
    .await
    .map_err(|_| stalled("response to the push request"))??
    .into_inner();

    let first = tokio::time::timeout(settings.ack_timeout, inbound.message())
        .await
        .map_err(|_| stalled("Welcome"))??;
    let welcome = match first.and_then(|response| response.msg) {
        Some(ResponseMsg::Welcome(welcome)) => welcome,
        other => {
            return Err(PushError::Protocol(format!(
                "expected Welcome, got {other:?}"
            )));
        }
    };
    if welcome.locality != locality {
        return Err(PushError::LocalityMismatch {
            configured: locality.to_string(),
            certificate: welcome.locality,
        });
    }
    check_outbox_linked(outbox, locality, welcome.last_committed_seq).await?;
    if welcome.last_committed_seq > stats.last_seq {
        return Err(PushError::SequenceBehindHub {
            locality: locality.to_string(),
            hub_seq: welcome.last_committed_seq,
            local_seq: stats.last_seq,
        });
    }
    tracing::info!(
        locality,
        hub_seq = welcome.last_committed_seq,
        backlog = stats.backlog,
        "connected to hub"
    );
    settle(
        outbox,
        locality,
        welcome.last_committed_seq,
        welcome.rejections,
    )
    .await?;

    let batch_limit = match welcome.max_batch_records {
        0 => settings.batch_records,
        hub_max => settings.batch_records.min(hub_max as usize),
    };
    // The hub ends a stream with more unacknowledged batches than it announced, so the window is
    // the smaller of the two. A hub that announces 0 sets no window.
    let window = match welcome.max_batches_in_flight {
        0 => settings.window,
        hub_max => settings.window.min(hub_max as usize),
    };
    let mut last_sent = welcome.last_committed_seq;
    let mut next_batch_id: u64 = 1;
    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let mut reconciler = Reconciler::new(&settings.reconcile, welcome.digests_supported);

    loop {
        while in_flight.len() < window {
            let records = blocking(outbox, move |outbox| {
                outbox.pending_batch(last_sent, batch_limit)
            })
            .await?;
            let Some(last) = records.last() else { break };
            last_sent = last.seq;
            let batch = Batch {
                batch_id: next_batch_id,
                records,
            };
            in_flight.push_back(next_batch_id);
            next_batch_id += 1;
            if send(&sender, RequestMsg::Batch(batch)).await.is_err() {
                return Err(closed_reason(&mut inbound, settings.ack_timeout).await);
            }
        }

        if in_flight.is_empty() && reconciler.is_due() {
            let stream = RoundStream {
                sender: &sender,
                inbound: &mut inbound,
                timeout: settings.ack_timeout,
            };
            match reconciler
                .run_round(outbox, stream, locality, shutdown)
                .await?
            {
                Round::Done => continue,
                Round::Shutdown => return Ok(SessionEnd::Shutdown),
                Round::Skipped => {}
            }
        }
        if in_flight.is_empty() {
            reclaim_space(outbox, locality, RECLAIM_PAGES_PER_POLL).await;
            if settings.stop_when_drained {
                let backlog = blocking(outbox, |outbox| outbox.stats()).await?.backlog;
                if backlog == 0 {
                    reclaim_space(outbox, locality, u64::MAX).await;
                    tracing::info!(locality, "outbox drained");
                    return Ok(SessionEnd::Drained);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.poll_interval) => continue,
                _ = shutdown.changed() => return Ok(SessionEnd::Shutdown),
            }
        }

        let response = tokio::select! {
            response = tokio::time::timeout(settings.ack_timeout, inbound.message()) => {
                response.map_err(|_| stalled("Ack"))??
            }
            _ = shutdown.changed() => return Ok(SessionEnd::Shutdown),
        };
        let ack = match response.and_then(|response| response.msg) {
            Some(ResponseMsg::Ack(ack)) => ack,
            None => return Err(PushError::Protocol("hub closed the stream".into())),
            Some(other) => return Err(PushError::Protocol(format!("expected Ack, got {other:?}"))),
        };
        if in_flight.pop_front() != Some(ack.batch_id) {
            return Err(PushError::Protocol(format!(
                "Ack for batch {} arrived out of order",
                ack.batch_id
            )));
        }
        tracing::debug!(
            locality,
            batch_id = ack.batch_id,
            committed_seq = ack.committed_seq,
            stored = ack.stored,
            unchanged = ack.unchanged,
            rejected = ack.rejections.len(),
            "batch acknowledged"
        );
        settle(outbox, locality, ack.committed_seq, ack.rejections).await?;
        let now = chrono::Utc::now().to_rfc3339();
        blocking(outbox, move |outbox| outbox.set_meta("last_ack", &now)).await?;
    }
}

/// Free pages given back per idle poll: 8 MiB of 4 KiB pages, so a poll stays short.
const RECLAIM_PAGES_PER_POLL: u64 = 2048;

/// Gives free outbox pages back, up to `max_pages`. A failure is logged and left for the next
/// idle poll: the space stays usable by the outbox, so nothing depends on it.
async fn reclaim_space(outbox: &SharedOutbox, locality: &str, max_pages: u64) {
    let result = blocking(outbox, move |outbox| {
        let mut freed = 0;
        while freed < max_pages {
            match outbox.reclaim_space((max_pages - freed).min(RECLAIM_PAGES_PER_POLL))? {
                0 => break,
                step => freed += step,
            }
        }
        Ok(freed)
    })
    .await;
    match result {
        Ok(0) => {}
        Ok(freed) => tracing::info!(locality, freed_pages = freed, "outbox space given back"),
        Err(error) => tracing::warn!(locality, %error, "could not give outbox space back"),
    }
}

/// Explains why the hub closed the request stream: the status it ended the response with, such
/// as RESOURCE_EXHAUSTED from one of its limits, when it arrives within `wait`. Acks read on the
/// way are dropped; the next session's Welcome settles what they covered.
async fn closed_reason(
    inbound: &mut tonic::Streaming<chiso_proto::v1::PushResponse>,
    wait: Duration,
) -> PushError {
    let status = tokio::time::timeout(wait, async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await;
    match status {
        Ok(Some(status)) => PushError::Status(status),
        _ => PushError::Protocol("the hub closed the request stream".into()),
    }
}

/// Outbox meta key set once the hub has acknowledged this outbox.
const LINKED_META: &str = "hub_linked";

/// Refuses a hub watermark that this outbox cannot have produced: a nonzero watermark seen by
/// an outbox the hub never acknowledged belongs to another outbox file of the same locality.
async fn check_outbox_linked(
    outbox: &SharedOutbox,
    locality: &str,
    hub_seq: u64,
) -> Result<(), PushError> {
    let (linked, path) = blocking(outbox, |outbox| {
        Ok((
            outbox.meta(LINKED_META)?.is_some(),
            outbox.path().display().to_string(),
        ))
    })
    .await?;
    if linked {
        return Ok(());
    }
    if hub_seq > 0 {
        return Err(PushError::ForeignWatermark {
            locality: locality.to_string(),
            hub_seq,
            path,
        });
    }
    blocking(outbox, |outbox| outbox.set_meta(LINKED_META, "1")).await
}

async fn send(sender: &mpsc::Sender<PushRequest>, msg: RequestMsg) -> Result<(), PushError> {
    sender
        .send(PushRequest { msg: Some(msg) })
        .await
        .map_err(|_| PushError::Protocol("the request stream closed".into()))
}
