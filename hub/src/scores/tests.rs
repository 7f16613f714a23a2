use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Dossier, GetScoresResponse, IndicatorScore, Record, UnitScore};
use chiso_proto::vntime::parse_portal_datetime;
use rusqlite::Connection;

use super::*;
use crate::catalogue::Catalogue;
use crate::store::StoreHandle;

/// The two indicators the hub had built in before catalogues were data, as a catalogue file.
/// The tests written for them run unchanged on it.
const CORE: &str = r#"
version = "dvcqg-2026-core"
title = "DOSSIER_ON_TIME and ONLINE_FILING only"
total_points = 26
bands_source = "none"
bands_confidence = "low"

[[groups]]
id = "2"
name_vi = "Tiến độ giải quyết"
name_en = "Progress of handling"
max_points = 20
source = "test"
confidence = "high"

[[groups]]
id = "3"
name_vi = "Dịch vụ công trực tuyến"
name_en = "Online public services"
max_points = 6
source = "test"
confidence = "medium"

[[indicators]]
id = "DOSSIER_ON_TIME"
group = "2"
name_vi = "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn"
name_en = "Dossiers handled early or on time"
numerator = "dossier.on_time"
denominator = "dossier.handled"
period = "handling"
points = 20
rule = "proportional"
zero_denominator = "not_assessed"
source = "test"
confidence = "medium-high"

[[indicators]]
id = "ONLINE_FILING"
group = "3"
name_vi = "Tỷ lệ hồ sơ nộp trực tuyến"
name_en = "Dossiers filed online"
numerator = "dossier.online"
denominator = "dossier.received"
period = "intake"
points = 6
rule = "full_at"
threshold = 0.5
zero_denominator = "not_assessed"
source = "test"
confidence = "medium"
"#;

fn core() -> Catalogue {
    Catalogue::parse(CORE, "core (test)").unwrap()
}

