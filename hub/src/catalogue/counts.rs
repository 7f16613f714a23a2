//! The registry of named counts that a catalogue's numerators and denominators refer to.
//!
//! A count is the number of records of one kind that satisfy a predicate, within the set that
//! an indicator's period rule selects (see [`PeriodRule`]). Every name a catalogue may use is
//! listed here, for all four record kinds (dossier, procedure, feedback, rating) and for the
//! agents' per-day digests, even where no source computes it yet. Each count except the
//! broadest of its kind is a subset of another count (`within`), and a catalogue is valid only
//! when each numerator is a subset of its denominator, so a rate never exceeds 1.

use std::fmt;

use super::rule::PeriodRule;

/// Kind of record a count is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// Dossiers (hồ sơ).
    Dossier,
    /// Administrative procedures of a unit's catalogue (thủ tục hành chính).
    Procedure,
    /// Feedback and petitions (phản ánh, kiến nghị).
    Feedback,
    /// Satisfaction ratings of dossiers (đánh giá).
    Rating,
    /// The agents' per-unit, per-day digests of what their sources hold.
    Digest,
}

impl RecordKind {
    /// Returns the kind's name as count names use it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Dossier => "dossier",
            RecordKind::Procedure => "procedure",
            RecordKind::Feedback => "feedback",
            RecordKind::Rating => "rating",
            RecordKind::Digest => "digest",
        }
    }
}

/// A named count of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum CountId {
    DossierReceived,
    DossierHandled,
    DossierOnTime,
    DossierOnline,
    DossierElectronicResult,
    DossierDigitized,
    DossierReusedData,
    DossierFeeBearing,
    DossierPaidOnline,
    DossierPersonalStorage,
    DossierPopulationData,
    DossierSatisfied,
    DossierReported,
    ProcedureAnnounced,
    ProcedureAnnouncedOnTime,
    ProcedureDuePublic,
    ProcedurePublicOnTime,
    ProcedurePublic,
    ProcedurePublicComplete,
    ProcedureTotal,
    ProcedureOnline,
    ProcedureOnlineUsed,
    ProcedureFeeBearing,
    ProcedurePayableOnline,
    ProcedureFeeData,
    ProcedureCitizen,
    ProcedurePopulationConnected,
    FeedbackReceived,
    FeedbackOnTime,
    FeedbackSatisfactory,
    FeedbackAboutProcedure,
    FeedbackAboutStaff,
    RatingReceived,
    RatingSatisfied,
    RatingDissatisfied,
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct CountDef {
    /// The count this entry describes.
    pub id: CountId,
    /// Name used in catalogue files, such as `dossier.on_time`.
    pub name: &'static str,
    /// Kinds of record the count needs; the first is the kind it counts.
    pub needs: &'static [RecordKind],
    /// The count this one is a subset of, if any.
    pub within: Option<CountId>,
    /// Description of the records counted.
    pub description: &'static str,
}

use CountId as C;
use RecordKind as K;

const fn def(
    id: CountId,
    name: &'static str,
    needs: &'static [RecordKind],
    within: Option<CountId>,
    description: &'static str,
) -> CountDef {
    CountDef {
        id,
        name,
        needs,
        within,
        description,
    }
}

const DOSSIER: &[RecordKind] = &[K::Dossier];
const PROCEDURE: &[RecordKind] = &[K::Procedure];
const FEEDBACK: &[RecordKind] = &[K::Feedback];
const RATING: &[RecordKind] = &[K::Rating];

