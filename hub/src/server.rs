//! The mutual-TLS gRPC listener.
//!
//! The caller binds the TCP listener before calling [`serve`], so tests can bind port 0 and
//! know the address before the server runs. TLS requires a client certificate signed by the
//! configured CA for every connection; rustls only speaks TLS 1.2 and 1.3.

use crate::config::Config;
use crate::service::HubService;
use crate::store::StoreHandle;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{scores_server::ScoresServer, sync_server::SyncServer};
use std::future::Future;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Installs ring as the process-wide rustls crypto provider; safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the server TLS settings from the configured files.
pub fn tls_config(config: &Config) -> Result<ServerTlsConfig, ServerError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServerError::TlsFile {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(&config.tls.cert)?,
            read(&config.tls.key)?,
        ))
        .client_ca_root(Certificate::from_pem(read(&config.tls.client_ca)?))
        .client_auth_optional(false))
}

/// Serves the hub's gRPC services on a bound listener until `shutdown` completes.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    store: StoreHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    install_crypto_provider();
    let catalogue = UnitCatalogue::official();
    let service = HubService::new(store, catalogue, config.limits.max_batch_records);
    let max_message = config.limits.max_message_bytes;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<SyncServer<HubService>>()
        .await;

    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, database = %config.database.display(), "hub listening");
    Server::builder()
        .tls_config(tls_config(config)?)?
        .add_service(health_service)
        .add_service(SyncServer::new(service.clone()).max_decoding_message_size(max_message))
        .add_service(ScoresServer::new(service).max_decoding_message_size(max_message))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    tracing::info!("hub stopped");
    Ok(())
}
