//! What the first bytes of an input say it is (docs/design.md §3): a
//! workbook, a text list (in which encoding, with which separator), or
//! something that is not a list at all and must be refused before a call is
//! paid for.

use encoding_rs::Encoding;

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: read as a delimited list.
    Text,
    /// A zip container: an `.xlsx`/`.xlsm`/`.xlsb`/`.ods` workbook, or
    /// another Office or zip file ([`zip_member_hint`] names it when no
    /// workbook reader accepts it).
    Zip,
    /// An OLE compound file: an `.xls` workbook, or a `.doc`, a `.ppt`, an
    /// encrypted workbook.
    Ole,
    /// Not a list: what it looks like, and what to do instead.
    Refused { looks_like: &'static str, hint: &'static str },
}

const CONVERT: &str = "open it and save the list as .xlsx, .csv or tab-separated text";

/// Classify a file from its first bytes (up to 64 KiB).
pub fn classify(head: &[u8]) -> Kind {
    let refused = |looks_like, hint| Kind::Refused { looks_like, hint };
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Kind::Zip;
    }
    if head.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Kind::Ole;
    }
    const MAGIC: &[(&[u8], &str, &str)] = &[
        (b"%PDF-", "a PDF document", "copy the table into Excel and save it as .xlsx or .csv"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image", "give the list itself, as .xlsx or .csv"),
        (b"\xFF\xD8\xFF", "a JPEG image", "give the list itself, as .xlsx or .csv"),
        (b"GIF87a", "a GIF image", "give the list itself, as .xlsx or .csv"),
        (b"GIF89a", "a GIF image", "give the list itself, as .xlsx or .csv"),
        (b"II*\0", "a TIFF image", "give the list itself, as .xlsx or .csv"),
        (b"MM\0*", "a TIFF image", "give the list itself, as .xlsx or .csv"),
        (b"\x1f\x8b", "a gzip archive", "unpack it first"),
        (b"BZh", "a bzip2 archive", "unpack it first"),
        (b"\xFD7zXZ\0", "an xz archive", "unpack it first"),
        (b"\x28\xB5\x2F\xFD", "a zstd archive", "unpack it first"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive", "unpack it first"),
        (b"Rar!\x1a\x07", "a RAR archive", "unpack it first"),
        (b"SQLite format 3\0", "an SQLite database", "a database goes to --db; --input takes the company list"),
        (b"\x7fELF", "an executable program", "give the company list as .xlsx or .csv"),
        (b"{\\rtf", "an RTF document", CONVERT),
    ];
    for (magic, looks_like, hint) in MAGIC {
        if head.starts_with(magic) {
            return refused(looks_like, hint);
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return refused("a WebP image", "give the list itself, as .xlsx or .csv");
    }
    if looks_like_markup(head) {
        return refused(
            "an HTML or XML document (a web page, or an \"xls\" export that is really a web page)",
            CONVERT,
        );
    }
    Kind::Text
}

/// A file that starts (after a BOM and white space) with `<` and a letter,
/// `!` or `?`: no list of companies does.
fn looks_like_markup(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut rest = text.iter().skip_while(|b| b.is_ascii_whitespace());
    rest.next() == Some(&b'<') && rest.next().is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'!' | b'?'))
}

/// What a zip or OLE file that no workbook reader accepted probably is, from
/// the member names in its first bytes.
pub fn container_hint(kind: Kind, head: &[u8]) -> &'static str {
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    match kind {
        Kind::Zip if has(b"word/") => "a Word document (.docx)",
        Kind::Zip if has(b"ppt/") => "a PowerPoint presentation (.pptx)",
        Kind::Zip if has(b"opendocument.text") => "an OpenDocument text (.odt)",
        Kind::Zip if has(b"opendocument.presentation") => "an OpenDocument presentation (.odp)",
        Kind::Zip if has(b"xl/") => "an Excel workbook that cannot be read (damaged?)",
        Kind::Zip if has(b"opendocument.spreadsheet") => "an OpenDocument spreadsheet that cannot be read (damaged?)",
        Kind::Zip => "a zip archive",
        _ => "an OLE compound file (a Word .doc, a PowerPoint .ppt, or a password-protected workbook)",
    }
}

