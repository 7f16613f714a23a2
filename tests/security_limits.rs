//! The hub's limits under abuse. An oversized message, a batch above `max_batch_records`, a
//! second stream per identity, too many batches in flight and overlong strings are each refused
//! with their own status. Meanwhile another agent on the same hub keeps being served. An agent
//! sending faster than `records_per_second` is slowed down without an error, and the real agent
//! keeps to the window the hub announces. Hostile records are rejected one by one, each with
//! its reason code.

use chiso_agent::sample::SampleSpec;
use chiso_hub::config::{Config as HubConfig, Limits};
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::scores_client::ScoresClient;
use chiso_proto::v1::{
    Ack, Batch, Channel as FilingChannel, Dossier, DossierStatus, GetScoresRequest, Hello,
    PushRequest, PushResponse, Record, RejectCode, record::Body,
};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::process::write_sample_copies;
use chiso_tests::{HubHandle, Pki, binary, hub_config, start_hub, sync_client, write_agent_config};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

/// An open push stream past its Welcome.
struct Stream {
    requests: mpsc::Sender<PushRequest>,
    responses: Streaming<PushResponse>,
    next_batch: u64,
    next_seq: u64,
}

impl Stream {
    async fn open(pki: &Pki, stem: &str, hub: &HubHandle) -> Result<Stream, Status> {
        Stream::open_with(pki, stem, hub, "limits-test").await
    }

    async fn open_with(
        pki: &Pki,
        stem: &str,
        hub: &HubHandle,
        agent_version: &str,
    ) -> Result<Stream, Status> {
        let mut client = sync_client(pki, stem, hub.addr).await.unwrap();
        let (requests, receiver) = mpsc::channel(64);
        let hello = Hello {
            agent_version: agent_version.into(),
            ..Hello::default()
        };
        requests
            .send(request(RequestMsg::Hello(hello)))
            .await
            .unwrap();
        let mut responses = client
            .push(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        match next(&mut responses).await? {
            ResponseMsg::Welcome(welcome) => Ok(Stream {
                requests,
                responses,
                next_batch: 1,
                next_seq: welcome.last_committed_seq + 1,
            }),
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Sends a batch of `count` valid dossiers of `unit`, without waiting.
    async fn send(&mut self, unit: &str, count: usize) -> u64 {
        let records = (0..count)
            .map(|_| {
                let seq = self.next_seq;
                self.next_seq += 1;
                record(seq, dossier(&format!("D-{unit}-{seq}"), unit))
            })
            .collect();
        self.send_records(records).await
    }

    async fn send_records(&mut self, records: Vec<Record>) -> u64 {
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let batch = Batch { batch_id, records };
        let sent = self.requests.send(request(RequestMsg::Batch(batch))).await;
        sent.expect("the request stream is open");
        batch_id
    }

    /// Sends a batch and returns its Ack, or the status that ended the stream.
    async fn push(&mut self, unit: &str, count: usize) -> Result<Ack, Status> {
        let batch_id = self.send(unit, count).await;
        self.ack(batch_id).await
    }

    async fn ack(&mut self, batch_id: u64) -> Result<Ack, Status> {
        match next(&mut self.responses).await? {
            ResponseMsg::Ack(ack) => {
                assert_eq!(ack.batch_id, batch_id);
                Ok(ack)
            }
            other => panic!("expected Ack, got {other:?}"),
        }
    }
}

async fn next(responses: &mut Streaming<PushResponse>) -> Result<ResponseMsg, Status> {
    match responses.next().await {
        Some(Ok(response)) => Ok(response.msg.expect("responses carry a message")),
        Some(Err(status)) => Err(status),
        None => Err(Status::unknown("the stream ended without a status")),
    }
}

fn request(msg: RequestMsg) -> PushRequest {
    PushRequest { msg: Some(msg) }
}

fn record(seq: u64, dossier: Dossier) -> Record {
    Record {
        seq,
        body: Some(Body::Dossier(dossier)),
    }
}

fn dossier(code: &str, unit: &str) -> Dossier {
    Dossier {
        code: code.into(),
        version: 1,
        unit_code: unit.into(),
        procedure_code: "1.001612".into(),
        channel: FilingChannel::Online as i32,
        status: DossierStatus::Received as i32,
        received_at: parse_portal_datetime("20261001080000").unwrap(),
        ..Dossier::default()
    }
}

/// Phường Ba Đình, province 01, and Phường Thủ Dầu Một, province 79.
const UNIT_01: &str = "00004";
const UNIT_79: &str = "25747";

async fn hub_with(dir: &std::path::Path, limits: impl FnOnce(&mut Limits)) -> (Pki, HubHandle) {
    let pki = Pki::create(&dir.join("certs"), &["01", "79"]).unwrap();
    let mut config: HubConfig = hub_config(&pki, dir);
    limits(&mut config.limits);
    config.validate().expect("the test's limits are valid");
    let hub = start_hub(config).await.unwrap();
    (pki, hub)
}

fn stored(hub: &HubHandle, locality: &str) -> i64 {
    chiso_tests::hub_count_distinct(&hub.store, locality)
        .unwrap()
        .0
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, code: Code, names: &str) {
    let status = match result {
        Ok(value) => panic!("expected {code:?} naming {names}, got {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(names), "{status:?}");
}

#[tokio::test]
async fn oversized_message_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_message_bytes = 65_536).await;
    let mut other = Stream::open(&pki, "agent-79", &hub).await.unwrap();
    other.push(UNIT_79, 5).await.unwrap();

    let mut abuser = Stream::open(&pki, "agent-01", &hub).await.unwrap();
    let mut big = dossier("HN-BIG", UNIT_01);
    big.procedure_code = "x".repeat(70_000);
    let batch_id = abuser.send_records(vec![record(1, big)]).await;
    let refused = abuser.ack(batch_id).await;

    assert_refused(refused, Code::ResourceExhausted, "max_message_bytes");
    assert_eq!(stored(&hub, "01"), 0);
    let served = other.push(UNIT_79, 5).await.unwrap();
    assert_eq!(served.stored, 5);
    hub.stop().await;
}

#[tokio::test]
async fn batch_above_max_records_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_batch_records = 10).await;
    let mut other = Stream::open(&pki, "agent-79", &hub).await.unwrap();

    let mut abuser = Stream::open(&pki, "agent-01", &hub).await.unwrap();
    let refused = abuser.push(UNIT_01, 11).await;

    assert_refused(refused, Code::ResourceExhausted, "max_batch_records");
    assert_eq!(
        stored(&hub, "01"),
        0,
        "part of the refused batch was stored"
    );
    let served = other.push(UNIT_79, 10).await.unwrap();
    assert_eq!(served.stored, 10);
    hub.stop().await;
}

#[tokio::test]
async fn sending_too_fast_held_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| {
        l.max_batch_records = 20;
        l.records_per_second = 100;
        l.burst_records = 20;
    })
    .await;
    let mut other = Stream::open(&pki, "agent-79", &hub).await.unwrap();

    // Six batches at once: 120 records against a burst of 20, so the hub must hold the last
    // five, about 200 ms each, instead of ending the stream.
    let mut fast = Stream::open(&pki, "agent-01", &hub).await.unwrap();
    let mut sent = Vec::new();
    for _ in 0..6 {
        sent.push(fast.send(UNIT_01, 20).await);
    }
    for batch_id in sent {
        let ack = fast.ack(batch_id).await;
        assert!(ack.is_ok(), "batch {batch_id}: {ack:?}");
        assert_eq!(ack.unwrap().stored, 20, "batch {batch_id}");
    }

    assert_eq!(stored(&hub, "01"), 120);
    let after = fast.push(UNIT_01, 20).await;
    assert!(after.is_ok(), "the stream stays usable: {after:?}");
    let served = other.push(UNIT_79, 20).await.unwrap();
    assert_eq!(served.stored, 20, "agent 79 has its own budget");
    hub.stop().await;
}