/// The registry, in [`CountId`] order.
#[rustfmt::skip]
static REGISTRY: [CountDef; CountId::COUNT] = [
    def(C::DossierReceived, "dossier.received", DOSSIER, Some(C::DossierReported),
        "dossiers in the period's set, of any status and channel"),
    def(C::DossierHandled, "dossier.handled", DOSSIER, Some(C::DossierReceived),
        "dossiers whose status is not 3 (not accepted), 7 (withdrawn) or 8 (stopped)"),
    def(C::DossierOnTime, "dossier.on_time", DOSSIER, Some(C::DossierHandled),
        "handled dossiers finished by their due day, or still open and not yet due, at the period's end"),
    def(C::DossierOnline, "dossier.online", DOSSIER, Some(C::DossierReceived),
        "dossiers filed online (channel 2)"),
    def(C::DossierElectronicResult, "dossier.electronic_result", DOSSIER, Some(C::DossierReceived),
        "dossiers with an electronic result"),
    def(C::DossierDigitized, "dossier.digitized", DOSSIER, Some(C::DossierReceived),
        "dossiers whose components were digitized"),
    def(C::DossierReusedData, "dossier.reused_data", DOSSIER, Some(C::DossierReceived),
        "dossiers that reuse at least one digitized item"),
    def(C::DossierFeeBearing, "dossier.fee_bearing", DOSSIER, Some(C::DossierReceived),
        "dossiers with a nonzero fee"),
    def(C::DossierPaidOnline, "dossier.paid_online", DOSSIER, Some(C::DossierFeeBearing),
        "fee-bearing dossiers paid online"),
    def(C::DossierPersonalStorage, "dossier.personal_storage", DOSSIER, Some(C::DossierReceived),
        "dossiers linked to the applicant's data repository on the national portal"),
    def(C::DossierPopulationData, "dossier.population_data", DOSSIER, Some(C::DossierReceived),
        "dossiers that used the national population database"),
    def(C::DossierSatisfied, "dossier.satisfied", &[K::Dossier, K::Rating], Some(C::DossierReceived),
        "dossiers not rated dissatisfied, not complained about and not overdue"),
    def(C::DossierReported, "dossier.reported", &[K::Digest, K::Dossier], None,
        "the larger of the dossiers received by the unit's own digests and the dossiers stored"),
    def(C::ProcedureAnnounced, "procedure.announced", PROCEDURE, None,
        "procedures announced (công bố)"),
    def(C::ProcedureAnnouncedOnTime, "procedure.announced_on_time", PROCEDURE, Some(C::ProcedureAnnounced),
        "procedures announced within the legal deadline"),
    def(C::ProcedureDuePublic, "procedure.due_public", PROCEDURE, None,
        "procedures due to be made public in the national procedure database"),
    def(C::ProcedurePublicOnTime, "procedure.public_on_time", PROCEDURE, Some(C::ProcedureDuePublic),
        "procedures made public within 10 working days (ministries) or 5 (provinces)"),
    def(C::ProcedurePublic, "procedure.public", PROCEDURE, None,
        "procedures made public in the national procedure database"),
    def(C::ProcedurePublicComplete, "procedure.public_complete", PROCEDURE, Some(C::ProcedurePublic),
        "public procedures with every required part"),
    def(C::ProcedureTotal, "procedure.total", PROCEDURE, None,
        "procedures under the unit"),
    def(C::ProcedureOnline, "procedure.online", PROCEDURE, Some(C::ProcedureTotal),
        "procedures with a partial or full online service"),
    def(C::ProcedureOnlineUsed, "procedure.online_used", &[K::Procedure, K::Dossier], Some(C::ProcedureOnline),
        "online services that received at least one online dossier in the period"),
    def(C::ProcedureFeeBearing, "procedure.fee_bearing", PROCEDURE, Some(C::ProcedureTotal),
        "procedures that charge a fee"),
    def(C::ProcedurePayableOnline, "procedure.payable_online", PROCEDURE, Some(C::ProcedureFeeBearing),
        "fee-bearing procedures that can be paid online"),
    def(C::ProcedureFeeData, "procedure.fee_data", &[K::Procedure, K::Dossier], Some(C::ProcedureFeeBearing),
        "fee-bearing procedures whose synced dossiers carry fee data"),
    def(C::ProcedureCitizen, "procedure.citizen", PROCEDURE, Some(C::ProcedureTotal),
        "procedures for citizens"),
    def(C::ProcedurePopulationConnected, "procedure.population_connected", PROCEDURE, Some(C::ProcedureCitizen),
        "citizen procedures connected to the national population database"),
    def(C::FeedbackReceived, "feedback.received", FEEDBACK, None,
        "feedback items (phản ánh, kiến nghị) under the unit"),
    def(C::FeedbackOnTime, "feedback.on_time", FEEDBACK, Some(C::FeedbackReceived),
        "feedback handled by its deadline"),
    def(C::FeedbackSatisfactory, "feedback.satisfactory", FEEDBACK, Some(C::FeedbackReceived),
        "feedback not rated dissatisfied, not complained about again and not overdue"),
    def(C::FeedbackAboutProcedure, "feedback.about_procedure", FEEDBACK, Some(C::FeedbackReceived),
        "feedback classified as about an administrative procedure"),
    def(C::FeedbackAboutStaff, "feedback.about_staff", FEEDBACK, Some(C::FeedbackReceived),
        "feedback classified as about staff conduct"),
    def(C::RatingReceived, "rating.received", RATING, None,
        "satisfaction ratings of dossiers"),
    def(C::RatingSatisfied, "rating.satisfied", RATING, Some(C::RatingReceived),
        "ratings at the satisfied levels"),
    def(C::RatingDissatisfied, "rating.dissatisfied", RATING, Some(C::RatingReceived),
        "ratings at the dissatisfied levels"),
];

