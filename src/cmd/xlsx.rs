//! `export --out F.xlsx`: the customers (and a sheet of companies) as an
//! Excel workbook whose identifiers are text cells. Excel turns a CSV cell
//! of 12 or more digits into a number and keeps 15 significant digits of it,
//! so a credit code such as `911100001000079554` read from a CSV loses its
//! last digits for good; typed cells keep every one.
//!
//! Written with `rust_xlsxwriter` in its constant-memory mode: each row goes
//! to a temporary file as it is written, so memory stays flat however large
//! the database is. Read-only on the database.

use rusqlite::types::Value;
use rusqlite::Connection;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::store::export::{self, ExportFilter, EXPORT_COLUMNS};

/// Excel's rows per sheet, the header included.
pub const EXCEL_MAX_ROWS: u32 = 1_048_576;

/// Columns written as numbers; every other one is text.
const NUMBER_COLUMNS: &[&str] = &["sales_amount_wan_yuan", "sales_percent", "page_index", "row_index"];

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub customer_rows: u64,
    /// The customers sheets' names, in order.
    pub customer_sheets: Vec<String>,
    pub companies: u64,
}

/// Write the workbook to `path`. `rows_per_sheet` counts the header; Excel's
/// limit unless a test asks for less. `notice` hears about every sheet
/// started after the first (the CLI prints it on stderr).
pub fn write(
    conn: &Connection,
    filter: &ExportFilter,
    path: &std::path::Path,
    rows_per_sheet: u32,
    mut notice: impl FnMut(&str),
) -> anyhow::Result<Written> {
    let rows_per_sheet = rows_per_sheet.clamp(2, EXCEL_MAX_ROWS);
    let input_columns = export::input_columns(conn)?;
    let header: Vec<String> = export::export_header(&input_columns);
    let numeric: Vec<bool> = header
        .iter()
        .enumerate()
        .map(|(i, name)| i < EXPORT_COLUMNS.len() && NUMBER_COLUMNS.contains(&name.as_str()))
        .collect();
    let bold = Format::new().set_bold();
    // "@": Excel keeps what is typed into such a cell as text too.
    let text = Format::new().set_num_format("@");

    let mut workbook = Workbook::new();
    let mut sheets: Vec<String> = Vec::new();
    let mut row: u32 = 0;
    let widths = column_widths(&header, &numeric);
    let start_sheet = |workbook: &mut Workbook, sheets: &mut Vec<String>| -> Result<(), XlsxError> {
        let name =
            if sheets.is_empty() { "customers".to_string() } else { format!("customers ({})", sheets.len() + 1) };
        let ws = workbook.add_worksheet_with_constant_memory()?;
        ws.set_name(&name)?;
        header_row(ws, &header, &bold, &widths)?;
        sheets.push(name);
        Ok(())
    };
    start_sheet(&mut workbook, &mut sheets)?;
    let mut failure: Option<XlsxError> = None;
    let n = export::export_values(conn, filter, |values, input| {
        if row + 1 >= rows_per_sheet {
            // This sheet is full: close it with its filter and go on.
            let ws = workbook.worksheet_from_index(sheets.len() - 1).map_err(std::io::Error::other)?;
            ws.autofilter(0, 0, row, (header.len() - 1) as u16).map_err(std::io::Error::other)?;
            start_sheet(&mut workbook, &mut sheets).map_err(std::io::Error::other)?;
            notice(&format!(
                "more than {} customer rows (Excel's limit per sheet): continuing on sheet {:?}",
                rows_per_sheet - 1,
                sheets[sheets.len() - 1]
            ));
            row = 0;
        }
        row += 1;
        let ws = workbook.worksheet_from_index(sheets.len() - 1).map_err(std::io::Error::other)?;
        // Our columns as SQLite typed them, then the input's own, all text.
        let written = data_row(ws, row, values, &numeric, &text).and_then(|()| {
            let inputs = export::input_values(input, &input_columns);
            for (i, v) in inputs.into_iter().enumerate() {
                if let Some(v) = v {
                    ws.write_string_with_format(row, (EXPORT_COLUMNS.len() + i) as u16, v, &text)?;
                }
            }
            Ok(())
        });
        if let Err(e) = written {
            failure = Some(e);
            return Err(std::io::Error::other("the workbook could not be written"));
        }
        Ok(())
    })
    .map_err(|e| match failure.take() {
        Some(x) => anyhow::anyhow!("export failed: {x}"),
        None => anyhow::anyhow!("export failed: {e}"),
    })?;
    let ws = workbook.worksheet_from_index(sheets.len() - 1)?;
    ws.autofilter(0, 0, row.max(1), (header.len() - 1) as u16)?;

    let companies = companies_sheet(conn, workbook.add_worksheet_with_constant_memory()?, &bold, &text)?;
    workbook.save(path)?;
    Ok(Written { customer_rows: n, customer_sheets: sheets, companies })
}

