//! Scorecards of ministries and their units: the ministries table is apart from the country.

use chiso_proto::ministries::MinistryFile;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{
    Batch, Dossier, GetScoresResponse, IndicatorScore, Record, RejectCode, UnitScore,
};
use chiso_proto::vntime::parse_portal_datetime;
use rusqlite::Connection;

use super::*;
use crate::catalogue::Catalogue;
use crate::store::StoreHandle;

/// The built-in ministries with three units: two of the Ministry of Finance, one of Health.
const UNITS: &str = r#"
version = "test-units"
base = "ministries-2025"

[[unit]]
code = "TCT"
name = "Cục Thuế"
parent = "BTC"

[[unit]]
code = "KBNN"
name = "Kho bạc Nhà nước"
parent = "BTC"

[[unit]]
code = "CQLD"
name = "Cục Quản lý Dược"
parent = "BYT"
"#;

fn units() -> &'static UnitCatalogue {
    let file = MinistryFile::parse(UNITS, "test-units").unwrap();
    Box::leak(Box::new(UnitCatalogue::with_ministries(file).unwrap()))
}

/// (code, unit, channel, status, received, due, finished); channel 2 is online, status 9
/// processed, 4 processing. Times are Vietnam time.
type Row = (
    &'static str,
    &'static str,
    i32,
    i32,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[rustfmt::skip]
const HANOI: [Row; 2] = [
    ("H1", "00004", 2, 9, "20261002080000", "20261010170000", Some("20261008100000")),
    ("H2", "01", 1, 9, "20261003080000", "20261010170000", Some("20261009100000")),
];

// The Ministry of Finance's agent: its own dossier and its two units', on time except M3. M5
// belongs to a unit of the Ministry of Health and is rejected.
#[rustfmt::skip]
const FINANCE: [Row; 5] = [
    ("M1", "BTC", 1, 9, "20261002080000", "20261010170000", Some("20261005100000")),
    ("M2", "TCT", 2, 9, "20261003080000", "20261010170000", Some("20261006100000")),
    ("M3", "TCT", 2, 9, "20261004080000", "20261010170000", Some("20261020100000")),
    ("M4", "KBNN", 1, 4, "20261005080000", "20261110170000", None),
    ("M5", "CQLD", 1, 9, "20261006080000", "20261010170000", Some("20261007100000")),
];

// The Ministry of Health's agent: one late dossier filed in person.
#[rustfmt::skip]
const HEALTH: [Row; 1] = [
    ("Y1", "CQLD", 1, 9, "20261006080000", "20261010170000", Some("20261015100000")),
];

fn time(value: &str) -> i64 {
    parse_portal_datetime(value).unwrap()
}

fn batch(rows: &[Row]) -> Batch {
    let records = rows.iter().enumerate().map(|(index, row)| {
        let (code, unit, channel, status, received, due, finished) = *row;
        Record {
            seq: index as u64 + 1,
            body: Some(Body::Dossier(Dossier {
                code: code.to_string(),
                version: 1,
                unit_code: unit.to_string(),
                procedure_code: "1.001612".to_string(),
                channel,
                status,
                received_at: time(received),
                due_at: Some(time(due)),
                finished_at: finished.map(time),
                ..Dossier::default()
            })),
        }
    });
    Batch {
        batch_id: 1,
        records: records.collect(),
    }
}

async fn dataset(units: &'static UnitCatalogue) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&dir.path().join("hub.db"), units).unwrap();

    let ack = store.apply_batch("01", batch(&HANOI)).await.unwrap();
    assert_eq!(ack.stored, 2, "{:?}", ack.rejections);

    let ack = store.apply_batch("BTC", batch(&FINANCE)).await.unwrap();
    assert_eq!(ack.stored, 4, "{:?}", ack.rejections);
    assert_eq!(ack.rejections.len(), 1);
    assert_eq!(ack.rejections[0].key, "M5");
    assert_eq!(ack.rejections[0].code, RejectCode::UnitNotAllowed as i32);

    let ack = store.apply_batch("BYT", batch(&HEALTH)).await.unwrap();
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);

    (dir, store.reader().unwrap())
}

fn query(unit_code: &str, include_children: bool) -> ScoreQuery {
    ScoreQuery {
        unit_code: Some(unit_code.to_string()),
        period: "2026-10".parse().unwrap(),
        include_children,
        // 12:00 on 15 November 2026 in Vietnam: October is complete.
        as_of: time("20261115120000"),
    }
}

