//! Counters against hand-computed cases, the passing of days, and a full recompute after random
//! sequences of records.

use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Dossier, DossierStep, Feedback, Procedure, Rating, Record};
use chiso_proto::vntime::parse_portal_datetime;
use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use crate::catalogue::{CountId, PeriodRule};
use crate::scores::{CountSource, Counts, Grouping, Scope, SqlDossierSource, Window};
use crate::store::StoreHandle;

const BA_DINH: &str = "00004";

fn at(value: &str) -> i64 {
    parse_portal_datetime(value).unwrap()
}

fn day(value: &str) -> NaiveDate {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").unwrap()
}

/// A store of locality 01 whose counters are as of a chosen day.
struct Fixture {
    _dir: tempfile::TempDir,
    store: StoreHandle,
    seq: u64,
    version: u64,
}

impl Fixture {
    async fn new(as_of: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            StoreHandle::open(&dir.path().join("hub.db"), UnitCatalogue::official()).unwrap();
        store.advance_counters(day(as_of)).await.unwrap();
        Fixture {
            _dir: dir,
            store,
            seq: 0,
            version: 0,
        }
    }

    /// Applies bodies with fresh sequence numbers and rising versions; returns the stored count
    /// and fails on any rejection.
    async fn apply(&mut self, bodies: Vec<Body>) -> u32 {
        let ack = self.apply_any(bodies).await;
        assert!(ack.rejections.is_empty(), "{:?}", ack.rejections);
        ack.stored
    }

    /// Applies bodies like [`Fixture::apply`] and returns the Ack, rejections included.
    async fn apply_any(&mut self, bodies: Vec<Body>) -> chiso_proto::v1::Ack {
        let records = bodies
            .into_iter()
            .map(|mut body| {
                self.seq += 1;
                self.version += 1;
                chiso_proto::record::set_version(&mut body, self.version);
                Record {
                    seq: self.seq,
                    body: Some(body),
                }
            })
            .collect();
        let batch = Batch {
            batch_id: self.seq,
            records,
        };
        self.store.apply_batch("01", batch).await.unwrap()
    }

    async fn advance(&self, to: &str) {
        self.store.advance_counters(day(to)).await.unwrap();
    }

    /// Counts of one unit's own records, as scorecards read them as of `as_of` (Vietnam time).
    fn counts(&self, unit: &str, period: &str, as_of: &str) -> Counts {
        let conn = self.store.reader().unwrap();
        let source = CounterSource::new(&conn, UnitCatalogue::official(), CounterRules::default());
        let window = Window::resolve(period.parse().unwrap(), at(as_of)).unwrap();
        let by_unit = source
            .count(Scope::Province("01"), Grouping::Unit, window)
            .unwrap();
        by_unit.get(unit).copied().unwrap_or_default()
    }

    fn verify(&self, as_of: &str) -> Verification {
        let conn = self.store.reader().unwrap();
        verify(&conn, &CounterRules::default(), day(as_of)).unwrap()
    }
}

fn dossier(
    code: &str,
    received: &str,
    due: Option<&str>,
    finished: Option<&str>,
    status: i32,
) -> Body {
    Body::Dossier(Dossier {
        code: code.to_string(),
        unit_code: BA_DINH.to_string(),
        procedure_code: "1.001612".to_string(),
        channel: 2,
        status,
        received_at: at(received),
        due_at: due.map(at),
        finished_at: finished.map(at),
        ..Dossier::default()
    })
}

fn get(counts: &Counts, count: CountId, rule: PeriodRule) -> u64 {
    counts.get(count, rule)
}

fn on_time(counts: &Counts) -> (u64, u64) {
    (
        get(counts, CountId::DossierOnTime, PeriodRule::Handling),
        get(counts, CountId::DossierHandled, PeriodRule::Handling),
    )
}

