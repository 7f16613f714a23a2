//! The HTTP intake served by `chiso-agent run`. `POST /v1/dossiers`, `/v1/procedures`,
//! `/v1/feedback`, `/v1/ratings` and `/v1/steps` each take a body of that record kind in the same
//! JSON as the input files (an envelope, an array, or JSON Lines). They respond only after the
//! outbox transaction has committed. An envelope whose `service` names another kind than the
//! route's is rejected whole with 400.
//!
//! Responses: 200 with the ingest summary as JSON once the records are durable (records rejected at
//! intake are listed in it, the valid ones are stored all the same); 400 when the body is not in
//! an accepted shape; 413 when it is larger than [`MAX_BODY_BYTES`]; 503 with `Retry-After` when
//! the outbox is at a limit or locked by another process, in which case nothing was stored and
//! the sender must send the same body again later; 500 on any other outbox failure. The listener
//! speaks plain HTTP, so the configuration allows it only on loopback unless told otherwise.

use crate::dvcqg::route_of;
use crate::intake::{self, IntakeError, IntakeSettings};
use crate::outbox::{IngestSummary, OutboxError};
use crate::push::SharedOutbox;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chiso_proto::record::Kind;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest body accepted, in bytes.
///
/// NOTE: a guess covering one day's export of a large province (about 1.5 KB per record in the
/// portal's JSON); confidence medium. Larger exports go through the inbox folder.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// `Retry-After` when the outbox is full, in seconds: long enough for a drain to make room.
pub const RETRY_AFTER_FULL_SECS: u64 = 30;
/// `Retry-After` when another process holds the outbox's write lock, in seconds.
pub const RETRY_AFTER_BUSY_SECS: u64 = 5;

/// Failure of the HTTP intake.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server failed while accepting connections.
    #[error("HTTP intake on {addr} failed: {source}. Check that no other program uses the address")]
    Serve {
        /// The listening address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct AppState {
    outbox: SharedOutbox,
    settings: Arc<IntakeSettings>,
}

