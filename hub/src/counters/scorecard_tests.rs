//! A hand-computed October for one commune with every record kind, checked indicator by
//! indicator through the live scorecard path (counters, engine, catalogue `dvcqg-2026`).

use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{
    Batch, Dossier, Feedback, IndicatorScore, Procedure, Rating, Record, UnitScore,
};
use chiso_proto::vntime::parse_portal_datetime;

use crate::catalogue::Catalogue;
use crate::scores::{ScoreQuery, compute};
use crate::store::StoreHandle;

const UNIT: &str = "00004";

fn at(value: &str) -> i64 {
    parse_portal_datetime(value).unwrap()
}

fn day(value: &str) -> Option<i64> {
    (!value.is_empty()).then(|| at(&format!("{value}120000")))
}

struct DossierRow {
    code: &'static str,
    procedure: &'static str,
    channel: i32,
    status: i32,
    due: &'static str,
    finished: &'static str,
    flags: &'static str,
}

// Received 1 to 4 October, each under one of the procedures below. Flags: e electronic result, d digitized, r reused data, f fee,
// p paid online, s personal storage, n population data.
const DOSSIERS: [DossierRow; 4] = [
    // online, finished before its due day, rated 5
    DossierRow {
        code: "K1",
        procedure: "P1",
        channel: 2,
        status: 10,
        due: "20261010",
        finished: "20261008",
        flags: "edrfpsn",
    },
    // in person, finished after its due day
    DossierRow {
        code: "K2",
        procedure: "P2",
        channel: 1,
        status: 10,
        due: "20261010",
        finished: "20261012",
        flags: "ef",
    },
    // online, open and due in November: on time at 31 October, but rated 1
    DossierRow {
        code: "K3",
        procedure: "P3",
        channel: 2,
        status: 4,
        due: "20261120",
        finished: "",
        flags: "d",
    },
    // online, not accepted, no due day; a feedback item complains about it
    DossierRow {
        code: "K4",
        procedure: "P1",
        channel: 2,
        status: 3,
        due: "",
        finished: "",
        flags: "",
    },
];

fn dossier(index: usize, row: &DossierRow) -> Body {
    let flag = |letter| row.flags.contains(letter);
    Body::Dossier(Dossier {
        code: row.code.to_string(),
        unit_code: UNIT.to_string(),
        procedure_code: row.procedure.to_string(),
        channel: row.channel,
        status: row.status,
        received_at: at(&format!("2026100{}080000", index + 1)),
        due_at: day(row.due),
        finished_at: day(row.finished),
        electronic_result: flag('e'),
        digitized: flag('d'),
        reused_data: flag('r'),
        fee_bearing: flag('f'),
        paid_online: flag('p'),
        personal_storage: flag('s'),
        population_data: flag('n'),
        ..Dossier::default()
    })
}

fn feedback(
    code: &str,
    received: &str,
    due: &str,
    finished: &str,
    topic: i32,
    dissatisfied: bool,
    dossier: &str,
) -> Body {
    Body::Feedback(Feedback {
        code: code.to_string(),
        unit_code: UNIT.to_string(),
        received_at: day(received).unwrap(),
        due_at: day(due),
        finished_at: day(finished),
        topic,
        dissatisfied,
        dossier_code: dossier.to_string(),
        ..Feedback::default()
    })
}

#[allow(clippy::too_many_arguments)]
fn procedure(
    code: &str,
    announced: &str,
    announce_due: &str,
    published: &str,
    publish_due: &str,
    level: i32,
    flags: &str,
) -> Body {
    let flag = |letter| flags.contains(letter);
    Body::Procedure(Procedure {
        code: code.to_string(),
        unit_code: UNIT.to_string(),
        announced_at: day(announced),
        announce_due_at: day(announce_due),
        published_at: day(published),
        publish_due_at: day(publish_due),
        // c complete, f fee, p payable online, z for citizens, n population database
        content_complete: flag('c'),
        online_level: level,
        fee_bearing: flag('f'),
        payable_online: flag('p'),
        for_citizens: flag('z'),
        population_connected: flag('n'),
        ..Procedure::default()
    })
}

fn rating(code: &str, dossier: &str, level: u32) -> Body {
    Body::Rating(Rating {
        code: code.to_string(),
        unit_code: UNIT.to_string(),
        dossier_code: dossier.to_string(),
        rated_at: at("20261015090000"),
        level,
        ..Rating::default()
    })
}

