//! Who may connect to the hub and what each identity may call. Expired, not-yet-valid, revoked
//! and identity-less certificates never reach a handler. A revocation or a renewed hub
//! certificate takes effect on the next connection without a restart. Only TLS 1.2 and newer are
//! spoken, and the operator service refuses every identity but an operator's.
//!
//! Everything runs on 127.0.0.1 with certificates made at test time.

use std::sync::Arc;

use chiso_certs::revocation::{init_revocation, revoke};
use chiso_certs::{LeafRequest, read_identity, read_identity_der, write_pem_pair};
use chiso_hub::config::Config as HubConfig;
use chiso_proto::identity::Identity as ChisoIdentity;
use chiso_proto::v1::operator_client::OperatorClient;
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::{
    Batch, Channel as FilingChannel, Dossier, DossierStatus, Hello, ListAgentsRequest,
    ListRejectionsRequest, PushRequest, Record, RejectCode,
};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{HubHandle, Pki, hub_config, start_hub, sync_client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

fn hello() -> PushRequest {
    PushRequest {
        msg: Some(RequestMsg::Hello(Hello {
            agent_version: "security-test".into(),
            ..Hello::default()
        })),
    }
}

fn batch(batch_id: u64, records: Vec<Record>) -> PushRequest {
    PushRequest {
        msg: Some(RequestMsg::Batch(Batch { batch_id, records })),
    }
}

/// Builds a valid dossier record of Phường Ba Đình (00004, province 01).
fn dossier(seq: u64, code: &str, version: u64, status: DossierStatus) -> Record {
    let received_at = parse_portal_datetime("20261001080000").unwrap();
    let finished = matches!(status, DossierStatus::Processed | DossierStatus::Returned);
    Record {
        seq,
        body: Some(chiso_proto::v1::record::Body::Dossier(Dossier {
            code: code.into(),
            version,
            unit_code: "00004".into(),
            procedure_code: "1.001612".into(),
            channel: FilingChannel::Online as i32,
            status: status as i32,
            received_at,
            finished_at: finished.then_some(received_at + 3_600),
            ..Dossier::default()
        })),
    }
}

/// Opens a push stream, sends Hello and returns the first response or the error of the attempt.
async fn first_response(pki: &Pki, stem: &str, hub: &HubHandle) -> anyhow::Result<ResponseMsg> {
    let mut client = sync_client(pki, stem, hub.addr).await?;
    let mut inbound = client
        .push(tokio_stream::iter(vec![hello()]))
        .await?
        .into_inner();
    match inbound.next().await {
        Some(Ok(response)) => Ok(response.msg.expect("responses carry a message")),
        Some(Err(status)) => Err(status.into()),
        None => anyhow::bail!("stream ended without a response"),
    }
}

fn hellos_recorded(hub: &HubHandle, locality: &str) -> i64 {
    let connection = hub.store.reader().unwrap();
    connection
        .query_row(
            "SELECT COUNT(*) FROM agents WHERE locality = ?1 AND last_hello_ms IS NOT NULL",
            [locality],
            |row| row.get(0),
        )
        .unwrap()
}

/// Writes `<stem>.crt/.key`: an agent certificate for `locality` valid between the two times.
fn write_agent_cert(
    pki: &Pki,
    stem: &str,
    locality: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) {
    let mut request = LeafRequest::valid_for_days(&format!("chiso agent {locality}"), 1).unwrap();
    request.identity = Some(ChisoIdentity::Agent(locality.into()));
    request.client_auth = true;
    request.not_before = from;
    request.not_after = to;
    write_pem_pair(&pki.dir, stem, &pki.ca.issue(&request).unwrap()).unwrap();
}

/// Starts a hub whose configuration also reads `revoked.txt` and `ca.crl` from the PKI folder.
async fn hub_with_revocation(pki: &Pki, dir: &std::path::Path, list: bool, crl: bool) -> HubHandle {
    init_revocation(&pki.ca, &pki.dir, OffsetDateTime::now_utc(), 30).unwrap();
    let mut config: HubConfig = hub_config(pki, dir);
    config.tls.revoked_serials = list.then(|| pki.path("revoked.txt"));
    config.tls.crl = crl.then(|| pki.path("ca.crl"));
    start_hub(config).await.unwrap()
}

fn serial_of(pki: &Pki, stem: &str) -> String {
    let pem = std::fs::read_to_string(pki.path(&format!("{stem}.crt"))).unwrap();
    read_identity(&pem).unwrap().serial_hex
}

#[tokio::test]
async fn expired_certificate_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &[]).unwrap();
    let now = OffsetDateTime::now_utc();
    write_agent_cert(
        &pki,
        "expired-01",
        "01",
        now - Duration::days(30),
        now - Duration::days(1),
    );
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let attempt = first_response(&pki, "expired-01", &hub).await;

    assert!(attempt.is_err(), "an expired certificate got {attempt:?}");
    assert_eq!(hellos_recorded(&hub, "01"), 0, "the push handler ran");
    hub.stop().await;
}