/// One dossier of the dataset: code, unit, channel, status, received, due, finished.
type Row = (
    &'static str,
    &'static str,
    i32,
    i32,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

// Times are Vietnam time (yyyyMMddHHmmss). Channel 1 is in person, 2 online. Statuses:
// 2 received, 3 not accepted, 4 processing, 5 supplement requested, 7 withdrawn, 8 stopped,
// 9 processed, 10 returned. Each comment gives the case for October 2026, judged at 31 October.
#[rustfmt::skip]
const HANOI: [Row; 18] = [
    // Phường Ba Đình (00004)
    // received 23:30 on 30 Sep (September), finished 1 Oct before its due day: on time
    ("A0", "00004", 2, 10, "20260930233000", Some("20261005170000"), Some("20261001090000")),
    // early
    ("A1", "00004", 2, 10, "20261002080000", Some("20261010170000"), Some("20261008100000")),
    // finished on the due day, later in the day than the due time: on time
    ("A2", "00004", 1, 9, "20261003080000", Some("20261010080000"), Some("20261010230000")),
    // late
    ("A3", "00004", 2, 10, "20261005080000", Some("20261012170000"), Some("20261015100000")),
    // no due date: on time
    ("A4", "00004", 1, 10, "20261006080000", None, Some("20261020100000")),
    // unfinished, due 20 Oct: late
    ("A5", "00004", 2, 4, "20261007080000", Some("20261020170000"), None),
    // received 00:30 on 1 Oct (October, though still 30 Sep in UTC), due in November: on time
    ("A6", "00004", 2, 2, "20261001003000", Some("20261105170000"), None),
    // Phường Ngọc Hà (00008)
    // carried over from September, finished on time in October
    ("B1", "00008", 1, 10, "20260920080000", Some("20261005170000"), Some("20261003100000")),
    // finished in September: outside October entirely
    ("B2", "00008", 2, 10, "20260910080000", Some("20260920170000"), Some("20260918100000")),
    // carried over from September, still open, due 2 Oct: late
    ("B3", "00008", 2, 5, "20260925080000", Some("20261002170000"), None),
    // statuses 3, 7 and 8 leave on-time counting but stay in online filing
    ("B4", "00008", 2, 3, "20261012080000", None, None),
    ("B5", "00008", 1, 7, "20261013080000", Some("20261020170000"), Some("20261014100000")),
    ("B6", "00008", 2, 8, "20261014080000", Some("20261025170000"), None),
    // unfinished, due 25 Oct: late
    ("B7", "00008", 1, 2, "20261015080000", Some("20261025170000"), None),
    // Hà Nội's own dossiers (01)
    // unfinished, due on the period's last day: on time
    ("P1", "01", 1, 4, "20261020080000", Some("20261031170000"), None),
    // finished 2 Nov, after the period: judged open at 31 Oct, due 10 Nov: on time
    ("P2", "01", 2, 10, "20261028080000", Some("20261110170000"), Some("20261102100000")),
    // received in November: outside October
    ("P3", "01", 2, 2, "20261101080000", Some("20261110170000"), None),
    // on time
    ("P4", "01", 1, 9, "20261021080000", Some("20261030170000"), Some("20261022100000")),
];

// Phường Thủ Dầu Một (25747) of Hồ Chí Minh City (79): filed in person, late.
#[rustfmt::skip]
const HO_CHI_MINH: Row =
    ("C1", "25747", 1, 10, "20261010080000", Some("20261020170000"), Some("20261025100000"));

fn time(value: &str) -> i64 {
    parse_portal_datetime(value).unwrap()
}

fn record(seq: u64, row: &Row) -> Record {
    let (code, unit, channel, status, received, due, finished) = *row;
    Record {
        seq,
        body: Some(Body::Dossier(Dossier {
            code: code.to_string(),
            version: 1,
            unit_code: unit.to_string(),
            procedure_code: "1.001612".to_string(),
            channel,
            status,
            received_at: time(received),
            due_at: due.map(time),
            finished_at: finished.map(time),
            ..Dossier::default()
        })),
    }
}

async fn dataset() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&dir.path().join("hub.db"), UnitCatalogue::official()).unwrap();

    let records: Vec<Record> = HANOI
        .iter()
        .enumerate()
        .map(|(index, row)| record(index as u64 + 1, row))
        .collect();
    let batch = Batch {
        batch_id: 1,
        records,
    };
    let ack = store.apply_batch("01", batch).await.unwrap();
    assert_eq!(ack.stored, HANOI.len() as u32, "{:?}", ack.rejections);

    let batch = Batch {
        batch_id: 1,
        records: vec![record(1, &HO_CHI_MINH)],
    };
    let ack = store.apply_batch("79", batch).await.unwrap();
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);

    let reader = store.reader().unwrap();
    (dir, reader)
}

fn query(unit_code: Option<&str>, period: &str, include_children: bool) -> ScoreQuery {
    ScoreQuery {
        unit_code: unit_code.map(str::to_string),
        period: period.parse().unwrap(),
        include_children,
        // 12:00 on 15 November 2026 in Vietnam: October is complete.
        as_of: time("20261115120000"),
    }
}

fn scores(
    conn: &Connection,
    unit: Option<&str>,
    period: &str,
    children: bool,
) -> GetScoresResponse {
    compute(
        conn,
        UnitCatalogue::official(),
        &core(),
        &query(unit, period, children),
    )
    .unwrap()
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("an assessed indicator has a value");
    assert!(
        (actual - expected).abs() < 1e-12,
        "expected {expected}, got {actual}"
    );
}

/// Checks the counts, rate and points of one indicator.
fn assert_indicator(scored: &IndicatorScore, counts: (u64, u64), rate: f64, points: f64) {
    let fraction = (scored.numerator, scored.denominator);
    assert_eq!(fraction, counts, "{}", scored.id);
    assert!(scored.assessed, "{}", scored.id);
    assert_close(scored.rate, rate);
    assert_close(scored.points, points);
}