async fn october() -> UnitScore {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&dir.path().join("hub.db"), UnitCatalogue::official()).unwrap();
    store
        .advance_counters(chrono::NaiveDate::from_ymd_opt(2026, 11, 15).unwrap())
        .await
        .unwrap();

    let mut bodies: Vec<Body> = DOSSIERS
        .iter()
        .enumerate()
        .map(|(i, row)| dossier(i, row))
        .collect();
    bodies.extend([
        rating("R1", "K1", 5),
        rating("R2", "K3", 1),
        // answered on time, about a procedure
        feedback("F1", "20261005", "20261015", "20261010", 1, false, ""),
        // answered late, about staff
        feedback("F2", "20261006", "20261016", "20261020", 2, false, ""),
        // answered on time but the sender is dissatisfied; it names K4
        feedback("F3", "20261007", "20261017", "20261012", 3, true, "K4"),
        // announced and made public on time, complete, full online service, fee payable
        // online, for citizens and connected to the population database
        procedure(
            "P1", "20261003", "20261005", "20261006", "20261010", 3, "cfpzn",
        ),
        // announced and made public late, incomplete, no online service, fee not payable online
        procedure(
            "P2", "20261008", "20261005", "20261020", "20261015", 1, "fz",
        ),
        // announced in January, still in force, partial online service
        procedure("P3", "20260110", "", "", "", 2, ""),
    ]);
    let records = bodies
        .into_iter()
        .enumerate()
        .map(|(index, mut body)| {
            chiso_proto::record::set_version(&mut body, 1);
            Record {
                seq: index as u64 + 1,
                body: Some(body),
            }
        })
        .collect();
    let ack = store
        .apply_batch(
            "01",
            Batch {
                batch_id: 1,
                records,
            },
        )
        .await
        .unwrap();
    assert!(ack.rejections.is_empty(), "{:?}", ack.rejections);

    let conn = store.reader().unwrap();
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();
    let query = ScoreQuery {
        unit_code: Some(UNIT.to_string()),
        period: "2026-10".parse().unwrap(),
        include_children: false,
        as_of: at("20261115120000"),
    };
    let response = compute(&conn, UnitCatalogue::official(), &catalogue, &query).unwrap();
    let verification = super::verify(
        &conn,
        &super::CounterRules::default(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
    )
    .unwrap();
    assert!(verification.is_clean(), "{:?}", verification.differences);
    response.units.into_iter().next().unwrap()
}

fn leaf<'a>(unit: &'a UnitScore, id: &str) -> &'a IndicatorScore {
    unit.indicators
        .iter()
        .flat_map(|indicator| std::iter::once(indicator).chain(&indicator.parts))
        .find(|indicator| indicator.id == id)
        .unwrap_or_else(|| panic!("{id} is not in the scorecard"))
}

fn check(unit: &UnitScore, id: &str, fraction: (u64, u64), points: f64) {
    let scored = leaf(unit, id);
    assert!(scored.assessed, "{id}: {}", scored.note);
    assert_eq!((scored.numerator, scored.denominator), fraction, "{id}");
    let actual = scored.points.unwrap();
    assert!(
        (actual - points).abs() < 1e-9,
        "{id}: {actual} against {points}"
    );
}

fn group_points(unit: &UnitScore, id: &str) -> f64 {
    unit.groups
        .iter()
        .find(|group| group.id == id)
        .unwrap()
        .points
}

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} against {expected}"
    );
}

