//! Where records come from: a CSV reader (decoded, with the sniffed
//! separator) or a workbook's rows, opened the same way whatever the source.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::sheet::{self, Cell, SheetRows};
use super::sniff::{self, Kind};
use super::{not_a_list, InputError, InputOptions, InputSource, Layout};

/// An opened input, its first 64 KiB read for sniffing (and put back in
/// front of the stream when records are read).
pub(super) struct Opened<'a> {
    pub source: &'a InputSource,
    pub label: &'a str,
    /// The file name's extension, lower case: which reader to try first.
    pub extension: Option<&'a str>,
    pub head: Vec<u8>,
    pub raw: Box<dyn Read + Send>,
}

/// The records of a list, its header row, and what it was found to be.
pub(super) struct Listed {
    pub rows: Rows,
    pub headers: Vec<String>,
    pub layout: Layout,
}

/// A zip or OLE container: the workbook readers that may open it, the
/// extension's first.
pub(super) fn workbook(kind: Kind, src: Opened<'_>, opts: &InputOptions) -> Result<Listed, InputError> {
    let label = src.label;
    let mut candidates = match kind {
        Kind::Ole => vec![sheet::Format::Xls],
        _ => vec![sheet::Format::Xlsx, sheet::Format::Xlsb, sheet::Format::Ods],
    };
    // The extension only says which reader to try first.
    let first = match src.extension {
        Some("ods") => Some(sheet::Format::Ods),
        Some("xlsb") => Some(sheet::Format::Xlsb),
        _ => None,
    };
    if let Some(first) = first {
        candidates.retain(|f| *f != first);
        candidates.insert(0, first);
    }
    let sheet =
        open_sheet(src.source, src.head.clone(), src.raw, &candidates, opts, src.label).map_err(|e| match e {
            sheet::OpenError::NotAWorkbook => not_a_list(
                src.label,
                sniff::container_hint(kind, &src.head),
                "save the company list as .xlsx, .csv or tab-separated text",
            ),
            sheet::OpenError::NoSheet { wanted, sheets } => {
                InputError::NoSheet { path: src.label.to_string(), wanted, sheets }
            }
            sheet::OpenError::Unreadable(message) => InputError::Workbook { path: src.label.to_string(), message },
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
    let headers = if opts.no_header { Vec::new() } else { rows.header_row(label)? };
    Ok(Listed { rows, headers, layout })
}

/// Delimited text: its encoding (or `--encoding`), refused when it is binary,
/// and its separator (`--delimiter`, `.tsv`, or detected).
pub(super) fn text(src: Opened<'_>, opts: &InputOptions) -> Result<Listed, InputError> {
    let label = src.label;
    let forced = match &opts.encoding {
        Some(label) => {
            Some(Encoding::for_label(label.as_bytes()).ok_or_else(|| InputError::UnknownEncoding(label.clone()))?)
        }
        None => None,
    };
    let encoding = forced.unwrap_or_else(|| sniff::encoding(&src.head));
    let utf16 = encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE;
    if src.head.contains(&0) && !utf16 {
        return Err(not_a_list(
            label,
            "binary data (it holds NUL bytes)",
            "give the company list as .xlsx, .csv or tab-separated text; UTF-16 text without a \
             byte-order mark needs --encoding utf-16le (or utf-16be)",
        ));
    }
    let (text, _, _) = encoding.decode(&src.head);
    if let Some(what) = sniff::binary_text(&text) {
        return Err(not_a_list(
            label,
            &what,
            "give the company list as .xlsx, .csv or tab-separated text (or name its --encoding)",
        ));
    }
    let (separator, how) = match (opts.delimiter, src.extension) {
        (Some(d), _) => (d, "(--delimiter)"),
        (None, Some("tsv" | "tab")) => (b'\t', "(a .tsv file)"),
        (None, _) => (
            sniff::separator(&text, src.head.len() < 1 << 16, !opts.no_header).unwrap_or(sniff::NO_SEPARATOR),
            "(detected)",
        ),
    };
    let mut rows = Rows::Text(TextRows {
        csv: csv_reader(src.head, src.raw, encoding, forced.is_some(), separator),
        record: csv::StringRecord::new(),
    });
    let headers = if opts.no_header { Vec::new() } else { rows.header_row(label)? };
    let layout = Layout {
        format: "CSV text".to_string(),
        sheet: None,
        separator: Some(format!("{} {how}", sniff::separator_name(separator))),
        encoding: Some(encoding.name().to_string()),
        column: String::new(),
        column_number: 0,
    };
    Ok(Listed { rows, headers, layout })
}

/// The rows of a list: a text list's records, or a workbook sheet's rows.
pub(super) enum Rows {
    Text(TextRows),
    Sheet(SheetRows),
}

/// A text list (CSV, tab-separated, …): its reader and the record it
/// reads into, reused from row to row.
pub(super) struct TextRows {
    pub(super) csv: csv::Reader<Box<dyn Read + Send>>,
    pub(super) record: csv::StringRecord,
}

impl Rows {
    /// The header row's cells, trimmed.
    pub(super) fn header_row(&mut self, label: &str) -> Result<Vec<String>, InputError> {
        let cells: Vec<String> = match self {
            Rows::Text(TextRows { csv, record }) => {
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
pub(super) fn csv_reader(
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
pub(super) fn open_sheet(
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
        InputSource::Bytes(b) => sheet::open(|| Ok(Cursor::new(b.clone())), candidates, sheet),
        InputSource::Stdin => {
            let mut all = head;
            raw.read_to_end(&mut all).map_err(|e| sheet::OpenError::Unreadable(format!("reading {label}: {e}")))?;
            let all = bytes::Bytes::from(all);
            sheet::open(|| Ok(Cursor::new(all.clone())), candidates, sheet)
        }
    }
}