fn assert_not_assessed(unit: &UnitScore) {
    assert_eq!(unit.indicators.len(), 2);
    for scored in &unit.indicators {
        assert!(!scored.assessed, "{}", scored.id);
        assert_eq!(scored.rate, None);
        assert_eq!(scored.points, None);
        assert_eq!((scored.numerator, scored.denominator), (0, 0));
    }
    assert_eq!(unit.points, 0.0);
    assert_eq!(unit.max_points, 0.0);
}

fn find<'a>(units: &'a [UnitScore], code: &str) -> &'a UnitScore {
    units
        .iter()
        .find(|unit| unit.unit_code == code)
        .unwrap_or_else(|| panic!("unit {code} is listed"))
}

#[tokio::test]
async fn commune_scores_october() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, Some("00004"), "2026-10", true);
    assert_eq!(response.units.len(), 1);
    let ba_dinh = &response.units[0];
    assert_eq!(ba_dinh.level, "commune");
    assert_eq!(ba_dinh.unit_name, "Phường Ba Đình");
    assert_eq!(ba_dinh.indicators[0].id, "DOSSIER_ON_TIME");
    assert_eq!(ba_dinh.indicators[1].id, "ONLINE_FILING");
    // On time: A0, A1, A2, A4, A6 of A0..A6 = 5/7; 20 × 5/7 = 14.285714…
    assert_indicator(
        &ba_dinh.indicators[0],
        (5, 7),
        5.0 / 7.0,
        14.285714285714286,
    );
    // Online: A1, A3, A5, A6 of A1..A6 = 4/6 ≥ 50%, so the full 6 points.
    assert_indicator(&ba_dinh.indicators[1], (4, 6), 4.0 / 6.0, 6.0);
    // 14.285714… + 6, out of 20 + 6.
    assert_close(Some(ba_dinh.points), 20.285714285714286);
    assert_eq!(ba_dinh.max_points, 26.0);

    let response = scores(&conn, Some("00008"), "2026-10", false);
    let ngoc_ha = &response.units[0];
    // On time: B1 of B1, B3, B7 = 1/3 (B2 finished in September, B4..B6 left out by status);
    // 20 × 1/3 = 6.666…
    assert_indicator(&ngoc_ha.indicators[0], (1, 3), 1.0 / 3.0, 6.666666666666667);
    // Online: B4, B6 of B4..B7 = 2/4 = 50%, exactly the threshold: 6 × 0.5 / 0.5 = 6.
    assert_indicator(&ngoc_ha.indicators[1], (2, 4), 0.5, 6.0);
}

#[tokio::test]
async fn province_sums_counts_not_scores() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, Some("01"), "2026-10", true);
    // The province first, then its 126 communes.
    assert_eq!(response.units.len(), 1 + 126);
    let hanoi = &response.units[0];
    assert_eq!(hanoi.unit_code, "01");
    assert_eq!(hanoi.unit_name, "Thành phố Hà Nội");
    assert_eq!(hanoi.level, "province");
    // On time: 00004 5/7 + 00008 1/3 + own P1, P2, P4 3/3 = 9/13; 20 × 9/13 = 13.846153…
    // (averaging the three units' points would give (14.29 + 6.67 + 20) / 3 = 13.65).
    assert_indicator(
        &hanoi.indicators[0],
        (9, 13),
        9.0 / 13.0,
        13.846153846153847,
    );
    // Online: 4/6 + 2/4 + own P2 1/3 = 7/13 = 53.8% ≥ 50%: 6.
    assert_indicator(&hanoi.indicators[1], (7, 13), 7.0 / 13.0, 6.0);
    assert_close(Some(hanoi.points), 19.846153846153847);
    assert_eq!(hanoi.max_points, 26.0);

    let ba_dinh = find(&response.units, "00004");
    assert_indicator(
        &ba_dinh.indicators[0],
        (5, 7),
        5.0 / 7.0,
        14.285714285714286,
    );
    let ngoc_ha = find(&response.units, "00008");
    assert_indicator(&ngoc_ha.indicators[1], (2, 4), 0.5, 6.0);

    // Phường Giảng Võ (00025) has no dossiers: listed, not assessed.
    assert_not_assessed(find(&response.units, "00025"));
}