#[tokio::test]
async fn open_dossier_turns_late_the_day_after_its_due_day() {
    let mut fixture = Fixture::new("2026-10-10").await;
    fixture
        .apply(vec![dossier(
            "D1",
            "20261001080000",
            Some("20261010170000"),
            None,
            4,
        )])
        .await;

    // On its due day an open dossier is still on time, read from the counters.
    let counts = fixture.counts(BA_DINH, "2026-10", "20261010120000");
    assert_eq!(on_time(&counts), (1, 1));

    // The next day it is late without any new record, once the hub moves the counters.
    fixture.advance("2026-10-11").await;
    let counts = fixture.counts(BA_DINH, "2026-10", "20261011120000");
    assert_eq!(on_time(&counts), (0, 1));
    assert!(fixture.verify("2026-10-11").is_clean());

    // Moving into November carries it over: late in November too, and October keeps it late.
    fixture.advance("2026-11-02").await;
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-11", "20261102120000")),
        (0, 1)
    );
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-10", "20261102120000")),
        (0, 1)
    );
    let november = fixture.counts(BA_DINH, "2026-11", "20261102120000");
    assert_eq!(
        get(&november, CountId::DossierReceived, PeriodRule::Intake),
        0
    );
    assert!(fixture.verify("2026-11-02").is_clean());
}

#[tokio::test]
async fn supplement_step_moves_the_due_day() {
    let mut fixture = Fixture::new("2026-10-20").await;
    fixture
        .apply(vec![dossier(
            "D2",
            "20261001080000",
            Some("20261010170000"),
            None,
            4,
        )])
        .await;
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-10", "20261020120000")),
        (0, 1)
    );

    // A supplement request on 5 October moves the due day to 25 October: on time again.
    let step = Body::Step(DossierStep {
        dossier_code: "D2".to_string(),
        step: 1,
        unit_code: BA_DINH.to_string(),
        status: 5,
        at: at("20261005090000"),
        due_at: Some(at("20261025170000")),
        ..DossierStep::default()
    });
    assert_eq!(fixture.apply(vec![step]).await, 1);
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-10", "20261020120000")),
        (1, 1)
    );

    // A finishing step on the new due day keeps it on time after the period.
    let finish = Body::Step(DossierStep {
        dossier_code: "D2".to_string(),
        step: 2,
        unit_code: BA_DINH.to_string(),
        status: 10,
        at: at("20261025200000"),
        finished_at: Some(at("20261025200000")),
        ..DossierStep::default()
    });
    fixture.apply(vec![finish]).await;
    fixture.advance("2026-11-15").await;
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-10", "20261115120000")),
        (1, 1)
    );
    // Finished in October, so it is not carried into November.
    assert_eq!(
        on_time(&fixture.counts(BA_DINH, "2026-11", "20261115120000")),
        (0, 0)
    );
    assert!(fixture.verify("2026-11-15").is_clean());
}

#[tokio::test]
async fn dossier_moved_to_another_month_moves_its_contribution() {
    let mut fixture = Fixture::new("2026-12-01").await;
    fixture
        .apply(vec![dossier(
            "D3",
            "20261015080000",
            None,
            Some("20261016080000"),
            10,
        )])
        .await;
    let october = fixture.counts(BA_DINH, "2026-10", "20261201000000");
    assert_eq!(
        get(&october, CountId::DossierReceived, PeriodRule::Intake),
        1
    );

    // A corrected version gives November as its received month.
    fixture
        .apply(vec![dossier(
            "D3",
            "20261105080000",
            None,
            Some("20261106080000"),
            10,
        )])
        .await;
    let october = fixture.counts(BA_DINH, "2026-10", "20261201000000");
    let november = fixture.counts(BA_DINH, "2026-11", "20261201000000");
    assert_eq!(
        get(&october, CountId::DossierReceived, PeriodRule::Intake),
        0
    );
    assert_eq!(
        get(&october, CountId::DossierReceived, PeriodRule::Handling),
        0
    );
    assert_eq!(
        get(&november, CountId::DossierReceived, PeriodRule::Intake),
        1
    );
    // The quarter contains it once, whichever month.
    let quarter = fixture.counts(BA_DINH, "2026-Q4", "20261201000000");
    assert_eq!(
        get(&quarter, CountId::DossierReceived, PeriodRule::Intake),
        1
    );
    assert!(fixture.verify("2026-12-01").is_clean());
}