/// Builds the intake's routes over a shared outbox.
pub fn router(outbox: SharedOutbox, settings: IntakeSettings) -> Router {
    let state = AppState {
        outbox,
        settings: Arc::new(settings),
    };
    let mut router = Router::new();
    for kind in Kind::ALL {
        let handler =
            move |State(state): State<AppState>, body: Bytes| post_records(state, kind, body);
        router = router.route(route_of(kind), post(handler));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Returns the source name recorded for HTTP input of a kind in the outbox (`input_files`,
/// `rejected`), such as `http:POST /v1/ratings`.
pub fn source_name(kind: Kind) -> String {
    format!("http:POST {}", route_of(kind))
}

/// Serves the intake on `listener` until `shutdown` turns true, then finishes open requests.
pub async fn serve(
    listener: TcpListener,
    outbox: SharedOutbox,
    settings: IntakeSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), HttpError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    let routes: Vec<&str> = Kind::ALL.into_iter().map(route_of).collect();
    tracing::info!(%addr, routes = %routes.join(" "), "HTTP intake listening");
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    axum::serve(listener, router(outbox, settings))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|source| HttpError::Serve {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!(%addr, "HTTP intake stopped");
    Ok(())
}

async fn post_records(state: AppState, kind: Kind, body: Bytes) -> Response {
    let bytes = body.len();
    let work = tokio::task::spawn_blocking(move || {
        // A full outbox refuses before the body is parsed.
        lock(&state.outbox).check_room()?;
        let context = state.settings.context();
        let input = intake::parse_bytes(source_name(kind), &body, Some(kind), &context)?;
        intake::store(&mut lock(&state.outbox), input)
    });
    match work.await {
        Ok(Ok(summary)) => (StatusCode::OK, Json(summary_json(&summary))).into_response(),
        Ok(Err(error)) => error_response(&error, kind, bytes),
        Err(join) => {
            tracing::error!(kind = kind.as_str(), bytes, error = %join, "HTTP intake task failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the intake task failed; send the body again",
            )
        }
    }
}

fn lock(outbox: &SharedOutbox) -> std::sync::MutexGuard<'_, crate::outbox::Outbox> {
    outbox
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_response(error: &IntakeError, kind: Kind, bytes: usize) -> Response {
    let message = error.to_string();
    let (status, retry_after) = match error {
        IntakeError::Format { .. } | IntakeError::Read { .. } => (StatusCode::BAD_REQUEST, None),
        IntakeError::Outbox(OutboxError::Full { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER_FULL_SECS))
        }
        IntakeError::Outbox(OutboxError::Busy { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER_BUSY_SECS))
        }
        IntakeError::Outbox(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    let kind = kind.as_str();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(kind, bytes, error = %message, "HTTP intake could not store a body");
    } else {
        tracing::warn!(kind, bytes, status = status.as_u16(), error = %message, "HTTP intake refused a body");
    }
    let mut response = error_body(status, &message);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Builds the ingest summary as JSON, with each rejected record's position, key, field and
/// reason.
pub fn summary_json(summary: &IngestSummary) -> Value {
    let rejected: Vec<Value> = summary
        .rejected
        .iter()
        .map(|rejection| {
            json!({
                "index": rejection.index,
                "key": rejection.key,
                "field": rejection.field,
                "code": rejection.code.as_str_name(),
                "message": rejection.message,
            })
        })
        .collect();
    json!({
        "records": summary.records,
        "stored_new": summary.stored_new,
        "stored_changed": summary.stored_changed,
        "unchanged": summary.unchanged,
        "superseded": summary.superseded,
        "rejected": rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Outbox, OutboxLimits};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends one request to `/v1/dossiers` over a new connection and returns the status, the
    /// headers and the body.
    async fn post(addr: std::net::SocketAddr, body: &str) -> (u16, String, Value) {
        post_to(addr, route_of(Kind::Dossier), body).await
    }

    async fn post_to(addr: std::net::SocketAddr, route: &str, body: &str) -> (u16, String, Value) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {route} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (
            status,
            head.to_ascii_lowercase(),
            serde_json::from_str(body).unwrap(),
        )
    }

    fn record(code: &str) -> String {
        format!(
            r#"{{"MaHoSo":"{code}","MaDonVi":"01","MaTTHC":"1.001612","KenhThucHien":"2","TrangThaiHoSo":"2","NgayTiepNhan":"20261001080000","NgayHenTra":"20261010170000"}}"#
        )
    }

    async fn start(
        limits: OutboxLimits,
    ) -> (tempfile::TempDir, SharedOutbox, std::net::SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        outbox.set_limits(limits);
        let outbox = Arc::new(Mutex::new(outbox));
        let settings = IntakeSettings {
            locality: "01".into(),
            agency_map: HashMap::new(),
            catalogue: chiso_proto::units::UnitCatalogue::official(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, stopped) = watch::channel(false);
        let shared = Arc::clone(&outbox);
        tokio::spawn(async move {
            let _keep = _stop;
            serve(listener, shared, settings, stopped).await
        });
        (dir, outbox, addr)
    }

    #[tokio::test]
    async fn post_stores_body_returns_summary() {
        let (_dir, outbox, addr) = start(OutboxLimits::default()).await;
        let body = format!(
            "[{}, {}, {{\"MaHoSo\": \"BAD\"}}]",
            record("A-1"),
            record("A-2")
        );
        let (status, _, summary) = post(addr, &body).await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["records"], 3);
        assert_eq!(summary["stored_new"], 2);
        assert_eq!(summary["rejected"][0]["index"], 2);
        assert_eq!(summary["rejected"][0]["key"], "BAD");
        assert_eq!(outbox.lock().unwrap().stats().unwrap().backlog, 2);

        // The same body again changes nothing.
        let (status, _, again) = post(addr, &body).await;
        assert_eq!(status, 200);
        assert_eq!(again["unchanged"], 2);
        assert_eq!(outbox.lock().unwrap().stats().unwrap().rejected, 1);
    }

    #[tokio::test]
    async fn malformed_body_gets_400() {
        let (_dir, outbox, addr) = start(OutboxLimits::default()).await;
        let (status, _, answer) = post(addr, "{\"data\": [").await;
        assert_eq!(status, 400);
        assert!(
            answer["error"].as_str().unwrap().contains("invalid JSON"),
            "{answer}"
        );
        assert_eq!(outbox.lock().unwrap().stats().unwrap().backlog, 0);
    }

    #[tokio::test]
    async fn full_outbox_gets_503_retry_after() {
        let limits = OutboxLimits {
            max_bytes: None,
            max_records: Some(2),
        };
        let (_dir, outbox, addr) = start(limits).await;
        let (status, _, _) = post(addr, &format!("[{}, {}]", record("A-1"), record("A-2"))).await;
        assert_eq!(status, 200);
        let (status, head, answer) = post(addr, &format!("[{}]", record("A-3"))).await;
        assert_eq!(status, 503);
        assert!(head.contains("retry-after: 30"), "{head}");
        assert!(
            answer["error"].as_str().unwrap().contains("is full"),
            "{answer}"
        );

        outbox.lock().unwrap().settle(u64::MAX, &[]).unwrap();
        let (status, _, summary) = post(addr, &format!("[{}]", record("A-3"))).await;
        assert_eq!(status, 200);
        assert_eq!(summary["stored_new"], 1);
    }

    fn rating(code: &str) -> String {
        format!(
            r#"{{"MaDanhGia":"{code}","MaHoSo":"A-1","MaDonVi":"01","NgayDanhGia":"20261003100000","MucDoHaiLong":"5","NguoiDanhGia":"Nguyễn Văn A"}}"#
        )
    }

    #[tokio::test]
    async fn each_kind_has_its_route() {
        let (_dir, outbox, addr) = start(OutboxLimits::default()).await;
        let (status, _, summary) = post_to(
            addr,
            "/v1/ratings",
            &format!("[{}, {}]", rating("DG-1"), rating("DG-2")),
        )
        .await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["stored_new"], 2);
        let batch = outbox.lock().unwrap().pending_batch(0, 10).unwrap();
        assert!(
            batch.iter().all(|record| matches!(
                record.body,
                Some(chiso_proto::v1::record::Body::Rating(_))
            )),
            "{batch:?}"
        );

        // A rating sent to the dossier route is read as a dossier, and rejected as one.
        let (status, _, summary) = post(addr, &format!("[{}]", rating("DG-3"))).await;
        assert_eq!(status, 200);
        assert_eq!(summary["rejected"][0]["field"], "MaTTHC");

        for kind in Kind::ALL {
            let (status, _, _) = post_to(addr, route_of(kind), "[]").await;
            assert_eq!(status, 200, "{}", route_of(kind));
        }
    }

    #[tokio::test]
    async fn envelope_of_other_kind_gets_400() {
        let (_dir, outbox, addr) = start(OutboxLimits::default()).await;
        let body = format!(
            r#"{{"service": "DongBoDanhGiaHaiLong", "madonvi": "01", "data": [{}]}}"#,
            rating("DG-1")
        );
        let (status, _, answer) = post_to(addr, "/v1/feedback", &body).await;
        assert_eq!(status, 400);
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains("DongBoDanhGiaHaiLong"), "{message}");
        assert!(message.contains("/v1/ratings"), "{message}");
        assert_eq!(outbox.lock().unwrap().stats().unwrap().backlog, 0);

        let (status, _, summary) = post_to(addr, "/v1/ratings", &body).await;
        assert_eq!(status, 200);
        assert_eq!(summary["stored_new"], 1);
    }
}