#[tokio::test]
async fn province_own_dossiers_count() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, Some("01"), "2026-10", true);
    let province = &response.units[0];
    let communes = &response.units[1..];
    let to_handle: u64 = communes.iter().map(|u| u.indicators[0].denominator).sum();
    let online: u64 = communes.iter().map(|u| u.indicators[1].numerator).sum();
    // 13 dossiers to handle in the province, 7 + 3 in communes: P1, P2 and P4 are its own.
    assert_eq!(province.indicators[0].denominator - to_handle, 3);
    // 7 filed online in the province, 4 + 2 in communes: P2 is its own.
    assert_eq!(province.indicators[1].numerator - online, 1);

    let alone = scores(&conn, Some("01"), "2026-10", false);
    assert_eq!(alone.units.len(), 1);
    assert_eq!(alone.units[0], *province);
}

#[tokio::test]
async fn country_lists_all_provinces() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, None, "2026-10", true);
    assert_eq!(response.units.len(), 1 + 34);
    assert_eq!(response.period, "2026-10");
    assert_eq!(response.catalogue_version, "dvcqg-2026-core");
    assert_eq!(
        response.unit_catalogue_version,
        UnitCatalogue::official().version()
    );
    assert!(response.computed_at_unix_ms > 0);

    let country = &response.units[0];
    assert_eq!(country.unit_code, "VN");
    assert_eq!(country.unit_name, "Việt Nam");
    assert_eq!(country.level, "country");
    // On time: Hà Nội 9/13 + Hồ Chí Minh City's late C1 0/1 = 9/14; 20 × 9/14 = 12.857142…
    assert_indicator(
        &country.indicators[0],
        (9, 14),
        9.0 / 14.0,
        12.857142857142858,
    );
    // Online: 7/13 + 0/1 = 7/14 = 50%: 6.
    assert_indicator(&country.indicators[1], (7, 14), 0.5, 6.0);

    // One late dossier filed in person: assessed, with 0 points for each indicator.
    let hcmc = find(&response.units, "79");
    assert_eq!(hcmc.level, "province");
    assert_indicator(&hcmc.indicators[0], (0, 1), 0.0, 0.0);
    assert_indicator(&hcmc.indicators[1], (0, 1), 0.0, 0.0);
    assert_eq!(hcmc.points, 0.0);
    assert_eq!(hcmc.max_points, 26.0);

    let hanoi = find(&response.units, "01");
    assert_eq!(hanoi.indicators[0].denominator, 13);
    // Đà Nẵng (48) has no dossiers.
    assert_not_assessed(find(&response.units, "48"));

    let by_code = scores(&conn, Some("VN"), "2026-10", false);
    assert_eq!(by_code.units[0], *country);
}

#[tokio::test]
async fn vietnam_day_decides_month() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, Some("00004"), "2026-09", false);
    let ba_dinh = &response.units[0];
    // September holds only A0 (23:30 on 30 Sep). A6, received at 00:30 on 1 Oct Vietnam time
    // (17:30 on 30 Sep UTC), belongs to October. A0 finished on 1 Oct, after September's end,
    // so it is judged open at 30 Sep with its due day 5 Oct: on time. 1/1 → 20 and 6 points.
    assert_indicator(&ba_dinh.indicators[0], (1, 1), 1.0, 20.0);
    assert_indicator(&ba_dinh.indicators[1], (1, 1), 1.0, 6.0);
}

#[tokio::test]
async fn running_month_ends_at_as_of() {
    let (_dir, conn) = dataset().await;
    let mut running = query(Some("00004"), "2026-10", false);
    running.as_of = time("20261016100000");

    let response = compute(&conn, UnitCatalogue::official(), &core(), &running).unwrap();
    let ba_dinh = &response.units[0];
    // Judged at 16 Oct: A3, finished 15 Oct after its due day 12 Oct, is the only late one.
    // A4 (finishes 20 Oct, no due day), A5 (due 20 Oct) and A6 (due 5 Nov) are open and not
    // yet due. 6/7; 20 × 6/7 = 17.142857…
    assert_indicator(
        &ba_dinh.indicators[0],
        (6, 7),
        6.0 / 7.0,
        17.142857142857142,
    );
    // Received 1 to 16 Oct: A1..A6, of which A1, A3, A5, A6 online.
    assert_indicator(&ba_dinh.indicators[1], (4, 6), 4.0 / 6.0, 6.0);
}

