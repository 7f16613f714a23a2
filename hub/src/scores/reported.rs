//! `dossier.reported`, the denominator of DOSSIER_SYNC: per unit and period, the larger of the
//! unit's own count of dossiers received and the count the hub stores.
//!
//! A unit's own count is what its agents reported in their latest per-day digests
//! (`reported_counts`, one row per agent, unit and Vietnam day of receipt), summed over the
//! period's days, rejected records included. The hub's count is the stored dossiers of the unit
//! with receipt in the period. A unit whose agent never sent a digest is thus judged against the
//! hub's own count, so missing reports never lower the indicator. Records the hub lacks lower it
//! only for their own unit. A province or the country is the sum of its units' maxima, never the
//! maximum of sums, so one unit's surplus cannot hide another's gap.

use std::collections::HashMap;

use rusqlite::{Connection, named_params};

use super::ScoreError;
use super::source::{Grouping, Scope, Window};

/// Returns `dossier.reported` within a scope and window, per province or unit code.
///
/// With [`Grouping::Unit`] each code is a unit: a commune, or a province for its own dossiers
/// only. With [`Grouping::Province`] each code is a province, and its value is the sum of the
/// maxima of its units, its own included. Codes with neither a report nor a stored dossier in
/// the window are missing from the map. Like `CountSource::count`, [`Scope::Country`] covers
/// every stored row, ministries' included, and leaves the choice of codes to the caller.
pub fn dossier_reported(
    conn: &Connection,
    scope: Scope<'_>,
    grouping: Grouping,
    window: Window,
) -> Result<HashMap<String, u64>, ScoreError> {
    let sql = query_sql(scope, grouping);
    let mut statement = conn.prepare_cached(&sql)?;
    let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, u64)> {
        let count: i64 = row.get(1)?;
        Ok((row.get(0)?, u64::try_from(count).unwrap_or(0)))
    };
    let rows = match scope {
        Scope::Province(code) => statement.query_map(
            named_params! {":first": window.first, ":end": window.end, ":scope": code},
            read,
        )?,
        Scope::Country => statement.query_map(
            named_params! {":first": window.first, ":end": window.end},
            read,
        )?,
    };
    Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
}

