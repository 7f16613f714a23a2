//! A deterministic generator of sample files for demonstrations and tests without real data. It
//! writes dossiers in the national format (`DongBoHoSoMC`), and for the same units the procedures
//! they apply, feedback items, satisfaction ratings and processing steps (`CapNhatTienDoHoSoMC`)
//! in the formats of `docs/record-formats.md`.
//!
//! The same [`SampleSpec`] and [`Distribution`] always give byte-identical output. Each kind's
//! random stream is ChaCha8 seeded from the SHA-256 of the seed and the province code, with the
//! kind's name appended for kinds other than dossiers. Units are walked in catalogue order, and
//! nothing iterates a hash map. Received times are spread evenly over the month up to `as_of`. Nothing
//! is finished, refused, returned, answered or rated after `as_of`, so dossiers and feedback that
//! would finish later are left open. Feedback, ratings and steps are drawn from the generated
//! dossiers, so they agree with them. Every record carries made-up personal details (names, ID
//! numbers, phones, emails, addresses, free text) so that the parser's removal of personal data
//! is exercised.

mod distribution;
mod dossier;
mod feedback;
#[cfg(test)]
mod kind_tests;
mod procedure;
mod rating;
mod step;
#[cfg(test)]
mod tests;

pub use distribution::Distribution;

use crate::dvcqg::{folder_of, service_name};
use chiso_proto::record::Kind;
use chiso_proto::units::{Level, UnitCatalogue};
use chiso_proto::vntime::{Month, vietnam};
use chrono::{NaiveDate, TimeZone};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Request for a sample file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Province code of the 2025 catalogue, such as `"25"` for Phú Thọ.
    pub province: String,
    /// Number of dossiers.
    pub dossiers: usize,
    /// Month over which received dates are spread.
    pub month: Month,
    /// Seed of the random stream.
    pub seed: u64,
    /// Snapshot time in Unix seconds: nothing is received or finishes after it.
    pub as_of: i64,
}

/// Error while generating or writing a sample.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The province code is not a province of the catalogue.
    #[error(
        "province {province:?} is not a province code of the 2025 unit catalogue; use a two-digit code such as \"25\""
    )]
    UnknownProvince {
        /// The requested code.
        province: String,
    },
    /// `as_of` falls before the month starts, so no dossier could be received.
    #[error("as_of {as_of} is before the start of {month}; pick a later as_of or an earlier month")]
    AsOfBeforeMonth {
        /// The requested month.
        month: Month,
        /// The requested snapshot time, Unix seconds.
        as_of: i64,
    },
    /// A distribution parameter is out of range.
    #[error("distribution parameter {parameter} = {value} is invalid; expected {expected}")]
    InvalidDistribution {
        /// The parameter's name.
        parameter: &'static str,
        /// Its value.
        value: String,
        /// The allowed range.
        expected: &'static str,
    },
    /// The file could not be written.
    #[error("cannot write sample file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Generates the `DongBoHoSoMC` envelope with the default (Phú Thọ) distribution.
pub fn generate(spec: &SampleSpec, catalogue: &UnitCatalogue) -> Result<Value, SampleError> {
    generate_with(spec, &Distribution::default(), catalogue)
}

/// Generates the `DongBoHoSoMC` envelope with the given distribution.
pub fn generate_with(
    spec: &SampleSpec,
    distribution: &Distribution,
    catalogue: &UnitCatalogue,
) -> Result<Value, SampleError> {
    let draft = draft_dossiers(spec, distribution, catalogue)?;
    Ok(envelope(spec, Kind::Dossier, draft.dossiers))
}

/// A sample of every record kind for the same units, each as its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSet {
    /// Dossiers, `DongBoHoSoMC`.
    pub dossiers: Value,
    /// The procedures each unit applies.
    pub procedures: Value,
    /// Feedback items.
    pub feedback: Value,
    /// Satisfaction ratings of finished dossiers.
    pub ratings: Value,
    /// Processing steps of the dossiers, `CapNhatTienDoHoSoMC`.
    pub steps: Value,
}

impl SampleSet {
    /// Returns the envelope of one kind.
    pub fn envelope(&self, kind: Kind) -> &Value {
        match kind {
            Kind::Dossier => &self.dossiers,
            Kind::Procedure => &self.procedures,
            Kind::Feedback => &self.feedback,
            Kind::Rating => &self.ratings,
            Kind::Step => &self.steps,
        }
    }

    /// Returns the number of records of one kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.envelope(kind)["data"].as_array().map_or(0, Vec::len)
    }
}

