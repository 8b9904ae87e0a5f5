//! Stage 1: the input list, streamed record by record (docs/design.md §3).
//!
//! Says what the file is before anything is paid for: a workbook (read with
//! calamine, [`sheet`]), delimited text (its encoding and separator
//! detected, [`sniff`]), or something else, which is refused. Finds the
//! search-key column, trims and normalises keys, and validates them locally
//! so nothing invalid is paid for. Memory stays flat: one record at a time,
//! whatever the file size.

mod sheet;
mod sniff;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;

use self::sheet::{Cell, SheetRows};
use self::sniff::Kind;
use crate::store::records::InputRecord;

/// Where the list comes from.
#[derive(Debug, Clone)]
pub enum InputSource {
    Path(PathBuf),
    Stdin,
    /// In-memory bytes (the demo's compiled-in sample).
    Bytes(&'static [u8]),
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

/// Header names that hold a search key, in order of preference (compared
/// case-insensitively, ignoring `_`, `-` and spaces).
const KEY_HEADERS: &[&str] = &[
    "searchkey",
    "companyname",
    "company",
    "name",
    "企业名称",
    "公司名称",
    "名称",
    "统一社会信用代码",
    "信用代码",
    "creditcode",
    "unifiedsocialcreditcode",
    "uscc",
    "keyno",
];

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

enum Rows {
    Csv { csv: csv::Reader<Box<dyn Read + Send>>, record: csv::StringRecord },
    Sheet(SheetRows),
}

pub struct InputReader {
    rows: Rows,
    key_column: usize,
    headers: Vec<String>,
    /// A text list's separator: a key holding it was split wrongly.
    separator: Option<u8>,
    /// Items read when the list was opened, handed out first.
    ahead: VecDeque<Item>,
    /// Build each row's JSON (off for a dry run, which does not keep it).
    keep_rows: bool,
    /// What the list was found to be.
    pub layout: Layout,
}

fn header_key(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect::<String>()
        .to_lowercase()
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
            InputSource::Bytes(b) => Box::new(Cursor::new(*b)),
        };
        // Sniff the first 64 KiB, then put it back in front of the stream.
        let mut head = Vec::with_capacity(1 << 16);
        (&mut raw).take(1 << 16).read_to_end(&mut head).map_err(unreadable)?;
        let not_a_list = |looks_like: &str, hint: &str| InputError::NotAList {
            path: label.clone(),
            looks_like: looks_like.to_string(),
            hint: hint.to_string(),
        };

        let (rows, headers, separator, layout) = match sniff::classify(&head) {
            Kind::Refused { looks_like, hint } => return Err(not_a_list(looks_like, hint)),
            kind @ (Kind::Zip | Kind::Ole) => {
                let mut candidates = match kind {
                    Kind::Ole => vec![sheet::Format::Xls],
                    _ => vec![sheet::Format::Xlsx, sheet::Format::Xlsb, sheet::Format::Ods],
                };
                // The extension only says which reader to try first.
                let first = match extension.as_deref() {
                    Some("ods") => Some(sheet::Format::Ods),
                    Some("xlsb") => Some(sheet::Format::Xlsb),
                    _ => None,
                };
                if let Some(first) = first {
                    candidates.retain(|f| *f != first);
                    candidates.insert(0, first);
                }
                let sheet = open_sheet(&source, head.clone(), raw, &candidates, opts, &label).map_err(|e| match e {
                    sheet::OpenError::NotAWorkbook => not_a_list(
                        sniff::container_hint(kind, &head),
                        "save the company list as .xlsx, .csv or tab-separated text",
                    ),
                    sheet::OpenError::NoSheet { wanted, sheets } => {
                        InputError::NoSheet { path: label.clone(), wanted, sheets }
                    }
                    sheet::OpenError::Unreadable(message) => InputError::Workbook { path: label.clone(), message },
                })?;
                let layout = Layout {
                    format: sheet.format.name().to_string(),
                    sheet: Some(sheet.sheet.clone()),
                    separator: None,
                    encoding: None,
                    column: String::new(),
                    column_number: 0,
                };
                let mut rows = Rows::Sheet(sheet);
                let headers = if opts.no_header { Vec::new() } else { rows.header_row(&label)? };
                (rows, headers, None, layout)
            }
            Kind::Text => {
                let forced = match &opts.encoding {
                    Some(label) => Some(
                        Encoding::for_label(label.as_bytes())
                            .ok_or_else(|| InputError::UnknownEncoding(label.clone()))?,
                    ),
                    None => None,
                };
                let encoding = forced.unwrap_or_else(|| sniff::encoding(&head));
                let utf16 = encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE;
                if head.contains(&0) && !utf16 {
                    return Err(not_a_list(
                        "binary data (it holds NUL bytes)",
                        "give the company list as .xlsx, .csv or tab-separated text; UTF-16 text without a \
                         byte-order mark needs --encoding utf-16le (or utf-16be)",
                    ));
                }
                let (text, _, _) = encoding.decode(&head);
                if let Some(what) = sniff::binary_text(&text) {
                    return Err(not_a_list(
                        &what,
                        "give the company list as .xlsx, .csv or tab-separated text (or name its --encoding)",
                    ));
                }
                let (separator, how) = match (opts.delimiter, extension.as_deref()) {
                    (Some(d), _) => (d, "(--delimiter)"),
                    (None, Some("tsv" | "tab")) => (b'\t', "(a .tsv file)"),
                    (None, _) => (sniff::separator(&text, head.len() < 1 << 16), "(detected)"),
                };
                let mut rows = Rows::Csv {
                    csv: csv_reader(head, raw, encoding, forced.is_some(), separator),
                    record: csv::StringRecord::new(),
                };
                let headers = if opts.no_header { Vec::new() } else { rows.header_row(&label)? };
                let layout = Layout {
                    format: "CSV text".to_string(),
                    sheet: None,
                    separator: Some(format!("{} {how}", sniff::separator_name(separator))),
                    encoding: Some(encoding.name().to_string()),
                    column: String::new(),
                    column_number: 0,
                };
                (rows, headers, Some(separator), layout)
            }
        };
        let key_column = find_key_column(&headers, opts)?;
        let layout = Layout {
            column: headers.get(key_column).cloned().unwrap_or_else(|| format!("column {}", key_column + 1)),
            column_number: key_column + 1,
            ..layout
        };
        let mut reader = Self { rows, key_column, headers, separator, ahead: VecDeque::new(), keep_rows: true, layout };
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
        self.keep_rows = keep;
    }