#[tokio::test]
async fn not_yet_valid_certificate_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &[]).unwrap();
    let now = OffsetDateTime::now_utc();
    write_agent_cert(
        &pki,
        "future-01",
        "01",
        now + Duration::days(1),
        now + Duration::days(30),
    );
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let attempt = first_response(&pki, "future-01", &hub).await;

    assert!(
        attempt.is_err(),
        "a not-yet-valid certificate got {attempt:?}"
    );
    assert_eq!(hellos_recorded(&hub, "01"), 0, "the push handler ran");
    hub.stop().await;
}

#[tokio::test]
async fn certificate_without_identity_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &[]).unwrap();
    let mut request = LeafRequest::valid_for_days("chiso agent 01 without SAN", 5).unwrap();
    request.client_auth = true;
    write_pem_pair(&pki.dir, "anonymous", &pki.ca.issue(&request).unwrap()).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let attempt = first_response(&pki, "anonymous", &hub).await;

    assert!(
        attempt.is_err(),
        "a certificate without identity got {attempt:?}"
    );
    let agents: i64 = hub
        .store
        .reader()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM agents", [], |row| row.get(0))
        .unwrap();
    assert_eq!(agents, 0, "the push handler ran");
    hub.stop().await;
}

#[tokio::test]
async fn revoked_certificate_is_rejected_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01", "79"]).unwrap();
    init_revocation(&pki.ca, &pki.dir, OffsetDateTime::now_utc(), 30).unwrap();
    let serial = serial_of(&pki, "agent-01");
    revoke(&pki.dir, &serial, "agent 01", OffsetDateTime::now_utc(), 30).unwrap();
    let hub = hub_with_revocation(&pki, dir.path(), true, true).await;

    let revoked = first_response(&pki, "agent-01", &hub).await;
    let other = first_response(&pki, "agent-79", &hub).await;

    assert!(revoked.is_err(), "a revoked certificate got {revoked:?}");
    assert_eq!(hellos_recorded(&hub, "01"), 0, "the push handler ran");
    assert!(matches!(other, Ok(ResponseMsg::Welcome(_))), "{other:?}");
    hub.stop().await;
}

/// Revokes agent 01 while the hub runs, with only the serial list or only the CRL configured:
/// the next connection is refused, the open stream is ended at its next batch, and agent 79 is
/// still served.
async fn revocation_applies_while_running(list: bool, crl: bool) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01", "79"]).unwrap();
    let hub = hub_with_revocation(&pki, dir.path(), list, crl).await;

    let before = first_response(&pki, "agent-01", &hub).await;
    assert!(matches!(before, Ok(ResponseMsg::Welcome(_))), "{before:?}");
    let mut open_client = sync_client(&pki, "agent-01", hub.addr).await.unwrap();
    let (open_sender, open_requests) = mpsc::channel(4);
    open_sender.send(hello()).await.unwrap();
    let mut open_stream = open_client
        .push(ReceiverStream::new(open_requests))
        .await
        .unwrap()
        .into_inner();
    let welcome = open_stream.next().await.unwrap().unwrap().msg;
    assert!(
        matches!(welcome, Some(ResponseMsg::Welcome(_))),
        "{welcome:?}"
    );

    let serial = serial_of(&pki, "agent-01");
    revoke(&pki.dir, &serial, "agent 01", OffsetDateTime::now_utc(), 30).unwrap();

    let after = first_response(&pki, "agent-01", &hub).await;
    assert!(
        after.is_err(),
        "a certificate revoked while running got {after:?}"
    );

    let record = dossier(1, "HN-REVOKED", 1, DossierStatus::Received);
    open_sender.send(batch(1, vec![record])).await.unwrap();
    let ended = open_stream.next().await.unwrap();
    let status = ended.expect_err("a batch on the revoked stream was accepted");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    let stored: i64 = hub
        .store
        .reader()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM dossiers", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 0, "the revoked agent's batch was stored");

    let other = first_response(&pki, "agent-79", &hub).await;
    assert!(matches!(other, Ok(ResponseMsg::Welcome(_))), "{other:?}");
    hub.stop().await;
}

#[tokio::test]
async fn serial_list_revocation_reloads_while_running() {
    revocation_applies_while_running(true, false).await;
}

#[tokio::test]
async fn crl_revocation_reloads_while_running() {
    revocation_applies_while_running(false, true).await;
}

