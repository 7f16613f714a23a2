//! Space of the outbox file: the limits that make intake refuse input, the pages in use, giving
//! freed pages back to the file system after a drain, and the integrity check run before the
//! agent starts.
//!
//! Limits are checked twice per input: before any work, so a full outbox refuses cheaply, and
//! inside the ingest transaction after the records are written, so an input that would pass a
//! limit is rolled back whole. An input is refused only while records are pending: the push loop
//! can then make room, whereas an empty outbox could never take an input larger than the limit.
//! Bytes count the pages in use (`page_count - freelist_count`), so freed pages waiting for
//! reuse do not count against the limit.

use std::path::Path;

use rusqlite::{Connection, ErrorCode};

use super::Outbox;
use super::error::{OutboxError, sql_error};

/// Free pages below which [`Outbox::reclaim_space`] leaves the file alone: 1 MiB of 4 KiB pages.
const MIN_RECLAIM_PAGES: u64 = 256;

/// Problems of `PRAGMA quick_check` quoted in [`OutboxError::Damaged`].
const MAX_DAMAGE_LINES: usize = 5;

/// Limits that make intake refuse new input; see [`Outbox::set_limits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Largest size of the pages in use, in bytes.
    pub max_bytes: Option<u64>,
    /// Most records waiting for the hub.
    pub max_records: Option<u64>,
}

/// How much of the outbox is in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxUsage {
    /// Records waiting for the hub.
    pub pending: u64,
    /// Bytes of the pages in use.
    pub used_bytes: u64,
    /// Pages on the free list, waiting for reuse or for [`Outbox::reclaim_space`].
    pub free_pages: u64,
}

impl OutboxLimits {
    /// Names the first limit `usage` passes, with its configuration key, if any.
    ///
    /// `at_limit_counts` makes a usage equal to a limit count as passing it: intake refuses at
    /// the limit before work, and over it after.
    pub(super) fn passed(&self, usage: &OutboxUsage, at_limit_counts: bool) -> Option<String> {
        let passes = |value: u64, limit: u64| {
            if at_limit_counts {
                value >= limit
            } else {
                value > limit
            }
        };
        if let Some(max) = self.max_records.filter(|&max| passes(usage.pending, max)) {
            return Some(format!("limits.outbox_max_records = {max}"));
        }
        if let Some(max) = self.max_bytes.filter(|&max| passes(usage.used_bytes, max)) {
            return Some(format!("limits.outbox_max_bytes = {max}"));
        }
        None
    }
}

/// Returns [`OutboxError::Full`] when `usage` passes a limit of `limits`. The error reports
/// `stored`, the usage that stays once the refused input is rolled back.
pub(super) fn refuse_if_passed(
    path: &Path,
    limits: &OutboxLimits,
    usage: &OutboxUsage,
    stored: &OutboxUsage,
    at_limit_counts: bool,
) -> Result<(), OutboxError> {
    match limits.passed(usage, at_limit_counts) {
        None => Ok(()),
        Some(limit) => Err(OutboxError::Full {
            path: path.to_path_buf(),
            pending: stored.pending,
            used_bytes: stored.used_bytes,
            limit,
        }),
    }
}

/// Reads the pending count and page counters through `conn`, inside or outside a transaction.
pub(super) fn measure(conn: &Connection) -> rusqlite::Result<OutboxUsage> {
    let pending: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |row| row.get(0))?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    let non_negative = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(OutboxUsage {
        pending: non_negative(pending),
        used_bytes: non_negative(pages - free) * non_negative(page_size),
        free_pages: non_negative(free),
    })
}

impl Outbox {
    /// Sets the limits [`Outbox::ingest`] enforces; the default is no limit.
    pub fn set_limits(&mut self, limits: OutboxLimits) {
        self.limits = limits;
    }

    /// Returns the limits in force.
    pub fn limits(&self) -> OutboxLimits {
        self.limits
    }

    /// Measures the pending records and the pages in use.
    pub fn usage(&self) -> Result<OutboxUsage, OutboxError> {
        measure(&self.conn).map_err(sql_error(&self.path, "measure the outbox"))
    }

