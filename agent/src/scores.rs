//! The locality's scorecard: fetched from the hub, printed as a table, and written as JSON for
//! the local portal. JSON files are written to a temporary name and renamed, so a reader never
//! sees half a file.

use chiso_proto::v1::scores_client::ScoresClient;
use chiso_proto::v1::{GetScoresRequest, GetScoresResponse, IndicatorScore, UnitScore};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use tonic::transport::Channel;

/// Fetches the scorecard of a unit (empty code: the whole country) and its direct children.
pub async fn fetch(
    channel: Channel,
    unit_code: &str,
    period: &str,
    as_of: i64,
) -> Result<GetScoresResponse, tonic::Status> {
    let mut client = ScoresClient::new(channel);
    let request = GetScoresRequest {
        unit_code: unit_code.to_string(),
        period: period.to_string(),
        include_children: true,
        as_of,
    };
    Ok(client.get_scores(request).await?.into_inner())
}

/// Formats a score to two decimals, as the national portal shows it; "n/a" when not assessed.
pub fn display_points(points: Option<f64>) -> String {
    points.map_or_else(|| "n/a".to_string(), |points| format!("{points:.2}"))
}

fn display_rate(indicator: &IndicatorScore) -> String {
    indicator
        .rate
        .map_or_else(|| "n/a".to_string(), |rate| format!("{:.2}%", rate * 100.0))
}

/// Renders a scorecard as a fixed-width table: one row per unit, a column per indicator.
pub fn render_table(response: &GetScoresResponse) -> String {
    let mut out = String::new();
    let indicator_ids: Vec<&str> = response
        .units
        .first()
        .map(|unit| unit.indicators.iter().map(|i| i.id.as_str()).collect())
        .unwrap_or_default();

    let _ = writeln!(
        out,
        "Period {} | catalogue {} | units {}",
        response.period, response.catalogue_version, response.unit_catalogue_version
    );
    let mut header = format!("{:<7} {:<34}", "code", "unit");
    for id in &indicator_ids {
        let _ = write!(header, " {:>28}", id);
    }
    let _ = write!(header, " {:>14}", "points/max");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.chars().count()));

    for unit in &response.units {
        let _ = writeln!(out, "{}", render_row(unit));
    }
    let _ = writeln!(
        out,
        "Each cell: points (numerator/denominator, rate); n/a = not assessed because the denominator is 0."
    );
    out
}

fn render_row(unit: &UnitScore) -> String {
    let name: String = unit.unit_name.chars().take(34).collect();
    let mut row = format!("{:<7} {:<34}", unit.unit_code, name);
    for indicator in &unit.indicators {
        let cell = format!(
            "{} ({}/{}, {})",
            display_points(indicator.points),
            indicator.numerator,
            indicator.denominator,
            display_rate(indicator)
        );
        let _ = write!(row, " {:>28}", cell);
    }
    let _ = write!(
        row,
        " {:>14}",
        format!("{:.2}/{:.0}", unit.points, unit.max_points)
    );
    row
}

/// Converts a scorecard to JSON, keeping full precision and `null` for "not assessed".
pub fn to_json(response: &GetScoresResponse) -> Value {
    let units: Vec<Value> = response
        .units
        .iter()
        .map(|unit| {
            let indicators: Vec<Value> = unit
                .indicators
                .iter()
                .map(|indicator| {
                    json!({
                        "id": indicator.id,
                        "name": indicator.name,
                        "numerator": indicator.numerator,
                        "denominator": indicator.denominator,
                        "rate": indicator.rate,
                        "points": indicator.points,
                        "max_points": indicator.max_points,
                        "assessed": indicator.assessed,
                        "rule": indicator.rule,
                    })
                })
                .collect();
            json!({
                "unit_code": unit.unit_code,
                "unit_name": unit.unit_name,
                "level": unit.level,
                "points": unit.points,
                "max_points": unit.max_points,
                "indicators": indicators,
            })
        })
        .collect();
    json!({
        "period": response.period,
        "catalogue_version": response.catalogue_version,
        "unit_catalogue_version": response.unit_catalogue_version,
        "computed_at_unix_ms": response.computed_at_unix_ms,
        "units": units,
    })
}

/// Writes the scorecard JSON atomically: a temporary file in the same folder, then a rename.
pub fn write_json(response: &GetScoresResponse, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&to_json(response)).map_err(std::io::Error::other)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GetScoresResponse {
        GetScoresResponse {
            catalogue_version: "test".into(),
            period: "2026-10".into(),
            units: vec![UnitScore {
                unit_code: "01".into(),
                unit_name: "Thành phố Hà Nội".into(),
                level: "province".into(),
                indicators: vec![
                    IndicatorScore {
                        id: "DOSSIER_ON_TIME".into(),
                        numerator: 156,
                        denominator: 161,
                        rate: Some(156.0 / 161.0),
                        points: Some(20.0 * 156.0 / 161.0),
                        max_points: 20.0,
                        assessed: true,
                        ..IndicatorScore::default()
                    },
                    IndicatorScore {
                        id: "ONLINE_FILING".into(),
                        max_points: 6.0,
                        ..IndicatorScore::default()
                    },
                ],
                points: 20.0 * 156.0 / 161.0,
                max_points: 20.0,
            }],
            ..GetScoresResponse::default()
        }
    }

    #[test]
    fn table_shows_two_decimals_and_not_assessed() {
        let table = render_table(&sample());
        assert!(table.contains("19.38 (156/161, 96.89%)"), "{table}");
        assert!(table.contains("n/a (0/0, n/a)"), "{table}");
    }

    #[test]
    fn json_keeps_full_precision_and_null() {
        let value = to_json(&sample());
        let indicators = &value["units"][0]["indicators"];
        assert_eq!(indicators[0]["points"].as_f64(), Some(20.0 * 156.0 / 161.0));
        assert!(indicators[1]["points"].is_null());
        assert_eq!(indicators[1]["assessed"], Value::Bool(false));
    }

    #[test]
    fn json_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal/scores.json");
        write_json(&sample(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["period"], "2026-10");
        assert!(!dir.path().join("portal/scores.json.tmp").exists());
    }
}
