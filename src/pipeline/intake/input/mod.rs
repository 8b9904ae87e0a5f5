//! Stage 1: the input list, streamed record by record (docs/design.md §3).
//!
//! Says what the file is before anything is paid for: a workbook (read with
//! calamine, [`sheet`]), delimited text (its encoding and separator
//! detected, [`sniff`]), or something else, which is refused. Finds the
//! search-key column, trims and normalises keys, and validates them locally
//! so nothing invalid is paid for. Memory stays flat: one record at a time,
//! whatever the file size.

mod keys;
mod rows;
mod sheet;
mod sniff;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::PathBuf;

pub use self::keys::{credit_code_check_digit_ok, looks_like_credit_code, normalize, validate};
use self::keys::{extra_cells, find_key_column, unsendable};
use self::rows::{Listed, Opened, Rows, TextRows};
use self::sheet::Cell;
use self::sniff::Kind;
use crate::store::records::InputRecord;

/// How many of the input's first keys the log and the dry run show.
pub const FIRST_KEYS_SHOWN: usize = 5;

/// The list is not a list of companies (a PDF, an image, binary data …):
/// refused before anything is paid for.
fn not_a_list(label: &str, looks_like: &str, hint: &str) -> InputError {
    InputError::NotAList { path: label.to_string(), looks_like: looks_like.to_string(), hint: hint.to_string() }
}

/// Where the list comes from.
#[derive(Debug, Clone)]
pub enum InputSource {
    Path(PathBuf),
    Stdin,
    /// In-memory bytes (the demo's compiled-in sample, a test's list).
    Bytes(bytes::Bytes),
}

/// How to read the list.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// The column holding the search key; auto-detected when `None`.
    pub column: Option<String>,
    /// The file has no header row.
    pub no_header: bool,
    /// Force an encoding (a WHATWG label such as `gbk`, `utf-16le`).
    pub encoding: Option<String>,
    /// The separator of a text list; detected when `None`.
    pub delimiter: Option<u8>,
    /// The sheet of a workbook; the first when `None`.
    pub sheet: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read input {path}: {source}; no call was made — check --input")]
    Unreadable { path: String, source: std::io::Error },
    #[error("unknown encoding {0:?}; no call was made — try utf-8, gbk, gb18030, utf-16le or utf-16be")]
    UnknownEncoding(String),
    #[error(
        "input has no usable search-key column{hint}; headers seen: {headers:?}; no call was made — name the column \
         with --column"
    )]
    NoColumn { headers: Vec<String>, hint: String },
    #[error("input is empty: no header row; no call was made")]
    Empty,
    #[error("cannot read the header row: {0}; no call was made — check the file is a CSV (or use --no-header)")]
    Header(csv::Error),
    #[error(
        "input {path} looks like {looks_like}, not a list of companies; no call was made and nothing was written — \
         {hint}"
    )]
    NotAList { path: String, looks_like: String, hint: String },
    #[error(
        "the workbook {path} has no sheet named {wanted:?} (its sheets: {sheets:?}); no call was made — name one \
         with --sheet"
    )]
    NoSheet { path: String, wanted: String, sheets: Vec<String> },
    #[error("cannot read the workbook {path}: {message}; no call was made — open it in Excel and save it again")]
    Workbook { path: String, message: String },
}

/// How many records are read ahead when the list is opened: the keys shown
/// before a run starts, and the look at whether they are keys at all.
const LOOK_AHEAD: usize = 100;

/// A problem with one input record; the record is skipped, the run goes on.
#[derive(Debug)]
pub struct RowProblem {
    pub line: u64,
    pub message: String,
    /// The input itself failed (I/O): nothing after this can be read.
    pub fatal: bool,
}

/// One item of the input stream.
pub enum Item {
    Record(InputRecord),
    Blank,
    Problem(RowProblem),
}