/// Builds a rustls client with the agent-01 certificate, trusting the test CA.
fn raw_client(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.crt")).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_file(pki.path("agent-01.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.path("agent-01.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Completes a handshake and returns the serial of the hub's certificate and the TLS version.
async fn hub_certificate_serial(
    pki: &Pki,
    hub: &HubHandle,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (String, rustls::ProtocolVersion) {
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = raw_client(pki, versions).connect(name, tcp).await.unwrap();
    let connection = stream.get_ref().1;
    let leaf = &connection.peer_certificates().unwrap()[0];
    let serial = read_identity_der(leaf.as_ref()).unwrap().serial_hex;
    (serial, connection.protocol_version().unwrap())
}

#[tokio::test]
async fn renewed_hub_certificate_used_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();
    let tls13 = [&rustls::version::TLS13];

    let (before, _) = hub_certificate_serial(&pki, &hub, &tls13).await;
    assert_eq!(before, serial_of(&pki, "hub"));
    let renewal = chiso_certs::renew(&pki.dir, &pki.path("hub.crt"), None).unwrap();
    let (after, _) = hub_certificate_serial(&pki, &hub, &tls13).await;

    assert_ne!(after, before, "the hub still presents the old certificate");
    assert_eq!(after, renewal.new.serial_hex);
    let welcome = first_response(&pki, "agent-01", &hub).await;
    assert!(
        matches!(welcome, Ok(ResponseMsg::Welcome(_))),
        "{welcome:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn tls12_accepted_tls11_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let (_, version) = hub_certificate_serial(&pki, &hub, &[&rustls::version::TLS12]).await;
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);

    let tls12 = answer_to_client_hello(&hub, 0x0303).await;
    let tls11 = answer_to_client_hello(&hub, 0x0302).await;

    assert_eq!(
        tls12.first(),
        Some(&0x16),
        "TLS 1.2 hello not answered with a handshake: {tls12:?}"
    );
    assert!(tls11.len() >= 7, "the hub sent {tls11:?}");
    assert_eq!(tls11[0], 0x15, "expected a TLS alert record, got {tls11:?}");
    assert_eq!(tls11[5], 2, "expected a fatal alert, got {tls11:?}");
    assert_eq!(
        tls11[6], 70,
        "expected alert protocol_version (70), got {tls11:?}"
    );
    hub.stop().await;
}

async fn operator_client(
    pki: &Pki,
    stem: &str,
    hub: &HubHandle,
) -> anyhow::Result<OperatorClient<Channel>> {
    let channel = Endpoint::from_shared(hub.url())?
        .tls_config(pki.client_tls(stem)?)?
        .connect()
        .await?;
    Ok(OperatorClient::new(channel))
}

#[tokio::test]
async fn operator_service_requires_operator_identity() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    write_pem_pair(
        &pki.dir,
        "operator-ops",
        &pki.ca.issue_operator("ops", 30).unwrap(),
    )
    .unwrap();
    let mut anonymous = LeafRequest::valid_for_days("no identity", 5).unwrap();
    anonymous.client_auth = true;
    write_pem_pair(&pki.dir, "anonymous", &pki.ca.issue(&anonymous).unwrap()).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    // Agent 01 gets one record rejected: 25747 belongs to province 79.
    let mut foreign = dossier(1, "HCM-1", 1, DossierStatus::Received);
    if let Some(chiso_proto::v1::record::Body::Dossier(d)) = foreign.body.as_mut() {
        d.unit_code = "25747".into();
    }
    let mut client = sync_client(&pki, "agent-01", hub.addr).await.unwrap();
    let mut inbound = client
        .push(tokio_stream::iter(vec![hello(), batch(1, vec![foreign])]))
        .await
        .unwrap()
        .into_inner();
    inbound.next().await.unwrap().unwrap();
    let ack = inbound.next().await.unwrap().unwrap();
    assert!(matches!(ack.msg, Some(ResponseMsg::Ack(_))), "{ack:?}");

    let request = || ListRejectionsRequest {
        locality: String::new(),
        limit: 0,
    };
    let mut as_agent = operator_client(&pki, "agent-01", &hub).await.unwrap();
    let denied = as_agent.list_rejections(request()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let denied = as_agent
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    let without_identity = async {
        let mut client = operator_client(&pki, "anonymous", &hub).await?;
        anyhow::Ok(client.list_rejections(request()).await?)
    }
    .await;
    assert!(without_identity.is_err(), "{without_identity:?}");

    let mut as_operator = operator_client(&pki, "operator-ops", &hub).await.unwrap();
    let listed = as_operator
        .list_rejections(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.rejections.len(), 1, "{listed:?}");
    assert_eq!(listed.rejections[0].locality, "01");
    let rejection = listed.rejections[0].rejection.as_ref().unwrap();
    assert_eq!(rejection.key, "HCM-1");
    assert_eq!(rejection.code, RejectCode::UnitNotAllowed as i32);
    assert_eq!(rejection.field, "MaDonVi");

    let agents = as_operator
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agents.agents.len(), 1, "{agents:?}");
    assert_eq!(agents.agents[0].locality, "01");
    let expected = read_identity(&std::fs::read_to_string(pki.path("agent-01.crt")).unwrap())
        .unwrap()
        .not_after;
    assert_eq!(agents.agents[0].cert_not_after, expected);
    hub.stop().await;
}

/// Sends a ClientHello written by hand for `version` (rustls cannot offer TLS 1.1) and returns the
/// first bytes of the hub's reply. The hello offers what the hub needs for TLS 1.2 (an ECDHE-ECDSA
/// suite, X25519, ECDSA P-256 with SHA-256), so the version is the only thing that can differ.
async fn answer_to_client_hello(hub: &HubHandle, version: u16) -> Vec<u8> {
    let extensions: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d][..],
        &[0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        &[0x00, 0x17, 0x00, 0x00],
    ]
    .concat();
    let mut body = version.to_be_bytes().to_vec();
    body.extend([0x5a; 32]);
    body.extend([0x00, 0x00, 0x02, 0xc0, 0x2b, 0x01, 0x00]);
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);

    let mut tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut answer = vec![0; 7];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_exact(&mut answer),
    );
    read.await
        .expect("the hub did not answer within 10 s")
        .unwrap();
    answer
}

