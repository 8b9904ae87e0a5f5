//! The readers' reverse indexes, built in bulk when a run adds many rows.
//!
//! `disclosure_by_customer` and `disclosure_by_name` are keyed by who the
//! customer is, so a run's new rows land all over them: each insert reads
//! and rewrites a page of its own (measured on 30,000 companies of the
//! simulator's annual data, 2.7 million rows: each index cost about 30 s of a
//! 114 s first fetch, and half of its 55 GB of writes). Built from the table
//! in one sorted pass, each takes about 2 s, and its pages come out full.
//!
//! So a run that has stored more than [`Bulk::threshold`] rows drops them,
//! and builds them again when its writes end ([`super::session::Session::finish`]).
//! A run that is killed in between leaves them missing: readers' questions
//! still answer (by a scan), and the next open for writing builds them
//! ([`ensure`]).

use rusqlite::Connection;

/// Each index, as migration 0015 created it (a test holds the two equal).
pub const REVERSE_INDEXES: [(&str, &str); 2] = [
    (
        "disclosure_by_customer",
        "CREATE INDEX disclosure_by_customer ON disclosure(customer_id, valid_to, period, company_id) \
         WHERE customer_id IS NOT NULL",
    ),
    ("disclosure_by_name", "CREATE INDEX disclosure_by_name ON disclosure(name_id, valid_to, period)"),
];

/// Build whichever of the indexes is missing. Returns how many were built.
pub fn ensure(conn: &Connection) -> rusqlite::Result<usize> {
    let mut built = 0;
    for (name, sql) in REVERSE_INDEXES {
        if !exists(conn, name)? {
            small_sorts(conn, |conn| conn.execute_batch(sql))?;
            built += 1;
        }
    }
    Ok(built)
}

/// Run `f` with a small page cache, and so a small in-memory sort: SQLite
/// sorts an index's rows in memory up to the cache size before it spills
/// them to temporary files (on disk: `temp_store` is FILE), and at 8 MiB
/// that was a run's peak memory. 2 MiB sorts in more passes.
fn small_sorts<T>(conn: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let cache: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    conn.pragma_update(None, "cache_size", -2048)?;
    let result = f(conn);
    conn.pragma_update(None, "cache_size", cache)?;
    result
}

/// How many of the indexes the file lacks.
pub fn missing(conn: &Connection) -> rusqlite::Result<usize> {
    let mut n = 0;
    for (name, _) in REVERSE_INDEXES {
        n += usize::from(!exists(conn, name)?);
    }
    Ok(n)
}

/// Drop the indexes (in the caller's transaction).
pub fn drop(conn: &Connection) -> rusqlite::Result<()> {
    for (name, _) in REVERSE_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    Ok(())
}

fn exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1)")?
        .query_row([name], |r| r.get(0))
}

/// When a run's rows are many enough to build the indexes in bulk.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// Rows stored by the run before it drops the indexes.
    pub threshold: u64,
}

impl Bulk {
    /// Fewest rows a run stores before it builds in bulk: below it, keeping
    /// the indexes up as it goes costs about a second.
    pub const MIN_ROWS: u64 = 100_000;

    /// For a file of about `versions` versions: building both indexes again
    /// costs about 1.5 s a million versions, keeping them up about 22 s a
    /// million rows stored; past an eighth of the file, bulk is cheaper.
    pub fn for_file(versions: u64) -> Bulk {
        Bulk { threshold: (versions / 8).max(Self::MIN_ROWS) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_indexes_are_the_ones_the_newest_migration_creates() {
        let sql = include_str!("../../migrations/0015_reverse_index_periods.sql");
        for (name, create) in super::REVERSE_INDEXES {
            assert!(sql.contains(&format!("{create};")), "{name}: {create}");
        }
    }
}