/// Builds the query: reported and stored counts per unit, the larger of the two per unit, then
/// their sum per group. Both tables carry `province_code` and `unit_code`. A province scope reads
/// both through their (province, day) indexes; the country scope scans both tables.
fn query_sql(scope: Scope<'_>, grouping: Grouping) -> String {
    let group = match grouping {
        Grouping::Province => "province_code",
        Grouping::Unit => "unit_code",
    };
    let scope_filter = match scope {
        Scope::Country => "",
        Scope::Province(_) => "AND province_code = :scope",
    };
    format!(
        "WITH per_source AS (
             SELECT province_code, unit_code,
                    SUM(agent_count + rejected_count) AS reported, 0 AS stored
             FROM reported_counts
             WHERE day BETWEEN :first AND :end {scope_filter}
             GROUP BY province_code, unit_code
             UNION ALL
             SELECT province_code, unit_code, 0, COUNT(*)
             FROM dossiers
             WHERE received_day BETWEEN :first AND :end {scope_filter}
             GROUP BY province_code, unit_code
         ),
         per_unit AS (
             SELECT province_code, unit_code, MAX(SUM(reported), SUM(stored)) AS larger
             FROM per_source
             GROUP BY province_code, unit_code
         )
         SELECT {group}, SUM(larger) FROM per_unit GROUP BY {group}"
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chiso_proto::digest::{DayDigest, KIND_DOSSIER};
    use chiso_proto::units::UnitCatalogue;
    use chiso_proto::v1::record::Body;
    use chiso_proto::v1::{
        Batch, Channel, DigestBatch, Dossier, DossierStatus, Record, UnitDayDigest,
    };
    use chiso_proto::vntime::parse_portal_datetime;

    use super::*;
    use crate::store::StoreHandle;

    /// Days of receipt in October 2026, Vietnam time.
    const OCT_5: u32 = 20261005;
    const OCT_6: u32 = 20261006;
    const NOV_2: u32 = 20261102;

    /// Phường Ba Đình and Phường Ngọc Hà of Hà Nội (01), and Phường Thủ Dầu Một of province 79.
    const BA_DINH: &str = "00004";
    const NGOC_HA: &str = "00008";
    const THU_DAU_MOT: &str = "25747";

    fn open(dir: &Path) -> StoreHandle {
        StoreHandle::open(&dir.join("hub.db"), UnitCatalogue::official()).unwrap()
    }

    fn dossier(code: &str, unit_code: &str, day: u32) -> Dossier {
        Dossier {
            code: code.to_string(),
            version: 1,
            unit_code: unit_code.to_string(),
            procedure_code: "1.001612".to_string(),
            channel: Channel::Online as i32,
            status: DossierStatus::Processing as i32,
            received_at: parse_portal_datetime(&format!("{day}080000")).unwrap(),
            ..Dossier::default()
        }
    }

    /// Stores `count` dossiers of a unit and day from `locality`'s agent, as one batch whose
    /// sequence numbers start at `first_seq`.
    async fn store_dossiers(
        store: &StoreHandle,
        locality: &str,
        first_seq: u64,
        unit_code: &str,
        day: u32,
        count: u64,
    ) {
        let records = (first_seq..first_seq + count)
            .map(|seq| Record {
                seq,
                body: Some(Body::Dossier(dossier(
                    &format!("HS-{unit_code}-{day}-{seq}"),
                    unit_code,
                    day,
                ))),
            })
            .collect();
        let batch = Batch {
            batch_id: first_seq,
            records,
        };
        let ack = store.apply_batch(locality, batch).await.unwrap();
        assert_eq!(u64::from(ack.stored), count, "the store took every dossier");
    }

    /// Builds a digest entry that reports `count` records for the hub and `rejected` more.
    fn reported(unit_code: &str, day: u32, count: u64, rejected: u64) -> UnitDayDigest {
        let mut digest = DayDigest::default();
        for index in 0..count {
            digest.add(KIND_DOSSIER, &format!("{unit_code}-{day}-{index}"), 1);
        }
        UnitDayDigest {
            unit_code: unit_code.to_string(),
            day,
            count: digest.count,
            hash: digest.hash,
            rejected,
        }
    }

    /// Sends `locality`'s digest of the listed unit-days, which the hub stores as reported counts.
    async fn send_digest(store: &StoreHandle, locality: &str, days: Vec<UnitDayDigest>) {
        let digest = DigestBatch {
            digest_id: 1,
            first_day: 0,
            last_day: 0,
            days,
        };
        store.reconcile(locality, digest).await.unwrap();
    }

    fn window(period: &str) -> Window {
        let as_of = parse_portal_datetime("20261231235959").unwrap();
        Window::resolve(period.parse().unwrap(), as_of).unwrap()
    }

    /// Fills the store. In October, Hà Nội's Ba Đình reported 3 + 1 rejected on the 5th and 5 on
    /// the 6th (9 in all) and has 4 stored. Ngọc Hà reported 2 and has 6 stored. The province's
    /// own unit reported nothing and has 2 stored. Province 79 reported 7 for Thủ Dầu Một and has
    /// none stored. November adds 10 stored dossiers to Ba Đình, outside the October window.
    async fn fill(store: &StoreHandle) {
        store_dossiers(store, "01", 1, BA_DINH, OCT_5, 4).await;
        store_dossiers(store, "01", 5, NGOC_HA, OCT_6, 6).await;
        store_dossiers(store, "01", 11, "01", OCT_6, 2).await;
        store_dossiers(store, "01", 13, BA_DINH, NOV_2, 10).await;
        send_digest(
            store,
            "01",
            vec![
                reported(BA_DINH, OCT_5, 3, 1),
                reported(BA_DINH, OCT_6, 5, 0),
                reported(NGOC_HA, OCT_6, 2, 0),
            ],
        )
        .await;
        send_digest(store, "79", vec![reported(THU_DAU_MOT, OCT_5, 7, 0)]).await;
    }

    #[tokio::test]
    async fn unit_takes_larger_of_reported_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let conn = store.reader().unwrap();

        let units =
            dossier_reported(&conn, Scope::Country, Grouping::Unit, window("2026-10")).unwrap();

        assert_eq!(
            units[BA_DINH], 9,
            "reported 3 + 1 rejected + 5 against 4 stored"
        );
        assert_eq!(units[NGOC_HA], 6, "reported 2 against 6 stored");
        assert_eq!(units["01"], 2, "never reported: the stored count");
        assert_eq!(units[THU_DAU_MOT], 7, "reported 7 with nothing stored");
        assert_eq!(units.len(), 4, "{units:?}");
    }

    #[tokio::test]
    async fn province_sums_unit_maxima() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let conn = store.reader().unwrap();
        let october = window("2026-10");

        let provinces =
            dossier_reported(&conn, Scope::Country, Grouping::Province, october).unwrap();

        // 9 + 6 + 2, not max(3 + 1 + 5 + 2, 4 + 6 + 2) = 12.
        assert_eq!(provinces["01"], 17);
        assert_eq!(provinces["79"], 7);
        assert_eq!(provinces.len(), 2, "{provinces:?}");
        let ha_noi =
            dossier_reported(&conn, Scope::Province("01"), Grouping::Unit, october).unwrap();
        assert_eq!(ha_noi.len(), 3, "only Hà Nội's units: {ha_noi:?}");
        assert_eq!(ha_noi[BA_DINH], 9);
        let ha_noi_total =
            dossier_reported(&conn, Scope::Province("01"), Grouping::Province, october).unwrap();
        assert_eq!(ha_noi_total, HashMap::from([("01".to_string(), 17)]));
    }

    #[tokio::test]
    async fn window_bounds_days_of_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let conn = store.reader().unwrap();

        let november =
            dossier_reported(&conn, Scope::Country, Grouping::Unit, window("2026-11")).unwrap();
        assert_eq!(november, HashMap::from([(BA_DINH.to_string(), 10)]));

        // The fourth quarter covers both months; Ba Đình's maximum is taken over the whole
        // window: reported 9 against 4 + 10 stored.
        let quarter =
            dossier_reported(&conn, Scope::Country, Grouping::Unit, window("2026-Q4")).unwrap();
        assert_eq!(quarter[BA_DINH], 14);

        // A running period ends at the as-of day: on 5 October only the 5th counts.
        let as_of = parse_portal_datetime("20261005235959").unwrap();
        let first_days = Window::resolve("2026-10".parse().unwrap(), as_of).unwrap();
        let early = dossier_reported(&conn, Scope::Country, Grouping::Unit, first_days).unwrap();
        assert_eq!(
            early[BA_DINH], 4,
            "reported 3 + 1 rejected against 4 stored"
        );
        assert!(!early.contains_key(NGOC_HA), "{early:?}");
    }

    #[tokio::test]
    async fn newer_digest_replaces_reported_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        send_digest(&store, "01", vec![reported(BA_DINH, OCT_6, 1, 0)]).await;
        let conn = store.reader().unwrap();

        let units =
            dossier_reported(&conn, Scope::Country, Grouping::Unit, window("2026-10")).unwrap();

        // The 6th now reports 1 instead of 5: 3 + 1 + 1 = 5, still above 4 stored.
        assert_eq!(units[BA_DINH], 5);
    }

    #[tokio::test]
    async fn empty_store_has_no_codes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let conn = store.reader().unwrap();

        let units =
            dossier_reported(&conn, Scope::Country, Grouping::Province, window("2026-10")).unwrap();

        assert!(units.is_empty(), "{units:?}");
    }
}