/// What the reader found the list to be, for the log and the dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Layout {
    /// `CSV text` or the workbook's kind.
    pub format: String,
    /// The sheet read, for a workbook.
    pub sheet: Option<String>,
    /// The separator of a text list, and how it was chosen.
    pub separator: Option<String>,
    pub encoding: Option<String>,
    /// The key column: its header, or its number without a header.
    pub column: String,
    /// 1-based.
    pub column_number: usize,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.format)?;
        if let Some(sheet) = &self.sheet {
            write!(f, ", sheet {sheet:?}")?;
        }
        if let Some(sep) = &self.separator {
            write!(f, ", separator {sep}")?;
        }
        if let Some(enc) = &self.encoding {
            write!(f, ", {enc}")?;
        }
        write!(f, "; search keys from column {} ({:?})", self.column_number, self.column)
    }
}

pub struct InputReader {
    rows: Rows,
    shape: RowShape,
    /// Items read when the list was opened, handed out first.
    ahead: VecDeque<Item>,
    /// What the list was found to be.
    pub layout: Layout,
}

/// What turns a row into an item, whichever reader it came from.
struct RowShape {
    key_column: usize,
    headers: Vec<String>,
    /// Build each row's JSON (off for a dry run, which does not keep it).
    keep_rows: bool,
}

impl InputReader {
    pub fn open(source: InputSource, opts: &InputOptions) -> Result<Self, InputError> {
        let label = match &source {
            InputSource::Path(p) => p.display().to_string(),
            InputSource::Stdin => "-".to_string(),
            InputSource::Bytes(_) => "<built-in sample>".to_string(),
        };
        let unreadable = |source| InputError::Unreadable { path: label.clone(), source };
        let extension = match &source {
            InputSource::Path(p) => p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase),
            _ => None,
        };
        let mut raw: Box<dyn Read + Send> = match &source {
            InputSource::Path(p) => Box::new(BufReader::with_capacity(1 << 16, File::open(p).map_err(unreadable)?)),
            InputSource::Stdin => Box::new(std::io::stdin()),
            InputSource::Bytes(b) => Box::new(Cursor::new(b.clone())),
        };
        // Sniff the first 64 KiB, then put it back in front of the stream.
        let mut head = Vec::with_capacity(1 << 16);
        (&mut raw).take(1 << 16).read_to_end(&mut head).map_err(unreadable)?;
        let opened = Opened { source: &source, label: &label, extension: extension.as_deref(), head, raw };
        let Listed { rows, headers, layout } = match sniff::classify(&opened.head) {
            Kind::Refused { looks_like, hint } => return Err(not_a_list(&label, looks_like, hint)),
            kind @ (Kind::Zip | Kind::Ole) => rows::workbook(kind, opened, opts)?,
            Kind::Text => rows::text(opened, opts)?,
        };
        let key_column = find_key_column(&headers, opts)?;
        let layout = Layout {
            column: headers.get(key_column).cloned().unwrap_or_else(|| format!("column {}", key_column + 1)),
            column_number: key_column + 1,
            ..layout
        };
        let shape = RowShape { key_column, headers, keep_rows: true };
        let mut reader = Self { rows, shape, ahead: VecDeque::new(), layout };
        reader.look_ahead(&label)?;
        Ok(reader)
    }

    /// Read the first records ahead: text whose keys are mostly control or
    /// undecodable characters is binary data, refused before any call.
    fn look_ahead(&mut self, label: &str) -> Result<(), InputError> {
        let (mut keys, mut garbled) = (0usize, 0usize);
        while self.ahead.len() < LOOK_AHEAD {
            let Some(item) = self.read_item() else { break };
            if let Item::Record(r) = &item {
                keys += 1;
                garbled += usize::from(r.search_key.chars().any(sniff::suspicious));
            }
            self.ahead.push_back(item);
        }
        if garbled >= 3 && garbled * 2 > keys {
            return Err(InputError::NotAList {
                path: label.to_string(),
                looks_like: format!(
                    "binary data or text in another encoding ({garbled} of its first {keys} keys hold control \
                     characters or undecodable bytes)"
                ),
                hint: "give the company list as .xlsx, .csv or tab-separated text, or name its --encoding".into(),
            });
        }
        Ok(())
    }

    /// The first `n` distinct keys exactly as they will be sent (invalid
    /// ones left out), from the records read ahead.
    pub fn first_keys(&self, n: usize) -> Vec<String> {
        let mut seen = HashSet::new();
        self.ahead
            .iter()
            .filter_map(|item| match item {
                Item::Record(r) if r.invalid.is_none() && seen.insert(r.norm_key.as_str()) => {
                    Some(r.search_key.clone())
                }
                _ => None,
            })
            .take(n)
            .collect()
    }

    /// Rows with a key in the whole input, counted by a second pass that
    /// neither keeps nor validates them (for the progress bar's total).
    /// `None` for stdin, which can be read only once.
    pub fn count_rows(source: InputSource, opts: &InputOptions) -> Option<u64> {
        if matches!(source, InputSource::Stdin) {
            return None;
        }
        let mut reader = InputReader::open(source, opts).ok()?;
        reader.keep_rows(false);
        let mut n = 0;
        while let Some(item) = reader.next_item() {
            match item {
                Item::Record(_) => n += 1,
                Item::Problem(p) if p.fatal => break,
                _ => {}
            }
        }
        Some(n)
    }

    /// Whether to build each row's JSON ([`InputRecord::row_json`]) from
    /// here on (records already read ahead keep theirs).
    pub fn keep_rows(&mut self, keep: bool) {
        self.shape.keep_rows = keep;
    }

    /// The next item, or `None` at the end of the input.
    pub fn next_item(&mut self) -> Option<Item> {
        self.ahead.pop_front().or_else(|| self.read_item())
    }

    fn read_item(&mut self) -> Option<Item> {
        let shape = &self.shape;
        match &mut self.rows {
            Rows::Text(text) => text.next_item(shape),
            Rows::Sheet(sheet) => match sheet.next_row()? {
                Ok(row) => Some(shape.sheet_item(row)),
                Err(message) => Some(Item::Problem(RowProblem {
                    line: 0,
                    message: format!("the sheet cannot be read further: {message}"),
                    fatal: true,
                })),
            },
        }
    }
}

