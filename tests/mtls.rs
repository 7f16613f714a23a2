//! The hub's doors: mutual TLS with the right CA and an agent identity is required before any
//! handler runs, and an authenticated agent still cannot write another province's units.

use chiso_certs::{Ca, write_pem_pair};
use chiso_proto::v1::push_request::Msg as RequestMsg;
use chiso_proto::v1::push_response::Msg as ResponseMsg;
use chiso_proto::v1::sync_client::SyncClient;
use chiso_proto::v1::{
    Batch, Channel as FilingChannel, Dossier, DossierStatus, Hello, PushRequest, Record, RejectCode,
};
use chiso_proto::vntime::parse_portal_datetime;
use chiso_tests::{HubHandle, Pki, hub_config, start_hub, sync_client};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

fn hello() -> PushRequest {
    PushRequest {
        msg: Some(RequestMsg::Hello(Hello {
            agent_version: "test".into(),
            ..Hello::default()
        })),
    }
}

fn agents_seen(hub: &HubHandle) -> i64 {
    let connection = hub.store.reader().unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM agents", [], |row| row.get(0))
        .unwrap()
}

/// Opens a push stream and returns the first response, or the error that ended the attempt.
async fn first_response(
    client: &mut SyncClient<tonic::transport::Channel>,
) -> Result<ResponseMsg, tonic::Status> {
    let outbound = tokio_stream::iter(vec![hello()]);
    let mut inbound = client.push(outbound).await?.into_inner();
    match inbound.next().await {
        Some(Ok(response)) => Ok(response.msg.expect("responses carry a message")),
        Some(Err(status)) => Err(status),
        None => Err(tonic::Status::unknown("stream ended without a response")),
    }
}

#[tokio::test]
async fn client_without_certificate_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(pki.path("ca.crt")).unwrap(),
        ))
        .domain_name("localhost");
    let attempt = async {
        let channel = Endpoint::from_shared(hub.url())?
            .tls_config(tls)?
            .connect()
            .await?;
        let mut client = SyncClient::new(channel);
        anyhow::Ok(first_response(&mut client).await?)
    }
    .await;

    assert!(
        attempt.is_err(),
        "a client without a certificate got {attempt:?}"
    );
    assert_eq!(
        agents_seen(&hub),
        0,
        "the push handler ran for a client without a certificate"
    );
    hub.stop().await;
}

#[tokio::test]
async fn certificate_from_another_ca_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    // Same identity, same names, but signed by a CA the hub does not trust.
    let rogue_ca = Ca::generate("rogue CA").unwrap();
    write_pem_pair(
        &pki.dir,
        "rogue-01",
        &rogue_ca.issue_agent("01", 30).unwrap(),
    )
    .unwrap();
    let attempt = async {
        let mut client = sync_client(&pki, "rogue-01", hub.addr).await?;
        anyhow::Ok(first_response(&mut client).await?)
    }
    .await;

    assert!(
        attempt.is_err(),
        "a certificate from another CA got {attempt:?}"
    );
    assert_eq!(
        agents_seen(&hub),
        0,
        "the push handler ran for a foreign certificate"
    );
    hub.stop().await;
}

#[tokio::test]
async fn operator_identity_cannot_push() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &[]).unwrap();
    write_pem_pair(
        &pki.dir,
        "operator-ops",
        &pki.ca.issue_operator("ops", 30).unwrap(),
    )
    .unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    let mut client = sync_client(&pki, "operator-ops", hub.addr).await.unwrap();
    let status = first_response(&mut client).await.unwrap_err();

    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(agents_seen(&hub), 0);
    hub.stop().await;
}

#[tokio::test]
async fn record_for_another_province_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("certs"), &["01"]).unwrap();
    let hub = start_hub(hub_config(&pki, dir.path())).await.unwrap();

    // 25747 (Phường Thủ Dầu Một) belongs to province 79; 00004 (Phường Ba Đình) to 01.
    let dossier = |seq: u64, code: &str, unit: &str| Record {
        seq,
        body: Some(chiso_proto::v1::record::Body::Dossier(Dossier {
            code: code.into(),
            version: 1,
            unit_code: unit.into(),
            procedure_code: "1.001612".into(),
            channel: FilingChannel::Online as i32,
            status: DossierStatus::Received as i32,
            received_at: parse_portal_datetime("20261001080000").unwrap(),
            ..Dossier::default()
        })),
    };
    let batch = PushRequest {
        msg: Some(RequestMsg::Batch(Batch {
            batch_id: 1,
            records: vec![dossier(1, "HN-1", "00004"), dossier(2, "HCM-1", "25747")],
        })),
    };

    let mut client = sync_client(&pki, "agent-01", hub.addr).await.unwrap();
    let mut inbound = client
        .push(tokio_stream::iter(vec![hello(), batch]))
        .await
        .unwrap()
        .into_inner();
    let welcome = inbound.next().await.unwrap().unwrap().msg;
    assert!(
        matches!(welcome, Some(ResponseMsg::Welcome(_))),
        "{welcome:?}"
    );
    let Some(ResponseMsg::Ack(ack)) = inbound.next().await.unwrap().unwrap().msg else {
        panic!("expected an Ack");
    };

    assert_eq!(ack.committed_seq, 2);
    assert_eq!(ack.stored, 1);
    assert_eq!(ack.rejections.len(), 1);
    let rejection = &ack.rejections[0];
    assert_eq!(rejection.seq, 2);
    assert_eq!(rejection.key, "HCM-1");
    assert_eq!(rejection.code, RejectCode::UnitNotAllowed as i32);
    assert!(rejection.message.contains("25747"), "{}", rejection.message);

    let connection = hub.store.reader().unwrap();
    let foreign: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM dossiers WHERE unit_code = '25747' OR code = 'HCM-1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(foreign, 0, "the foreign record reached the dossiers table");
    let kept: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM dossiers WHERE code = 'HN-1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1);
    hub.stop().await;
}