/// Guess the encoding of the first bytes of a file: a BOM decides; else
/// UTF-8 when the non-ASCII text is (almost all) valid UTF-8 — one broken byte
/// must not turn a whole UTF-8 file into GB18030 mojibake that would then be
/// paid for — else GB18030 (a superset of GBK).
pub fn encoding(head: &[u8]) -> &'static Encoding {
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

/// Why decoded text is not a list (binary bytes read as text), if it is not:
/// more than 1 % of its characters (and at least four) are control
/// characters other than tab, CR, LF and form feed, or undecodable (U+FFFD).
pub fn binary_text(text: &str) -> Option<String> {
    let (mut total, mut odd) = (0usize, 0usize);
    for c in text.chars() {
        total += 1;
        if suspicious(c) {
            odd += 1;
        }
    }
    (odd >= 4 && odd * 100 > total).then(|| {
        format!("binary data ({odd} of its first {total} characters are control characters or undecodable bytes)")
    })
}

/// A character no company name or list holds: a control character other than
/// the line and cell separators, or U+FFFD (a byte the encoding could not decode).
pub fn suspicious(c: char) -> bool {
    c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0C}'))
}

/// The separators a list may use, in the order ties are broken.
pub const SEPARATORS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// How a separator is written in messages.
pub fn separator_name(sep: u8) -> String {
    match sep {
        b'\t' => "tab".to_string(),
        b',' => "comma (,)".to_string(),
        b';' => "semicolon (;)".to_string(),
        b'|' => "pipe (|)".to_string(),
        NO_SEPARATOR => "none (one column)".to_string(),
        other => format!("{:?}", other as char),
    }
}

/// The separator of a delimited text, from its first lines (up to 50):
/// the candidate that splits the most lines into the same number of cells
/// (counted outside quotes), more than one cell. With a header row, the
/// header holds the separator of a list of more than one column, so a
/// candidate it lacks is a character of the names (`Apple Co., Ltd.` under
/// `企业名称`). `None`: one column, no separator at all.
pub fn separator(text: &str, complete: bool, header: bool) -> Option<u8> {
    let mut lines = logical_lines(text);
    if !complete && lines.len() > 1 {
        // The last line may be cut by the end of the sniffed head.
        lines.pop();
    }
    lines.truncate(50);
    let mut best: Option<(usize, usize, u8)> = None;
    for (i, sep) in SEPARATORS.iter().enumerate() {
        if header && lines.first().is_some_and(|l| l[i] == 0) {
            continue;
        }
        let counts: Vec<usize> = lines.iter().map(|l| l[i]).collect();
        let Some(mode) = mode(&counts) else { continue };
        if mode == 0 {
            continue;
        }
        let agreeing = counts.iter().filter(|c| **c == mode).count();
        // More agreeing lines wins; then more cells; ties keep the earlier candidate.
        if best.is_none_or(|(a, m, _)| (agreeing, mode) > (a, m)) {
            best = Some((agreeing, mode, *sep));
        }
    }
    best.map(|(_, _, sep)| sep)
}

/// The byte a one-column list is read with as its "separator": a control
/// character no list holds (a key holding it is invalid anyway), so each
/// line is one cell, quotes still honoured.
pub const NO_SEPARATOR: u8 = 0x1f;

/// For each line of `text` (a line break inside quotes continues the line),
/// how often each of [`SEPARATORS`] appears outside quotes. Blank lines are left out.
fn logical_lines(text: &str) -> Vec<[usize; 4]> {
    let mut lines = Vec::new();
    let (mut counts, mut quoted, mut blank) = ([0usize; 4], false, true);
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                blank = false;
            }
            '\n' if !quoted => {
                if !blank {
                    lines.push(counts);
                }
                (counts, blank) = ([0; 4], true);
            }
            '\r' => {}
            c if !quoted && c.is_ascii() => {
                if let Some(i) = SEPARATORS.iter().position(|s| *s == c as u8) {
                    counts[i] += 1;
                }
                blank &= c.is_ascii_whitespace();
            }
            _ => blank = false,
        }
    }
    if !blank {
        lines.push(counts);
    }
    lines
}