    /// Fails with [`OutboxError::Full`] when records are pending and a limit is reached, so a
    /// caller can refuse input before reading it.
    pub fn check_room(&self) -> Result<(), OutboxError> {
        let usage = self.usage()?;
        if usage.pending == 0 {
            return Ok(());
        }
        refuse_if_passed(&self.path, &self.limits, &usage, &usage, true)
    }

    /// Gives up to `max_pages` free pages back to the file system, when the file was created
    /// with incremental auto-vacuum and at least 1 MiB is free. Returns the pages given back.
    pub fn reclaim_space(&self, max_pages: u64) -> Result<u64, OutboxError> {
        let fail = sql_error(&self.path, "give free pages back");
        let mode: i64 = self
            .conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .map_err(&fail)?;
        // 2 is INCREMENTAL. A file created before this setting keeps its free pages for reuse.
        if mode != 2 {
            return Ok(0);
        }
        let before = self.usage()?.free_pages;
        if before < MIN_RECLAIM_PAGES || max_pages == 0 {
            return Ok(0);
        }
        step_to_end(
            &self.conn,
            &format!("PRAGMA incremental_vacuum({})", before.min(max_pages)),
        )
        .map_err(&fail)?;
        let after = self.usage()?.free_pages;
        // Shrinking the file happens at the checkpoint, which also empties the WAL file.
        step_to_end(&self.conn, "PRAGMA wal_checkpoint(TRUNCATE)").map_err(&fail)?;
        let freed = before.saturating_sub(after);
        tracing::debug!(path = %self.path.display(), freed_pages = freed, free_pages = after, "outbox space given back");
        Ok(freed)
    }

    /// Runs SQLite's `quick_check` and fails with [`OutboxError::Damaged`] on any problem. It
    /// reads every page once and writes nothing.
    pub fn check_integrity(&self) -> Result<(), OutboxError> {
        let damaged = |detail: String| OutboxError::Damaged {
            path: self.path.clone(),
            detail,
        };
        let lines = quick_check(&self.conn).map_err(|error| {
            let code = error.sqlite_error_code();
            if matches!(
                code,
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ) {
                damaged(error.to_string())
            } else {
                OutboxError::sqlite(&self.path, "check the outbox's integrity", error)
            }
        })?;
        if lines.len() == 1 && lines[0] == "ok" {
            return Ok(());
        }
        let mut detail: Vec<String> = lines.into_iter().take(MAX_DAMAGE_LINES).collect();
        detail.insert(0, "SQLite quick_check".into());
        Err(damaged(detail.join("; ")))
    }
}