fn scores(
    conn: &Connection,
    units: &UnitCatalogue,
    code: &str,
    children: bool,
) -> GetScoresResponse {
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();
    compute(conn, units, &catalogue, &query(code, children)).unwrap()
}

fn on_time(unit: &UnitScore) -> (u64, u64) {
    let scored: &IndicatorScore = unit
        .indicators
        .iter()
        .find(|scored| scored.id == "DOSSIER_ON_TIME")
        .expect("the catalogue has DOSSIER_ON_TIME");
    (scored.numerator, scored.denominator)
}

fn find<'a>(units: &'a [UnitScore], code: &str) -> &'a UnitScore {
    units
        .iter()
        .find(|unit| unit.unit_code == code)
        .unwrap_or_else(|| panic!("unit {code} is listed"))
}

#[tokio::test]
async fn ministry_sums_its_units() {
    let units = units();
    let (_dir, conn) = dataset(units).await;

    let response = scores(&conn, units, "BTC", true);
    assert_eq!(response.unit_catalogue_version, units.version());
    let codes: Vec<&str> = response
        .units
        .iter()
        .map(|unit| unit.unit_code.as_str())
        .collect();
    assert_eq!(codes, ["BTC", "TCT", "KBNN"]);

    let finance = &response.units[0];
    assert_eq!(finance.level, "ministry");
    assert_eq!(finance.unit_name, "Bộ Tài chính");
    // M1, M2 and M4 on time, M3 late; M5 was rejected.
    assert_eq!(on_time(finance), (3, 4));
    assert_eq!((finance.rank, finance.rank_of), (1, 2));

    let tax = &response.units[1];
    assert_eq!(tax.level, "ministry_unit");
    assert_eq!(on_time(tax), (1, 2));
    let treasury = &response.units[2];
    assert_eq!(on_time(treasury), (1, 1));
    assert_eq!(tax.rank_of, 2);
    assert_eq!(treasury.rank_of, 2);

    let alone = scores(&conn, units, "TCT", true);
    assert_eq!(alone.units.len(), 1);
    assert_eq!(alone.units[0], *tax);
}

#[tokio::test]
async fn ministries_table_ranks_ministries() {
    let units = units();
    let (_dir, conn) = dataset(units).await;

    let response = scores(&conn, units, "MINISTRIES", true);
    assert_eq!(response.units.len(), 1 + 17);
    let all = &response.units[0];
    assert_eq!(all.unit_code, "MINISTRIES");
    assert_eq!(all.level, "ministries");
    assert_eq!(on_time(all), (3, 5));

    let finance = find(&response.units, "BTC");
    let health = find(&response.units, "BYT");
    assert_eq!(health.level, "ministry");
    assert_eq!(on_time(health), (0, 1));
    assert_eq!((finance.rank, finance.rank_of), (1, 2));
    assert_eq!((health.rank, health.rank_of), (2, 2));
    let idle = find(&response.units, "VPCP");
    assert_eq!((idle.rank, idle.rank_of), (0, 2));

    let alone = scores(&conn, units, "MINISTRIES", false);
    assert_eq!(alone.units.len(), 1);
    assert_eq!(alone.units[0].points, all.points);
}

#[tokio::test]
async fn country_leaves_out_ministries() {
    let units = units();
    let (_dir, conn) = dataset(units).await;

    let response = scores(&conn, units, "VN", true);
    assert_eq!(response.units.len(), 1 + 34);
    assert_eq!(on_time(&response.units[0]), (2, 2));
    assert!(
        response
            .units
            .iter()
            .all(|unit| !unit.level.starts_with("ministr"))
    );
    assert_eq!(on_time(find(&response.units, "01")), (2, 2));
}

#[tokio::test]
async fn sql_recount_agrees_for_ministries() {
    let units = units();
    let (_dir, conn) = dataset(units).await;
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();

    for (code, children) in [
        ("BTC", true),
        ("MINISTRIES", true),
        ("VN", false),
        ("CQLD", false),
    ] {
        let counters = compute(&conn, units, &catalogue, &query(code, children)).unwrap();
        let recount = compute_from(
            &SqlDossierSource::new(&conn),
            units,
            &catalogue,
            &query(code, children),
        )
        .unwrap();
        let fractions = |response: &GetScoresResponse| -> Vec<(String, (u64, u64))> {
            response
                .units
                .iter()
                .map(|unit| (unit.unit_code.clone(), on_time(unit)))
                .collect()
        };
        assert_eq!(fractions(&counters), fractions(&recount), "{code}");
    }
}