/// The most common value (the larger one on a tie), `None` for no values.
fn mode(values: &[usize]) -> Option<usize> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    for run in sorted.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(n, _)| run.len() >= n) {
            best = Some((run.len(), run[0]));
        }
    }
    best.map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_tells_gbk_from_utf8_with_a_broken_byte() {
        let text = "企业名称\n中国平安保险股份有限公司\n比亚迪股份有限公司\n";
        assert_eq!(encoding(text.as_bytes()), encoding_rs::UTF_8);
        let mut broken = text.as_bytes().to_vec();
        broken.extend(b"\xff\n");
        assert_eq!(encoding(&broken), encoding_rs::UTF_8);
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(encoding(&gbk), encoding_rs::GB18030);
        assert_eq!(encoding(b"plain,ascii\n"), encoding_rs::UTF_8);
    }

    #[test]
    fn the_separator_is_the_one_that_splits_lines_alike() {
        let sep = |text, complete| separator(text, complete, true);
        assert_eq!(sep("企业名称\t统一社会信用代码\t备注\n甲公司\t9144\tx\n", true), Some(b'\t'));
        assert_eq!(sep("name;code\n\"A;B\";1\nC;2\n", true), Some(b';'));
        assert_eq!(sep("name|code\nA|1\n", true), Some(b'|'));
        assert_eq!(sep("name,code\nA,1\n", true), Some(b','));
        // A comma inside a note does not outvote the tabs.
        assert_eq!(sep("name\tnote\nA\ta,b\nB\tc\nC\td\n", true), Some(b'\t'));
        // One column: no separator.
        assert_eq!(sep("企业名称\n甲公司\n", true), None);
        // A quoted line break continues the line.
        assert_eq!(sep("a;b\n\"x\ny\";z\n", true), Some(b';'));
        // A cut last line does not count.
        assert_eq!(sep("a;b\nc;d\ne,f,g,h", false), Some(b';'));
    }

    #[test]
    fn names_with_commas_under_a_one_column_header_are_one_column() {
        let text = "company\nApple Co., Ltd.\nOrange Co., Ltd.\nPear Co., Ltd.\n";
        assert_eq!(separator(text, true, true), None);
        // Without a header nothing says the commas are not separators.
        assert_eq!(separator(text, true, false), Some(b','));
        // The semicolon the header holds wins over the commas in the names.
        let text = "企业名称;内部编号\nApple Co., Ltd.;1\nPear Co., Ltd.;2\n";
        assert_eq!(separator(text, true, true), Some(b';'));
    }

    #[test]
    fn binary_formats_are_named_by_their_first_bytes() {
        assert!(matches!(classify(b"%PDF-1.7\n"), Kind::Refused { looks_like: "a PDF document", .. }));
        assert!(matches!(classify(b"\x89PNG\r\n\x1a\n\0\0"), Kind::Refused { looks_like: "a PNG image", .. }));
        assert_eq!(classify(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(classify(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), Kind::Ole);
        assert!(matches!(classify(b"\xEF\xBB\xBF  <!DOCTYPE html>"), Kind::Refused { .. }));
        assert_eq!(classify("企业名称\n<甲>公司\n".as_bytes()), Kind::Text);
        assert_eq!(classify(b"name\n<3 company\n"), Kind::Text);
    }

    #[test]
    fn text_full_of_control_characters_is_binary() {
        assert!(binary_text("企业名称\n甲公司\t备注\n").is_none());
        let noise: String = (0..200u32).map(|i| char::from_u32(i % 32).unwrap()).collect();
        assert!(binary_text(&noise).is_some());
        assert!(binary_text("a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}").is_some());
    }
}
