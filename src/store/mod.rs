//! The SQLite file (docs/design.md §5): opening, locking, migrating, and every SQL
//! statement the tool runs. Nothing outside this module touches SQL.
//!
//! * [`open_for_writing`] takes the single-writer lock, creates the file 0600,
//!   sets WAL, and applies `migrations/` in order.
//! * [`write`] holds the writer's statements; [`read`] the queries for plans,
//!   summaries and reports.

pub mod bulk;
mod customers;
pub use customers::Codebook;
pub mod dictionaries;
pub mod export;
pub mod history;
pub mod read;
pub mod rebuild;
pub mod receipt;
pub mod records;
pub mod session;
pub mod write;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

/// The schema, one entry per file in `migrations/`, in order. Append-only.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/0001_init.sql")),
    ("0002_staging.sql", include_str!("../../migrations/0002_staging.sql")),
    ("0003_page_size.sql", include_str!("../../migrations/0003_page_size.sql")),
    ("0004_listing.sql", include_str!("../../migrations/0004_listing.sql")),
    ("0005_pages_stored.sql", include_str!("../../migrations/0005_pages_stored.sql")),
    ("0006_compact_rows.sql", include_str!("../../migrations/0006_compact_rows.sql")),
    ("0007_history.sql", include_str!("../../migrations/0007_history.sql")),
    ("0008_image_templates.sql", include_str!("../../migrations/0008_image_templates.sql")),
    ("0009_receipt_dictionaries.sql", include_str!("../../migrations/0009_receipt_dictionaries.sql")),
    ("0010_number_texts.sql", include_str!("../../migrations/0010_number_texts.sql")),
    ("0011_compact_values.sql", include_str!("../../migrations/0011_compact_values.sql")),
    ("0012_disclosures.sql", include_str!("../../migrations/0012_disclosures.sql")),
    ("0013_current_versions.sql", include_str!("../../migrations/0013_current_versions.sql")),
    ("0014_report_years.sql", include_str!("../../migrations/0014_report_years.sql")),
    ("0015_reverse_index_periods.sql", include_str!("../../migrations/0015_reverse_index_periods.sql")),
    ("0016_deep_checks.sql", include_str!("../../migrations/0016_deep_checks.sql")),
];

/// The schema version this build writes (`PRAGMA user_version`).
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// Names of the migration files compiled in (a test checks none is missing).
pub fn migration_files() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.iter().map(|(name, _)| *name)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another run is writing {db} (lock file {lock} is held); nothing was changed — wait for it to finish")]
    Locked { db: PathBuf, lock: PathBuf },
    #[error(
        "{db} has schema version {found}, newer than this build knows ({known}); \
         it was written by a newer qcc-customers — upgrade the tool, the file was not changed"
    )]
    TooNew { db: PathBuf, found: i64, known: usize },
    #[error(
        "{db} has schema version {found}, older than this build's ({known}); reading it needs an upgrade, which \
         only writing does: the next `qcc-customers run` on it upgrades it in place, keeping every row"
    )]
    TooOld { db: PathBuf, found: i64, known: usize },
    #[error("cannot open database {db}: {source}; nothing was written — check the path and its permissions")]
    Open { db: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("database {db} does not exist — check --db (`run` creates it; the other commands read an existing one)")]
    Missing { db: PathBuf },
    #[error("cannot create database {db}: the directory {dir} does not exist; nothing was written — create it or choose another --db")]
    NoDirectory { db: PathBuf, dir: PathBuf },
    #[error("cannot use {db} as the database: it is a directory; nothing was written — give a file name, e.g. {db}/customers.sqlite")]
    IsDirectory { db: PathBuf },
    #[error(
        "{db} is not a qcc-customers database ({why}); it was left untouched — check --db, or give a new file name"
    )]
    Foreign { db: PathBuf, why: String },
    #[error(
        "the disk is full: {db} could not be written (database or disk is full); nothing committed was lost — \
         free space and run again to resume"
    )]
    DiskFull { db: PathBuf },
    #[error("database error: {0}; every committed page is kept — run again to resume once the cause is fixed")]
    Sql(#[from] rusqlite::Error),
}

/// A database opened for writing, holding the single-writer lock.
pub struct WriteStore {
    pub conn: Connection,
    /// Held for the life of the run: the OS releases it when the process ends,
    /// however it ends (even SIGKILL), so a stale lock cannot block cron.
    _lock: File,
}

