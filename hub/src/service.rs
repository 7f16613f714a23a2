//! The gRPC services: `Sync.Push` for agents and `Scores.GetScores` for anyone the TLS layer
//! admitted. The operator service lives in `operator`.
//!
//! Every push stream is bound to the locality in the client certificate; nothing in a message
//! can widen it. An agent may have `limits.max_streams_per_agent` streams open at once, and each
//! stream is served by `stream::PushContext`. Errors become `tonic::Status` in
//! [`status_from_store`] and [`status_from_scores`], the only places that choose codes for store
//! and scoring failures (limits choose theirs in `limits`), and internal detail is logged rather
//! than sent to the peer.

use crate::auth;
use crate::catalogue::Catalogue;
use crate::limits::AgentLimits;
use crate::scores::{self, ScoreError, ScoreQuery};
use crate::store::{self, StoreError, StoreHandle};
use crate::stream::PushContext;
use crate::tls::TlsReloader;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{
    ExplainRequest, ExplainResponse, GetScoresRequest, GetScoresResponse, PushRequest,
    PushResponse, scores_server, sync_server,
};
use chiso_proto::vntime::{Period, PeriodKind, vietnam_day};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

/// Shared state of the push and score services.
#[derive(Clone)]
pub struct HubService {
    store: StoreHandle,
    catalogue: &'static UnitCatalogue,
    limits: Arc<AgentLimits>,
    tls: Arc<TlsReloader>,
    indicators: Arc<Catalogue>,
    shutdown: watch::Receiver<bool>,
}

impl HubService {
    /// Creates the services over a store, with the agents' limits and the TLS files that list
    /// the revoked certificates.
    pub fn new(
        store: StoreHandle,
        catalogue: &'static UnitCatalogue,
        limits: Arc<AgentLimits>,
        tls: Arc<TlsReloader>,
    ) -> HubService {
        HubService {
            store,
            catalogue,
            limits,
            tls,
            indicators: Catalogue::default_shared(),
            // Its sender is dropped, so it never turns true: streams end only on their own.
            shutdown: watch::channel(false).1,
        }
    }

    /// Ends open push streams with UNAVAILABLE once `shutdown` turns true.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> HubService {
        self.shutdown = shutdown;
        self
    }

    /// Scores with the given indicator catalogue instead of the default `dvcqg-2026`.
    pub fn with_indicator_catalogue(mut self, indicators: Arc<Catalogue>) -> HubService {
        self.indicators = indicators;
        self
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
        let peer = auth::peer_certificate(&request)?;
        let locality =
            auth::agent_locality(&peer.identity, self.catalogue).inspect_err(|status| {
                tracing::warn!(identity = %peer.identity, reason = status.message(), "push refused");
            })?;
        let slot = self.limits.open_stream(&locality)?;
        let address = auth::peer_address(&request);
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);

        let context = PushContext {
            store: self.store.clone(),
            limits: Arc::clone(&self.limits),
            tls: Arc::clone(&self.tls),
            locality: locality.clone(),
            peer,
            shutdown: self.shutdown.clone(),
        };
        let span = tracing::info_span!("push", %locality, peer = %address);
        tokio::spawn(
            async move {
                tracing::info!("agent connected");
                if let Err(status) = context.serve(inbound, &sender).await {
                    tracing::info!(code = ?status.code(), reason = status.message(), "push stream ended with an error");
                    let _ = sender.send(Err(status)).await;
                }
                drop(slot);
                tracing::info!("agent disconnected");
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

#[tonic::async_trait]
impl scores_server::Scores for HubService {
    async fn get_scores(
        &self,
        request: Request<GetScoresRequest>,
    ) -> Result<Response<GetScoresResponse>, Status> {
        let request = request.into_inner();
        self.limits
            .check_string("GetScoresRequest.unit_code", &request.unit_code)?;
        self.limits
            .check_string("GetScoresRequest.period", &request.period)?;
        let now = chrono::Utc::now().timestamp();
        let as_of = if request.as_of > 0 {
            request.as_of
        } else {
            now
        };
        let period = if request.period.is_empty() {
            Period::of_instant(PeriodKind::Month, as_of)
        } else {
            request
                .period
                .parse::<Period>()
                .map_err(|error| Status::invalid_argument(error.to_string()))?
        };
        // Completeness counts the period's days up to the as-of day, like the scores.
        let first_day = period.first_day();
        let last_day = period.last_day().min(vietnam_day(as_of));
        let query = ScoreQuery {
            unit_code: (!request.unit_code.is_empty()).then(|| request.unit_code.clone()),
            period,
            include_children: request.include_children,
            as_of,
        };

        let store = self.store.clone();
        let catalogue = self.catalogue;
        let indicators = Arc::clone(&self.indicators);
        let response = tokio::task::spawn_blocking(move || {
            let connection = store
                .reader()
                .map_err(|error| status_from_store(error, "-"))?;
            let rules = store.counter_rules();
            let mut response =
                scores::compute_with_rules(&connection, catalogue, &indicators, rules, &query)
                    .map_err(status_from_scores)?;
            store::attach_completeness(&connection, &mut response, first_day, last_day)
                .map_err(|error| status_from_store(error, "-"))?;
            let locality = query
                .unit_code
                .as_deref()
                .filter(|code| *code != scores::COUNTRY_CODE)
                .map(|code| {
                    catalogue
                        .get(code)
                        .map_or_else(|| code.to_string(), |unit| unit.province_code.clone())
                });
            store::attach_watermarks(&connection, &mut response, locality.as_deref())
                .map_err(|error| status_from_store(error, "-"))?;
            Ok::<_, Status>(response)
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "score task failed");
            Status::internal("score computation failed")
        })??;
        Ok(Response::new(response))
    }

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<ExplainResponse>, Status> {
        let caller = auth::peer_identity(&request)?;
        let request = request.into_inner();
        for (name, value) in [
            ("ExplainRequest.unit_code", &request.unit_code),
            ("ExplainRequest.period", &request.period),
            ("ExplainRequest.indicator_id", &request.indicator_id),
            ("ExplainRequest.page_token", &request.page_token),
        ] {
            self.limits.check_string(name, value)?;
        }
        let store = self.store.clone();
        let catalogue = self.catalogue;
        let indicators = Arc::clone(&self.indicators);
        let now = chrono::Utc::now().timestamp();
        let response = tokio::task::spawn_blocking(move || {
            let connection = store
                .reader()
                .map_err(|error| status_from_store(error, "-"))?;
            let rules = store.counter_rules();
            crate::explain::answer(
                &connection,
                catalogue,
                &indicators,
                &rules,
                &caller,
                &request,
                now,
            )
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "explain task failed");
            Status::internal("explain failed")
        })??;
        Ok(Response::new(response))
    }
}

/// Maps a store error to a status; detail of internal failures is logged, not sent.
pub fn status_from_store(error: StoreError, locality: &str) -> Status {
    match error {
        StoreError::OutOfOrder { .. }
        | StoreError::InvalidSeq { .. }
        | StoreError::InvalidDigest { .. } => Status::invalid_argument(error.to_string()),
        other => {
            tracing::error!(locality, error = %other, "store failed");
            Status::internal("the hub could not commit; retry later")
        }
    }
}

/// Maps a scoring error to a status.
pub fn status_from_scores(error: ScoreError) -> Status {
    match error {
        ScoreError::Sqlite { .. } => {
            tracing::error!(%error, "score query failed");
            Status::internal("score computation failed")
        }
        other => Status::invalid_argument(other.to_string()),
    }
}
