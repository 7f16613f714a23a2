//! Opening the outbox file: connection settings, the identity and version checks, and the schema.
//! A file is written to only after it has been read and recognised as an empty database or a
//! chiso outbox of the current schema version, so a foreign file is never changed, deleted or
//! recreated.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use super::error::{BUSY_TIMEOUT, OutboxError, sql_error};

/// Schema version stored in `PRAGMA user_version`. Version 0 means the database is still empty.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of a chiso outbox: the ASCII bytes "CHIO".
pub(super) const APPLICATION_ID: i32 = 0x4348_494F;

/// Record kind of dossiers in the `kind` columns, and of `rejected` rows whose `kind` is NULL:
/// such rows were written by a chiso-agent release that knew only dossiers.
pub(super) const KIND_DOSSIER: &str = "dossier";

/// Adds `rejected.kind`, the record kind of a rejection, to an outbox created before records
/// other than dossiers existed. Every row already there is a dossier's. The column is nullable,
/// so schema version 1 stays readable by older releases, which leave it NULL.
const ADD_REJECTED_KIND: &str = "
ALTER TABLE rejected ADD COLUMN kind TEXT;
UPDATE rejected SET kind = 'dossier';
";

/// Version 1 of the schema, as first released. [`add_columns`] adds to it.
pub(super) const SCHEMA_V1: &str = "
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at_ms INTEGER NOT NULL
);
-- Coalescing keeps at most one pending row per record, and the index enforces it.
CREATE UNIQUE INDEX outbox_kind_key ON outbox (kind, key);

CREATE TABLE ledger (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    day INTEGER NOT NULL,
    version INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_changed_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
-- Completeness digests are computed per unit and day.
CREATE INDEX ledger_unit_day ON ledger (unit_code, day);

CREATE TABLE rejected (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL CHECK (origin IN ('intake', 'hub')),
    source TEXT NOT NULL,
    record_index INTEGER,
    seq INTEGER,
    key TEXT,
    code TEXT NOT NULL,
    field TEXT NOT NULL,
    message TEXT NOT NULL,
    sanitized_json TEXT,
    payload BLOB,
    rejected_at_ms INTEGER NOT NULL
);
CREATE INDEX rejected_seq ON rejected (seq) WHERE seq IS NOT NULL;

CREATE TABLE input_files (
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    records INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    ingested_at_ms INTEGER NOT NULL,
    PRIMARY KEY (path, sha256)
);

CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Identity of a database file, read before anything is written to it.
struct FileIdentity {
    application_id: i32,
    user_version: i64,
    objects: i64,
}

/// Opens the file, checks that it is empty or an outbox of this schema version, applies the
/// connection settings and creates the schema in an empty database.
pub(super) fn open_connection(path: &Path) -> Result<Connection, OutboxError> {
    let conn = Connection::open(path).map_err(|source| OutboxError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_error(path, "set the busy timeout"))?;

    // Reading the header is the first access to the file, and it fails on a non-database file
    // before SQLite writes anything.
    let identity = read_identity(&conn, path)?;
    check_identity(&identity, path)?;

    if identity.user_version == 0 {
        // Only possible before the first page is written, so before WAL and the schema. It lets
        // a drain give pages back to the file system.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql_error(path, "set auto_vacuum=INCREMENTAL"))?;
    }
    configure(&conn, path)?;
    if identity.user_version == 0 {
        create_schema(conn, path)
    } else {
        Ok(conn)
    }
}

/// Reads the header fields and the schema size in one statement, so all three come from one
/// snapshot. Separate statements could straddle another process's commit of the schema and see
/// its tables without its application id, and take a new outbox for a foreign database.
fn read_identity(conn: &Connection, path: &Path) -> Result<FileIdentity, OutboxError> {
    let sql = "SELECT
            (SELECT application_id FROM pragma_application_id),
            (SELECT user_version FROM pragma_user_version),
            (SELECT COUNT(*) FROM sqlite_schema)";
    let read = || -> rusqlite::Result<FileIdentity> {
        conn.query_row(sql, [], |row| {
            Ok(FileIdentity {
                application_id: row.get(0)?,
                user_version: row.get(1)?,
                objects: row.get(2)?,
            })
        })
    };
    read().map_err(|source| {
        if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            OutboxError::NotADatabase {
                path: path.to_path_buf(),
                source,
            }
        } else {
            OutboxError::sqlite(path, "read the database header", source)
        }
    })
}