/// Returns the hub's watermark for `locality`, or 0 before its first batch.
fn hub_watermark(hub: &HubHandle, locality: &str) -> i64 {
    let connection = hub.store.reader().unwrap();
    connection
        .query_row(
            "SELECT coalesce(max(last_seq), 0) FROM agents WHERE locality = ?1",
            [locality],
            |row| row.get(0),
        )
        .unwrap()
}

/// Returns the highest sequence number the agent's outbox has assigned.
fn outbox_last_seq(outbox: &std::path::Path) -> i64 {
    let connection =
        rusqlite::Connection::open_with_flags(outbox, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    connection
        .query_row(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'outbox'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// Waits until the hub has committed everything the outbox numbered: 1,500 polls of 20 ms.
async fn wait_for_drain(hub: &HubHandle, outbox: &std::path::Path) {
    let target = outbox_last_seq(outbox);
    assert!(target > 0, "nothing was taken in");
    for _ in 0..1_500 {
        if hub_watermark(hub, "01") >= target {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "the hub reached sequence {} of {target} within 30 s",
        hub_watermark(hub, "01")
    );
}

fn ingest_sample(config: &std::path::Path, dir: &std::path::Path, month: &str, seed: u64) {
    let spec = chiso_agent::sample::SampleSpec {
        province: "01".into(),
        dossiers: 200,
        month: month.parse().unwrap(),
        seed,
        as_of: parse_portal_datetime("20261130235959").unwrap(),
    };
    let file = dir.join(format!("sample-{month}.json"));
    chiso_agent::sample::write_sample(&spec, chiso_proto::units::UnitCatalogue::official(), &file)
        .unwrap();
    let output = std::process::Command::new(chiso_tests::binary("chiso-agent"))
        .args(["ingest", "--config", config.to_str().unwrap()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_agent_uses_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = hub_with_revocation(&pki, dir.path(), true, false).await;
    let agent_dir = dir.path().join("agent");
    let config = chiso_tests::write_agent_config(&agent_dir, &pki, "01", &hub.url()).unwrap();
    let outbox = agent_dir.join("outbox.db");
    ingest_sample(&config, dir.path(), "2026-10", 1);
    let mut agent = tokio::process::Command::new(chiso_tests::binary("chiso-agent"))
        .args(["run", "--config", config.to_str().unwrap()])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_drain(&hub, &outbox).await;

    // Renew the agent's pair on disk and revoke the old certificate: the running agent's stream
    // ends at its next batch, and only a reconnect that reads the new files can go on.
    let old_serial = serial_of(&pki, "agent-01");
    let renewal = chiso_certs::renew(&pki.dir, &pki.path("agent-01.crt"), Some(60)).unwrap();
    revoke(
        &pki.dir,
        &old_serial,
        "agent 01, renewed",
        OffsetDateTime::now_utc(),
        30,
    )
    .unwrap();
    ingest_sample(&config, dir.path(), "2026-11", 2);
    wait_for_drain(&hub, &outbox).await;

    let stored_not_after: i64 = hub
        .store
        .reader()
        .unwrap()
        .query_row(
            "SELECT cert_not_after FROM agents WHERE locality = '01'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored_not_after, renewal.new.not_after);
    assert_ne!(renewal.new.serial_hex, old_serial);
    agent.start_kill().unwrap();
    let _ = agent.wait().await;
    hub.stop().await;
}
