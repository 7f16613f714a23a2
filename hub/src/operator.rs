//! The `Operator` gRPC service: the hub's records of its agents, for the people who run it.
//!
//! Every call first requires an operator identity (`spiffe://chiso/operator/<name>`) in the
//! client certificate; an agent or any other identity gets PERMISSION_DENIED before anything is
//! read. The calls only read the store, through their own read-only connection.

use std::sync::Arc;

use chiso_proto::v1::{
    AgentInfo, ListAgentsRequest, ListAgentsResponse, ListRejectionsRequest,
    ListRejectionsResponse, Rejection, StoredRejection, operator_server,
};
use rusqlite::{Connection, params};
use tonic::{Request, Response, Status};

use crate::auth;
use crate::limits::AgentLimits;
use crate::service::status_from_store;
use crate::store::StoreHandle;

/// Rows returned by `ListRejections` when the request's limit is 0.
pub const DEFAULT_REJECTION_ROWS: u32 = 100;
/// Most rows `ListRejections` returns.
pub const MAX_REJECTION_ROWS: u32 = 1_000;

/// The operator service over the hub's store.
#[derive(Clone)]
pub struct OperatorService {
    store: StoreHandle,
    limits: Arc<AgentLimits>,
}

impl OperatorService {
    /// Creates the service.
    pub fn new(store: StoreHandle, limits: Arc<AgentLimits>) -> OperatorService {
        OperatorService { store, limits }
    }

    /// Runs a read on its own connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let connection = store
                .reader()
                .map_err(|error| status_from_store(error, "-"))?;
            query(&connection).map_err(|error| {
                tracing::error!(%error, "operator query failed");
                Status::internal("the hub could not read its store; retry later")
            })
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "operator query task failed");
            Status::internal("the hub could not read its store; retry later")
        })?
    }
}

#[tonic::async_trait]
impl operator_server::Operator for OperatorService {
    async fn list_rejections(
        &self,
        request: Request<ListRejectionsRequest>,
    ) -> Result<Response<ListRejectionsResponse>, Status> {
        let operator = auth::operator_name(&auth::peer_identity(&request)?)?;
        let request = request.into_inner();
        self.limits
            .check_string("ListRejectionsRequest.locality", &request.locality)?;
        let rows = match request.limit {
            0 => DEFAULT_REJECTION_ROWS,
            limit => limit.min(MAX_REJECTION_ROWS),
        };

        let locality = request.locality.clone();
        let rejections = self
            .read(move |connection| select_rejections(connection, &locality, rows))
            .await?;
        tracing::info!(
            operator,
            locality = %request.locality,
            rows = rejections.len(),
            "operator listed rejections"
        );
        Ok(Response::new(ListRejectionsResponse { rejections }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let operator = auth::operator_name(&auth::peer_identity(&request)?)?;
        let agents = self.read(select_agents).await?;
        tracing::info!(operator, agents = agents.len(), "operator listed agents");
        Ok(Response::new(ListAgentsResponse { agents }))
    }
}

fn select_rejections(
    connection: &Connection,
    locality: &str,
    rows: u32,
) -> rusqlite::Result<Vec<StoredRejection>> {
    let mut statement = connection.prepare(
        "SELECT source, seq, key, code, field, message, rejected_at_ms FROM rejections
         WHERE ?1 = '' OR source = ?1
         ORDER BY rejected_at_ms DESC, source, seq DESC
         LIMIT ?2",
    )?;
    let rows = statement.query_map(params![locality, rows], |row| {
        Ok(StoredRejection {
            locality: row.get(0)?,
            rejection: Some(Rejection {
                seq: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                key: row.get(2)?,
                code: row.get(3)?,
                field: row.get(4)?,
                message: row.get(5)?,
            }),
            rejected_at_unix_ms: row.get(6)?,
        })
    })?;
    rows.collect()
}

fn select_agents(connection: &Connection) -> rusqlite::Result<Vec<AgentInfo>> {
    let mut statement = connection.prepare(
        "SELECT locality, last_seq, agent_version, last_hello_ms, cert_not_after FROM agents
         ORDER BY locality",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(AgentInfo {
            locality: row.get(0)?,
            last_committed_seq: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            agent_version: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
            last_hello_unix_ms: row.get::<_, Option<i64>>(3)?.unwrap_or(0),
            cert_not_after: row.get::<_, Option<i64>>(4)?.unwrap_or(0),
        })
    })?;
    rows.collect()
}