#[tokio::test]
async fn future_month_and_unknown_unit_fail() {
    let (_dir, conn) = dataset().await;
    let catalogue = UnitCatalogue::official();

    let error = compute(
        &conn,
        catalogue,
        &core(),
        &query(Some("01"), "2026-12", false),
    )
    .unwrap_err();
    assert!(
        matches!(error, ScoreError::PeriodInFuture { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("2026-12"), "{message}");
    assert!(message.contains("2026-11-15"), "{message}");

    let error = compute(
        &conn,
        catalogue,
        &core(),
        &query(Some("99999"), "2026-10", false),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ScoreError::UnknownUnit { code } if code == "99999"),
        "{error}"
    );
}

#[tokio::test]
async fn empty_period_not_assessed() {
    let (_dir, conn) = dataset().await;

    let response = scores(&conn, Some("00004"), "2026-08", false);
    assert_not_assessed(&response.units[0]);
}

fn full_scores(
    conn: &Connection,
    unit: Option<&str>,
    period: &str,
    children: bool,
) -> GetScoresResponse {
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();
    compute(
        conn,
        UnitCatalogue::official(),
        &catalogue,
        &query(unit, period, children),
    )
    .unwrap()
}

fn indicator<'a>(unit: &'a UnitScore, id: &str) -> &'a IndicatorScore {
    unit.indicators
        .iter()
        .flat_map(|indicator| std::iter::once(indicator).chain(&indicator.parts))
        .find(|indicator| indicator.id == id)
        .unwrap_or_else(|| panic!("indicator {id} is listed"))
}

fn group<'a>(unit: &'a UnitScore, id: &str) -> &'a chiso_proto::v1::GroupScore {
    unit.groups.iter().find(|group| group.id == id).unwrap()
}

