//! `qcc-customers export`: customers joined with the input's own columns, as
//! a CSV in UTF-8 with a BOM so that Excel on a Chinese Windows opens it
//! with the right encoding. Read-only: safe while a run is writing.

use std::io::Write;

use anyhow::Context;

use crate::cli::ExportArgs;
use crate::exit;
use crate::store::{self, read};

pub fn run(args: ExportArgs) -> anyhow::Result<i32> {
    let conn = store::open_for_reading(&args.db)?;
    let filter = match (&args.year, args.latest) {
        (Some(y), _) => read::ExportFilter::Year(y.clone()),
        (None, true) => read::ExportFilter::Latest,
        (None, false) => read::ExportFilter::All,
    };
    let input_columns = read::input_columns(&conn)?;
    let out: Box<dyn Write> = if args.out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out))?)
    };
    let mut out = std::io::BufWriter::new(out);
    out.write_all("\u{feff}".as_bytes())?;
    let mut csv = csv::Writer::from_writer(out);

    // Input columns keep their names; one that collides with ours is suffixed.
    let header: Vec<String> = read::EXPORT_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(input_columns.iter().map(|c| {
            if read::EXPORT_COLUMNS.contains(&c.as_str()) {
                format!("{c} (input)")
            } else {
                c.clone()
            }
        }))
        .collect();
    csv.write_record(&header)?;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    let n = read::export_rows(&conn, &filter, |values, input| {
        record.clear();
        record.extend(values.iter().map(|v| v.clone().unwrap_or_default()));
        let row: serde_json::Map<String, serde_json::Value> =
            input.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        for col in &input_columns {
            record.push(match row.get(col) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            });
        }
        csv.write_record(&record).map_err(std::io::Error::other)
    })
    .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    csv.flush()?;
    if args.out != "-" {
        eprintln!("Wrote {n} customer rows to {} (UTF-8 with BOM).", args.out);
    }
    Ok(exit::OK)
}