    /// The next item, or `None` at the end of the input.
    pub fn next_item(&mut self) -> Option<Item> {
        self.ahead.pop_front().or_else(|| self.read_item())
    }

    fn read_item(&mut self) -> Option<Item> {
        match &mut self.rows {
            Rows::Csv { csv, record } => match csv.read_record(record) {
                Ok(false) => None,
                Ok(true) => Some(self.csv_item()),
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
            },
            Rows::Sheet(sheet) => match sheet.next_row()? {
                Ok(row) => Some(self.sheet_item(row)),
                Err(message) => Some(Item::Problem(RowProblem {
                    line: 0,
                    message: format!("the sheet cannot be read further: {message}"),
                    fatal: true,
                })),
            },
        }
    }

    fn csv_item(&self) -> Item {
        let Rows::Csv { csv, record } = &self.rows else { unreachable!("csv_item reads CSV rows") };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let key = record.get(self.key_column).unwrap_or("");
        if key.trim().contains(['\n', '\r']) {
            let last = csv.position().line().saturating_sub(1);
            return Item::Problem(RowProblem {
                line,
                message: format!(
                    "the key cell runs over lines {line}–{last} (an unbalanced quote?); that record was skipped, \
                     rows inside it were not read as companies"
                ),
                fatal: false,
            });
        }
        self.item(line, key, None, || record.iter().map(str::to_string).collect())
    }

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
        let invalid = not_a_key.or_else(|| unsendable(key, self.separator)).or_else(|| validate(&norm_key));
        Item::Record(InputRecord { line, search_key: key.to_string(), invalid, norm_key, row_json })
    }
}