#[tokio::test]
async fn ratings_and_feedback_make_a_dossier_unsatisfied() {
    let mut fixture = Fixture::new("2026-11-01").await;
    fixture
        .apply(vec![
            dossier(
                "D4",
                "20261001080000",
                Some("20261010170000"),
                Some("20261005080000"),
                10,
            ),
            dossier(
                "D5",
                "20261002080000",
                Some("20261010170000"),
                Some("20261005080000"),
                10,
            ),
            dossier(
                "D6",
                "20261003080000",
                Some("20261010170000"),
                Some("20261005080000"),
                10,
            ),
        ])
        .await;
    let satisfied = |counts: &Counts| get(counts, CountId::DossierSatisfied, PeriodRule::Intake);
    assert_eq!(
        satisfied(&fixture.counts(BA_DINH, "2026-10", "20261101000000")),
        3
    );

    let rating = |code: &str, dossier: &str, level| {
        Body::Rating(Rating {
            code: code.to_string(),
            unit_code: BA_DINH.to_string(),
            dossier_code: dossier.to_string(),
            rated_at: at("20261006080000"),
            level,
            ..Rating::default()
        })
    };
    // Level 1 makes D4 dissatisfied; level 3 is neither satisfied nor dissatisfied.
    fixture
        .apply(vec![rating("R1", "D4", 1), rating("R2", "D5", 3)])
        .await;
    let counts = fixture.counts(BA_DINH, "2026-10", "20261101000000");
    assert_eq!(satisfied(&counts), 2);
    assert_eq!(get(&counts, CountId::RatingReceived, PeriodRule::Intake), 2);
    assert_eq!(
        get(&counts, CountId::RatingDissatisfied, PeriodRule::Intake),
        1
    );
    assert_eq!(
        get(&counts, CountId::RatingSatisfied, PeriodRule::Intake),
        0
    );

    // A feedback item naming D6 counts as a complaint about it.
    let feedback = Body::Feedback(Feedback {
        code: "F1".to_string(),
        unit_code: BA_DINH.to_string(),
        received_at: at("20261007080000"),
        due_at: Some(at("20261017170000")),
        finished_at: Some(at("20261020080000")),
        topic: 2,
        dossier_code: "D6".to_string(),
        ..Feedback::default()
    });
    fixture.apply(vec![feedback]).await;
    let counts = fixture.counts(BA_DINH, "2026-10", "20261101000000");
    assert_eq!(satisfied(&counts), 1);
    // Answered after its due day: late and so not satisfactory; it is about staff.
    assert_eq!(
        get(&counts, CountId::FeedbackReceived, PeriodRule::Handling),
        1
    );
    assert_eq!(
        get(&counts, CountId::FeedbackOnTime, PeriodRule::Handling),
        0
    );
    assert_eq!(
        get(&counts, CountId::FeedbackSatisfactory, PeriodRule::Handling),
        0
    );
    assert_eq!(
        get(&counts, CountId::FeedbackAboutStaff, PeriodRule::Handling),
        1
    );

    // The rating raised to 5 makes D4 satisfied again.
    fixture.apply(vec![rating("R1", "D4", 5)]).await;
    let counts = fixture.counts(BA_DINH, "2026-10", "20261101000000");
    assert_eq!(satisfied(&counts), 2);
    assert_eq!(
        get(&counts, CountId::RatingSatisfied, PeriodRule::Intake),
        1
    );
    assert!(fixture.verify("2026-11-01").is_clean());
}

