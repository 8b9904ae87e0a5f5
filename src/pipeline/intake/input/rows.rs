//! Where records come from: a CSV reader (decoded, with the sniffed
//! separator) or a workbook's rows, opened the same way whatever the source.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::sheet::{self, Cell, SheetRows};
use super::{InputError, InputOptions, InputSource};

pub(super) enum Rows {
    Csv { csv: csv::Reader<Box<dyn Read + Send>>, record: csv::StringRecord },
    Sheet(SheetRows),
}

impl Rows {
    /// The header row's cells, trimmed.
    pub(super) fn header_row(&mut self, label: &str) -> Result<Vec<String>, InputError> {
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
        InputSource::Bytes(b) => sheet::open(|| Ok(Cursor::new(*b)), candidates, sheet),
        InputSource::Stdin => {
            let mut all = head;
            raw.read_to_end(&mut all).map_err(|e| sheet::OpenError::Unreadable(format!("reading {label}: {e}")))?;
            let all = bytes::Bytes::from(all);
            sheet::open(|| Ok(Cursor::new(all.clone())), candidates, sheet)
        }
    }
}