#[tokio::test]
async fn full_catalogue_commune_october() {
    let (_dir, conn) = dataset().await;
    let response = full_scores(&conn, Some("00004"), "2026-10", false);
    assert_eq!(response.catalogue_version, "dvcqg-2026");
    assert_eq!(response.catalogue_max_points, 100.0);
    assert_eq!(
        response.unconfirmed_indicators,
        vec!["ONLINE_SERVICE".to_string()]
    );
    assert_eq!(response.bands.len(), 4);
    let ba_dinh = &response.units[0];

    // The same counts and points as with the two built-in definitions.
    assert_indicator(
        indicator(ba_dinh, "DOSSIER_ON_TIME"),
        (5, 7),
        5.0 / 7.0,
        14.285714285714286,
    );
    assert_indicator(indicator(ba_dinh, "ONLINE_FILING"), (4, 6), 4.0 / 6.0, 6.0);

    // ONLINE_FILING is part 3.3 of ONLINE_SERVICE, whose rule is unconfirmed; 3.1 and 3.2 count
    // procedures, of which there are none, so they are not assessed.
    let online = indicator(ba_dinh, "ONLINE_SERVICE");
    assert!(online.unconfirmed);
    assert_eq!(online.parts.len(), 3);
    assert_close(online.points, 6.0);
    assert_eq!(online.max_points, 12.0);
    let offered = indicator(ba_dinh, "ONLINE_SERVICE_OFFERED");
    assert!(!offered.assessed);
    assert_eq!((offered.numerator, offered.denominator), (0, 0));
    let used = indicator(ba_dinh, "ONLINE_SERVICE_USED");
    assert!(!used.assessed);
    assert_eq!((used.numerator, used.denominator), (0, 0));

    // A1..A6 were received in October, none with an electronic result, digitized, linked to a
    // personal repository or using the population database.
    for id in [
        "ORIGINAL_RESULT_AVAILABLE",
        "SO_HOA_GIAY_TO_GIAI_QUYET",
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE",
        "CITIZEN_DATA_CONNECTED_DOSSIER",
    ] {
        let scored = indicator(ba_dinh, id);
        assert_indicator(scored, (0, 6), 0.0, 0.0);
    }
    assert_close(indicator(ba_dinh, "ELECTRONIC_CERTIFIED_COPY").points, 2.0);
    // No fee-bearing dossier: a zero denominator counts as 0 in the payment formula.
    let paid = indicator(ba_dinh, "PAYMENT_DOSSIER_ONLINE");
    assert!(paid.assessed);
    assert_eq!((paid.numerator, paid.denominator), (0, 0));
    assert_close(paid.points, 0.0);
    // Satisfied: on time at 31 October with no bad rating or complaint: A1, A2, A4, A6 of the
    // six received, 4/6 against a full mark at 90%.
    assert_indicator(
        indicator(ba_dinh, "DOSSIER_RECEIVING_SATISFACTION"),
        (4, 6),
        4.0 / 6.0,
        6.0 * (4.0 / 6.0) / 0.9,
    );
    // No feedback at all: both petition indicators give full points.
    for id in [
        "PETITION_PROCESSING_ON_TIME",
        "PETITION_HANDLING_SATISFACTION",
    ] {
        let scored = indicator(ba_dinh, id);
        assert_eq!((scored.numerator, scored.denominator), (0, 0));
        assert_close(scored.points, 6.0);
    }
    // No digest reported more than the six stored, so every dossier received counts as synced.
    assert_indicator(indicator(ba_dinh, "DOSSIER_SYNC"), (6, 6), 1.0, 6.0);

    // Groups: 0, 14.29, 6, 2 (fixed copy points), 4.44 + 12 and 0.
    // Group 1 holds DOSSIER_SYNC alone, as no procedure was announced or made public.
    assert_close(Some(group(ba_dinh, "1").points), 6.0);
    assert_eq!(group(ba_dinh, "1").assessed_max_points, 6.0);
    assert_close(Some(group(ba_dinh, "2").points), 14.285714285714286);
    assert!(group(ba_dinh, "3").unconfirmed);
    assert_close(Some(group(ba_dinh, "4").points), 2.0);
    assert_eq!(
        group(ba_dinh, "4").assessed_max_points,
        6.0 + 4.0 + 2.0 + 2.0 + 4.0 + 2.0
    );
    assert_close(
        Some(group(ba_dinh, "5").points),
        6.0 * (4.0 / 6.0) / 0.9 + 12.0,
    );
    assert!(group(ba_dinh, "6").assessed);
    // All three terms are assessed (a zero denominator counts as 0 in the formula), so the
    // assessed maximum is the cap: min(10, 6 + 2 + 2.5).
    assert_eq!(group(ba_dinh, "6").assessed_max_points, 10.0);
    assert!(
        group(ba_dinh, "6")
            .formula
            .starts_with("min(10, 6 × PAYMENT_DOSSIER_ONLINE")
    );

    assert_close(
        Some(ba_dinh.points),
        6.0 + 14.285714285714286 + 6.0 + 2.0 + 6.0 * (4.0 / 6.0) / 0.9 + 12.0,
    );
    assert_eq!(ba_dinh.max_points, 6.0 + 20.0 + 6.0 + 20.0 + 18.0 + 10.0);
    assert_eq!(ba_dinh.band, "Yếu");
    // Ngọc Hà totals 6 + 6.67 + 6 + 2 + 3.33 + 12 = 36, so Ba Đình ranks first of the two communes
    // with data.
    assert_eq!((ba_dinh.rank, ba_dinh.rank_of), (1, 2));
}