impl Rows {
    /// The header row's cells, trimmed.
    fn header_row(&mut self, label: &str) -> Result<Vec<String>, InputError> {
        let cells: Vec<String> = match self {
            Rows::Csv { csv, record } => {
                if !csv.read_record(record).map_err(InputError::Header)? {
                    return Err(InputError::Empty);
                }
                record.iter().map(str::to_string).collect()
            }
            Rows::Sheet(sheet) => match sheet.next_row() {
                Some(Ok(row)) => row.cells.iter().map(Cell::text).collect(),
                Some(Err(message)) => {
                    return Err(InputError::Workbook {
                        path: label.to_string(),
                        message: format!("sheet {:?}: {message}", sheet.sheet),
                    })
                }
                None => return Err(InputError::Empty),
            },
        };
        Ok(cells.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect())
    }
}

/// A CSV reader over the sniffed head and the rest of the stream.
fn csv_reader(
    mut head: Vec<u8>,
    raw: Box<dyn Read + Send>,
    encoding: &'static Encoding,
    forced: bool,
    separator: u8,
) -> csv::Reader<Box<dyn Read + Send>> {
    let decoded: Box<dyn Read + Send> = if encoding == encoding_rs::UTF_8 && !forced {
        // Plain UTF-8 passes through undecoded, BOM removed: an invalid
        // byte later in the file then becomes a per-row error with its line
        // number instead of a silent U+FFFD.
        let skip = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        head.drain(..skip);
        Box::new(Cursor::new(head).chain(raw))
    } else {
        let stream = Cursor::new(head).chain(raw);
        Box::new(DecodeReaderBytesBuilder::new().encoding(Some(encoding)).bom_override(true).build(stream))
    };
    csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(separator).from_reader(decoded)
}

/// Open a workbook: a file is opened afresh for each reader tried; stdin is
/// read whole first (a workbook cannot be read as a stream).
fn open_sheet(
    source: &InputSource,
    head: Vec<u8>,
    mut raw: Box<dyn Read + Send>,
    candidates: &[sheet::Format],
    opts: &InputOptions,
    label: &str,
) -> Result<SheetRows, sheet::OpenError> {
    let sheet = opts.sheet.as_deref();
    match source {
        InputSource::Path(path) => {
            let path: &Path = path;
            sheet::open(|| File::open(path).map(BufReader::new), candidates, sheet)
        }
        InputSource::Bytes(b) => sheet::open(|| Ok(Cursor::new(*b)), candidates, sheet),
        InputSource::Stdin => {
            let mut all = head;
            raw.read_to_end(&mut all).map_err(|e| sheet::OpenError::Unreadable(format!("reading {label}: {e}")))?;
            let all = bytes::Bytes::from(all);
            sheet::open(|| Ok(Cursor::new(all.clone())), candidates, sheet)
        }
    }
}

/// Why a key must not be sent although it is long enough: it holds a
/// character no company name holds, which says the line was read wrongly
/// (the wrong separator or encoding) or the cell holds more than a name.
fn unsendable(key: &str, separator: Option<u8>) -> Option<String> {
    if key.contains('\t') {
        return Some("the key holds a tab: the line was split at the wrong separator (see --delimiter)".into());
    }
    if let Some(c) = key.chars().find(|c| sniff::suspicious(*c)) {
        return Some(format!(
            "the key holds the control or undecodable character {c:?} (a line break in the cell, binary data, or \
             the wrong --encoding)"
        ));
    }
    let separators = [separator.map(char::from), Some(';'), Some('|')];
    if let Some(sep) = separators.into_iter().flatten().find(|s| key.contains(*s)) {
        return Some(format!(
            "the key holds the separator {sep:?}: the line was split at the wrong separator (see --delimiter), or \
             the cell holds more than one name"
        ));
    }
    None
}