/// Generates every kind with the default (Phú Thọ) distribution.
pub fn generate_set(
    spec: &SampleSpec,
    catalogue: &UnitCatalogue,
) -> Result<SampleSet, SampleError> {
    generate_set_with(spec, &Distribution::default(), catalogue)
}

/// Generates every kind with the given distribution. The dossiers are the same as
/// [`generate_with`] gives.
pub fn generate_set_with(
    spec: &SampleSpec,
    distribution: &Distribution,
    catalogue: &UnitCatalogue,
) -> Result<SampleSet, SampleError> {
    let draft = draft_dossiers(spec, distribution, catalogue)?;
    let facts: Vec<dossier::DossierFacts> = draft
        .dossiers
        .iter()
        .map(dossier::DossierFacts::read)
        .collect();
    let shares: HashMap<&str, &Distribution> = draft
        .profiles
        .iter()
        .map(|(unit, shares)| (unit.code.as_str(), shares))
        .collect();
    let unit_shares = |code: &str| shares.get(code).copied().unwrap_or(distribution);

    let procedures = procedure::sample_procedures(
        &mut kind_rng(spec, Kind::Procedure),
        spec,
        distribution,
        &draft.profiles,
    );
    let feedback = feedback::sample_feedback(
        &mut kind_rng(spec, Kind::Feedback),
        spec,
        distribution,
        draft.window,
        &facts,
        &unit_shares,
    );
    let ratings = rating::sample_ratings(
        &mut kind_rng(spec, Kind::Rating),
        spec,
        &facts,
        &unit_shares,
    );
    let steps = step::sample_steps(&mut kind_rng(spec, Kind::Step), spec, &facts);
    Ok(SampleSet {
        dossiers: envelope(spec, Kind::Dossier, draft.dossiers),
        procedures: envelope(spec, Kind::Procedure, procedures),
        feedback: envelope(spec, Kind::Feedback, feedback),
        ratings: envelope(spec, Kind::Rating, ratings),
        steps: envelope(spec, Kind::Step, steps),
    })
}

/// Dossier records with the units and shares they were drawn from.
struct Draft {
    /// Each unit, in catalogue order, with its own shares.
    profiles: Vec<(dossier::SampleUnit, Distribution)>,
    /// The received window `[start, end)`.
    window: (i64, i64),
    dossiers: Vec<Value>,
}

fn draft_dossiers(
    spec: &SampleSpec,
    distribution: &Distribution,
    catalogue: &UnitCatalogue,
) -> Result<Draft, SampleError> {
    distribution.check()?;
    let units = sample_units(spec, catalogue)?;
    let (start, end) = received_window(spec)?;
    let mut rng = ChaCha8Rng::from_seed(stream_seed(spec));

    // Offsets are drawn first, in catalogue order, so they do not depend on the dossier count.
    let profiles: Vec<(dossier::SampleUnit, Distribution)> = units
        .into_iter()
        .map(|unit| {
            let offset = rng.random_range(-1.0..=1.0);
            (unit, distribution.for_unit(offset))
        })
        .collect();

    let span = (end - start) as f64;
    let mut records = Vec::with_capacity(spec.dossiers);
    let mut record_units = Vec::with_capacity(spec.dossiers);
    for index in 0..spec.dossiers {
        let unit_index = pick_unit(&mut rng, profiles.len(), distribution.province_level);
        let (unit, shares) = &profiles[unit_index];
        record_units.push(unit_index);
        // One evenly spaced slot per dossier, with a random time inside it, keeps the file in
        // received order.
        let slot = (index as f64 + rng.random::<f64>()) / spec.dossiers as f64;
        let received_at = start + (slot * span) as i64;
        let draw = dossier::Slot {
            unit,
            sequence: index + 1,
            received_at,
            as_of: spec.as_of,
        };
        records.push(dossier::sample_record(&mut rng, &draw, shares));
    }

    // Fields added after the first release come from their own stream, so the fields above keep
    // their values for a given seed.
    let mut extras = kind_rng_named(spec, "dossier-extras");
    for (record, unit_index) in records.iter_mut().zip(record_units) {
        dossier::add_national_databases(&mut extras, record, &profiles[unit_index].1);
    }

    Ok(Draft {
        profiles,
        window: (start, end),
        dossiers: records,
    })
}

fn envelope(spec: &SampleSpec, kind: Kind, records: Vec<Value>) -> Value {
    json!({
        "session": "sample",
        "madonvi": spec.province,
        "service": service_name(kind),
        "isUpdating": false,
        "data": records,
    })
}