fn open_err(db: &Path, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Open { db: db.to_path_buf(), source: Box::new(e) }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// How many more times a held lock is tried, 50 ms apart.
const LOCK_TRIES: u32 = 20;

/// Open (or create) the database for a run: lock, 0600, WAL, migrate.
pub fn open_for_writing(db: &Path) -> Result<WriteStore, StoreError> {
    // Said in the user's terms before the lock file would fail on them.
    if db.is_dir() {
        return Err(StoreError::IsDirectory { db: db.to_path_buf() });
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        return Err(StoreError::NoDirectory { db: db.to_path_buf(), dir: dir.to_path_buf() });
    }
    let lock_file = lock_path(db);
    let lock = create_private(&lock_file).map_err(|e| open_err(&lock_file, e))?;
    // A lock released a moment ago can still look held: a process forked
    // in between (any child this process starts) holds a copy of the lock
    // file until it execs. So a held lock is tried again for up to a second
    // before the run says another one is writing.
    let mut tries = 0;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { db: db.to_path_buf(), lock: lock_file })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(&lock_file, e)),
        }
    }
    // Create the file ourselves so it is 0600 from its first byte; SQLite
    // gives the -wal and -shm files the same mode.
    create_private(db).map_err(|e| open_err(db, e))?;
    let mut conn = Connection::open(db).map_err(|e| open_err(db, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Refuse someone else's file, or a newer one, before changing anything
    // in it (even its journal mode).
    check_ours(db, &conn)?;
    check_not_newer(db, &conn)?;
    // 16 KiB pages for a new file (no effect on an existing one): customer
    // rows are wide, and bigger pages mean shallower trees and fewer splits.
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    // FULL: a committed page survives power loss, so it is never paid twice.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 8 MiB of page cache. Measured (BENCHMARKS.md): SQLite walks its whole
    // cache at the end of every transaction, so a bigger cache made each of
    // our many small commits dearer (64 MiB: 0.67 ms CPU per call, 8 MiB:
    // 0.44 ms), while the OS page cache makes the extra misses cheap.
    conn.pragma_update(None, "cache_size", -8192)?;
    // Temporary data (an index built in bulk, the sorts of a rebuild,
    // VACUUM's copy) on disk: the bundled SQLite keeps it in memory by
    // default, where building the reverse indexes of a million rows took
    // tens of MB and VACUUM would take the size of the file.
    conn.pragma_update(None, "temp_store", "FILE")?;
    // Checkpoint every ~40 MiB of WAL (2,500 pages of 16 KiB) instead of
    // SQLite's default 1,000 pages: a page written by many commits is copied
    // into the database once per checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 2500)?;
    // The writer's statements, each prepared once: a commit runs about 40
    // distinct ones (checkpoints, versions, identities, receipts), and
    // rusqlite's default of 16 cached made it prepare most of them again
    // (a tenth of a first fetch's time).
    conn.set_prepared_statement_cache_capacity(128);
    migrate(db, &mut conn)?;
    // A run killed while it built in bulk left the reverse indexes out.
    let built = bulk::ensure(&conn).map_err(|e| open_err(db, e))?;
    if built > 0 {
        tracing::info!(built, "Built the readers' reverse indexes a stopped run had left to build.");
    }
    // Stamp the file as ours (new files, and ours from before the stamp).
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(WriteStore { conn, _lock: lock })
}

/// `PRAGMA application_id` of our files: "QCCC" in ASCII.
pub const APPLICATION_ID: i32 = 0x5143_4343;

/// A file is ours when it carries our application id, or when it is empty
/// (ours to initialise), or when it has our tables but no id (ours, from
/// before the stamp). Anything else belongs to another application.
fn check_ours(db: &Path, conn: &Connection) -> Result<(), StoreError> {
    let id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    if id != 0 {
        let why = format!("its application_id is {id:#010x}, not ours ({APPLICATION_ID:#010x})");
        return Err(StoreError::Foreign { db: db.to_path_buf(), why });
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let ours = ["companies", "customers", "runs"].iter().all(|t| tables.iter().any(|n| n == t));
    if tables.is_empty() || ours {
        return Ok(());
    }
    let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    let why = format!("it holds other tables ({}{})", shown.join(", "), if tables.len() > 5 { ", …" } else { "" });
    Err(StoreError::Foreign { db: db.to_path_buf(), why })
}

/// Open an existing database for reading (status, export, dry run). Readers
/// never block the writer (WAL) and never take the lock.
pub fn open_for_reading(db: &Path) -> Result<Connection, StoreError> {
    if !db.exists() {
        return Err(StoreError::Missing { db: db.to_path_buf() });
    }
    // Read-write when the file allows it, but `query_only`: the connection
    // never writes, yet when it is the last one to close it removes the
    // -wal/-shm files, which a read-only connection has to leave behind.
    use rusqlite::OpenFlags;
    let conn =
        match Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX) {
            Ok(conn) => {
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
            Err(_) => Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| open_err(db, e))?,
        };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A sort too big for the cache goes to disk, not memory (as for writing).
    conn.pragma_update(None, "temp_store", "FILE")?;
    check_ours(db, &conn)?;
    check_not_newer(db, &conn)?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found < schema_version() as i64 {
        return Err(StoreError::TooOld { db: db.to_path_buf(), found, known: schema_version() });
    }
    Ok(conn)
}

fn check_not_newer(db: &Path, conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > schema_version() as i64 {
        return Err(StoreError::TooNew { db: db.to_path_buf(), found, known: schema_version() });
    }
    Ok(())
}

fn migrate(db: &Path, conn: &mut Connection) -> Result<(), StoreError> {
    let migrations = Migrations::new(
        MIGRATIONS
            .iter()
            .map(|(name, sql)| match *name {
                // The versions of the rows the file holds, made in Rust (a
                // customer's identity and the placeholders are rules of ours).
                "0012_disclosures.sql" => M::up_with_hook(sql, |tx: &rusqlite::Transaction<'_>| {
                    history::backfill(tx, &crate::clock::Clock::system().now_iso())?;
                    Ok(())
                }),
                _ => M::up(sql),
            })
            .collect(),
    );
    migrations.to_latest(conn).map_err(|e| open_err(db, e))
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// Repack every table and index into as few pages as they need (`VACUUM`:
/// pages split by a run's interleaved inserts are ~80 % full), then truncate
/// the write-ahead log. It needs free space of about the file's size; on a
/// full disk it fails and the file is left as it was.
pub fn vacuum(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("VACUUM")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// The database's bytes on disk: the file and its write-ahead log.
pub fn file_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
        })
        .sum()
}