impl TextRows {
    /// The next record as an item, `None` at the end of the text.
    fn next_item(&mut self, shape: &RowShape) -> Option<Item> {
        match self.csv.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => Some(self.item(shape)),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        "not valid UTF-8 (pass --encoding if the file is GBK or UTF-16)".to_string()
                    }
                    _ => e.to_string(),
                };
                // An I/O error is not a bad row: the stream itself failed.
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                Some(Item::Problem(RowProblem { line, message, fatal }))
            }
        }
    }

    /// The record just read, as an item.
    fn item(&self, shape: &RowShape) -> Item {
        let record = &self.record;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let key = record.get(shape.key_column).unwrap_or("");
        if key.trim().contains(['\n', '\r']) {
            let last = self.csv.position().line().saturating_sub(1);
            return Item::Problem(RowProblem {
                line,
                message: format!(
                    "the key cell runs over lines {line}–{last} (an unbalanced quote?); that record was skipped, \
                     rows inside it were not read as companies"
                ),
                fatal: false,
            });
        }
        let split = extra_cells(shape.headers.len(), record.iter());
        shape.item(line, key, split, || record.iter().map(str::to_string).collect())
    }
}

impl RowShape {
    fn sheet_item(&self, row: sheet::SheetRow) -> Item {
        let key = row.cells.get(self.key_column).map_or(Ok(String::new()), Cell::key);
        let (key, not_a_key) = match key {
            Ok(k) => (k, None),
            Err(why) => (row.cells[self.key_column].text(), Some(why)),
        };
        self.item(row.line, &key, not_a_key, || row.cells.iter().map(Cell::text).collect())
    }

    /// A record from its key cell; `cells` gives the row's cells for its JSON.
    fn item(&self, line: u64, cell: &str, not_a_key: Option<String>, cells: impl FnOnce() -> Vec<String>) -> Item {
        let key = cell.trim().trim_start_matches('\u{feff}').trim();
        if key.is_empty() {
            return Item::Blank;
        }
        let row_json = if self.keep_rows {
            let mut row = serde_json::Map::new();
            for (i, value) in cells().into_iter().enumerate() {
                let name = self.headers.get(i).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
                row.insert(name, serde_json::Value::String(value));
            }
            serde_json::Value::Object(row).to_string()
        } else {
            String::new()
        };
        let norm_key = normalize(key);
        let invalid = not_a_key.or_else(|| unsendable(key)).or_else(|| validate(&norm_key));
        Item::Record(InputRecord { line, search_key: key.to_string(), invalid, norm_key, row_json })
    }
}
