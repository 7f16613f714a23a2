//! One push stream, from Hello to its end, with its batches pipelined.
//!
//! A reader takes messages off the stream and queues each batch in the store as it arrives, in
//! the stream's order, so the store commits them in sequence order. A responder waits for each
//! queued message's result in the same order and sends the Ack (or GapReport). A message takes
//! one place of the stream's window from arrival until its reply is ready. The place is freed
//! just before the reply is sent, so an agent that sends its next batch on receiving the reply
//! always finds it free. A message that finds the window full ends the stream with
//! RESOURCE_EXHAUSTED. Before a batch is queued, the hub checks again that the client
//! certificate is neither revoked nor expired, so a revocation reaches a stream that was opened
//! before it. A batch above the agent's rate is then held until the rate allows it (see
//! `limits`), and the reader reads nothing else meanwhile. A digest waits until every earlier
//! message has its reply ready, that is committed, and is compared before the reader takes the
//! next message, so it covers exactly the batches sent before it. When the reader stops, by the
//! agent closing or by an error, the responder still sends the replies of everything already
//! queued, and only then does an error status end the stream. When the hub shuts down, the
//! reader stops with UNAVAILABLE, also during a hold, so open streams end and the server's
//! graceful shutdown does not wait for agents to hang up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::{Batch, DigestBatch, Hello, PushRequest, PushResponse, Welcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tonic::{Code, Status, Streaming};

use crate::auth::PeerCertificate;
use crate::limits::AgentLimits;
use crate::service::status_from_store;
use crate::store::StoreHandle;
use crate::tls::TlsReloader;

/// Sender of the responses of one stream.
pub(crate) type Replies = mpsc::Sender<Result<PushResponse, Status>>;

type PendingReply = Pin<Box<dyn Future<Output = Result<ResponseMsg, Status>> + Send>>;

/// A queued message: its future reply and its place in the window.
type Pending = (PendingReply, OwnedSemaphorePermit);

/// Everything one push stream needs.
pub(crate) struct PushContext {
    pub(crate) store: StoreHandle,
    pub(crate) limits: Arc<AgentLimits>,
    pub(crate) tls: Arc<TlsReloader>,
    pub(crate) locality: String,
    pub(crate) peer: PeerCertificate,
    /// Turns true when the hub shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl PushContext {
    /// Serves the stream until the agent closes it or an error ends it.
    pub(crate) async fn serve(
        &self,
        mut inbound: Streaming<PushRequest>,
        replies: &Replies,
    ) -> Result<(), Status> {
        let hello = match next_message(&mut inbound).await? {
            Some(RequestMsg::Hello(hello)) => hello,
            Some(_) => {
                return Err(Status::failed_precondition(
                    "the first message of a push stream must be Hello",
                ));
            }
            None => return Ok(()),
        };
        let welcome = self.welcome(&hello).await?;
        reply(replies, ResponseMsg::Welcome(welcome)).await?;

        let window = self.limits.batch_window();
        let (pending_sender, pending) = mpsc::unbounded_channel::<Pending>();
        let reader = async {
            let result = self.read(&mut inbound, &window, &pending_sender).await;
            drop(pending_sender);
            result
        };
        let (read, respond) = tokio::join!(reader, respond(pending, replies));
        respond.and(read)
    }

