//! Workbook input (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`) read with
//! calamine, one row at a time (docs/design.md §3).
//!
//! calamine's streaming cell reader borrows its workbook, so the workbook
//! lives on a thread of its own that sends rows through a bounded channel:
//! the reader that receives them can then move between threads like the CSV
//! reader does. `.xlsx`/`.xlsm`/`.xlsb` sheets stream cell by cell (their
//! shared-string table is held whole, as calamine requires); `.xls` and
//! `.ods` sheets are loaded whole by calamine before the first row is sent.

use std::io::{Read, Seek};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use calamine::{Data, DataRef, Ods, Reader, Xls, Xlsb, Xlsx};

/// One cell as the list needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number cell: Excel holds at most 15 significant digits of it.
    Number(f64),
}

impl Cell {
    /// The cell as text, as Excel would show it without a number format:
    /// whole numbers of up to 15 digits as their digits, others in Rust's
    /// shortest form.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Number(f) => whole_digits(*f).unwrap_or_else(|| f.to_string()),
        }
    }

    /// The cell as a search key, or why a number cell cannot be one.
    pub fn key(&self) -> Result<String, String> {
        match self {
            Cell::Text(s) => Ok(s.clone()),
            Cell::Number(f) => whole_digits(*f).ok_or_else(|| {
                format!(
                    "the cell is a number ({f:E}), and Excel keeps only 15 digits of a number, so an identifier \
                     this long has lost its last digits; format the column as text in Excel and type the code again"
                )
            }),
        }
    }
}

/// A whole number of at most 15 digits (which Excel holds exactly), as digits.
fn whole_digits(f: f64) -> Option<String> {
    (f.fract() == 0.0 && f.abs() < 1e15).then(|| format!("{}", f as i64))
}

/// A sheet row: its 1-based row number and its cells (empty ones as empty text).
#[derive(Debug)]
pub struct SheetRow {
    pub line: u64,
    pub cells: Vec<Cell>,
}

/// Which calamine reader opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Xlsx => "Excel workbook (.xlsx)",
            Format::Xlsb => "Excel binary workbook (.xlsb)",
            Format::Xls => "Excel 97-2003 workbook (.xls)",
            Format::Ods => "OpenDocument spreadsheet (.ods)",
        }
    }
}

/// Rows arriving from the workbook's thread.
pub struct SheetRows {
    rx: Receiver<Result<SheetRow, String>>,
    /// The sheet being read.
    pub sheet: String,
    pub format: Format,
}

impl SheetRows {
    /// The next row, an error that ends the sheet, or `None` at its end.
    pub fn next_row(&mut self) -> Option<Result<SheetRow, String>> {
        self.rx.recv().ok()
    }
}

/// Why a workbook cannot be read.
#[derive(Debug)]
pub enum OpenError {
    /// No calamine reader accepts the bytes.
    NotAWorkbook,
    /// `--sheet` names no sheet; the sheets there are.
    NoSheet { wanted: String, sheets: Vec<String> },
    /// The workbook has no sheet at all, or its sheet cannot be read.
    Unreadable(String),
}

/// Rows in flight between the workbook's thread and the reader.
const ROWS_IN_FLIGHT: usize = 256;

/// Open the bytes `data` gives (afresh for each try) with the readers of
/// `candidates`, in order, and start streaming the rows of `sheet` (the
/// first sheet when `None`).
pub fn open<RS>(
    data: impl Fn() -> std::io::Result<RS>,
    candidates: &[Format],
    sheet: Option<&str>,
) -> Result<SheetRows, OpenError>
where
    RS: Read + Seek + Send + 'static,
{
    for &format in candidates {
        let bytes = data().map_err(|e| OpenError::Unreadable(e.to_string()))?;
        let opened = match format {
            Format::Xlsx => Xlsx::new(bytes).map(Book::Xlsx).ok(),
            Format::Xlsb => Xlsb::new(bytes).map(Book::Xlsb).ok(),
            Format::Xls => Xls::new(bytes).map(Book::Xls).ok(),
            Format::Ods => Ods::new(bytes).map(Book::Ods).ok(),
        };
        let Some(book) = opened else { continue };
        let names = book.sheet_names();
        let name = match sheet {
            Some(wanted) => names
                .iter()
                .find(|n| *n == wanted)
                .or_else(|| names.iter().find(|n| n.trim().eq_ignore_ascii_case(wanted.trim())))
                .cloned()
                .ok_or_else(|| OpenError::NoSheet { wanted: wanted.to_string(), sheets: names.clone() })?,
            None => names.first().cloned().ok_or_else(|| OpenError::Unreadable("it has no sheet".into()))?,
        };
        let (tx, rx) = sync_channel(ROWS_IN_FLIGHT);
        let thread_sheet = name.clone();
        std::thread::Builder::new()
            .name("input-sheet".into())
            .spawn(move || book.stream(&thread_sheet, &tx))
            .map_err(|e| OpenError::Unreadable(format!("cannot start its reader: {e}")))?;
        return Ok(SheetRows { rx, sheet: name, format });
    }
    Err(OpenError::NotAWorkbook)
}

enum Book<RS: Read + Seek> {
    Xlsx(Xlsx<RS>),
    Xlsb(Xlsb<RS>),
    Xls(Xls<RS>),
    Ods(Ods<RS>),
}