#[tokio::test]
async fn procedures_count_while_in_force() {
    let mut fixture = Fixture::new("2026-12-01").await;
    let procedure = |code: &str, announced: &str, abolished: Option<&str>| {
        Body::Procedure(Procedure {
            code: code.to_string(),
            unit_code: "01".to_string(),
            announced_at: Some(at(announced)),
            announce_due_at: Some(at("20261010000000")),
            published_at: Some(at("20261012000000")),
            publish_due_at: Some(at("20261015000000")),
            content_complete: true,
            online_level: 3,
            fee_bearing: true,
            payable_online: false,
            for_citizens: true,
            population_connected: true,
            abolished_at: abolished.map(at),
            ..Procedure::default()
        })
    };
    fixture
        .apply(vec![
            procedure("1.1", "20261005000000", None),
            procedure("1.2", "20261011000000", Some("20261120000000")),
        ])
        .await;
    let own = |period: &str| fixture.counts("01", period, "20261201000000");
    let october = own("2026-10");
    let rule = PeriodRule::Intake;
    assert_eq!(get(&october, CountId::ProcedureTotal, rule), 2);
    assert_eq!(get(&october, CountId::ProcedureOnline, rule), 2);
    assert_eq!(get(&october, CountId::ProcedurePayableOnline, rule), 0);
    assert_eq!(get(&october, CountId::ProcedureFeeBearing, rule), 2);
    assert_eq!(
        get(&october, CountId::ProcedurePopulationConnected, rule),
        2
    );
    // 1.2 was announced a day after its deadline.
    assert_eq!(get(&october, CountId::ProcedureAnnounced, rule), 2);
    assert_eq!(get(&october, CountId::ProcedureAnnouncedOnTime, rule), 1);
    assert_eq!(get(&october, CountId::ProcedureDuePublic, rule), 2);
    assert_eq!(get(&october, CountId::ProcedurePublicOnTime, rule), 2);
    assert_eq!(get(&october, CountId::ProcedurePublicComplete, rule), 2);
    // 1.2 is abolished on 20 November, so only 1.1 is in force at the end of November.
    let november = own("2026-11");
    assert_eq!(get(&november, CountId::ProcedureTotal, rule), 1);
    assert_eq!(get(&november, CountId::ProcedureAnnounced, rule), 0);
    assert!(fixture.verify("2026-12-01").is_clean());
}

#[tokio::test]
async fn verify_reports_a_tampered_counter() {
    let mut fixture = Fixture::new("2026-11-01").await;
    fixture
        .apply(vec![dossier("D7", "20261001080000", None, None, 4)])
        .await;
    assert!(fixture.verify("2026-11-01").is_clean());

    let path = fixture.store.path().to_path_buf();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE counters SET value = value + 1
         WHERE period = '2026-10' AND reach = 0 AND unit = ?1 AND count = 'dossier.received'
           AND rule = 'intake'",
        [BA_DINH],
    )
    .unwrap();
    let verification = fixture.verify("2026-11-01");
    assert!(!verification.is_clean());
    let difference = &verification.differences[0];
    assert_eq!((difference.stored, difference.recomputed), (2, 1));
    assert_eq!(difference.count, CountId::DossierReceived);
}

// Random sequences of records, days and versions over a small space of keys, so updates and
// links between kinds are frequent.

const DAYS: [&str; 8] = [
    "20260915", "20260930", "20261001", "20261010", "20261031", "20261101", "20261115", "20261203",
];

fn instant(index: usize) -> i64 {
    at(&format!("{}080000", DAYS[index % DAYS.len()]))
}

