//! The data watermark of a scorecard: how recent the data of each contributing agent is.

use chiso_proto::v1::{DataWatermark, GetScoresResponse};
use rusqlite::{Connection, params};

use super::StoreError;

/// Adds to a scorecard the watermark of every agent whose records its first unit covers: the
/// provinces' agents for the country (`locality` `None`), the ministries' agents for
/// `MINISTRIES`, and the locality's agent for a province, a ministry or one of their units.
pub fn attach_watermarks(
    conn: &Connection,
    response: &mut GetScoresResponse,
    locality: Option<&str>,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT locality, COALESCE(last_batch_ms, 0), last_seq,
                (SELECT COALESCE(MAX(stored_at_ms), 0) FROM dossiers WHERE source = agents.locality)
         FROM agents
         WHERE (?1 IS NULL AND locality GLOB '[0-9][0-9]')
            OR (?1 = 'MINISTRIES' AND locality NOT GLOB '[0-9][0-9]')
            OR locality = ?1
         ORDER BY locality",
    )?;
    let rows = statement.query_map(params![locality], |row| {
        Ok(DataWatermark {
            locality: row.get(0)?,
            last_batch_unix_ms: row.get(1)?,
            last_committed_seq: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            latest_record_unix_ms: row.get(3)?,
        })
    })?;
    response.watermarks = rows.collect::<Result<_, _>>()?;
    let as_of = crate::counters::as_of_day(conn)?;
    response.counters_as_of_day = as_of
        .map(|day| u32::try_from(chiso_proto::vntime::day_number(day)).unwrap_or(0))
        .unwrap_or(0);
    Ok(())
}
