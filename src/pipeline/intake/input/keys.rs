//! What a search key may be: which header holds it, which characters say a
//! line was read wrongly, how it is normalised, and the credit-code check.

use super::{InputError, InputOptions};

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

fn header_key(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .collect::<String>()
        .to_lowercase()
}

/// Why a key must not be sent although it is long enough: it holds a
/// character no company name holds, which says the line was read wrongly
/// (the wrong separator or encoding) or the cell holds more than a name.
///
/// The key is what the file's quoting made of the cell: a comma, a quote or
/// the list's own separator inside a quoted cell is part of the name
/// (`"Apple & Orange Trading Co., Ltd."`), so none of them is a sign of a
/// mis-read line. A tab, `;` and `|` are: no company name holds one, quoted
/// or not. (An unquoted separator cannot reach a key: it splits the line,
/// which [`extra_cells`] catches.)
pub(super) fn unsendable(key: &str) -> Option<String> {
    if key.contains('\t') {
        return Some("the key holds a tab: the line was split at the wrong separator (see --delimiter)".into());
    }
    // Every control character, not only those that mark a whole file as
    // binary (`sniff::suspicious` lets a form feed or a line break pass in a
    // file; in a name, a workbook cell's line break included, none has a place).
    if let Some(c) = key.chars().find(|c| c.is_control() || *c == char::REPLACEMENT_CHARACTER) {
        return Some(format!(
            "the key holds the control or undecodable character {c:?} (a line break in the cell, binary data, or \
             the wrong --encoding)"
        ));
    }
    if let Some(sep) = [';', '|'].into_iter().find(|s| key.contains(*s)) {
        return Some(format!(
            "the key holds {sep:?}, which no company name holds: the line was split at the wrong separator (see \
             --delimiter), or the cell holds more than one name"
        ));
    }
    None
}

/// Why a text line's key cannot be trusted although it reads as one: the
/// line has more (non-blank) cells than the header, so a separator that was
/// not quoted split a cell (`Apple Co., Ltd.,A001` under `企业名称,内部编号`),
/// and the key may be half a name. Blank cells past the header's (a trailing
/// separator) say nothing.
pub(super) fn extra_cells<'a>(header_cells: usize, cells: impl Iterator<Item = &'a str>) -> Option<String> {
    let (mut count, mut last_filled) = (0usize, 0usize);
    for (i, cell) in cells.enumerate() {
        count = i + 1;
        if !cell.trim().is_empty() {
            last_filled = i + 1;
        }
    }
    (header_cells > 0 && last_filled > header_cells).then(|| {
        format!(
            "the line has {count} cells where the header has {header_cells}: a separator that was not quoted split \
             a cell, so the key may be part of a name; quote the cell (any CSV writer does) or save the list as .xlsx"
        )
    })
}

pub(super) fn find_key_column(headers: &[String], opts: &InputOptions) -> Result<usize, InputError> {
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
    fn a_quoted_separator_is_part_of_the_name_but_semicolon_pipe_and_tab_are_not() {
        assert_eq!(unsendable("Apple & Orange Trading Co., Ltd."), None);
        assert_eq!(unsendable("北京\"星河\",科技有限公司"), None);
        assert_eq!(unsendable("O'Brien (Shanghai) Co., Ltd."), None);
        assert!(unsendable("'); DROP TABLE customers;--").is_some());
        assert!(unsendable("甲公司|乙公司").is_some());
        assert!(unsendable("甲公司\t9144").is_some());
        assert!(unsendable("甲公司\u{FFFD}").is_some());
        // Found by the fuzzer: a form feed, and a workbook cell's line break.
        assert!(unsendable("甲公司\u{c}").is_some());
        assert!(unsendable("甲公司\n乙公司").is_some());
    }

    #[test]
    fn a_line_with_more_filled_cells_than_the_header_was_split() {
        assert!(extra_cells(2, ["Apple Co.", " Ltd.", "A001"].into_iter()).is_some());
        assert_eq!(extra_cells(2, ["华为", "A001"].into_iter()), None);
        assert_eq!(extra_cells(2, ["华为", "A001", "", " "].into_iter()), None, "a trailing separator");
        assert_eq!(extra_cells(2, ["华为"].into_iter()), None, "a short line");
        assert_eq!(extra_cells(0, ["a", "b", "c"].into_iter()), None, "no header");
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