fn check_identity(identity: &FileIdentity, path: &Path) -> Result<(), OutboxError> {
    let empty = identity.application_id == 0 && identity.user_version == 0 && identity.objects == 0;
    if empty {
        return Ok(());
    }
    if identity.application_id != APPLICATION_ID {
        return Err(OutboxError::NotAnOutbox {
            path: path.to_path_buf(),
            application_id: identity.application_id,
            schema_objects: identity.objects,
        });
    }
    check_version(identity.user_version, path)
}

fn check_version(found: i64, path: &Path) -> Result<(), OutboxError> {
    if found == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(OutboxError::UnsupportedSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        })
    }
}

/// Applies WAL, `synchronous=FULL` and foreign keys, for the reasons in the module documentation.
fn configure(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let mode = switch_to_wal(conn, path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OutboxError::WalUnavailable {
            path: path.to_path_buf(),
            mode,
        });
    }

    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_error(path, "set synchronous=FULL"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql_error(path, "enable foreign keys"))?;
    Ok(())
}

/// Pause between attempts to switch a new file to WAL while another process holds its lock.
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Sets `journal_mode=WAL` and returns the mode SQLite kept. When two processes create the
/// outbox at the same moment, SQLite can return `SQLITE_BUSY` for the switch at once, without
/// calling the busy handler, because waiting could deadlock (the SQLite C interface documents
/// this for `sqlite3_busy_handler`). The switch is then retried until [`BUSY_TIMEOUT`] has
/// passed, like any other wait for the lock.
fn switch_to_wal(conn: &Connection, path: &Path) -> Result<String, OutboxError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let switched = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0));
        match switched {
            Err(error)
                if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(WAL_RETRY_PAUSE);
            }
            other => return other.map_err(sql_error(path, "switch to the WAL journal")),
        }
    }
}

/// Creates the schema unless another process created it since the identity was read.
fn create_schema(mut conn: Connection, path: &Path) -> Result<Connection, OutboxError> {
    let fail = sql_error(path, "create the outbox schema");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&fail)?;

    let version: i64 = tx.pragma_query_one(None, "user_version").map_err(&fail)?;
    if version == 0 {
        tx.execute_batch(SCHEMA_V1).map_err(&fail)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(&fail)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(&fail)?;
        tracing::info!(path = %path.display(), version = SCHEMA_VERSION, "outbox created");
    } else {
        check_version(version, path)?;
    }

    tx.commit().map_err(&fail)?;
    Ok(conn)
}

/// Adds the columns later releases added to schema version 1, unless they exist.
///
/// Another process may add them first, or hold the write lock for longer than the busy timeout.
/// Either way the columns count as added once they exist.
pub(super) fn add_columns(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let fail = sql_error(path, "add the kind column to the rejected table");
    // Checking first keeps a read-only command such as `status` from taking the write lock.
    if rejected_kind_exists(conn).map_err(&fail)? {
        return Ok(());
    }
    let added = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).and_then(|tx| {
        if !rejected_kind_exists(&tx)? {
            tx.execute_batch(ADD_REJECTED_KIND)?;
            tracing::info!(path = %path.display(), "outbox upgraded: rejected records now keep their kind");
        }
        tx.commit()
    });
    match added {
        Ok(()) => Ok(()),
        Err(_) if rejected_kind_exists(conn).map_err(&fail)? => Ok(()),
        Err(error) => Err(fail(error)),
    }
}

