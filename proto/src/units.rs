//! The unit catalogue: the official local units after the 2025 reform (34 provinces and 3,321
//! communes) and the ministries with their units.
//!
//! The CSV in `proto/data/units-2025.csv` is embedded at compile time. It was extracted from the
//! PyPI package vietnamadminunits 1.0.4 (MIT licence, notice in `proto/data/units-LICENSE.txt`).
//! Province codes have two digits and commune codes five, so a code names one unit on its own.
//! Ministries and their units come from a ministry catalogue file ([`crate::ministries`]), whose
//! codes contain a letter, so they never look like a province or commune code.
//!
//! Each unit belongs to one locality, the unit an agent serves: a province for itself and its
//! communes, a ministry for itself and its units.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::LazyLock;

use crate::ministries::{self, MinistryFile, MinistryFileError};

/// Version tag of the embedded province and commune catalogue.
pub const CATALOGUE_VERSION: &str = "units-2025 (vietnamadminunits 1.0.4)";

const OFFICIAL_CSV: &str = include_str!("../data/units-2025.csv");

static LOCAL: LazyLock<UnitCatalogue> = LazyLock::new(|| {
    let mut catalogue = UnitCatalogue::from_csv(OFFICIAL_CSV.as_bytes())
        .expect("the embedded catalogue is checked by the unit tests of this module");
    catalogue.version = CATALOGUE_VERSION.to_string();
    catalogue
});

static OFFICIAL: LazyLock<UnitCatalogue> = LazyLock::new(|| {
    let mut catalogue = LOCAL.clone();
    catalogue
        .add_ministries(&[MinistryFile::builtin()])
        .expect("the built-in ministry catalogue is checked by the unit tests of this module");
    catalogue
});

/// Level of a unit: the two tiers of local government, and the ministries with their units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A province or centrally run city.
    Province,
    /// A commune, ward or special zone.
    Commune,
    /// A ministry or ministry-level agency of the Government.
    Ministry,
    /// A unit of a ministry that handles procedures, at any depth below it.
    MinistryUnit,
}

impl Level {
    /// Returns the lowercase name used in scorecards.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Commune => "commune",
            Level::Ministry => "ministry",
            Level::MinistryUnit => "ministry_unit",
        }
    }

    /// Returns whether units of this level are ministries or their units.
    pub fn is_ministry_level(self) -> bool {
        matches!(self, Level::Ministry | Level::MinistryUnit)
    }
}

/// Returns whether a code has the shape of a province code: two ASCII digits. Ministry codes
/// contain a letter and commune codes have five digits, so no other unit has this shape.
pub fn is_province_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())
}

/// One unit of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Official code.
    pub code: String,
    /// Official name in Vietnamese.
    pub name: String,
    /// English name, for ministries and ministry units whose catalogue entry has one.
    pub name_en: Option<String>,
    /// Province, commune, ministry or ministry unit.
    pub level: Level,
    /// Code of the unit's locality: the province of a province or commune, the ministry of a
    /// ministry or ministry unit. It is the unit's own code for a province or ministry.
    pub province_code: String,
    /// Code of the unit directly above: the province of a commune, the parent entry of a
    /// ministry unit, `None` for a province or ministry.
    pub parent_code: Option<String>,
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
#[derive(Debug, Default, Clone)]
pub struct UnitCatalogue {
    units: HashMap<String, Unit>,
    communes_by_province: BTreeMap<String, Vec<String>>,
    ministries: Vec<String>,
    units_by_ministry: HashMap<String, Vec<String>>,
    version: String,
}