impl CountId {
    /// Number of counts in the registry.
    pub const COUNT: usize = 35;

    /// Returns every count, in registry order.
    pub fn all() -> impl Iterator<Item = CountId> {
        REGISTRY.iter().map(|def| def.id)
    }

    /// Returns the position of the count in the registry.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Returns the count's registry entry.
    pub fn def(self) -> &'static CountDef {
        &REGISTRY[self.index()]
    }

    /// Returns the count's name, such as `dossier.on_time`.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Returns the kind of record the count is taken over.
    pub fn kind(self) -> RecordKind {
        self.def().needs[0]
    }

    /// Looks a count up by its name.
    pub fn from_name(name: &str) -> Option<CountId> {
        REGISTRY
            .iter()
            .find(|def| def.name == name)
            .map(|def| def.id)
    }

    /// Returns whether every record this count includes is also in `other`, which holds for
    /// the count itself and for every count it is transitively `within`.
    pub fn is_within(self, other: CountId) -> bool {
        let mut current = Some(self);
        while let Some(count) = current {
            if count == other {
                return true;
            }
            current = count.def().within;
        }
        false
    }
}

impl fmt::Display for CountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A count within the set of one period rule: the unit of what a count source returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountKey {
    /// The count.
    pub count: CountId,
    /// The period rule that selects the records it is taken over.
    pub period: PeriodRule,
}

/// Returns every count name of the registry, comma separated, for error messages.
pub fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|def| def.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_in_id_order() {
        for (index, def) in REGISTRY.iter().enumerate() {
            assert_eq!(def.id.index(), index, "{}", def.name);
            assert_eq!(CountId::from_name(def.name), Some(def.id));
            let prefix = def.name.split('.').next().unwrap();
            let kind = def.needs[0].as_str();
            assert!(
                prefix == kind || (def.id == C::DossierReported && kind == "digest"),
                "{} counts {kind} records",
                def.name
            );
        }
        assert_eq!(CountId::all().count(), CountId::COUNT);
    }

    #[test]
    fn within_is_transitive_not_symmetric() {
        assert!(C::DossierOnTime.is_within(C::DossierHandled));
        assert!(C::DossierOnTime.is_within(C::DossierReceived));
        assert!(C::DossierPaidOnline.is_within(C::DossierFeeBearing));
        assert!(C::DossierOnline.is_within(C::DossierOnline));
        assert!(!C::DossierReceived.is_within(C::DossierOnline));
        assert!(!C::DossierOnline.is_within(C::DossierHandled));
        assert!(!C::FeedbackOnTime.is_within(C::DossierReceived));
    }

    #[test]
    fn every_kind_has_counts() {
        for kind in [K::Dossier, K::Procedure, K::Feedback, K::Rating] {
            assert!(CountId::all().any(|count| count.kind() == kind), "{kind:?}");
        }
        assert_eq!(CountId::from_name("dossier.unknown"), None);
    }
}
