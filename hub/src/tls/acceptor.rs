//! The accept loop: TCP connections from a bound listener, each given a TLS handshake with the
//! snapshot current at that moment, handed to tonic as [`TlsConnection`]s.
//!
//! Handshakes run in their own tasks with a timeout, so a slow or silent client holds up no
//! other. At most `limits.max_connections` connections exist at once, counting handshakes; a
//! connection beyond that is closed at once. A failed handshake (unknown CA, expired, revoked,
//! no chiso identity) is logged, at most a few times a minute, and never reaches tonic. The
//! listener belongs to the [`TlsIncoming`] stream, so the port closes as soon as tonic stops
//! accepting and drops the stream.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::TlsReloader;
use crate::limits::LogBudget;

/// Pause after a failed `accept` (such as too many open files) before the next one.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Details of the connection a request came on, passed to handlers.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The client's certificate chain, leaf first, as verified in the handshake.
    pub certificates: Arc<Vec<CertificateDer<'static>>>,
}

/// A verified TLS connection, carrying its [`PeerInfo`] to tonic's request extensions.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    info: PeerInfo,
    // Released when tonic drops the connection, freeing a place under limits.max_connections.
    _permit: OwnedSemaphorePermit,
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct AcceptSettings {
    /// Time a client has to finish the handshake.
    pub handshake_timeout: Duration,
    /// Connections open at once, handshakes included.
    pub max_connections: usize,
}

/// The stream of verified connections that tonic serves.
pub struct TlsIncoming {
    listener: TcpListener,
    reloader: Arc<TlsReloader>,
    settings: AcceptSettings,
    connections: Arc<Semaphore>,
    handshakes: JoinSet<Option<TlsConnection>>,
    accept_pause: Option<Pin<Box<tokio::time::Sleep>>>,
    log: Arc<LogBudget>,
}

impl TlsIncoming {
    /// Accepts connections on `listener` with the TLS files of `reloader`.
    pub fn new(
        listener: TcpListener,
        reloader: Arc<TlsReloader>,
        settings: AcceptSettings,
    ) -> TlsIncoming {
        TlsIncoming {
            listener,
            reloader,
            settings,
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            handshakes: JoinSet::new(),
            accept_pause: None,
            log: Arc::new(LogBudget::per_minute(20)),
        }
    }

    fn start_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        let Ok(permit) = Arc::clone(&self.connections).try_acquire_owned() else {
            if let Some(suppressed) = self.log.admit() {
                tracing::warn!(
                    %peer,
                    max_connections = self.settings.max_connections,
                    suppressed,
                    "connection closed: limits.max_connections reached"
                );
            }
            return;
        };
        let _ = tcp.set_nodelay(true);
        let reloader = Arc::clone(&self.reloader);
        let timeout = self.settings.handshake_timeout;
        let log = Arc::clone(&self.log);
        self.handshakes
            .spawn(handshake(tcp, peer, reloader, timeout, log, permit));
    }

    /// Accepts every connection that is ready, unless a recent accept error requires a pause.
    fn accept_ready(&mut self, cx: &mut Context<'_>) {
        if let Some(pause) = self.accept_pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return;
            }
            self.accept_pause = None;
        }
        loop {
            match self.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, peer))) => self.start_handshake(tcp, peer),
                Poll::Ready(Err(error)) => {
                    if let Some(suppressed) = self.log.admit() {
                        tracing::warn!(%error, suppressed, "accept failed; pausing before the next");
                    }
                    let mut pause = Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE));
                    // Registers the waker, so the stream is polled again after the pause.
                    let _ = pause.as_mut().poll(cx);
                    self.accept_pause = Some(pause);
                    return;
                }
                Poll::Pending => return,
            }
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsConnection, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.accept_ready(cx);
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(connection)))) => {
                    return Poll::Ready(Some(Ok(connection)));
                }
                Poll::Ready(Some(Ok(None))) => continue,
                Poll::Ready(Some(Err(error))) => {
                    tracing::error!(%error, "TLS handshake task failed");
                    continue;
                }
                // An empty set registers no waker, but the listener's poll above did.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    reloader: Arc<TlsReloader>,
    timeout: Duration,
    log: Arc<LogBudget>,
    permit: OwnedSemaphorePermit,
) -> Option<TlsConnection> {
    // Checking the files costs a few `stat` calls, and a rebuild reads and parses them.
    let snapshot = match tokio::task::spawn_blocking(move || reloader.current()).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::error!(%peer, %error, "reading the TLS files failed");
            return None;
        }
    };
    let acceptor = TlsAcceptor::from(Arc::clone(&snapshot.server_config));
    let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            if let Some(suppressed) = log.admit() {
                tracing::warn!(%peer, %error, suppressed, "TLS handshake rejected");
            }
            return None;
        }
        Err(_) => {
            if let Some(suppressed) = log.admit() {
                let timeout_ms = timeout.as_millis() as u64;
                tracing::warn!(%peer, timeout_ms, suppressed, "TLS handshake timed out");
            }
            return None;
        }
    };

    let certificates = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(<[CertificateDer<'static>]>::to_vec)
        .unwrap_or_default();
    tracing::debug!(%peer, "TLS connection accepted");
    Some(TlsConnection {
        stream,
        info: PeerInfo {
            remote_addr: peer,
            certificates: Arc::new(certificates),
        },
        _permit: permit,
    })
}