#[tokio::test]
async fn every_indicator_of_a_commune_october() {
    let unit = october().await;

    // Group 1: P1 and P2 announced in October, P1 by its deadline; both due to be made public
    // in October, P1 in time; both made public, P1 complete.
    check(&unit, "PUBLISH_ON_TIME", (1, 2), 6.0 * 0.5);
    check(&unit, "PUBLIC_UPDATE_ON_TIME", (1, 2), 4.0 * 0.5);
    check(&unit, "PUBLIC_CONTENT_FULL", (1, 2), 2.0 * 0.5);
    // No digest reported more than the four dossiers stored: all four count as synced.
    check(&unit, "DOSSIER_SYNC", (4, 4), 6.0);
    close(group_points(&unit, "1"), 3.0 + 2.0 + 1.0 + 6.0);

    // Group 2: handled K1, K2, K3 (K4 not accepted); on time K1 and K3 (open, due later).
    check(&unit, "DOSSIER_ON_TIME", (2, 3), 20.0 * 2.0 / 3.0);
    close(group_points(&unit, "2"), 20.0 * 2.0 / 3.0);

    // Group 3: P1 and P3 of the three procedures in force offer an online service, full at 80%;
    // K1, K3, K4 of four dossiers were filed online, full at 50%.
    check(
        &unit,
        "ONLINE_SERVICE_OFFERED",
        (2, 3),
        2.0 * (2.0 / 3.0) / 0.8,
    );
    check(&unit, "ONLINE_FILING", (3, 4), 6.0);
    // Both online procedures received an online dossier in October: P1 (K1, K4) and P3 (K3).
    check(&unit, "ONLINE_SERVICE_USED", (2, 2), 4.0);
    close(
        group_points(&unit, "3"),
        2.0 * (2.0 / 3.0) / 0.8 + 4.0 + 6.0,
    );

    // Group 4, over the four dossiers received in October and the citizen procedures.
    check(&unit, "ORIGINAL_RESULT_AVAILABLE", (2, 4), 6.0 * 0.5);
    check(&unit, "SO_HOA_GIAY_TO_GIAI_QUYET", (2, 4), 4.0 * 0.5);
    close(
        leaf(&unit, "ELECTRONIC_CERTIFIED_COPY").points.unwrap(),
        2.0,
    );
    check(&unit, "REUSED_DIGITIZED_DATA", (1, 4), 2.0 * 0.25 / 0.8);
    check(
        &unit,
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE",
        (1, 4),
        4.0 * 0.25,
    );
    check(&unit, "CITIZEN_DATA_CONNECTED_DOSSIER", (1, 4), 2.0 * 0.25);
    check(&unit, "CITIZEN_DATA_CONNECTED_FORMALITY", (1, 2), 2.0 * 0.5);
    close(
        group_points(&unit, "4"),
        3.0 + 2.0 + 2.0 + 2.0 * 0.25 / 0.8 + 1.0 + 0.5 + 1.0,
    );

    // Group 5: only K1 is on time with no bad rating and no complaint (K3 rated 1, K4 named by
    // F3), full at 90%. F1 and F3 were answered on time, and only F1 also satisfied its sender.
    check(
        &unit,
        "DOSSIER_RECEIVING_SATISFACTION",
        (1, 4),
        6.0 * 0.25 / 0.9,
    );
    check(
        &unit,
        "PETITION_PROCESSING_ON_TIME",
        (2, 3),
        6.0 * 2.0 / 3.0,
    );
    check(&unit, "PETITION_HANDLING_SATISFACTION", (1, 3), 6.0 / 3.0);
    let tracked = leaf(&unit, "PETITION_CLASSIFICATION_TTHC");
    assert_eq!((tracked.numerator, tracked.denominator), (1, 3));
    let tracked = leaf(&unit, "PETITION_CLASSIFICATION_STAFF");
    assert_eq!((tracked.numerator, tracked.denominator), (1, 3));
    close(group_points(&unit, "5"), 6.0 * 0.25 / 0.9 + 4.0 + 2.0);

    // Group 6: 6A + min(2, 2.5B) + 2.5C with A = 1/2 (K1 of the fee-bearing K1, K2 paid online)
    // and B = 1/2 (P1 of the fee-bearing P1, P2 payable online), and C = 2/2: both fee-bearing
    // procedures have a fee-bearing dossier in October (P1 K1, P2 K2).
    let a = leaf(&unit, "PAYMENT_DOSSIER_ONLINE");
    assert_eq!((a.numerator, a.denominator), (1, 2));
    let b = leaf(&unit, "PAYMENT_FORMALITY_ONLINE");
    assert_eq!((b.numerator, b.denominator), (1, 2));
    let c = leaf(&unit, "PAYMENT_FORMALITY_FEE_DATA");
    assert_eq!((c.numerator, c.denominator), (2, 2));
    close(
        group_points(&unit, "6"),
        6.0 * 0.5 + (2.5_f64 * 0.5).min(2.0) + 2.5,
    );
}
