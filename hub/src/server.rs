//! The mutual-TLS gRPC listener.
//!
//! The caller binds the TCP listener before calling [`serve`], so tests can bind port 0 and
//! know the address before the server runs. Connections go through the hub's own TLS acceptor
//! (`tls`), which re-reads the certificate, key, CA and revocation files whenever they change, so
//! renewals and revocations apply from the next connection on without a restart. Only TLS 1.2
//! and 1.3 are offered, and every client must present a certificate.

use crate::config::Config;
use crate::limits::AgentLimits;
use crate::operator::OperatorService;
use crate::service::HubService;
use crate::store::StoreHandle;
use crate::tls::{AcceptSettings, TlsError, TlsIncoming, TlsReloader};
use chiso_proto::v1::{
    operator_server::OperatorServer, scores_server::ScoresServer, sync_server::SyncServer,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;

/// Interval of HTTP/2 pings to each client, so a connection whose peer vanished is closed (and
/// its stream slot freed) within about this interval plus [`KEEPALIVE_TIMEOUT`].
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Time a client has to reply to a ping.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Failure that kept the server from starting or stopped it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The TLS files could not be loaded at start.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The indicator catalogue could not be loaded.
    #[error(transparent)]
    Catalogue(#[from] crate::catalogue::CatalogueError),
}

/// Installs ring as the process-wide rustls crypto provider; safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves the hub's gRPC services on a bound listener until `shutdown` completes.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    store: StoreHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    install_crypto_provider();
    let reloader = Arc::new(TlsReloader::load(&config.tls)?);
    let limits = AgentLimits::new(&config.limits);
    let catalogue = store.unit_catalogue();
    let indicators = Arc::new(config.indicator_catalogue()?);
    tracing::info!(catalogue = %indicators.version, "indicator catalogue loaded");
    let (stopping, stopping_receiver) = watch::channel(false);
    let service = HubService::new(
        store.clone(),
        catalogue,
        Arc::clone(&limits),
        Arc::clone(&reloader),
    )
    .with_indicator_catalogue(indicators)
    .with_shutdown(stopping_receiver);
    let day_check = Duration::from_secs(config.counters.day_check_s);
    let days = tokio::spawn(move_counters_daily(
        store.clone(),
        day_check,
        stopping.subscribe(),
    ));
    let operator = OperatorService::new(store, Arc::clone(&limits));
    let max_message = config.limits.max_message_bytes;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<SyncServer<HubService>>()
        .await;

    let address = listener.local_addr().ok();
    let settings = AcceptSettings {
        handshake_timeout: Duration::from_millis(config.limits.handshake_timeout_ms),
        max_connections: config.limits.max_connections as usize,
    };
    let incoming = TlsIncoming::new(listener, reloader, settings);
    tracing::info!(address = ?address, database = %config.database.display(), "hub listening");
    Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(SyncServer::new(service.clone()).max_decoding_message_size(max_message))
        .add_service(ScoresServer::new(service).max_decoding_message_size(max_message))
        .add_service(OperatorServer::new(operator).max_decoding_message_size(max_message))
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            // Ends open push streams, which would otherwise hold the graceful shutdown open.
            let _ = stopping.send(true);
        })
        .await?;
    days.abort();
    tracing::info!("hub stopped");
    Ok(())
}

/// Moves the counters to each new Vietnam day, so open dossiers whose due day passed turn late
/// without a new record. Checks every `interval` until the hub stops.
async fn move_counters_daily(
    store: StoreHandle,
    interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.changed() => return,
        }
        let today = crate::store::today();
        if last == Some(today) {
            continue;
        }
        match store.advance_counters(today).await {
            Ok(recounted) => {
                if last.is_some() {
                    tracing::info!(day = %today, recounted, "counters moved to a new day");
                }
                last = Some(today);
            }
            Err(error) => {
                tracing::error!(day = %today, %error, "moving the counters to a new day failed; retrying at the next check");
            }
        }
    }
}