/// Starts a TCP proxy on 127.0.0.1 to `upstream`, and returns its address and the count of
/// connections it has forwarded.
async fn counting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_window_capped_by_welcome() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_batches_in_flight = 2).await;
    let (proxy, connections) = counting_proxy(hub.addr).await;

    // The agent's configuration sets 16 batches of 10 in flight, and the hub announces 2. A third batch sent
    // before the first Ack would end the stream with RESOURCE_EXHAUSTED, and the agent would
    // open a second connection.
    let hub_url = format!("https://localhost:{}", proxy.port());
    let config = write_agent_config(&dir.path().join("agent"), &pki, "01", &hub_url).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("batch_records = 200"), "{text}");
    assert!(text.contains("window = 4"), "{text}");
    let text = text
        .replace("batch_records = 200", "batch_records = 10")
        .replace("window = 4", "window = 16");
    std::fs::write(&config, text).unwrap();
    let spec = SampleSpec {
        province: "01".into(),
        dossiers: 600,
        month: "2026-10".parse().unwrap(),
        seed: 3,
        as_of: parse_portal_datetime("20261031235959").unwrap(),
    };
    let files = write_sample_copies(&spec, "w", 1, &dir.path().join("data")).unwrap();

    let ingest = agent_command(&["ingest", files[0].to_str().unwrap()], &config).await;
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let drain = agent_command(&["run", "--until-drained"], &config).await;

    assert!(drain.status.success(), "{}", stderr(&drain));
    assert_eq!(stored(&hub, "01"), 600);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "the agent reconnected: {}",
        stderr(&drain)
    );
    hub.stop().await;
}