impl UnitCatalogue {
    /// Returns the embedded catalogue: the official provinces and communes and the built-in
    /// ministries (`ministries-2025`).
    pub fn official() -> &'static UnitCatalogue {
        &OFFICIAL
    }

    /// Returns a copy of the official provinces and communes, without ministries.
    pub fn local() -> UnitCatalogue {
        LOCAL.clone()
    }

    /// Builds the catalogue of a ministry catalogue file: the official provinces and communes,
    /// the built-in ministries when the file extends them, and the file's entries.
    pub fn with_ministry_file(path: &Path) -> Result<UnitCatalogue, MinistryFileError> {
        UnitCatalogue::with_ministries(MinistryFile::read(path)?)
    }

    /// Builds the catalogue of a parsed ministry catalogue file, like
    /// [`UnitCatalogue::with_ministry_file`].
    pub fn with_ministries(file: MinistryFile) -> Result<UnitCatalogue, MinistryFileError> {
        let mut files = Vec::with_capacity(2);
        if file.extends_default {
            files.push(MinistryFile::builtin());
        }
        files.push(file);
        let mut catalogue = UnitCatalogue::local();
        catalogue.add_ministries(&files)?;
        Ok(catalogue)
    }

    /// Adds the entries of ministry catalogue files, checked as one list against this
    /// catalogue's units, and appends each file's version to the catalogue's.
    fn add_ministries(&mut self, files: &[MinistryFile]) -> Result<(), MinistryFileError> {
        let resolved = ministries::resolve(files, self)?;
        for unit in resolved {
            let entry = unit.entry;
            let level = if entry.parent.is_none() {
                self.ministries.push(entry.code.clone());
                Level::Ministry
            } else {
                self.units_by_ministry
                    .entry(unit.ministry.clone())
                    .or_default()
                    .push(entry.code.clone());
                Level::MinistryUnit
            };
            let code = entry.code.clone();
            let added = Unit {
                code: entry.code,
                name: entry.name,
                name_en: entry.name_en,
                level,
                province_code: unit.ministry,
                parent_code: entry.parent,
            };
            self.units.insert(code, added);
        }
        for file in files {
            self.version = format!("{} + {}", self.version, file.version);
        }
        Ok(())
    }

    /// Returns the catalogue's version: the official catalogue's tag, then each ministry
    /// catalogue's, joined by " + ". Scorecards report it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Loads a catalogue from CSV with the columns
    /// `province_code,province_name,commune_code,commune_name,commune_type`. Its version is
    /// empty.
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
                    name_en: None,
                    level: Level::Province,
                    province_code: province_code.clone(),
                    parent_code: None,
                });

            let commune = Unit {
                code: commune_code.clone(),
                name: commune_name,
                name_en: None,
                level: Level::Commune,
                province_code: province_code.clone(),
                parent_code: Some(province_code.clone()),
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

    /// Returns the ministry codes (ministries and ministry-level agencies) in catalogue order.
    pub fn ministry_codes(&self) -> impl Iterator<Item = &str> {
        self.ministries.iter().map(String::as_str)
    }

    /// Returns the codes of every unit below a ministry, at any depth, in catalogue order, or
    /// an empty slice.
    pub fn units_of_ministry(&self, ministry_code: &str) -> &[String] {
        self.units_by_ministry
            .get(ministry_code)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Tells whether a code is a locality an agent can serve: a province or a ministry.
    pub fn is_locality(&self, code: &str) -> bool {
        self.get(code)
            .is_some_and(|unit| unit.province_code == code)
    }

    /// Tells whether `unit_code` is the locality itself or one of its units: a commune of a
    /// province, or a unit at any depth below a ministry.
    pub fn is_within(&self, unit_code: &str, locality: &str) -> bool {
        self.get(unit_code)
            .is_some_and(|unit| unit.province_code == locality)
    }

    /// Number of units of every level together.
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
        assert_eq!(catalogue.ministry_codes().count(), 17);
        assert_eq!(catalogue.len(), 34 + 3321 + 17);
        assert_eq!(
            catalogue.version(),
            "units-2025 (vietnamadminunits 1.0.4) + ministries-2025"
        );
        assert_eq!(UnitCatalogue::local().len(), 34 + 3321);
        assert_eq!(UnitCatalogue::local().version(), CATALOGUE_VERSION);
    }

    #[test]
    fn only_provinces_have_province_shaped_codes() {
        let catalogue = UnitCatalogue::official();
        let mut codes: Vec<&str> = catalogue.province_codes().collect();
        codes.extend(catalogue.ministry_codes());
        for code in codes {
            let level = catalogue.get(code).unwrap().level;
            assert_eq!(is_province_code(code), level == Level::Province, "{code}");
        }
        assert!(!is_province_code("00004"));
        assert!(!is_province_code("VN"));
    }

    #[test]
    fn ministry_units_belong_to_their_ministry() {
        let text = r#"
version = "finance-units"
base = "ministries-2025"
[[unit]]
code = "TCT"
name = "Cục Thuế"
name_en = "Department of Taxation"
parent = "BTC"
[[unit]]
code = "TCT-HN"
name = "Thuế Thành phố Hà Nội"
parent = "TCT"
"#;
        let file = MinistryFile::parse(text, "finance.toml").unwrap();
        let catalogue = UnitCatalogue::with_ministries(file).unwrap();
        assert_eq!(
            catalogue.version(),
            "units-2025 (vietnamadminunits 1.0.4) + ministries-2025 + finance-units"
        );

        let finance = catalogue.get("BTC").unwrap();
        assert_eq!(finance.level, Level::Ministry);
        assert_eq!(finance.province_code, "BTC");
        assert_eq!(finance.parent_code, None);
        let office = catalogue.get("TCT-HN").unwrap();
        assert_eq!(office.level, Level::MinistryUnit);
        assert_eq!(office.province_code, "BTC");
        assert_eq!(office.parent_code.as_deref(), Some("TCT"));
        assert_eq!(
            catalogue.get("TCT").unwrap().name_en.as_deref(),
            Some("Department of Taxation")
        );

        assert_eq!(catalogue.units_of_ministry("BTC"), ["TCT", "TCT-HN"]);
        assert!(catalogue.units_of_ministry("BYT").is_empty());
        assert!(catalogue.is_locality("BTC"));
        assert!(catalogue.is_locality("01"));
        assert!(!catalogue.is_locality("TCT"));
        assert!(!catalogue.is_locality("00004"));
        assert!(catalogue.is_within("TCT-HN", "BTC"));
        assert!(!catalogue.is_within("TCT-HN", "BYT"));
        assert!(!catalogue.is_within("TCT-HN", "01"));
        assert!(!catalogue.is_within("00004", "BTC"));
        assert_eq!(catalogue.province_codes().count(), 34);
    }

    #[test]
    fn replacing_file_drops_builtin_ministries() {
        let text = "version = \"own\"\n[[unit]]\ncode = \"BX\"\nname = \"Bộ X\"\n";
        let file = MinistryFile::parse(text, "own.toml").unwrap();
        let catalogue = UnitCatalogue::with_ministries(file).unwrap();
        assert_eq!(catalogue.ministry_codes().collect::<Vec<_>>(), ["BX"]);
        assert!(catalogue.get("BTC").is_none());
        assert_eq!(
            catalogue.version(),
            "units-2025 (vietnamadminunits 1.0.4) + own"
        );
    }

    #[test]
    fn ministry_file_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("chiso-units-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ministries.toml");
        std::fs::write(
            &path,
            "version = \"x\"\n[[unit]]\ncode = \"AB\"\nname = \"a\"\nparent = \"ZZ\"\n",
        )
        .unwrap();
        let message = UnitCatalogue::with_ministry_file(&path)
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("unknown parent \"ZZ\""), "{message}");

        let missing = UnitCatalogue::with_ministry_file(&dir.join("absent.toml")).unwrap_err();
        assert!(missing.to_string().contains("absent.toml"), "{missing}");
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