    async fn welcome(&self, hello: &Hello) -> Result<Welcome, Status> {
        self.limits
            .check_string("Hello.agent_version", &hello.agent_version)?;
        let locality = self.locality.as_str();
        let hub_time_unix_ms = chrono::Utc::now().timestamp_millis();
        let clock_offset_ms = hello.agent_time_unix_ms.saturating_sub(hub_time_unix_ms);
        let (last_committed_seq, rejections) = self
            .store
            .hello_with_certificate(
                locality,
                &hello.agent_version,
                clock_offset_ms,
                hello.oldest_pending_seq,
                Some(self.peer.not_after),
            )
            .await
            .map_err(|error| status_from_store(error, locality))?;
        tracing::info!(
            agent_version = %hello.agent_version,
            backlog = hello.backlog,
            last_committed_seq,
            clock_offset_ms,
            cert_not_after = self.peer.not_after,
            "hello"
        );
        self.warn_if_certificate_expiring();
        let settings = self.limits.settings();
        Ok(Welcome {
            locality: locality.to_string(),
            last_committed_seq,
            hub_time_unix_ms,
            max_batch_records: settings.max_batch_records,
            rejections,
            max_batches_in_flight: settings.max_batches_in_flight,
            digests_supported: true,
        })
    }

    fn warn_if_certificate_expiring(&self) {
        let warning_days = i64::from(self.tls.config().expiry_warning_days);
        let days_left = (self.peer.not_after - chrono::Utc::now().timestamp()).div_euclid(86_400);
        if days_left < warning_days {
            tracing::warn!(
                serial = %self.peer.serial,
                days_left,
                not_after = self.peer.not_after,
                "agent certificate expires soon; renew it with chiso-certs renew"
            );
        }
    }

    /// Reads messages and queues each one, until the stream ends, an error, or the responder
    /// stops.
    async fn read(
        &self,
        inbound: &mut Streaming<PushRequest>,
        window: &Arc<Semaphore>,
        pending: &mpsc::UnboundedSender<Pending>,
    ) -> Result<(), Status> {
        let mut shutdown = self.shutdown.clone();
        loop {
            let message = tokio::select! {
                // The responder drops its receiver when it fails; its error ends the stream.
                _ = pending.closed() => return Ok(()),
                // An Err means no sender is left, so no shutdown can come: the branch is off.
                Ok(_) = shutdown.wait_for(|stopping| *stopping) => {
                    return Err(Status::unavailable("the hub is shutting down; reconnect later"));
                }
                message = next_message(inbound) => message?,
            };
            let Some(message) = message else {
                return Ok(());
            };
            let reply = match message {
                RequestMsg::Batch(batch) => {
                    let permit = self.take_place(window, batch.batch_id)?;
                    (self.queue_batch(batch).await?, permit)
                }
                RequestMsg::Digest(digest) => {
                    let permit = self.take_place(window, digest.digest_id)?;
                    (self.compare_digest(digest, window).await?, permit)
                }
                RequestMsg::Hello(_) => {
                    return Err(Status::failed_precondition(
                        "Hello may be sent only once per stream",
                    ));
                }
            };
            if pending.send(reply).is_err() {
                return Ok(());
            }
        }
    }

