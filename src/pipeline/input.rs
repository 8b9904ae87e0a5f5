//! Stage 1: the input CSV, streamed record by record (docs/design.md §3).
//!
//! Detects the encoding (UTF-8 with or without BOM, UTF-16 with BOM, else
//! GB18030, which also reads GBK), finds the search-key column, trims and
//! normalises keys, and validates them locally so nothing invalid is paid for.
//! Memory stays flat: one record at a time, whatever the file size.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::PathBuf;

use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::store::records::InputRecord;

/// Where the CSV comes from.
#[derive(Debug, Clone)]
pub enum InputSource {
    Path(PathBuf),
    Stdin,
    /// In-memory bytes (the demo's compiled-in sample).
    Bytes(&'static [u8]),
}

/// How to read the CSV.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// The column holding the search key; auto-detected when `None`.
    pub column: Option<String>,
    /// The file has no header row.
    pub no_header: bool,
    /// Force an encoding (a WHATWG label such as `gbk`, `utf-16le`).
    pub encoding: Option<String>,
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

pub struct InputReader {
    csv: csv::Reader<Box<dyn Read + Send>>,
    key_column: usize,
    headers: Vec<String>,
    record: csv::StringRecord,
    /// Build each row's JSON (off for a dry run, which does not keep it).
    keep_rows: bool,
    /// Which encoding was used, for the log.
    pub encoding: &'static str,
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
        let mut raw: Box<dyn Read + Send> = match source {
            InputSource::Path(p) => Box::new(BufReader::with_capacity(1 << 16, File::open(&p).map_err(unreadable)?)),
            InputSource::Stdin => Box::new(std::io::stdin()),
            InputSource::Bytes(b) => Box::new(Cursor::new(b)),
        };
        // Sniff the first 64 KiB, then put it back in front of the stream.
        let mut head = Vec::with_capacity(1 << 16);
        (&mut raw).take(1 << 16).read_to_end(&mut head).map_err(unreadable)?;
        let forced = match &opts.encoding {
            Some(label) => {
                Some(Encoding::for_label(label.as_bytes()).ok_or_else(|| InputError::UnknownEncoding(label.clone()))?)
            }
            None => None,
        };
        let encoding = forced.unwrap_or_else(|| sniff(&head));
        let decoded: Box<dyn Read + Send> = if encoding == encoding_rs::UTF_8 && forced.is_none() {
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
        let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(decoded);

        let mut record = csv::StringRecord::new();
        let headers: Vec<String> = if opts.no_header {
            Vec::new()
        } else {
            if !csv.read_record(&mut record).map_err(InputError::Header)? {
                return Err(InputError::Empty);
            }
            record.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect()
        };
        let key_column = find_key_column(&headers, opts)?;
        Ok(Self { csv, key_column, headers, record, keep_rows: true, encoding: encoding.name() })
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

    /// Whether to build each row's JSON ([`InputRecord::row_json`]).
    pub fn keep_rows(&mut self, keep: bool) {
        self.keep_rows = keep;
    }

    /// The next item, or `None` at the end of the input.
    pub fn next_item(&mut self) -> Option<Item> {
        match self.csv.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => Some(self.item()),
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

    fn item(&self) -> Item {
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        let cell = self.record.get(self.key_column).unwrap_or("");
        let key = cell.trim().trim_start_matches('\u{feff}').trim();
        if key.is_empty() {
            return Item::Blank;
        }
        if key.contains(['\n', '\r']) {
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
        let row_json = if self.keep_rows {
            let mut row = serde_json::Map::new();
            for (i, value) in self.record.iter().enumerate() {
                let name = self.headers.get(i).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
                row.insert(name, serde_json::Value::String(value.to_string()));
            }
            serde_json::Value::Object(row).to_string()
        } else {
            String::new()
        };
        let norm_key = normalize(key);
        Item::Record(InputRecord {
            line,
            search_key: key.to_string(),
            invalid: validate(&norm_key),
            norm_key,
            row_json,
        })
    }
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

/// Guess the encoding of the first bytes of a file: a BOM decides; else
/// UTF-8 when the non-ASCII text is (almost all) valid UTF-8 — one broken byte
/// must not turn a whole UTF-8 file into GB18030 mojibake that would then be
/// paid for — else GB18030 (a superset of GBK).
fn sniff(head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    let (mut valid_multibyte, mut invalid) = (0usize, 0usize);
    let mut rest = head;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                valid_multibyte += s.chars().filter(|c| !c.is_ascii()).count();
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                valid_multibyte += std::str::from_utf8(good).map_or(0, |s| s.chars().filter(|c| !c.is_ascii()).count());
                match e.error_len() {
                    Some(n) => {
                        invalid += 1;
                        rest = &bad[n..];
                    }
                    // A character cut by the end of the sniffed head.
                    None => break,
                }
            }
        }
    }
    if invalid == 0 || valid_multibyte >= 4 * invalid {
        encoding_rs::UTF_8
    } else {
        encoding_rs::GB18030
    }
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
    fn sniffing_tells_gbk_from_utf8_with_a_broken_byte() {
        let text = "企业名称\n中国平安保险股份有限公司\n比亚迪股份有限公司\n";
        assert_eq!(sniff(text.as_bytes()), encoding_rs::UTF_8);
        let mut broken = text.as_bytes().to_vec();
        broken.extend(b"\xff\n");
        assert_eq!(sniff(&broken), encoding_rs::UTF_8);
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(sniff(&gbk), encoding_rs::GB18030);
        assert_eq!(sniff(b"plain,ascii\n"), encoding_rs::UTF_8);
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
