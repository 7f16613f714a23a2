//! Fuzzes the agent's intake of national-format JSON: any bytes may come in, none may panic, an
//! accepted dossier must pass the hub's record rules, and a rejection must carry a reason.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use chiso_agent::dvcqg::{IntakeContext, parse_dossiers};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::RejectCode;
use chiso_proto::validate::{check_dossier, check_unit};
use libfuzzer_sys::fuzz_target;

fn agency_map() -> &'static HashMap<String, String> {
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    MAP.get_or_init(|| HashMap::from([("000.00.01.H22".to_string(), "00004".to_string())]))
}

fuzz_target!(|data: &[u8]| {
    let catalogue = UnitCatalogue::official();
    let ctx = IntakeContext {
        locality: "01",
        catalogue,
        agency_map: agency_map(),
    };
    let Ok(outcomes) = parse_dossiers(data, &ctx) else {
        return;
    };
    for outcome in outcomes {
        match outcome.result {
            Ok(dossier) => {
                assert_eq!(check_dossier(&dossier), Ok(()));
                assert_eq!(check_unit(catalogue, &dossier.unit_code, "01"), Ok(()));
            }
            Err(error) => {
                assert_ne!(error.code, RejectCode::Unspecified);
                assert!(!error.field.is_empty());
                assert!(!error.message.is_empty());
            }
        }
    }
});