    fn take_place(&self, window: &Arc<Semaphore>, id: u64) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(window)
            .try_acquire_owned()
            .map_err(|_| self.limits.too_many_in_flight(&self.locality, id))
    }

    /// Checks the limits and the certificate, then queues the batch in the store.
    async fn queue_batch(&self, batch: Batch) -> Result<PendingReply, Status> {
        let locality = self.locality.as_str();
        let records = batch.records.len();
        self.limits
            .check_batch_size(locality, batch.batch_id, records)?;
        self.check_certificate().await?;
        self.hold_for_rate(batch.batch_id, records).await?;

        let batch_id = batch.batch_id;
        let applied = self.store.apply_batch(locality, batch);
        let locality = locality.to_string();
        Ok(Box::pin(async move {
            let ack = applied
                .await
                .map_err(|error| status_from_store(error, &locality))?;
            tracing::debug!(
                batch_id,
                records,
                committed_seq = ack.committed_seq,
                stored = ack.stored,
                unchanged = ack.unchanged,
                rejected = ack.rejections.len(),
                "batch committed"
            );
            Ok(ResponseMsg::Ack(ack))
        }))
    }

    /// Checks the limits and the certificate, waits until every earlier message has its reply,
    /// and compares the digest. Its own place in the window is already taken.
    async fn compare_digest(
        &self,
        digest: DigestBatch,
        window: &Arc<Semaphore>,
    ) -> Result<PendingReply, Status> {
        for day in &digest.days {
            self.limits
                .check_string("UnitDayDigest.unit_code", &day.unit_code)?;
        }
        self.check_certificate().await?;
        self.hold_for_rate(digest.digest_id, digest.days.len())
            .await?;

        let others = self
            .limits
            .settings()
            .max_batches_in_flight
            .saturating_sub(1);
        let earlier_replied = window
            .acquire_many(others)
            .await
            .map_err(|_| Status::internal("the stream's window was closed"))?;
        let report = self
            .store
            .reconcile(&self.locality, digest)
            .await
            .map_err(|error| status_from_store(error, &self.locality))?;
        drop(earlier_replied);
        Ok(Box::pin(std::future::ready(Ok(ResponseMsg::Gaps(report)))))
    }

    /// Holds the reader until the agent's rate allows `records` more, unless the hub shuts down
    /// first.
    async fn hold_for_rate(&self, id: u64, records: usize) -> Result<(), Status> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            held = self.limits.hold_for_rate(&self.locality, id, records) => held,
            // An Err means no sender is left, so no shutdown can come: the branch is off.
            Ok(_) = shutdown.wait_for(|stopping| *stopping) => {
                Err(Status::unavailable("the hub is shutting down; reconnect later"))
            }
        }
    }

    /// Refuses a stream whose certificate was revoked or has expired since it connected.
    async fn check_certificate(&self) -> Result<(), Status> {
        let tls = Arc::clone(&self.tls);
        // A few `stat` calls, and a rebuild when a TLS file changed.
        let snapshot = tokio::task::spawn_blocking(move || tls.current())
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading the TLS files failed");
                Status::internal("the hub could not check the certificate; retry later")
            })?;
        if snapshot.revoked.contains(&self.peer.serial) {
            tracing::warn!(serial = %self.peer.serial, "stream ended: certificate revoked");
            return Err(Status::unauthenticated(format!(
                "the client certificate (serial {}) has been revoked; ask the hub operator for a new one",
                self.peer.serial
            )));
        }
        if chrono::Utc::now().timestamp() > self.peer.not_after {
            return Err(Status::unauthenticated(
                "the client certificate has expired; renew it with chiso-certs renew and reconnect",
            ));
        }
        Ok(())
    }
}

/// Sends each queued message's reply in queue order, releasing its window place first. Released
/// after sending, the place could still be taken when the agent's next batch arrives, because
/// the transport may deliver the reply before this task runs again.
async fn respond(
    mut pending: mpsc::UnboundedReceiver<Pending>,
    replies: &Replies,
) -> Result<(), Status> {
    while let Some((reply_future, permit)) = pending.recv().await {
        let message = reply_future.await?;
        drop(permit);
        reply(replies, message).await?;
    }
    Ok(())
}

/// Reads the next message; a message above `max_message_bytes` becomes RESOURCE_EXHAUSTED.
async fn next_message(inbound: &mut Streaming<PushRequest>) -> Result<Option<RequestMsg>, Status> {
    match inbound.message().await {
        Ok(Some(request)) => match request.msg {
            Some(message) => Ok(Some(message)),
            None => Err(Status::invalid_argument("empty PushRequest")),
        },
        Ok(None) => Ok(None),
        Err(status) if status.code() == Code::OutOfRange => {
            Err(Status::resource_exhausted(format!(
                "message refused by limits.max_message_bytes: {}",
                status.message()
            )))
        }
        Err(status) => Err(status),
    }
}

/// Sends one response on the stream.
pub(crate) async fn reply(replies: &Replies, msg: ResponseMsg) -> Result<(), Status> {
    replies
        .send(Ok(PushResponse { msg: Some(msg) }))
        .await
        .map_err(|_| Status::cancelled("the agent closed the stream"))
}
