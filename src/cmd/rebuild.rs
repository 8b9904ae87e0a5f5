//! `qcc-customers rebuild`: re-derive `customers` from the archived raw pages
//! without any call — after a parser fix, or to check the archive.

use crate::cli::RebuildArgs;
use crate::exit::Ended;
use crate::qcc;
use crate::store;

pub fn run(args: RebuildArgs) -> anyhow::Result<Ended> {
    if !args.db.exists() {
        return Err(store::StoreError::Missing { db: args.db.clone() }.into());
    }
    let mut store = store::open_for_writing(&args.db)?;
    let tx = store.conn.transaction().map_err(store::StoreError::from)?;
    let report = store::rebuild::rebuild(&tx, |stored| {
        let body = store::receipt::decompress(stored)?;
        qcc::wire::parse(&body).ok().map(|r| r.clients)
    })
    .map_err(store::StoreError::from)?;
    tx.commit().map_err(store::StoreError::from)?;
    println!(
        "Rebuilt {} company-years, {} customer rows, from raw_pages.{}{}",
        report.years,
        report.rows,
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
    Ok(Ended::Done)
}