#[derive(Debug, Clone)]
enum Op {
    Dossier {
        code: u8,
        unit: bool,
        received: usize,
        due: Option<usize>,
        finish: Option<usize>,
        status: i32,
        flags: u8,
    },
    Step {
        code: u8,
        step: u32,
        status: i32,
        at: usize,
        due: Option<usize>,
        finish: Option<usize>,
    },
    Rating {
        code: u8,
        dossier: u8,
        at: usize,
        level: u32,
    },
    Feedback {
        code: u8,
        dossier: Option<u8>,
        received: usize,
        due: Option<usize>,
        finish: Option<usize>,
        topic: i32,
        flags: u8,
    },
    Procedure {
        code: u8,
        announced: Option<usize>,
        published: Option<usize>,
        abolished: Option<usize>,
        level: i32,
        flags: u8,
    },
    Advance {
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let day = 0..DAYS.len();
    prop_oneof![
        4 => (0u8..6, any::<bool>(), day.clone(), proptest::option::of(day.clone()), proptest::option::of(day.clone()), prop::sample::select(vec![2, 3, 4, 5, 7, 8, 9, 10]), any::<u8>())
            .prop_map(|(code, unit, received, due, finish, status, flags)| Op::Dossier { code, unit, received, due, finish, status, flags }),
        2 => (0u8..6, 1u32..4, prop::sample::select(vec![4, 5, 9, 10]), day.clone(), proptest::option::of(day.clone()), day.clone().prop_map(Some))
            .prop_map(|(code, step, status, at, due, finish)| Op::Step { code, step, status, at, due, finish }),
        2 => (0u8..4, 0u8..6, day.clone(), 1u32..6).prop_map(|(code, dossier, at, level)| Op::Rating { code, dossier, at, level }),
        2 => (0u8..4, proptest::option::of(0u8..6), day.clone(), proptest::option::of(day.clone()), proptest::option::of(day.clone()), 0..4, any::<u8>())
            .prop_map(|(code, dossier, received, due, finish, topic, flags)| Op::Feedback { code, dossier, received, due, finish, topic, flags }),
        1 => (0u8..3, proptest::option::of(day.clone()), proptest::option::of(day.clone()), proptest::option::of(day.clone()), 1..4, any::<u8>())
            .prop_map(|(code, announced, published, abolished, level, flags)| Op::Procedure { code, announced, published, abolished, level, flags }),
        1 => day.prop_map(|to| Op::Advance { to }),
    ]
}

/// Keeps a later day no earlier than an earlier one, as the record rules require.
fn after(first: usize, later: Option<usize>) -> Option<usize> {
    later.map(|later| later.max(first))
}

fn body(op: &Op) -> Option<Body> {
    let unit = |commune: bool| if commune { BA_DINH } else { "01" }.to_string();
    Some(match *op {
        Op::Dossier {
            code,
            unit: commune,
            received,
            due,
            finish,
            status,
            flags,
        } => Body::Dossier(Dossier {
            code: format!("D{code}"),
            unit_code: unit(commune),
            // The same codes as the generated procedures, so usage links them.
            procedure_code: format!("1.00{}", code % 3),
            channel: if flags & 1 == 0 { 1 } else { 2 },
            status,
            received_at: instant(received),
            due_at: after(received, due).map(instant),
            finished_at: after(received, finish).map(instant),
            electronic_result: flags & 2 != 0,
            digitized: flags & 4 != 0,
            fee_bearing: flags & 8 != 0,
            paid_online: flags & 16 != 0,
            personal_storage: flags & 32 != 0,
            ..Dossier::default()
        }),
        Op::Step {
            code,
            step,
            status,
            at,
            due,
            finish,
        } => Body::Step(DossierStep {
            dossier_code: format!("D{code}"),
            step,
            unit_code: BA_DINH.to_string(),
            status,
            at: instant(at),
            due_at: after(at, due).map(instant),
            // A finishing step reports a finish on or before its own day.
            finished_at: finish
                .filter(|_| matches!(status, 9 | 10))
                .map(|day| instant(day.min(at))),
            ..DossierStep::default()
        }),
        Op::Rating {
            code,
            dossier,
            at,
            level,
        } => Body::Rating(Rating {
            code: format!("R{code}"),
            unit_code: BA_DINH.to_string(),
            dossier_code: format!("D{dossier}"),
            rated_at: instant(at),
            level,
            ..Rating::default()
        }),
        Op::Feedback {
            code,
            dossier,
            received,
            due,
            finish,
            topic,
            flags,
        } => Body::Feedback(Feedback {
            code: format!("F{code}"),
            unit_code: unit(flags & 1 == 0),
            received_at: instant(received),
            due_at: after(received, due).map(instant),
            finished_at: after(received, finish).map(instant),
            topic,
            dissatisfied: flags & 2 != 0,
            recomplained: flags & 4 != 0,
            dossier_code: dossier.map(|code| format!("D{code}")).unwrap_or_default(),
            ..Feedback::default()
        }),
        Op::Procedure {
            code,
            announced,
            published,
            abolished,
            level,
            flags,
        } => {
            let published = published.map(|day| announced.map_or(day, |first| day.max(first)));
            let abolished = abolished.map(|day| announced.map_or(day, |first| day.max(first)));
            Body::Procedure(Procedure {
                code: format!("1.00{code}"),
                unit_code: unit(flags & 1 == 0),
                announced_at: announced.map(instant),
                announce_due_at: announced.map(|day| instant(day + (flags as usize >> 4) % 2)),
                published_at: published.map(instant),
                publish_due_at: published.map(|day| instant(day + (flags as usize >> 5) % 2)),
                content_complete: flags & 2 != 0,
                online_level: level,
                fee_bearing: flags & 4 != 0,
                payable_online: flags & 8 != 0,
                for_citizens: true,
                population_connected: flags & 64 != 0,
                abolished_at: abolished.map(instant),
                ..Procedure::default()
            })
        }
        Op::Advance { .. } => return None,
    })
}

fn dash(day: &str) -> String {
    format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..])
}

