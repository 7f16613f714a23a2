//! A hub that rejects part of every batch, written here as a small mutual-TLS gRPC server. The
//! accepted part is stored once and never sent again, and the rejected part is kept at the agent
//! with its reason. A rejection whose Ack was lost still reaches the agent through Welcome, and
//! `chiso-agent resend` queues the rejected records again once the hub has been corrected.

use chiso_agent::sample::SampleSpec;
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::sync_server::{Sync, SyncServer};
use chiso_proto::v1::{Ack, Batch, PushRequest, PushResponse, RejectCode, Rejection, Welcome};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::write_sample_copies;
use chiso_tests::{Pki, binary, write_agent_config};
use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

const DOSSIERS: usize = 2_000;

/// What the fake hub has seen and stored.
#[derive(Default)]
struct HubState {
    /// Reject every record whose sequence number ends in this digit.
    reject_digit: Option<u64>,
    /// Commit this batch (counted from 1 over the hub's life) but close the stream instead of
    /// sending its Ack.
    lose_ack_of_batch: Option<u64>,
    batches: u64,
    watermark: u64,
    /// Times each sequence number arrived.
    received: BTreeMap<u64, u32>,
    /// Times each code was stored, and its version.
    stored: BTreeMap<String, (u32, u64)>,
    rejections: Vec<Rejection>,
}

#[derive(Clone, Default)]
struct FakeHub {
    state: Arc<Mutex<HubState>>,
}

impl FakeHub {
    fn welcome(&self, oldest_pending_seq: u64) -> Welcome {
        let state = self.state.lock().unwrap();
        let rejections = state
            .rejections
            .iter()
            .filter(|rejection| oldest_pending_seq != 0 && rejection.seq >= oldest_pending_seq)
            .cloned()
            .collect();
        Welcome {
            locality: "79".into(),
            last_committed_seq: state.watermark,
            max_batch_records: 1_000,
            rejections,
            ..Welcome::default()
        }
    }

    /// Applies a batch like the real hub: replays change nothing, every other record is stored
    /// or rejected, and the watermark rises to the batch's last sequence number. Returns the Ack,
    /// or None when this batch's Ack is to be lost.
    fn apply(&self, batch: Batch) -> Option<Ack> {
        let mut state = self.state.lock().unwrap();
        state.batches += 1;
        let mut ack = Ack {
            batch_id: batch.batch_id,
            ..Ack::default()
        };
        for record in &batch.records {
            *state.received.entry(record.seq).or_default() += 1;
            let Some(Body::Dossier(dossier)) = &record.body else {
                continue;
            };
            if record.seq <= state.watermark {
                ack.unchanged += 1;
            } else if state.reject_digit == Some(record.seq % 10) {
                let rejection = Rejection {
                    seq: record.seq,
                    key: dossier.code.clone(),
                    code: RejectCode::UnknownUnit as i32,
                    field: "MaDonVi".into(),
                    message: format!("unit {} is not in this hub's catalogue", dossier.unit_code),
                };
                state.rejections.push(rejection.clone());
                ack.rejections.push(rejection);
            } else {
                let entry = state.stored.entry(dossier.code.clone()).or_default();
                if dossier.version > entry.1 {
                    *entry = (entry.0 + 1, dossier.version);
                    ack.stored += 1;
                } else {
                    ack.unchanged += 1;
                }
            }
        }
        let last = batch.records.last().map_or(0, |record| record.seq);
        state.watermark = state.watermark.max(last);
        ack.committed_seq = state.watermark;
        (state.lose_ack_of_batch != Some(state.batches)).then_some(ack)
    }

