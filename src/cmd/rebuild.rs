//! `qcc-customers rebuild`: re-derive `customers` and its history from the
//! archived raw pages without any call — after a parser fix, or to check the archive.

use crate::cli::RebuildArgs;
use crate::clock::Clock;
use crate::exit::Ended;
use crate::qcc;
use crate::store;

pub fn run(args: RebuildArgs) -> anyhow::Result<Ended> {
    if !args.db.exists() {
        return Err(store::StoreError::Missing { db: args.db.clone() }.into());
    }
    // The size as the command found it (the rebuild's own writes go to the log first).
    let before = store::file_bytes(&args.db);
    let mut store = store::open_for_writing(&args.db)?;
    if args.recompress {
        recompress(&mut store.conn)?;
    }
    let tx = store.conn.transaction().map_err(store::StoreError::from)?;
    let now = Clock::system().now_iso();
    let report = store::rebuild::rebuild(&tx, &now, |body| qcc::wire::parse(body).ok().map(|r| r.clients))
        .map_err(store::StoreError::from)?;
    tx.commit().map_err(store::StoreError::from)?;
    let c = report.changes;
    println!(
        "Rebuilt {} company-years, {} customer rows, from raw_pages: {}. History replayed from the receipts: \
         {} fetches, {} new periods, {} added, {} changed, {} removed (customers_history).{}{}",
        report.years,
        report.rows,
        if report.years_corrected == 0 {
            "the same rows as before".to_string()
        } else {
            format!("{} company-years read differently and now read as their receipts say", report.years_corrected)
        },
        report.fetches_replayed,
        c.new_period,
        c.added,
        c.changed,
        c.removed,
        if report.partial_years_kept > 0 {
            format!(" {} years mid-fetch were left as they are.", report.partial_years_kept)
        } else {
            String::new()
        },
        if report.years_without_receipts > 0 {
            format!(
                " {} years have no complete receipts (fetched with --no-archive?) and were left as they are.",
                report.years_without_receipts
            )
        } else {
            String::new()
        }
    );
    if args.vacuum {
        store::vacuum(&store.conn).map_err(store::StoreError::from)?;
        let after = store::file_bytes(&args.db);
        println!(
            "Repacked (VACUUM): the file went from {} to {} ({:.0} %).",
            mib(before),
            mib(after),
            after as f64 * 100.0 / before.max(1) as f64
        );
    }
    Ok(Ended::Done)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Rewrite every receipt against a dictionary trained on the whole file.
fn recompress(conn: &mut rusqlite::Connection) -> anyhow::Result<()> {
    let now = Clock::system().now_iso();
    let done = store::dictionaries::recompress(conn, &now).map_err(store::StoreError::from)?;
    let per = |bytes: u64| bytes as f64 / done.receipts.max(1) as f64;
    println!(
        "Recompressed {} receipts {}: {} → {} bytes ({:.0} → {:.0} a receipt).{}{} \
         The space freed is reused by later runs; --vacuum gives it back to the disk.",
        done.receipts,
        match done.dict_id {
            Some(id) => format!("against a new dictionary of this file's pages (id {id})"),
            None => "as plain zstd (too few pages to train a dictionary on)".to_string(),
        },
        done.bytes_before,
        done.bytes_after,
        per(done.bytes_before),
        per(done.bytes_after),
        if done.unreadable > 0 {
            format!(" {} unreadable receipts were left as they are.", done.unreadable)
        } else {
            String::new()
        },
        if done.dictionaries_dropped > 0 {
            format!(
                " {} no receipt needs any more {} dropped.",
                plural(done.dictionaries_dropped, "dictionary", "dictionaries"),
                if done.dictionaries_dropped == 1 { "was" } else { "were" }
            )
        } else {
            String::new()
        },
    );
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