/// Column widths (in characters) from the header and what the column holds.
fn column_widths(header: &[String], numeric: &[bool]) -> Vec<f64> {
    header
        .iter()
        .zip(numeric)
        .map(|(name, &number)| {
            let wanted: f64 = match name.as_str() {
                "search_key" | "customer_name" => 32.0,
                "customer_key_no" => 34.0,
                "fetched_at" => 25.0,
                _ if number => 12.0,
                // CJK characters show about twice as wide as Latin ones.
                _ => name.chars().map(|c| if c.is_ascii() { 1.0 } else { 2.0 }).sum::<f64>().max(10.0) + 2.0,
            };
            wanted.min(60.0)
        })
        .collect()
}

/// The bold, frozen header row with the column widths.
fn header_row(ws: &mut Worksheet, header: &[String], bold: &Format, widths: &[f64]) -> Result<(), XlsxError> {
    for (col, (name, width)) in header.iter().zip(widths.iter()).enumerate() {
        ws.set_column_width(col as u16, *width)?;
        ws.write_string_with_format(0, col as u16, name, bold)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// One row: numbers as numbers, everything else as text; NULL stays empty.
fn data_row(ws: &mut Worksheet, row: u32, cells: &[Value], numeric: &[bool], text: &Format) -> Result<(), XlsxError> {
    for (col, value) in cells.iter().enumerate() {
        let c = col as u16;
        match value {
            Value::Null | Value::Blob(_) => {}
            Value::Real(f) if numeric.get(col) == Some(&true) => {
                ws.write_number(row, c, *f)?;
            }
            Value::Integer(i) if numeric.get(col) == Some(&true) => {
                ws.write_number(row, c, *i as f64)?;
            }
            Value::Real(f) => {
                ws.write_string_with_format(row, c, f.to_string(), text)?;
            }
            Value::Integer(i) => {
                ws.write_string_with_format(row, c, i.to_string(), text)?;
            }
            Value::Text(t) => {
                ws.write_string_with_format(row, c, t, text)?;
            }
        }
    }
    Ok(())
}

/// The `companies` sheet: one row per company, what `company_summary` and
/// `status` know, with the message of every company that is not `done`.
fn companies_sheet(conn: &Connection, ws: &mut Worksheet, bold: &Format, text: &Format) -> anyhow::Result<u64> {
    ws.set_name("companies")?;
    let header: Vec<String> = export::COMPANY_SHEET_COLUMNS.iter().map(|c| c.to_string()).collect();
    let numeric: Vec<bool> = export::COMPANY_SHEET_COLUMNS
        .iter()
        .map(|c| matches!(*c, "years_covered" | "customer_rows" | "top_customer_percent"))
        .collect();
    let widths: Vec<f64> = header
        .iter()
        .map(|h| match h.as_str() {
            "search_key" | "top_customer_latest_year" => 32.0,
            "message" => 60.0,
            "fetched_at" | "retry_after" => 25.0,
            _ => 14.0,
        })
        .collect();
    header_row(ws, &header, bold, &widths)?;
    let mut row = 0u32;
    let mut failure = None;
    export::company_rows(conn, |values| {
        row += 1;
        data_row(ws, row, values, &numeric, text).map_err(|e| {
            failure = Some(e);
            std::io::Error::other("the workbook could not be written")
        })
    })
    .map_err(|e| match failure.take() {
        Some(x) => anyhow::anyhow!("export failed: {x}"),
        None => anyhow::anyhow!("export failed: {e}"),
    })?;
    ws.autofilter(0, 0, row.max(1), (header.len() - 1) as u16)?;
    Ok(u64::from(row))
}