async fn run_ops(ops: &[Op]) -> (Fixture, String) {
    let mut fixture = Fixture::new("2026-10-10").await;
    let mut as_of = "2026-10-10".to_string();
    for op in ops {
        match (op, body(op)) {
            (Op::Advance { to }, _) => {
                as_of = dash(DAYS[*to]);
                fixture.advance(&as_of).await;
            }
            (_, Some(body)) => {
                // Some random records break a rule (a final status moved back); they are
                // rejected and change nothing, which the recompute also checks.
                fixture.apply_any(vec![body]).await;
            }
            (_, None) => {}
        }
    }
    (fixture, as_of)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// After any sequence of records and days, the counters moved to any day equal a full
    /// recompute.
    #[test]
    fn counters_equal_a_full_recompute(ops in proptest::collection::vec(op(), 1..30), check in 0..DAYS.len()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (fixture, as_of) = run_ops(&ops).await;
            let verification = fixture.verify(&as_of);
            prop_assert!(verification.is_clean(), "as of {as_of}: {:?}", verification.differences);
            let later = dash(DAYS[check]);
            let verification = fixture.verify(&later);
            prop_assert!(verification.is_clean(), "moved to {later}: {:?}", verification.differences);
            Ok(())
        })?;
    }

    /// With dossiers alone, the counters agree with the independent SQL recount for every
    /// period the counters hold.
    #[test]
    fn dossier_counters_equal_the_sql_recount(
        ops in proptest::collection::vec(op().prop_filter("dossiers and days", |op| matches!(op, Op::Dossier { .. } | Op::Advance { .. })), 1..30),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (fixture, as_of) = run_ops(&ops).await;
            let conn = fixture.store.reader().unwrap();
            let counters = CounterSource::new(&conn, UnitCatalogue::official(), CounterRules::default());
            let sql = SqlDossierSource::new(&conn);
            let as_of_instant = at(&format!("{}120000", as_of.replace('-', "")));
            for period in ["2026-09", "2026-10", "2026-11", "2026-12", "2026-Q3", "2026-Q4", "2026-H2", "2026"] {
                let Ok(window) = Window::resolve(period.parse().unwrap(), as_of_instant) else { continue };
                for (scope, grouping) in [(Scope::Province("01"), Grouping::Unit), (Scope::Country, Grouping::Province)] {
                    let ours = counters.count(scope, grouping, window).unwrap();
                    let theirs = sql.count(scope, grouping, window).unwrap();
                    for unit in ["01", BA_DINH] {
                        let a = ours.get(unit).copied().unwrap_or_default();
                        let b = theirs.get(unit).copied().unwrap_or_default();
                        for count in CountId::all().filter(|count| sql.unavailable(*count).is_none()) {
                            for rule in PeriodRule::ALL {
                                prop_assert_eq!(a.get(count, rule), b.get(count, rule), "{} {} {} {:?}", period, unit, count, rule);
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn explain_lists_the_records_behind_a_figure_page_by_page() {
    use chiso_proto::identity::Identity;
    use chiso_proto::v1::{ExplainRequest, FractionSide};

    let mut fixture = Fixture::new("2026-11-01").await;
    let mut bodies = Vec::new();
    for index in 0..7 {
        // Odd dossiers finish after their due day.
        let finished = if index % 2 == 1 {
            "20261012080000"
        } else {
            "20261008080000"
        };
        bodies.push(dossier(
            &format!("E{index}"),
            "20261002080000",
            Some("20261010170000"),
            Some(finished),
            10,
        ));
    }
    fixture.apply(bodies).await;
    let conn = fixture.store.reader().unwrap();
    let catalogue = crate::catalogue::Catalogue::builtin("dvcqg-2026").unwrap();
    let operator = Identity::Operator("ops".into());
    let request = |side: FractionSide, token: &str| ExplainRequest {
        unit_code: "01".to_string(),
        period: "2026-10".to_string(),
        indicator_id: "DOSSIER_ON_TIME".to_string(),
        side: side as i32,
        as_of: at("20261101120000"),
        limit: 3,
        page_token: token.to_string(),
    };
    let ask = |caller: &Identity, request: &ExplainRequest| {
        crate::explain::answer(
            &conn,
            UnitCatalogue::official(),
            &catalogue,
            &CounterRules::default(),
            caller,
            request,
            0,
        )
    };

    // The numerator pages through E0, E2, E4, E6 three at a time.
    let first = ask(&operator, &request(FractionSide::Numerator, "")).unwrap();
    assert_eq!((first.count.as_str(), first.total), ("dossier.on_time", 4));
    let keys: Vec<&str> = first
        .records
        .iter()
        .map(|record| record.key.as_str())
        .collect();
    assert_eq!(keys, ["E0", "E2", "E4"]);
    assert_eq!(first.records[0].facts["finished_day"], "2026-10-08");
    let second = ask(
        &operator,
        &request(FractionSide::Numerator, &first.next_page_token),
    )
    .unwrap();
    let keys: Vec<&str> = second
        .records
        .iter()
        .map(|record| record.key.as_str())
        .collect();
    assert_eq!(keys, ["E6"]);
    assert!(second.next_page_token.is_empty());

    // The denominator contains all seven, as the scorecard does.
    let denominator = ask(&operator, &request(FractionSide::Denominator, "")).unwrap();
    assert_eq!(denominator.total, 7);
    let card = crate::scores::compute(
        &conn,
        UnitCatalogue::official(),
        &catalogue,
        &crate::scores::ScoreQuery {
            unit_code: Some("01".to_string()),
            period: "2026-10".parse().unwrap(),
            include_children: false,
            as_of: at("20261101120000"),
        },
    )
    .unwrap();
    let on_time = card.units[0]
        .indicators
        .iter()
        .find(|indicator| indicator.id == "DOSSIER_ON_TIME")
        .unwrap();
    assert_eq!(
        (on_time.numerator, on_time.denominator),
        (first.total, denominator.total)
    );

    // Another locality's agent may not list Hà Nội; Hà Nội's own agent may.
    let other = Identity::Agent("79".into());
    let refused = ask(&other, &request(FractionSide::Numerator, "")).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        ask(
            &Identity::Agent("01".into()),
            &request(FractionSide::Numerator, "")
        )
        .is_ok()
    );

    // A fixed indicator and an unknown id are clear errors.
    let mut fixed = request(FractionSide::Numerator, "");
    fixed.indicator_id = "ELECTRONIC_CERTIFIED_COPY".to_string();
    assert_eq!(
        ask(&operator, &fixed).unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    let mut whole = request(FractionSide::Numerator, "");
    whole.indicator_id = "ONLINE_SERVICE".to_string();
    let error = ask(&operator, &whole).unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("ONLINE_FILING"),
        "{}",
        error.message()
    );
    let mut unknown = request(FractionSide::Numerator, "");
    unknown.indicator_id = "NO_SUCH".to_string();
    let error = ask(&operator, &unknown).unwrap_err();
    assert!(
        error.message().contains("DOSSIER_ON_TIME"),
        "{}",
        error.message()
    );
}

/// Dossier of a unit, filed online on 2 October 2026 and due on 10 October.
fn unit_dossier(code: &str, unit: &str, version: u64, finished: &str) -> Record {
    Record {
        seq: 0,
        body: Some(Body::Dossier(Dossier {
            code: code.to_string(),
            version,
            unit_code: unit.to_string(),
            procedure_code: "1.001612".to_string(),
            channel: 2,
            status: 9,
            received_at: at("20261002080000"),
            due_at: Some(at("20261010170000")),
            finished_at: Some(at(finished)),
            ..Dossier::default()
        })),
    }
}

fn numbered(first_seq: u64, records: Vec<Record>) -> Batch {
    let records = records
        .into_iter()
        .zip(first_seq..)
        .map(|(record, seq)| Record { seq, ..record })
        .collect();
    Batch {
        batch_id: first_seq,
        records,
    }
}

/// Reads one count of every unit's counters of a period and reach.
fn counter_values(
    store: &StoreHandle,
    period: &str,
    reach: Reach,
    count: CountId,
) -> std::collections::HashMap<String, i64> {
    let conn = store.reader().unwrap();
    let rows = super::table::read_period(&conn, period.parse().unwrap(), reach).unwrap();
    rows.into_iter()
        .filter(|(_, found, rule, _)| *found == count && *rule == PeriodRule::Handling)
        .map(|(unit, _, _, value)| (unit, value))
        .collect()
}

#[tokio::test]
async fn ministry_records_stay_out_of_the_country() {
    let text = "version = \"t\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n";
    let file = chiso_proto::ministries::MinistryFile::parse(text, "t.toml").unwrap();
    let units: &'static UnitCatalogue =
        Box::leak(Box::new(UnitCatalogue::with_ministries(file).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&dir.path().join("hub.db"), units).unwrap();
    store.advance_counters(day("2026-10-31")).await.unwrap();

    let hanoi = vec![unit_dossier("H1", BA_DINH, 1, "20261005100000")];
    let ack = store.apply_batch("01", numbered(1, hanoi)).await.unwrap();
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);
    let finance = vec![
        unit_dossier("M1", "BTC", 1, "20261005100000"),
        unit_dossier("M2", "TCT", 1, "20261006100000"),
    ];
    let ack = store
        .apply_batch("BTC", numbered(1, finance))
        .await
        .unwrap();
    assert_eq!(ack.stored, 2, "{:?}", ack.rejections);
    // M2 again, finished late: its old contribution is subtracted from the ministry only.
    let late = vec![unit_dossier("M2", "TCT", 2, "20261020100000")];
    let ack = store.apply_batch("BTC", numbered(3, late)).await.unwrap();
    assert_eq!(ack.stored, 1, "{:?}", ack.rejections);

    let received = counter_values(&store, "2026-10", Reach::All, CountId::DossierReceived);
    assert_eq!(received.get(COUNTRY), Some(&1));
    assert_eq!(received.get("01"), Some(&1));
    assert_eq!(received.get("BTC"), Some(&2));
    assert_eq!(received.get("TCT"), None);
    let on_time = counter_values(&store, "2026-10", Reach::All, CountId::DossierOnTime);
    assert_eq!(on_time.get(COUNTRY), Some(&1));
    assert_eq!(on_time.get("BTC"), Some(&1));
    let own = counter_values(&store, "2026-10", Reach::Own, CountId::DossierReceived);
    assert_eq!(own.get("BTC"), Some(&1));
    assert_eq!(own.get("TCT"), Some(&1));

    let conn = store.reader().unwrap();
    let verification = verify(&conn, &CounterRules::default(), day("2026-10-31")).unwrap();
    assert!(verification.is_clean(), "{:?}", verification.differences);
    assert_eq!(verification.records, 3);
    let verification = verify(&conn, &CounterRules::default(), day("2026-11-20")).unwrap();
    assert!(verification.is_clean(), "{:?}", verification.differences);
}
