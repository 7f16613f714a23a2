//! The store's SQLite schema, its version check and the connection settings.
//!
//! The schema version lives in `PRAGMA user_version`. A new, empty database gets version 1 and
//! then every migration, all in one transaction. An older version gets the migrations above it in
//! one transaction, and a database with the current version opens as it is. A newer version is
//! rejected, because this build cannot know what it means.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Schema version this build reads and writes.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// Migrations in order: each entry's SQL lifts the schema from the version before it to its own.
const MIGRATIONS: &[(i64, &str)] = &[
    (2, super::reconcile::MIGRATION_TO_V2),
    (3, MIGRATION_TO_V3),
    (4, crate::counters::MIGRATION_TO_V4),
];

/// Version 3: the end of validity (Unix seconds) of the certificate each agent presented at its
/// last Hello, so operators can see which certificates need renewing.
const MIGRATION_TO_V3: &str = "ALTER TABLE agents ADD COLUMN cert_not_after INTEGER;";

/// How long a connection waits for a lock held by another connection before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1 of the schema.
pub(super) const CREATE_SCHEMA: &str = "
CREATE TABLE agents (
    locality        TEXT PRIMARY KEY,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    agent_version   TEXT,
    last_hello_ms   INTEGER,
    clock_offset_ms INTEGER,
    last_batch_ms   INTEGER
);

CREATE TABLE dossiers (
    source            TEXT NOT NULL,
    code              TEXT NOT NULL,
    version           INTEGER NOT NULL,
    unit_code         TEXT NOT NULL,
    province_code     TEXT NOT NULL,
    procedure_code    TEXT NOT NULL,
    field_code        TEXT NOT NULL,
    channel           INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    received_at       INTEGER NOT NULL,
    due_at            INTEGER,
    finished_at       INTEGER,
    returned_at       INTEGER,
    received_day      INTEGER NOT NULL,
    due_day           INTEGER,
    finished_day      INTEGER,
    digitized         INTEGER NOT NULL,
    electronic_result INTEGER NOT NULL,
    reused_data       INTEGER NOT NULL,
    paid_online       INTEGER NOT NULL,
    fee_bearing       INTEGER NOT NULL,
    applicant_type    INTEGER NOT NULL,
    stored_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (source, code)
);
CREATE INDEX dossiers_province_received ON dossiers (province_code, received_day);
CREATE INDEX dossiers_unit_received ON dossiers (unit_code, received_day);
CREATE INDEX dossiers_finished ON dossiers (finished_day);

CREATE TABLE rejections (
    source         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    key            TEXT NOT NULL,
    code           INTEGER NOT NULL,
    field          TEXT NOT NULL,
    message        TEXT NOT NULL,
    rejected_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source, seq)
);
";

/// Opens the write connection: WAL journal, full sync, and the schema created or checked.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

    // WAL lets readers run beside the writer, and FULL makes each commit durable at the cost of
    // one extra fsync of the log.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;

    prepare_schema(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection to a database whose schema the writer has already checked.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// Fails unless the database has exactly the schema version this build reads.
pub(super) fn check_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::SchemaVersion {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    })
}

fn prepare_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if !(0..SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }

    let tx = conn.transaction()?;
    if found == 0 {
        // CREATE TABLE without IF NOT EXISTS fails on a database that already contains
        // tables of the same names, so a foreign file is never adopted silently.
        tx.execute_batch(CREATE_SCHEMA)?;
    }
    for (version, migration) in MIGRATIONS {
        if *version > found.max(1) {
            tx.execute_batch(migration)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    tracing::info!(
        path = %path.display(),
        from = found,
        to = SCHEMA_VERSION,
        "store schema created or migrated"
    );
    Ok(())
}
