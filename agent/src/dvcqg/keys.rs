//! The key of a rejected record, read from whatever fields are still readable, so an operator
//! can find the record. Where the parts are readable it is the key the hub uses
//! (`chiso_proto::record::identify`): `unit/MaTTHC` for a procedure and `MaHoSo/step` for a
//! step. Otherwise it is the record's own code.

use super::IntakeContext;
use super::fields::Fields;
use super::step::step_number;
use super::unit::unchecked_unit;
use chiso_proto::record::{KEY_SEPARATOR, Kind};
use serde_json::{Map, Value};

/// Maximum length of a record key kept with a rejection, in characters, so that an oversized
/// code cannot bloat the outbox.
const KEY_MAX_CHARS: usize = 200;

/// Reads the record's key for a rejection, when its code is readable.
pub(super) fn record_key(
    kind: Kind,
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Option<String> {
    let fields = Fields::new(record);
    let code = |key: &str| fields.code(key).ok().flatten();
    let key = match kind {
        Kind::Dossier => code("MaHoSo")?,
        Kind::Feedback => code("MaPAKN")?,
        Kind::Rating => code("MaDanhGia")?,
        Kind::Procedure => {
            let procedure = code("MaTTHC")?;
            match unchecked_unit(&fields, envelope_unit, ctx) {
                Some(unit) => format!("{unit}{KEY_SEPARATOR}{procedure}"),
                None => procedure,
            }
        }
        Kind::Step => {
            let dossier = code("MaHoSo")?;
            let step = fields
                .date("ThoiDiemXuLy")
                .ok()
                .flatten()
                .and_then(step_number);
            match step {
                Some(step) => format!("{dossier}{KEY_SEPARATOR}{step}"),
                None => dossier,
            }
        }
    };
    Some(key.chars().take(KEY_MAX_CHARS).collect())
}