    async fn serve(
        self,
        mut inbound: Streaming<PushRequest>,
        replies: mpsc::Sender<Result<PushResponse, Status>>,
    ) {
        let reply = |msg| PushResponse { msg: Some(msg) };
        let Ok(Some(PushRequest {
            msg: Some(RequestMsg::Hello(hello)),
        })) = inbound.message().await
        else {
            return;
        };
        let welcome = self.welcome(hello.oldest_pending_seq);
        if replies
            .send(Ok(reply(ResponseMsg::Welcome(welcome))))
            .await
            .is_err()
        {
            return;
        }
        while let Ok(Some(request)) = inbound.message().await {
            let Some(RequestMsg::Batch(batch)) = request.msg else {
                continue;
            };
            let Some(ack) = self.apply(batch) else {
                let _ = replies.send(Err(Status::unavailable("lost Ack"))).await;
                return;
            };
            if replies
                .send(Ok(reply(ResponseMsg::Ack(ack))))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

type PushStream = Pin<Box<dyn Stream<Item = Result<PushResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Sync for FakeHub {
    type PushStream = PushStream;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushStream>, Status> {
        let (sender, receiver) = mpsc::channel(8);
        tokio::spawn(self.clone().serve(request.into_inner(), sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

async fn start_fake_hub(pki: &Pki, hub: FakeHub) -> u16 {
    chiso_agent::install_crypto_provider();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(pki.path("hub.crt")).unwrap(),
            std::fs::read(pki.path("hub.key")).unwrap(),
        ))
        .client_ca_root(Certificate::from_pem(
            std::fs::read(pki.path("ca.crt")).unwrap(),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(SyncServer::new(hub));
    tokio::spawn(server.serve_with_incoming(TcpListenerStream::new(listener)));
    port
}

async fn agent(args: &[&str], config: &Path) -> Output {
    tokio::process::Command::new(binary("chiso-agent"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap()
}

async fn drain(config: &Path) {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        agent(&["run", "--until-drained"], config),
    )
    .await
    .expect("the drain finishes");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_rejects_kept_then_resent() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["79"]).unwrap();
    let hub = FakeHub::default();
    {
        let mut state = hub.state.lock().unwrap();
        state.reject_digit = Some(7);
        state.lose_ack_of_batch = Some(3);
    }
    let port = start_fake_hub(&pki, hub.clone()).await;
    let config = write_agent_config(
        &dir.path().join("agent"),
        &pki,
        "79",
        &format!("https://localhost:{port}"),
    )
    .unwrap();
    let spec = SampleSpec {
        province: "79".into(),
        dossiers: DOSSIERS,
        month: "2026-10".parse().unwrap(),
        seed: 9,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    };
    let files = write_sample_copies(&spec, "r", 1, &dir.path().join("data")).unwrap();
    let ingest = agent(&["ingest", files[0].to_str().unwrap()], &config).await;
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );

    drain(&config).await;
    let rejected_codes: Vec<String> = {
        let state = hub.state.lock().unwrap();
        let expected_rejected = state.rejections.len();
        assert!(expected_rejected > 100, "{expected_rejected} rejections");
        assert_eq!(state.stored.len() + expected_rejected, DOSSIERS);
        assert!(
            state.stored.values().all(|&(times, _)| times == 1),
            "a record was stored twice"
        );
        // Nothing was sent twice: the batch whose Ack was lost was settled from Welcome.
        assert_eq!(state.received.len(), DOSSIERS);
        assert!(state.received.values().all(|&times| times == 1));
        state
            .rejections
            .iter()
            .map(|rejection| rejection.key.clone())
            .collect()
    };

    // Every rejection, including those of the batch whose Ack was lost, is kept with its reason.
    let rejects = agent(&["rejects", "--limit", "10000"], &config).await;
    let listing = String::from_utf8_lossy(&rejects.stdout);
    assert_eq!(listing.lines().count(), rejected_codes.len(), "{listing}");
    assert!(listing.contains("REJECT_CODE_UNKNOWN_UNIT"));
    assert!(
        rejected_codes
            .iter()
            .all(|code| listing.contains(code.as_str()))
    );

    // The hub is corrected; one record is resent by key, then all the others.
    hub.state.lock().unwrap().reject_digit = None;
    let one = agent(&["resend", "--key", &rejected_codes[0]], &config).await;
    assert!(String::from_utf8_lossy(&one.stdout).contains("queued again:    1"));
    let unknown = agent(&["resend", "--key", "NO-SUCH-KEY"], &config).await;
    let printed = String::from_utf8_lossy(&unknown.stdout);
    assert!(
        printed.contains("no record rejected by the hub has key \"NO-SUCH-KEY\""),
        "{printed}"
    );
    drain(&config).await;
    assert!(
        hub.state
            .lock()
            .unwrap()
            .stored
            .contains_key(&rejected_codes[0])
    );
    let all = agent(&["resend", "--all"], &config).await;
    let text = String::from_utf8_lossy(&all.stdout);
    assert!(
        text.contains(&format!("queued again:    {}", rejected_codes.len() - 1)),
        "{text}"
    );
    drain(&config).await;

    {
        let state = hub.state.lock().unwrap();
        assert_eq!(state.stored.len(), DOSSIERS);
        assert!(
            state
                .stored
                .values()
                .all(|&(times, version)| times == 1 && version == 1)
        );
    }
    let listing = agent(&["rejects"], &config).await;
    assert!(String::from_utf8_lossy(&listing.stdout).contains("no rejected records"));
}
