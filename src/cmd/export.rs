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
    let years = match (&args.year, args.latest) {
        (Some(y), _) => export::Years::Year(y.clone()),
        (None, true) => export::Years::Latest,
        (None, false) => export::Years::All,
    };
    let as_of = args.as_of.as_deref().map(|t| moment(t, "--as-of")).transpose()?;
    if let Some(since) = &args.changes_since {
        return changes(&conn, since, format, &args.out);
    }
    let filter = export::ExportFilter { years, as_of };
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

/// A moment as `--as-of` and `--changes-since` take it: an RFC 3339 time,
/// or a day, meaning its start in Beijing time; as the file stores times.
fn moment(text: &str, flag: &str) -> anyhow::Result<String> {
    let text = text.trim();
    if let Some(t) = crate::clock::parse_iso(text) {
        return Ok(crate::clock::iso(t));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let noon = day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
        return Ok(crate::clock::iso(crate::clock::beijing_day_start(noon)));
    }
    Err(Failure::usage(format!(
        "{flag} {text:?} is not a time: give one such as 2026-05-01T08:00:00Z, or a day such as 2026-05-01 \
         (its start in Beijing time)"
    ))
    .into())
}

/// `export --changes-since`: the changes, as CSV.
fn changes(conn: &rusqlite::Connection, since: &str, format: ExportFormat, path: &str) -> anyhow::Result<Ended> {
    if format == ExportFormat::Xlsx {
        return Err(Failure::usage(
            "--changes-since writes CSV; give --out F.csv (or -) and open it in Excel, which reads its UTF-8 BOM",
        )
        .into());
    }
    let since = match since.trim().parse::<i64>() {
        Ok(run) => export::Since::Run(run),
        Err(_) => export::Since::Time(moment(since, "--changes-since")?),
    };
    let input_columns = export::input_columns(conn)?;
    let mut csv = csv_writer(path)?;
    csv.write_record(export::header_of(export::CHANGE_COLUMNS, &input_columns))?;
    let mut record: Vec<String> = Vec::new();
    let n = export::change_values(conn, &since, |values, input| {
        record.clear();
        record.extend(values.iter().map(export::value_text));
        record.extend(export::input_values(input, &input_columns).into_iter().map(Option::unwrap_or_default));
        csv.write_record(&record).map_err(std::io::Error::other)
    })
    .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    csv.flush()?;
    if path != "-" {
        let from = match since {
            export::Since::Run(r) => format!("the runs after run {r}"),
            export::Since::Time(t) => format!("learned since {t}"),
        };
        eprintln!("Wrote {n} changes ({from}) to {path} (UTF-8 with BOM).");
    }
    Ok(Ended::Done)
}

/// A CSV writer to `path` (or stdout for -), in UTF-8 with a BOM.
fn csv_writer(path: &str) -> anyhow::Result<csv::Writer<std::io::BufWriter<Box<dyn Write>>>> {
    let out: Box<dyn Write> = if path == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {path}"))?)
    };
    let mut out = std::io::BufWriter::new(out);
    out.write_all("\u{feff}".as_bytes())?;
    Ok(csv::Writer::from_writer(out))
}

fn csv(conn: &rusqlite::Connection, filter: &export::ExportFilter, path: &str) -> anyhow::Result<Ended> {
    let input_columns = export::input_columns(conn)?;
    let mut csv = csv_writer(path)?;
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