async fn agent_command(args: &[&str], config: &std::path::Path) -> Output {
    tokio::process::Command::new(binary("chiso-agent"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("chiso-agent starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn second_stream_per_identity_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_streams_per_agent = 1).await;
    let mut first = Stream::open(&pki, "agent-01", &hub).await.unwrap();

    let second = Stream::open(&pki, "agent-01", &hub).await;
    let other = Stream::open(&pki, "agent-79", &hub).await;

    assert_refused(
        second.map(|_| ()),
        Code::ResourceExhausted,
        "max_streams_per_agent",
    );
    assert!(other.is_ok(), "agent 79 was refused: {:?}", other.err());
    let still_open = first.push(UNIT_01, 3).await.unwrap();
    assert_eq!(still_open.stored, 3);
    hub.stop().await;
}

#[tokio::test]
async fn batches_beyond_window_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_batches_in_flight = 1).await;
    let mut other = Stream::open(&pki, "agent-79", &hub).await.unwrap();

    // Thirty batches sent at once: the hub reads the second before it can have committed and
    // acknowledged the first, which takes a store commit with an fsync.
    let mut abuser = Stream::open(&pki, "agent-01", &hub).await.unwrap();
    for _ in 0..30 {
        abuser.send(UNIT_01, 2).await;
    }
    let mut acknowledged = 0;
    let refused = loop {
        match next(&mut abuser.responses).await {
            Ok(ResponseMsg::Ack(_)) => acknowledged += 1,
            Ok(other) => panic!("expected Ack, got {other:?}"),
            Err(status) => break status,
        }
    };

    assert!(acknowledged < 30, "every batch was acknowledged");
    assert_refused(
        Err::<(), _>(refused),
        Code::ResourceExhausted,
        "max_batches_in_flight",
    );
    let served = other.push(UNIT_79, 2).await.unwrap();
    assert_eq!(served.stored, 2);
    hub.stop().await;
}

#[tokio::test]
async fn overlong_request_strings_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |l| l.max_string_bytes = 64).await;

    let long_version = Stream::open_with(&pki, "agent-01", &hub, &"v".repeat(65)).await;
    assert_refused(
        long_version.map(|_| ()),
        Code::InvalidArgument,
        "Hello.agent_version",
    );

    let channel = tonic::transport::Endpoint::from_shared(hub.url())
        .unwrap()
        .tls_config(pki.client_tls("agent-79").unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut scores = ScoresClient::new(channel);
    let request = GetScoresRequest {
        unit_code: "7".repeat(5_000),
        period: "2026-10".into(),
        ..GetScoresRequest::default()
    };
    let long_unit = scores.get_scores(request).await;
    assert_refused(
        long_unit,
        Code::InvalidArgument,
        "GetScoresRequest.unit_code",
    );

    let mut other = Stream::open(&pki, "agent-79", &hub).await.unwrap();
    assert_eq!(other.push(UNIT_79, 1).await.unwrap().stored, 1);
    hub.stop().await;
}

#[tokio::test]
async fn hostile_records_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, hub) = hub_with(dir.path(), |_| {}).await;
    let mut agent = Stream::open(&pki, "agent-01", &hub).await.unwrap();

    let mut returned = dossier("HN-FINAL", UNIT_01);
    returned.status = DossierStatus::Returned as i32;
    returned.finished_at = Some(returned.received_at + 3_600);
    returned.returned_at = Some(returned.received_at + 7_200);
    let mut regressed = dossier("HN-FINAL", UNIT_01);
    regressed.version = 2;
    regressed.status = DossierStatus::Processing as i32;
    let mut long_code = dossier(&"K".repeat(5_000), UNIT_01);
    long_code.version = 1;
    let long_unit = dossier("HN-UNIT", &"0".repeat(5_000));
    let mut bad_applicant = dossier("HN-APPLICANT", UNIT_01);
    bad_applicant.applicant_type = 77;

    let first = agent.send_records(vec![record(1, returned)]).await;
    assert_eq!(agent.ack(first).await.unwrap().stored, 1);
    let records = vec![
        record(2, regressed),
        record(3, long_code),
        record(4, long_unit),
        Record { seq: 5, body: None },
        record(6, bad_applicant),
    ];
    let second = agent.send_records(records).await;
    let ack = agent.ack(second).await.unwrap();

    assert_eq!(ack.committed_seq, 6);
    assert_eq!(ack.stored, 0);
    let codes: Vec<(u64, i32, String)> = ack
        .rejections
        .iter()
        .map(|r| (r.seq, r.code, r.field.clone()))
        .collect();
    assert_eq!(
        codes,
        [
            (
                2,
                RejectCode::StatusRegression as i32,
                "TrangThaiHoSo".into()
            ),
            (3, RejectCode::TooLong as i32, "MaHoSo".into()),
            (4, RejectCode::TooLong as i32, "MaDonVi".into()),
            (5, RejectCode::UnknownKind as i32, String::new()),
            (6, RejectCode::InvalidValue as i32, "LoaiDoiTuong".into()),
        ]
    );
    for rejection in &ack.rejections {
        assert!(
            rejection.key.len() <= 100,
            "key of {} bytes",
            rejection.key.len()
        );
        assert!(rejection.message.len() < 400, "{}", rejection.message);
    }
    let status: i32 = hub
        .store
        .reader()
        .unwrap()
        .query_row(
            "SELECT status FROM dossiers WHERE code = 'HN-FINAL'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        status,
        DossierStatus::Returned as i32,
        "the final status was replaced"
    );
    hub.stop().await;
}
