//! The gRPC services: `Sync.Push` for agents and `Scores.GetScores` for anyone the TLS layer
//! admitted.
//!
//! Every push stream is bound to the locality in the client certificate; nothing in a message
//! can widen it. Errors become `tonic::Status` in [`status_from_store`] and
//! [`status_from_scores`], the only places that choose codes, and internal detail is logged
//! rather than sent to the peer.

use crate::auth;
use crate::scores::{self, ScoreError, ScoreQuery};
use crate::store::{StoreError, StoreHandle};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::{
    GetScoresRequest, GetScoresResponse, Hello, PushRequest, PushResponse, Welcome, scores_server,
    sync_server,
};
use chiso_proto::vntime::Month;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

/// Shared state of both services.
#[derive(Clone)]
pub struct HubService {
    store: StoreHandle,
    catalogue: &'static UnitCatalogue,
    max_batch_records: u32,
}

impl HubService {
    /// Creates the services over a store.
    pub fn new(
        store: StoreHandle,
        catalogue: &'static UnitCatalogue,
        max_batch_records: u32,
    ) -> HubService {
        HubService {
            store,
            catalogue,
            max_batch_records,
        }
    }
}

type PushStream = Pin<Box<dyn Stream<Item = Result<PushResponse, Status>> + Send>>;

#[tonic::async_trait]
impl sync_server::Sync for HubService {
    type PushStream = PushStream;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushStream>, Status> {
        let identity = auth::peer_identity(&request)?;
        let locality = auth::agent_locality(&identity, self.catalogue).inspect_err(|status| {
            tracing::warn!(%identity, reason = status.message(), "push refused");
        })?;
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |addr| addr.to_string());
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);

        let service = self.clone();
        let span = tracing::info_span!("push", %locality, %peer);
        tokio::spawn(
            async move {
                tracing::info!("agent connected");
                if let Err(status) = service.serve_stream(&locality, inbound, &sender).await {
                    let _ = sender.send(Err(status)).await;
                }
                tracing::info!("agent disconnected");
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

type Replies = mpsc::Sender<Result<PushResponse, Status>>;

impl HubService {
    async fn serve_stream(
        &self,
        locality: &str,
        mut inbound: Streaming<PushRequest>,
        replies: &Replies,
    ) -> Result<(), Status> {
        let hello = match inbound.message().await?.and_then(|request| request.msg) {
            Some(RequestMsg::Hello(hello)) => hello,
            Some(RequestMsg::Batch(_)) => {
                return Err(Status::failed_precondition(
                    "the first message of a push stream must be Hello",
                ));
            }
            None => return Ok(()),
        };
        let welcome = self.welcome(locality, &hello).await?;
        reply(replies, ResponseMsg::Welcome(welcome)).await?;

        while let Some(request) = inbound.message().await? {
            let batch = match request.msg {
                Some(RequestMsg::Batch(batch)) => batch,
                Some(RequestMsg::Hello(_)) => {
                    return Err(Status::failed_precondition(
                        "Hello may be sent only once per stream",
                    ));
                }
                None => return Err(Status::invalid_argument("empty PushRequest")),
            };
            if batch.records.len() > self.max_batch_records as usize {
                return Err(Status::invalid_argument(format!(
                    "batch {} has {} records; the maximum is {}",
                    batch.batch_id,
                    batch.records.len(),
                    self.max_batch_records
                )));
            }
            let batch_id = batch.batch_id;
            let records = batch.records.len();
            let ack = self
                .store
                .apply_batch(locality, batch)
                .await
                .map_err(|error| status_from_store(error, locality))?;
            tracing::debug!(
                batch_id,
                records,
                committed_seq = ack.committed_seq,
                stored = ack.stored,
                unchanged = ack.unchanged,
                rejected = ack.rejections.len(),
                "batch committed"
            );
            reply(replies, ResponseMsg::Ack(ack)).await?;
        }
        Ok(())
    }

    async fn welcome(&self, locality: &str, hello: &Hello) -> Result<Welcome, Status> {
        let hub_time_unix_ms = chrono::Utc::now().timestamp_millis();
        let clock_offset_ms = hello.agent_time_unix_ms - hub_time_unix_ms;
        let (last_committed_seq, rejections) = self
            .store
            .hello(
                locality,
                &hello.agent_version,
                clock_offset_ms,
                hello.oldest_pending_seq,
            )
            .await
            .map_err(|error| status_from_store(error, locality))?;
        tracing::info!(
            agent_version = %hello.agent_version,
            backlog = hello.backlog,
            last_committed_seq,
            clock_offset_ms,
            "hello"
        );
        Ok(Welcome {
            locality: locality.to_string(),
            last_committed_seq,
            hub_time_unix_ms,
            max_batch_records: self.max_batch_records,
            rejections,
        })
    }
}

async fn reply(replies: &Replies, msg: ResponseMsg) -> Result<(), Status> {
    replies
        .send(Ok(PushResponse { msg: Some(msg) }))
        .await
        .map_err(|_| Status::cancelled("the agent closed the stream"))
}

#[tonic::async_trait]
impl scores_server::Scores for HubService {
    async fn get_scores(
        &self,
        request: Request<GetScoresRequest>,
    ) -> Result<Response<GetScoresResponse>, Status> {
        let request = request.into_inner();
        let now = chrono::Utc::now().timestamp();
        let as_of = if request.as_of > 0 {
            request.as_of
        } else {
            now
        };
        let month = if request.period.is_empty() {
            Month::of_instant(as_of)
        } else {
            request
                .period
                .parse::<Month>()
                .map_err(|error| Status::invalid_argument(error.to_string()))?
        };
        let query = ScoreQuery {
            unit_code: (!request.unit_code.is_empty()).then(|| request.unit_code.clone()),
            month,
            include_children: request.include_children,
            as_of,
        };

        let store = self.store.clone();
        let catalogue = self.catalogue;
        let response = tokio::task::spawn_blocking(move || {
            let connection = store
                .reader()
                .map_err(|error| status_from_store(error, "-"))?;
            scores::compute(&connection, catalogue, &query).map_err(status_from_scores)
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "score task failed");
            Status::internal("score computation failed")
        })??;
        Ok(Response::new(response))
    }
}

/// Maps a store error to a status; detail of internal failures is logged, not sent.
pub fn status_from_store(error: StoreError, locality: &str) -> Status {
    match error {
        StoreError::OutOfOrder { .. } | StoreError::InvalidSeq { .. } => {
            Status::invalid_argument(error.to_string())
        }
        other => {
            tracing::error!(locality, error = %other, "store failed");
            Status::internal("the hub could not commit; retry later")
        }
    }
}

/// Maps a scoring error to a status.
pub fn status_from_scores(error: ScoreError) -> Status {
    match error {
        ScoreError::Sqlite { .. } | ScoreError::UnsupportedIndicator { .. } => {
            tracing::error!(%error, "score query failed");
            Status::internal("score computation failed")
        }
        other => Status::invalid_argument(other.to_string()),
    }
}