/// Steps a statement until SQLite reports it done. Some pragmas, `incremental_vacuum` among
/// them, do one unit of work per step, which `execute_batch` would stop after.
fn step_to_end(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("PRAGMA quick_check")?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{dossier, open_temp};
    use super::super::{Outbox, OutboxError};
    use super::OutboxLimits;
    use crate::record::RecordOutcome;

    fn outcomes(prefix: &str, count: usize) -> Vec<RecordOutcome> {
        (0..count)
            .map(|index| RecordOutcome {
                index,
                result: Ok(dossier(&format!("{prefix}-{index:06}"), "01", 0)),
            })
            .collect()
    }

    fn file_bytes(outbox: &Outbox) -> u64 {
        std::fs::metadata(outbox.path()).unwrap().len()
    }

    #[test]
    fn record_limit_refuses_whole_file_and_keeps_backlog() {
        let (_dir, mut outbox) = open_temp();
        outbox.set_limits(OutboxLimits {
            max_bytes: None,
            max_records: Some(10),
        });
        outbox.ingest("a.json", "a", outcomes("A", 6)).unwrap();

        // 6 + 6 passes 10: the second file is rolled back whole.
        let error = outbox.ingest("b.json", "b", outcomes("B", 6)).unwrap_err();
        assert!(
            matches!(error, OutboxError::Full { pending: 6, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("limits.outbox_max_records = 10"),
            "{error}"
        );
        assert_eq!(outbox.stats().unwrap().backlog, 6);
        assert_eq!(outbox.stats().unwrap().ledger_keys, 6);
        assert!(!outbox.file_already_ingested("b.json", "b").unwrap());

        // 6 + 4 reaches the limit exactly, which is allowed; then the outbox refuses up front.
        outbox.ingest("c.json", "c", outcomes("C", 4)).unwrap();
        assert!(matches!(
            outbox.check_room(),
            Err(OutboxError::Full { pending: 10, .. })
        ));
        let refused = outbox.ingest("d.json", "d", outcomes("D", 1)).unwrap_err();
        assert!(matches!(refused, OutboxError::Full { .. }), "{refused:?}");

        // After a drain the refused file is taken.
        outbox.settle(u64::MAX, &[]).unwrap();
        let summary = outbox.ingest("b.json", "b", outcomes("B", 6)).unwrap();
        assert_eq!(summary.stored_new, 6);
    }

    #[test]
    fn empty_outbox_takes_file_larger_than_limit() {
        let (_dir, mut outbox) = open_temp();
        outbox.set_limits(OutboxLimits {
            max_bytes: None,
            max_records: Some(3),
        });
        let summary = outbox.ingest("a.json", "a", outcomes("A", 5)).unwrap();
        assert_eq!(summary.stored_new, 5);
        assert!(outbox.check_room().is_err());
    }

    #[test]
    fn byte_limit_counts_pages_in_use() {
        let (_dir, mut outbox) = open_temp();
        outbox.ingest("a.json", "a", outcomes("A", 2000)).unwrap();
        let used = outbox.usage().unwrap().used_bytes;
        assert!(used > 100_000, "2000 records use {used} bytes");
        outbox.set_limits(OutboxLimits {
            max_bytes: Some(used),
            max_records: None,
        });
        let error = outbox.check_room().unwrap_err();
        assert!(
            error.to_string().contains("limits.outbox_max_bytes"),
            "{error}"
        );
        outbox.set_limits(OutboxLimits {
            max_bytes: Some(used + 10_000_000),
            max_records: None,
        });
        outbox.check_room().unwrap();
    }

    #[test]
    fn drained_outbox_gives_space_back() {
        let (_dir, mut outbox) = open_temp();
        for file in 0..4 {
            let name = format!("{file}.json");
            outbox
                .ingest(&name, &name, outcomes(&format!("F{file}"), 5000))
                .unwrap();
        }
        super::step_to_end(&outbox.conn, "PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let full = file_bytes(&outbox);

        outbox.settle(u64::MAX, &[]).unwrap();
        // Settled payloads stay retained for resends until retention passes; let it pass.
        outbox.prune_retained(i64::MAX).unwrap();
        assert_eq!(
            outbox.reclaim_space(0).unwrap(),
            0,
            "max_pages 0 frees nothing"
        );
        let mut freed = 0;
        loop {
            let step = outbox.reclaim_space(1000).unwrap();
            if step == 0 {
                break;
            }
            freed += step;
        }
        let drained = file_bytes(&outbox);
        let usage = outbox.usage().unwrap();
        assert!(freed > 0);
        assert!(usage.free_pages < 256);
        // The ledger and the key rows stay; the 20,000 payloads (about 80 bytes each) go.
        assert!(
            drained + 1_000_000 < full,
            "file {full} bytes before, {drained} after the drain"
        );
        assert_eq!(drained, usage.used_bytes + usage.free_pages * 4096);
        assert_eq!(
            std::fs::metadata(outbox.path().with_extension("db-wal"))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn intact_outbox_passes_integrity_check() {
        let (_dir, mut outbox) = open_temp();
        outbox.ingest("a.json", "a", outcomes("A", 100)).unwrap();
        outbox.check_integrity().unwrap();
    }

    #[test]
    fn damaged_page_fails_integrity_check_without_writing() {
        let (dir, mut outbox) = open_temp();
        outbox.ingest("a.json", "a", outcomes("A", 3000)).unwrap();
        drop(outbox);
        let path = dir.path().join("outbox.db");
        let mut bytes = std::fs::read(&path).unwrap();
        // Overwrite the middle of the file, far from the header on page 1.
        let middle = bytes.len() / 2;
        for byte in &mut bytes[middle..middle + 8192] {
            *byte = 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();

        let outbox = Outbox::open(&path).unwrap();
        let error = outbox.check_integrity().unwrap_err();
        assert!(matches!(error, OutboxError::Damaged { .. }), "{error:?}");
        assert!(error.to_string().contains("damaged"), "{error}");
        drop(outbox);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