fn find_key_column(headers: &[String], opts: &InputOptions) -> Result<usize, InputError> {
    if let Some(col) = &opts.column {
        if opts.no_header {
            // Without a header, --column is a 1-based column number.
            return col.parse::<usize>().ok().filter(|n| *n >= 1).map(|n| n - 1).ok_or_else(|| InputError::NoColumn {
                headers: vec![],
                hint: format!(" (--column {col:?}: with --no-header give a column number, 1 = first)"),
            });
        }
        let want = header_key(col);
        return headers.iter().position(|h| header_key(h) == want).ok_or_else(|| InputError::NoColumn {
            headers: headers.to_vec(),
            hint: format!(" (--column {col:?} is not one of them)"),
        });
    }
    if opts.no_header {
        return Ok(0);
    }
    for known in KEY_HEADERS {
        if let Some(i) = headers.iter().position(|h| header_key(h) == *known) {
            return Ok(i);
        }
    }
    if headers.len() == 1 {
        return Ok(0);
    }
    Err(InputError::NoColumn {
        headers: headers.to_vec(),
        hint: " (name it with --column, or call it searchKey, company, name or 企业名称)".to_string(),
    })
}

/// Trim and fold full-width ASCII (ＡＢＣ１２３（）) to half-width, so the same
/// company typed two ways is queried once.
pub fn normalize(key: &str) -> String {
    key.trim()
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Why a (normalised) key must not be sent, if it must not.
pub fn validate(norm_key: &str) -> Option<String> {
    if norm_key.chars().count() < 2 {
        return Some("search key shorter than 2 characters (the API would answer 213)".to_string());
    }
    if looks_like_credit_code(norm_key) && !credit_code_check_digit_ok(norm_key) {
        return Some(
            "looks like a unified social credit code but its check digit is wrong (GB 32100-2015)".to_string(),
        );
    }
    None
}

const CREDIT_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// 18 characters from the code's alphabet, case-insensitively (docs/design.md §3).
pub fn looks_like_credit_code(key: &str) -> bool {
    key.chars().count() == 18 && key.chars().all(|c| CREDIT_ALPHABET.contains(c.to_ascii_uppercase()))
}

/// The GB 32100-2015 check digit (18th character) is right.
pub fn credit_code_check_digit_ok(code: &str) -> bool {
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let values: Vec<u32> =
        code.chars().filter_map(|c| CREDIT_ALPHABET.find(c.to_ascii_uppercase()).map(|i| i as u32)).collect();
    if values.len() != 18 {
        return false;
    }
    let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    values[17] == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_code_check_digit() {
        // A well-formed code (check digit computed per GB 32100-2015) and the
        // same code with its last character changed.
        assert!(credit_code_check_digit_ok("91350100M000100Y43"));
        assert!(!credit_code_check_digit_ok("91350100M000100Y44"));
        assert!(credit_code_check_digit_ok("91350100m000100y43"));
        assert!(looks_like_credit_code("91350100M000100Y43"));
        assert!(!looks_like_credit_code("上海浦东发展银行股份有限公司上海分行"));
    }

    #[test]
    fn normalize_folds_width_and_trims() {
        assert_eq!(normalize("　ＡＢＣ（上海）有限公司 "), "ABC(上海)有限公司");
    }

    #[test]
    fn validate_rejects_short_and_bad_codes() {
        assert!(validate("A").is_some());
        assert!(validate("华为").is_none());
        assert!(validate("91350100M000100Y44").is_some());
        assert!(validate("110108000000016").is_none());
    }
}
