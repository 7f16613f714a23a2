//! The identity of a record of any kind: its kind, stable key, unit and version, read the same
//! way by the agent's outbox and the hub's store.

use std::borrow::Cow;
use std::fmt;

use crate::v1::record::Body;

/// Kind of a record, as the outbox and the hub store name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A dossier (hồ sơ, DongBoHoSoMC).
    Dossier,
    /// An administrative procedure as one unit applies it.
    Procedure,
    /// A feedback or petition item (phản ánh, kiến nghị).
    Feedback,
    /// A satisfaction rating of a dossier.
    Rating,
    /// A processing step of a dossier (CapNhatTienDoHoSoMC).
    Step,
}

impl Kind {
    /// Every kind, in wire order.
    pub const ALL: [Kind; 5] = [
        Kind::Dossier,
        Kind::Procedure,
        Kind::Feedback,
        Kind::Rating,
        Kind::Step,
    ];

    /// Returns the kind's name: `dossier`, `procedure`, `feedback`, `rating` or `step`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dossier => "dossier",
            Kind::Procedure => "procedure",
            Kind::Feedback => "feedback",
            Kind::Rating => "rating",
            Kind::Step => "step",
        }
    }

    /// Looks a kind up by its name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Separator between the parts of a composite key.
pub const KEY_SEPARATOR: char = '/';

/// The identity of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordId<'a> {
    /// The record's kind.
    pub kind: Kind,
    /// The stable key, unique within the kind for one sending system: the code of a dossier,
    /// feedback item or rating, `unit/code` for a procedure, `dossier/step` for a step.
    pub key: Cow<'a, str>,
    /// The unit the record belongs to, which authorization checks.
    pub unit_code: &'a str,
    /// The record's version; a newer version replaces an older one.
    pub version: u64,
}

/// Returns the identity of a record body.
pub fn identify(body: &Body) -> RecordId<'_> {
    match body {
        Body::Dossier(d) => RecordId {
            kind: Kind::Dossier,
            key: Cow::Borrowed(&d.code),
            unit_code: &d.unit_code,
            version: d.version,
        },
        Body::Procedure(p) => RecordId {
            kind: Kind::Procedure,
            key: Cow::Owned(format!("{}{KEY_SEPARATOR}{}", p.unit_code, p.code)),
            unit_code: &p.unit_code,
            version: p.version,
        },
        Body::Feedback(f) => RecordId {
            kind: Kind::Feedback,
            key: Cow::Borrowed(&f.code),
            unit_code: &f.unit_code,
            version: f.version,
        },
        Body::Rating(r) => RecordId {
            kind: Kind::Rating,
            key: Cow::Borrowed(&r.code),
            unit_code: &r.unit_code,
            version: r.version,
        },
        Body::Step(s) => RecordId {
            kind: Kind::Step,
            key: Cow::Owned(format!("{}{KEY_SEPARATOR}{}", s.dossier_code, s.step)),
            unit_code: &s.unit_code,
            version: s.version,
        },
    }
}

/// Sets the version of a record body.
pub fn set_version(body: &mut Body, version: u64) {
    match body {
        Body::Dossier(d) => d.version = version,
        Body::Procedure(p) => p.version = version,
        Body::Feedback(f) => f.version = version,
        Body::Rating(r) => r.version = version,
        Body::Step(s) => s.version = version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{DossierStep, Procedure};

    #[test]
    fn composite_keys_join_their_parts() {
        let procedure = Body::Procedure(Procedure {
            code: "1.001234".into(),
            unit_code: "01".into(),
            version: 3,
            ..Default::default()
        });
        let id = identify(&procedure);
        assert_eq!(id.kind, Kind::Procedure);
        assert_eq!(id.key, "01/1.001234");
        assert_eq!(id.version, 3);

        let mut step = Body::Step(DossierStep {
            dossier_code: "H01.2026.1".into(),
            step: 4,
            unit_code: "00004".into(),
            ..Default::default()
        });
        set_version(&mut step, 9);
        let id = identify(&step);
        assert_eq!(
            (id.key.as_ref(), id.unit_code, id.version),
            ("H01.2026.1/4", "00004", 9)
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("dossiers"), None);
    }
}