fn rejected_kind_exists(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('rejected') WHERE name = 'kind')",
        [],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use rusqlite::Connection;

    use super::super::test_support::{dossier, open_temp};
    use super::super::{Outbox, OutboxError};
    use super::{APPLICATION_ID, SCHEMA_VERSION};
    use crate::record::RecordOutcome;

    fn directory_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn garbage_file_rejected_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let short: Vec<u8> = b"not a database".to_vec();
        let long: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();

        for garbage in [short, long] {
            std::fs::write(&path, &garbage).unwrap();

            let error = Outbox::open(&path).err().expect("garbage must be rejected");
            assert!(
                matches!(error, OutboxError::NotADatabase { .. }),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("not a SQLite database"), "{message}");

            assert_eq!(std::fs::read(&path).unwrap(), garbage);
            assert_eq!(directory_entries(dir.path()), vec!["outbox.db"]);
        }
    }

    #[test]
    fn unknown_schema_version_rejected() {
        let (dir, outbox) = open_temp();
        let path = dir.path().join("outbox.db");
        drop(outbox);
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", 99).unwrap();
        drop(raw);
        let before = std::fs::read(&path).unwrap();

        let error = Outbox::open(&path)
            .err()
            .expect("version 99 must be rejected");
        assert!(
            matches!(
                error,
                OutboxError::UnsupportedSchema {
                    found: 99,
                    supported: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("99"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn foreign_database_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
            .unwrap();
        drop(raw);
        let before = std::fs::read(&path).unwrap();

        let error = Outbox::open(&path)
            .err()
            .expect("a foreign database must be rejected");
        assert!(
            matches!(
                error,
                OutboxError::NotAnOutbox {
                    application_id: 0,
                    schema_objects: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("other.db"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn missing_directory_fails_naming_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("outbox.db");

        let error = Outbox::open(&path)
            .err()
            .expect("the directory does not exist");
        assert!(matches!(error, OutboxError::Open { .. }), "{error:?}");
        assert!(error.to_string().contains("absent"), "{error}");
    }

    #[test]
    fn empty_existing_file_becomes_an_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        std::fs::write(&path, b"").unwrap();

        let outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.stats().unwrap().backlog, 0);
    }

    #[test]
    fn connection_settings_and_identity_applied() {
        let (_dir, outbox) = open_temp();
        let conn = &outbox.conn;
        let mode: String = conn.pragma_query_one(None, "journal_mode").unwrap();
        let synchronous: i64 = conn.pragma_query_one(None, "synchronous").unwrap();
        let foreign_keys: i64 = conn.pragma_query_one(None, "foreign_keys").unwrap();
        let busy_timeout: i64 = conn.pragma_query_one(None, "busy_timeout").unwrap();
        let version: i64 = conn.pragma_query_one(None, "user_version").unwrap();
        let application_id: i32 = conn.pragma_query_one(None, "application_id").unwrap();

        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "2 is FULL");
        assert_eq!(foreign_keys, 1);
        assert_eq!(busy_timeout, 5000);
        let auto_vacuum: i64 = conn.pragma_query_one(None, "auto_vacuum").unwrap();
        assert_eq!(auto_vacuum, 2, "2 is INCREMENTAL");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(application_id, APPLICATION_ID);
    }

    #[test]
    fn reopen_keeps_records_and_settings() {
        let (dir, mut outbox) = open_temp();
        let path = dir.path().join("outbox.db");
        let outcomes = vec![RecordOutcome {
            index: 0,
            result: Ok(dossier("HS-A", "01", 0)),
        }];
        outbox.ingest("in/1.json", "sha-1", outcomes).unwrap();
        drop(outbox);

        let reopened = Outbox::open(&path).unwrap();
        let stats = reopened.stats().unwrap();
        assert_eq!(stats.backlog, 1);
        assert_eq!(stats.ledger_keys, 1);
        let synchronous: i64 = reopened.conn.pragma_query_one(None, "synchronous").unwrap();
        assert_eq!(synchronous, 2);
    }

    #[test]
    fn second_process_waits_for_write_lock() {
        let (dir, _outbox) = open_temp();
        let path = dir.path().join("outbox.db");
        let mut writer = Outbox::open(&path).unwrap();

        // Another connection, standing for the other chiso-agent process, holds the write lock.
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            holder.execute_batch("COMMIT").unwrap();
        });

        let outcomes = vec![RecordOutcome {
            index: 0,
            result: Ok(dossier("HS-A", "01", 0)),
        }];
        let summary = writer.ingest("in/1.json", "sha-1", outcomes).unwrap();
        release.join().unwrap();
        assert_eq!(summary.stored_new, 1);

        let reader = Outbox::open(&path).unwrap();
        assert_eq!(reader.pending_batch(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn concurrent_opens_of_new_file_all_succeed() {
        // `chiso-agent run` and `chiso-agent ingest` may both create the outbox at once. Each
        // must take the other's half-created or just-committed schema for an outbox.
        const ROUNDS: usize = 40;
        const OPENERS: usize = 4;
        let dir = tempfile::tempdir().unwrap();
        for round in 0..ROUNDS {
            let path = dir.path().join(format!("outbox-{round}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let path = path.clone();
                    let start = std::sync::Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        Outbox::open(&path).map(|_| ())
                    })
                })
                .collect();
            for opener in openers {
                let opened = opener.join().unwrap();
                assert!(opened.is_ok(), "round {round}: {opened:?}");
            }
        }
    }
}