impl<RS: Read + Seek> Book<RS> {
    fn sheet_names(&self) -> Vec<String> {
        match self {
            Book::Xlsx(b) => b.sheet_names(),
            Book::Xlsb(b) => b.sheet_names(),
            Book::Xls(b) => b.sheet_names(),
            Book::Ods(b) => b.sheet_names(),
        }
    }

    /// Send the sheet's rows until its end, an error, or the receiver is gone.
    fn stream(mut self, sheet: &str, tx: &SyncSender<Result<SheetRow, String>>) {
        let mut rows = RowBuilder { tx, row: None, cells: Vec::new() };
        let streamed = match &mut self {
            Book::Xlsx(b) => match b.worksheet_cells_reader(sheet) {
                Ok(mut cells) => each_cell(|| cells.next_cell(), &mut rows),
                Err(e) => Err(e.to_string()),
            },
            Book::Xlsb(b) => match b.worksheet_cells_reader(sheet) {
                Ok(mut cells) => each_cell(|| cells.next_cell(), &mut rows),
                Err(e) => Err(e.to_string()),
            },
            Book::Xls(b) => whole_range(b.worksheet_range(sheet).map_err(|e| e.to_string()), &mut rows),
            Book::Ods(b) => whole_range(b.worksheet_range(sheet).map_err(|e| e.to_string()), &mut rows),
        };
        match streamed {
            Ok(()) => {
                rows.flush();
            }
            Err(e) => {
                rows.flush();
                // The reader may have stopped reading (the run ended): nobody to tell.
                let _ = tx.send(Err(e));
            }
        }
    }
}

/// Send the rows of a sheet that calamine streams cell by cell.
fn each_cell<'a, E: std::fmt::Display>(
    mut next: impl FnMut() -> Result<Option<calamine::Cell<DataRef<'a>>>, E>,
    rows: &mut RowBuilder<'_>,
) -> Result<(), String> {
    loop {
        match next() {
            Ok(Some(cell)) => {
                let (row, col) = cell.get_position();
                if !rows.cell(row, col, from_ref(cell.get_value())) {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Send the rows of a sheet calamine loaded whole.
fn whole_range(range: Result<calamine::Range<Data>, String>, rows: &mut RowBuilder<'_>) -> Result<(), String> {
    let range = range?;
    let Some((first_row, first_col)) = range.start() else { return Ok(()) };
    for (i, row) in range.rows().enumerate() {
        for (j, value) in row.iter().enumerate() {
            if !rows.cell(first_row + i as u32, first_col + j as u32, from_data(value)) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Gathers cells (row by row, left to right) into rows and sends each one
/// when the next begins. Rows without a non-empty cell are not sent: they
/// are blank.
struct RowBuilder<'a> {
    tx: &'a SyncSender<Result<SheetRow, String>>,
    row: Option<u32>,
    cells: Vec<Cell>,
}

impl RowBuilder<'_> {
    /// Add a cell; `false` once the receiver is gone.
    fn cell(&mut self, row: u32, col: u32, value: Option<Cell>) -> bool {
        if self.row != Some(row) {
            if !self.flush() {
                return false;
            }
            self.row = Some(row);
        }
        let Some(value) = value else { return true };
        let col = col as usize;
        if self.cells.len() <= col {
            self.cells.resize(col + 1, Cell::Text(String::new()));
        }
        self.cells[col] = value;
        true
    }

    /// Send the row gathered so far, if it has a cell; `false` once the receiver is gone.
    fn flush(&mut self) -> bool {
        let cells = std::mem::take(&mut self.cells);
        match self.row {
            Some(row) if !cells.is_empty() => self.tx.send(Ok(SheetRow { line: u64::from(row) + 1, cells })).is_ok(),
            _ => true,
        }
    }
}

fn from_ref(value: &DataRef<'_>) -> Option<Cell> {
    match value {
        DataRef::SharedString(s) => Some(Cell::Text((*s).to_string())),
        other => from_data(&Data::from(other.clone())),
    }
}

/// A cell's value, `None` when empty.
fn from_data(value: &Data) -> Option<Cell> {
    Some(match value {
        Data::Empty => return None,
        Data::String(s) if s.is_empty() => return None,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.to_string()),
        Data::DateTime(dt) => match dt.as_datetime().filter(|_| dt.is_datetime()) {
            Some(t) if t.time() == chrono::NaiveTime::MIN => Cell::Text(t.date().format("%Y-%m-%d").to_string()),
            Some(t) => Cell::Text(t.format("%Y-%m-%d %H:%M:%S").to_string()),
            None => Cell::Number(dt.as_f64()),
        },
        Data::Error(e) => Cell::Text(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_number_cell_is_no_key_but_a_short_whole_one_is() {
        assert!(Cell::Number(9.1e17).key().unwrap_err().contains("format the column as text"));
        assert_eq!(Cell::Number(110108000000016.0).key().unwrap(), "110108000000016");
        assert!(Cell::Number(12.5).key().is_err());
        assert_eq!(Cell::Number(12.5).text(), "12.5");
        assert_eq!(Cell::Number(3.0).text(), "3");
    }
}
