//! Property: a list written by a standard writer reads back as the same
//! keys in the same order (docs/user-guide.md, "Input"). Names are drawn from
//! CJK text, full-width forms, ASCII punctuation (`,` `"` `'` `&` `(` `)`
//! `.`), spaces and long names; each list is written with the `csv` crate
//! under every separator, alone or beside an identifier (before or after it), in UTF-8 with and without a
//! BOM, UTF-16 (both byte orders) and GBK, and as an .xlsx workbook with
//! `rust_xlsxwriter`. A key is invalid only where a documented rule says so.

use proptest::prelude::*;
use qcc_customers::pipeline::intake::input::{normalize, validate, InputOptions, InputReader, InputSource, Item};

/// The cases each property runs (at least 256 in CI; PROPTEST_CASES raises it).
fn config() -> ProptestConfig {
    // At least 256 cases; PROPTEST_CASES (read by the default) asks for more.
    let default = ProptestConfig::default();
    ProptestConfig { cases: default.cases.max(256), failure_persistence: None, ..default }
}

/// A company name as our users' lists hold them.
fn name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[\u{4e00}-\u{9fa5}]{1,12}",
        2 => "[A-Za-z0-9]{1,10}",
        2 => "[,\"'&().]{1,3}",
        1 => " {1,2}",
        1 => "[\u{ff01}-\u{ff5e}]{1,4}",
        1 => Just("有限公司".to_string()),
        1 => Just(" Co., Ltd.".to_string()),
        1 => "[（）【】·]",
    ];
    prop::collection::vec(piece, 1..8).prop_map(|p| p.concat())
}

/// What the reader should give for each written name: the trimmed key, and
/// whether a documented rule makes it invalid. A name that trims to nothing
/// is a blank row.
fn expected(names: &[String]) -> Vec<(String, bool)> {
    names
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .map(|n| {
            let invalid = validate(&normalize(&n)).is_some();
            (n, invalid)
        })
        .collect()
}

fn read(bytes: Vec<u8>) -> Result<Vec<(String, bool)>, String> {
    let mut reader =
        InputReader::open(InputSource::Bytes(bytes.into()), &InputOptions::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(item) = reader.next_item() {
        match item {
            Item::Record(r) => out.push((r.search_key, r.invalid.is_some())),
            Item::Problem(p) => return Err(format!("line {}: {}", p.line, p.message)),
            Item::Blank => {}
        }
    }
    Ok(out)
}

/// Where the names stand in a written list.
#[derive(Debug, Clone, Copy)]
enum Columns {
    /// The names alone.
    One,
    /// The names, then an identifier.
    NameFirst,
    /// An identifier, then the names: the header says which column is the key.
    NameSecond,
}

/// The list as the `csv` crate writes it (quoting only where needed, as
/// every standard writer does).
fn write_csv(names: &[String], separator: u8, columns: Columns) -> String {
    let mut w = csv::WriterBuilder::new().delimiter(separator).from_writer(Vec::new());
    let row = |name: &str, id: &str| -> Vec<String> {
        match columns {
            Columns::One => vec![name.to_string()],
            Columns::NameFirst => vec![name.to_string(), id.to_string()],
            Columns::NameSecond => vec![id.to_string(), name.to_string()],
        }
    };
    w.write_record(row("企业名称", "内部编号")).unwrap();
    for (i, n) in names.iter().enumerate() {
        w.write_record(row(n, &format!("A{i:04}"))).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn encodings(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("UTF-8", text.as_bytes().to_vec())];
    out.push(("UTF-8 with BOM", [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat()));
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
    out.push(("UTF-16LE", le));
    out.push(("UTF-16BE", be));
    let (gbk, _, unencodable) = encoding_rs::GBK.encode(text);
    if !unencodable {
        out.push(("GBK", gbk.into_owned()));
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_list_written_by_a_csv_writer_reads_back_as_the_same_keys(names in prop::collection::vec(name(), 1..30)) {
        let want = expected(&names);
        for separator in [b',', b'\t', b';', b'|'] {
            for columns in [Columns::One, Columns::NameFirst, Columns::NameSecond] {
                let text = write_csv(&names, separator, columns);
                for (encoding, bytes) in encodings(&text) {
                    let got = read(bytes);
                    prop_assert_eq!(
                        got.as_ref(), Ok(&want),
                        "separator {:?}, {:?}, {}:\n{}", separator as char, columns, encoding, text
                    );
                }
            }
        }
    }

    #[test]
    fn a_workbook_written_by_rust_xlsxwriter_reads_back_as_the_same_keys(
        names in prop::collection::vec(name(), 1..30)
    ) {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "企业名称").unwrap();
        sheet.write_string(0, 1, "内部编号").unwrap();
        for (i, n) in names.iter().enumerate() {
            sheet.write_string(i as u32 + 1, 0, n).unwrap();
            sheet.write_string(i as u32 + 1, 1, format!("A{i:04}")).unwrap();
        }
        let bytes = book.save_to_buffer().unwrap();
        prop_assert_eq!(read(bytes), Ok(expected(&names)));
    }
}

/// The three keys of the list the regression was found on, as a standard
/// writer quotes them: the first two are sent as written, the third holds
/// `;`, which no company name holds.
#[test]
fn the_everyday_lists_odd_names_read_as_written() {
    let names = ["北京\"星河\",科技有限公司", "Apple & Orange Trading Co., Ltd.", "'); DROP TABLE customers;--"];
    let text = write_csv(&names.map(String::from), b',', Columns::NameFirst);
    assert!(text.contains("\"北京\"\"星河\"\",科技有限公司\""), "{text}");
    let crlf = text.replace('\n', "\r\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&crlf);
    let got = read(gbk.into_owned()).unwrap();
    assert_eq!(got, vec![(names[0].to_string(), false), (names[1].to_string(), false), (names[2].to_string(), true)]);
}
