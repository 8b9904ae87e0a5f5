//! `qcc-customers export`: customers joined with the input's own columns,
//! as a CSV in UTF-8 with a BOM (so that Excel on a Chinese Windows opens it
//! with the right encoding) or, for `.xlsx`, as an Excel workbook whose
//! identifiers are text cells ([`super::xlsx`]). Read-only: safe while a run
//! is writing.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::{ExportArgs, ExportFormat};
use crate::exit::{Ended, Failure};
use crate::store::{self, export};

pub fn run(args: ExportArgs) -> anyhow::Result<Ended> {
    let format = args.format.unwrap_or_else(|| {
        let xlsx = Path::new(&args.out).extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        if xlsx {
            ExportFormat::Xlsx
        } else {
            ExportFormat::Csv
        }
    });
    if format == ExportFormat::Xlsx && args.out == "-" {
        return Err(Failure::usage("an .xlsx workbook needs a file: --out F.xlsx, not -").into());
    }
    let conn = store::open_for_reading(&args.db)?;
    let filter = match (&args.year, args.latest) {
        (Some(y), _) => export::ExportFilter::Year(y.clone()),
        (None, true) => export::ExportFilter::Latest,
        (None, false) => export::ExportFilter::All,
    };
    match format {
        ExportFormat::Csv => csv(&conn, &filter, &args.out),
        ExportFormat::Xlsx => {
            let written = super::xlsx::write(&conn, &filter, Path::new(&args.out), super::xlsx::EXCEL_MAX_ROWS, |m| {
                eprintln!("{m}")
            })?;
            eprintln!(
                "Wrote {} customer rows on {} and {} companies on \"companies\" to {} (identifiers as text).",
                written.customer_rows,
                written.customer_sheets.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "),
                written.companies,
                args.out
            );
            Ok(Ended::Done)
        }
    }
}

fn csv(conn: &rusqlite::Connection, filter: &export::ExportFilter, path: &str) -> anyhow::Result<Ended> {
    let input_columns = export::input_columns(conn)?;
    let out: Box<dyn Write> = if path == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {path}"))?)
    };
    let mut out = std::io::BufWriter::new(out);
    out.write_all("\u{feff}".as_bytes())?;
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(export::export_header(&input_columns))?;
    let mut record: Vec<String> = Vec::new();
    let n = export::export_values(conn, filter, |values, input| {
        record.clear();
        record.extend(values.iter().map(export::value_text));
        record.extend(export::input_values(input, &input_columns).into_iter().map(Option::unwrap_or_default));
        csv.write_record(&record).map_err(std::io::Error::other)
    })
    .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    csv.flush()?;
    if path != "-" {
        eprintln!("Wrote {n} customer rows to {path} (UTF-8 with BOM).");
    }
    Ok(Ended::Done)
}
