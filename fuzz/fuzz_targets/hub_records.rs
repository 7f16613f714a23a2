//! Fuzzes the hub's side: any bytes decoded as a push message, then every record checked by the
//! shared rules and applied by the real store (SQLite in a temporary folder). Nothing may panic,
//! the store may refuse a batch only for its sequence numbers, and every record it does not
//! store must come back as a rejection with a reason.

#![no_main]

use std::sync::OnceLock;

use chiso_hub::store::StoreHandle;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::push_request::Msg;
use chiso_proto::v1::{PushRequest, RejectCode};
use chiso_proto::validate::{check_dossier, check_unit};
use libfuzzer_sys::fuzz_target;
use prost::Message;

struct Harness {
    runtime: tokio::runtime::Runtime,
    store: StoreHandle,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = StoreHandle::open(&dir.path().join("hub.db"), UnitCatalogue::official())
            .expect("a fresh store opens");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime starts");
        Harness {
            runtime,
            store,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = PushRequest::decode(data) else {
        return;
    };
    let Some(Msg::Batch(mut batch)) = request.msg else {
        return;
    };
    let catalogue = UnitCatalogue::official();
    for record in &batch.records {
        if let Some(chiso_proto::v1::record::Body::Dossier(dossier)) = &record.body {
            let _ = check_unit(catalogue, &dossier.unit_code, "01");
            let _ = check_dossier(dossier);
        }
    }

    // Sequence numbers are moved above the watermark, so that records are judged instead of
    // replayed. The input's own order is kept, so out-of-order batches still reach the store.
    let harness = harness();
    let base = harness
        .store
        .reader()
        .ok()
        .and_then(|conn| {
            conn.query_row("SELECT max(last_seq) FROM agents", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .ok()
        })
        .flatten()
        .unwrap_or(0) as u64;
    for record in &mut batch.records {
        record.seq = record.seq.saturating_add(base).min(i64::MAX as u64);
    }
    let records = batch.records.len();
    match harness
        .runtime
        .block_on(harness.store.apply_batch("01", batch))
    {
        Ok(ack) => {
            let settled = ack.stored as usize + ack.unchanged as usize + ack.rejections.len();
            assert_eq!(settled, records);
            for rejection in &ack.rejections {
                assert_ne!(rejection.code, RejectCode::Unspecified as i32);
                assert!(!rejection.message.is_empty());
            }
        }
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains("sequence number"), "{text}");
        }
    }
});