/// Generates a sample and writes it as pretty-printed JSON, returning the number of records.
pub fn write_sample(
    spec: &SampleSpec,
    catalogue: &UnitCatalogue,
    path: &Path,
) -> Result<usize, SampleError> {
    let envelope = generate(spec, catalogue)?;
    write_envelope(&envelope, path)?;
    tracing::info!(path = %path.display(), dossiers = spec.dossiers, "sample file written");
    Ok(spec.dossiers)
}

/// Generates every kind and writes one kind's envelope to `path`, returning the number of
/// records written.
pub fn write_sample_kind(
    spec: &SampleSpec,
    kind: Kind,
    catalogue: &UnitCatalogue,
    path: &Path,
) -> Result<usize, SampleError> {
    let set = generate_set(spec, catalogue)?;
    write_envelope(set.envelope(kind), path)?;
    let records = set.count(kind);
    tracing::info!(path = %path.display(), kind = kind.as_str(), records, "sample file written");
    Ok(records)
}

/// Generates every kind and writes each to `dir` as `dossiers.json`, `procedures.json`,
/// `feedback.json`, `ratings.json` and `steps.json`. Returns each kind with its file and record
/// count.
pub fn write_sample_set(
    spec: &SampleSpec,
    catalogue: &UnitCatalogue,
    dir: &Path,
) -> Result<Vec<(Kind, PathBuf, usize)>, SampleError> {
    let set = generate_set(spec, catalogue)?;
    std::fs::create_dir_all(dir).map_err(|source| SampleError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for kind in Kind::ALL {
        let path = dir.join(format!("{}.json", folder_of(kind)));
        write_envelope(set.envelope(kind), &path)?;
        written.push((kind, path, set.count(kind)));
    }
    tracing::info!(dir = %dir.display(), "sample files written");
    Ok(written)
}

fn write_envelope(envelope: &Value, path: &Path) -> Result<(), SampleError> {
    let mut bytes = serde_json::to_vec_pretty(envelope)
        .expect("a serde_json::Value with string keys always serializes");
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|source| SampleError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Returns the random stream of a kind other than dossiers.
fn kind_rng(spec: &SampleSpec, kind: Kind) -> ChaCha8Rng {
    kind_rng_named(spec, kind.as_str())
}

fn kind_rng_named(spec: &SampleSpec, name: &str) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(spec.seed.to_le_bytes());
    hasher.update(spec.province.as_bytes());
    hasher.update(name.as_bytes());
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

fn stream_seed(spec: &SampleSpec) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(spec.seed.to_le_bytes());
    hasher.update(spec.province.as_bytes());
    hasher.finalize().into()
}

/// Lists the province itself, then its communes in catalogue order.
fn sample_units(
    spec: &SampleSpec,
    catalogue: &UnitCatalogue,
) -> Result<Vec<dossier::SampleUnit>, SampleError> {
    let province = catalogue
        .get(&spec.province)
        .filter(|unit| unit.level == Level::Province)
        .ok_or_else(|| SampleError::UnknownProvince {
            province: spec.province.clone(),
        })?;
    let communes = catalogue
        .communes_of(&province.code)
        .iter()
        .filter_map(|code| catalogue.get(code));
    Ok(std::iter::once(province)
        .chain(communes)
        .map(|unit| dossier::SampleUnit {
            code: unit.code.clone(),
            name: unit.name.clone(),
        })
        .collect())
}

/// Picks the index of the province (0) with probability `province_level`, else of a commune
/// uniformly.
fn pick_unit(rng: &mut ChaCha8Rng, units: usize, province_level: f64) -> usize {
    if units == 1 || rng.random_bool(province_level) {
        0
    } else {
        rng.random_range(1..units)
    }
}

/// Returns the received window `[start, end)`: the month in Vietnam time, cut at `as_of`.
fn received_window(spec: &SampleSpec) -> Result<(i64, i64), SampleError> {
    let start = vietnam_midnight(spec.month.first_day());
    let month_end = vietnam_midnight(spec.month.next().first_day());
    if spec.as_of <= start {
        return Err(SampleError::AsOfBeforeMonth {
            month: spec.month,
            as_of: spec.as_of,
        });
    }
    Ok((start, month_end.min(spec.as_of)))
}

fn vietnam_midnight(day: NaiveDate) -> i64 {
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists on every day");
    vietnam()
        .from_local_datetime(&midnight)
        .single()
        .expect("a fixed offset maps every local time to one instant")
        .timestamp()
}