#[tokio::test]
async fn ranks_among_peers() {
    let (_dir, conn) = dataset().await;

    // Hà Nội alone is still ranked among all provinces: 44.46 against Hồ Chí Minh City's 20.
    // Satisfied: A1, A2, A4, A6, B4, B5, P1, P2 and P4 of the 13 received in October.
    let hanoi = &full_scores(&conn, Some("01"), "2026-10", false).units[0];
    let satisfied = 6.0 * (9.0 / 13.0) / 0.9;
    assert_close(
        Some(hanoi.points),
        6.0 + 13.846153846153847 + 6.0 + 2.0 + satisfied + 12.0,
    );
    assert_eq!((hanoi.rank, hanoi.rank_of), (1, 2));

    let country = full_scores(&conn, None, "2026-10", true);
    assert_eq!((country.units[0].rank, country.units[0].rank_of), (0, 0));
    assert_eq!(country.units[0].band, "Yếu");
    // C1 is late and in person: the sync points, the fixed 2 points and full petition points.
    let hcmc = find(&country.units, "79");
    assert_close(Some(hcmc.points), 20.0);
    assert_eq!((hcmc.rank, hcmc.rank_of), (2, 2));
    // Đà Nẵng has no records: no rank and no band, although the fixed 2 points and the full
    // points of the petition indicators are there.
    let da_nang = find(&country.units, "48");
    assert_eq!((da_nang.rank, da_nang.rank_of), (0, 2));
    assert_eq!(da_nang.band, "");
    assert_close(Some(da_nang.points), 14.0);

    let with_communes = full_scores(&conn, Some("01"), "2026-10", true);
    assert_eq!(with_communes.units[0], *hanoi);
    let ngoc_ha = find(&with_communes.units, "00008");
    assert_eq!((ngoc_ha.rank, ngoc_ha.rank_of), (2, 2));
    let alone = &full_scores(&conn, Some("00008"), "2026-10", false).units[0];
    assert_eq!(alone, ngoc_ha);
    assert_eq!(find(&with_communes.units, "00025").rank, 0);
}

#[tokio::test]
async fn quarter_half_and_year() {
    let (_dir, conn) = dataset().await;

    // The fourth quarter as of 15 November runs from 1 October to 15 November. Judged at
    // 15 November, A3 (finished after its due day), A5 (due 20 Oct) and A6 (due 5 Nov) are late:
    // on time A0, A1, A2, A4 = 4/7. Received from 1 October: A1..A6, online A1, A3, A5, A6.
    let quarter = scores(&conn, Some("00004"), "2026-Q4", false);
    assert_eq!(quarter.period, "2026-Q4");
    let ba_dinh = &quarter.units[0];
    assert_indicator(&ba_dinh.indicators[0], (4, 7), 4.0 / 7.0, 20.0 * 4.0 / 7.0);
    assert_indicator(&ba_dinh.indicators[1], (4, 6), 4.0 / 6.0, 6.0);

    // The year and the second half also take in A0 (23:30 on 30 September, online).
    for period in ["2026", "2026-H2"] {
        let response = scores(&conn, Some("00004"), period, false);
        assert_eq!(response.period, period);
        let ba_dinh = &response.units[0];
        assert_indicator(&ba_dinh.indicators[0], (4, 7), 4.0 / 7.0, 20.0 * 4.0 / 7.0);
        assert_indicator(&ba_dinh.indicators[1], (5, 7), 5.0 / 7.0, 6.0);
    }

    // The third quarter holds only A0: A6 (00:30 on 1 October Vietnam time) is not in it.
    let third = scores(&conn, Some("00004"), "2026-Q3", false);
    assert_indicator(&third.units[0].indicators[0], (1, 1), 1.0, 20.0);
    assert_indicator(&third.units[0].indicators[1], (1, 1), 1.0, 6.0);

    // The first half has no dossier of Ba Đình.
    assert_not_assessed(&scores(&conn, Some("00004"), "2026-H1", false).units[0]);

    let error = compute(
        &conn,
        UnitCatalogue::official(),
        &core(),
        &query(Some("01"), "2027", false),
    )
    .unwrap_err();
    assert!(error.to_string().contains("request 2026"), "{error}");
}
