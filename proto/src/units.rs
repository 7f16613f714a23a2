//! The official unit catalogue after the 2025 reform: 34 provinces and 3,321 communes.
//!
//! The CSV in `proto/data/units-2025.csv` is embedded at compile time. It was extracted from the
//! PyPI package vietnamadminunits 1.0.4 (MIT licence, notice in `proto/data/units-LICENSE.txt`).
//! Province codes have two digits and commune codes five, so a code names one unit on its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// Version tag of the embedded catalogue, reported with every scorecard.
pub const CATALOGUE_VERSION: &str = "units-2025 (vietnamadminunits 1.0.4)";

const OFFICIAL_CSV: &str = include_str!("../data/units-2025.csv");

static OFFICIAL: LazyLock<UnitCatalogue> = LazyLock::new(|| {
    UnitCatalogue::from_csv(OFFICIAL_CSV.as_bytes())
        .expect("the embedded catalogue is checked by the unit tests of this module")
});

/// Level of a unit in the two-tier local government.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A province or centrally run city.
    Province,
    /// A commune, ward or special zone.
    Commune,
}

impl Level {
    /// Returns the lowercase name used in scorecards.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Commune => "commune",
        }
    }
}

/// One unit of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Official code.
    pub code: String,
    /// Official name in Vietnamese.
    pub name: String,
    /// Province or commune.
    pub level: Level,
    /// Code of the province: the unit's own code for a province.
    pub province_code: String,
}

/// Errors while loading a unit catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The CSV could not be read.
    #[error("unit catalogue line {line}: {source}")]
    Csv {
        /// 1-based line number.
        line: u64,
        /// Underlying CSV error.
        source: csv::Error,
    },
    /// A code has the wrong shape or is listed twice.
    #[error("unit catalogue line {line}: invalid code {code:?}: {reason}")]
    InvalidCode {
        /// 1-based line number.
        line: u64,
        /// The offending code.
        code: String,
        /// Description of the fault.
        reason: &'static str,
    },
}

/// The set of units, indexed by code.
#[derive(Debug, Default)]
pub struct UnitCatalogue {
    units: HashMap<String, Unit>,
    communes_by_province: BTreeMap<String, Vec<String>>,
}

impl UnitCatalogue {
    /// Returns the embedded official catalogue.
    pub fn official() -> &'static UnitCatalogue {
        &OFFICIAL
    }

    /// Loads a catalogue from CSV with the columns
    /// `province_code,province_name,commune_code,commune_name,commune_type`.
    pub fn from_csv(reader: impl std::io::Read) -> Result<UnitCatalogue, CatalogueError> {
        let mut catalogue = UnitCatalogue::default();
        let mut csv_reader = csv::Reader::from_reader(reader);

        for (index, row) in csv_reader.records().enumerate() {
            let line = index as u64 + 2;
            let row = row.map_err(|source| CatalogueError::Csv { line, source })?;
            let field = |i: usize| row.get(i).unwrap_or("").trim().to_string();
            let (province_code, province_name) = (field(0), field(1));
            let (commune_code, commune_name) = (field(2), field(3));

            check_code(line, &province_code, 2)?;
            check_code(line, &commune_code, 5)?;

            catalogue
                .units
                .entry(province_code.clone())
                .or_insert_with(|| Unit {
                    code: province_code.clone(),
                    name: province_name,
                    level: Level::Province,
                    province_code: province_code.clone(),
                });

            let commune = Unit {
                code: commune_code.clone(),
                name: commune_name,
                level: Level::Commune,
                province_code: province_code.clone(),
            };
            if catalogue
                .units
                .insert(commune_code.clone(), commune)
                .is_some()
            {
                return Err(CatalogueError::InvalidCode {
                    line,
                    code: commune_code,
                    reason: "listed twice",
                });
            }
            catalogue
                .communes_by_province
                .entry(province_code)
                .or_default()
                .push(commune_code);
        }
        Ok(catalogue)
    }

    /// Looks a unit up by code.
    pub fn get(&self, code: &str) -> Option<&Unit> {
        self.units.get(code)
    }

    /// Returns the province codes in ascending order.
    pub fn province_codes(&self) -> impl Iterator<Item = &str> {
        self.communes_by_province.keys().map(String::as_str)
    }

    /// Returns the commune codes of a province, in catalogue order, or an empty slice.
    pub fn communes_of(&self, province_code: &str) -> &[String] {
        self.communes_by_province
            .get(province_code)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Tells whether `unit_code` is the locality itself or one of its communes.
    pub fn is_within(&self, unit_code: &str, locality: &str) -> bool {
        self.get(unit_code)
            .is_some_and(|unit| unit.province_code == locality)
    }

    /// Number of units, provinces and communes together.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Tells whether the catalogue has no units.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

fn check_code(line: u64, code: &str, digits: usize) -> Result<(), CatalogueError> {
    if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CatalogueError::InvalidCode {
            line,
            code: code.to_string(),
            reason: if digits == 2 {
                "a province code has two digits"
            } else {
                "a commune code has five digits"
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_catalogue_has_reform_counts() {
        let catalogue = UnitCatalogue::official();
        assert_eq!(catalogue.province_codes().count(), 34);
        assert_eq!(catalogue.len(), 34 + 3321);
    }

    #[test]
    fn commune_belongs_to_its_province() {
        let catalogue = UnitCatalogue::official();
        let ba_dinh = catalogue
            .get("00004")
            .expect("Phường Ba Đình is in the catalogue");
        assert_eq!(ba_dinh.province_code, "01");
        assert_eq!(ba_dinh.level, Level::Commune);
        assert!(catalogue.is_within("00004", "01"));
        assert!(catalogue.is_within("01", "01"));
        assert!(!catalogue.is_within("00004", "79"));
        assert!(!catalogue.is_within("99999", "01"));
    }

    #[test]
    fn malformed_code_names_line_and_value() {
        let csv = "province_code,province_name,commune_code,commune_name,commune_type\n01,Hà Nội,4,Ba Đình,Phường\n";
        let error = UnitCatalogue::from_csv(csv.as_bytes()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("\"4\""), "{message}");
    }
}
