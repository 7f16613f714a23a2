//! A deterministic generator of sample dossier files in the national format (`DongBoHoSoMC`),
//! for demonstrations and tests without real data.
//!
//! The same [`SampleSpec`] and [`Distribution`] always give byte-identical output: the random
//! stream is ChaCha8 seeded from the SHA-256 of the seed and the province code, units are walked
//! in catalogue order, and nothing iterates a hash map. Received times are spread evenly over the
//! month up to `as_of`. Nothing is finished, refused or returned after `as_of`, so dossiers that
//! would finish later are left open. Every record carries made-up applicant details (name, ID
//! number, phone, email, address) so that the parser's removal of personal data is exercised.

mod distribution;
mod dossier;
#[cfg(test)]
mod tests;

pub use distribution::Distribution;

use chiso_proto::units::{Level, UnitCatalogue};
use chiso_proto::vntime::{Month, vietnam};
use chrono::{NaiveDate, TimeZone};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
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
    for index in 0..spec.dossiers {
        let (unit, shares) = pick_unit(&mut rng, &profiles, distribution.province_level);
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

    Ok(json!({
        "session": "sample",
        "madonvi": spec.province,
        "service": "DongBoHoSoMC",
        "isUpdating": false,
        "data": records,
    }))
}

/// Generates a sample and writes it as pretty-printed JSON, returning the number of records.
pub fn write_sample(
    spec: &SampleSpec,
    catalogue: &UnitCatalogue,
    path: &Path,
) -> Result<usize, SampleError> {
    let envelope = generate(spec, catalogue)?;
    let mut bytes = serde_json::to_vec_pretty(&envelope)
        .expect("a serde_json::Value with string keys always serializes");
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|source| SampleError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    tracing::info!(path = %path.display(), dossiers = spec.dossiers, "sample file written");
    Ok(spec.dossiers)
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

/// Picks the province with probability `province_level`, else a commune uniformly.
fn pick_unit<'a>(
    rng: &mut ChaCha8Rng,
    profiles: &'a [(dossier::SampleUnit, Distribution)],
    province_level: f64,
) -> (&'a dossier::SampleUnit, &'a Distribution) {
    let index = if profiles.len() == 1 || rng.random_bool(province_level) {
        0
    } else {
        rng.random_range(1..profiles.len())
    };
    let (unit, shares) = &profiles[index];
    (unit, shares)
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
