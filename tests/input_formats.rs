//! The lists users really have (docs/design.md §3): Excel and OpenDocument
//! workbooks, tab-, semicolon- and pipe-separated text; and anything else
//! refused before a single call. Every test checks the keys the simulator
//! was actually asked.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use qcc_customers::cli::InputArgs;
use qcc_customers::pipeline::intake::input::InputSource;
use qcc_customers::pipeline::report::progress::ProgressMode;
use qcc_customers::qcc::Credentials;
use qcc_customers::simulator::{DEMO_KEY, DEMO_SECRET};
use tokio_util::sync::CancellationToken;

/// Run the pipeline on `input` (not the harness's CSV) with these input flags.
async fn run_input(h: &Harness, input: &Path, args: &InputArgs) -> qcc_customers::pipeline::Summary {
    let opts = qcc_customers::cmd::run::options(
        InputSource::Path(input.to_path_buf()),
        input.display().to_string(),
        args,
        h.db.clone(),
        reqwest::Url::parse(&h.sim.endpoint()).unwrap(),
        Credentials::new(DEMO_KEY, DEMO_SECRET),
        &fast_fetch(),
        ProgressMode::Quiet,
    )
    .expect("valid options");
    qcc_customers::pipeline::run(opts, CancellationToken::new()).await.expect("run completes")
}

/// Every search key the simulator was asked for.
fn asked(h: &Harness) -> BTreeSet<String> {
    h.sim.handle.arrivals().into_iter().map(|a| a.search_key).collect()
}

fn set(keys: &[String]) -> BTreeSet<String> {
    keys.iter().cloned().collect()
}

/// A credit code with a valid GB 32100-2015 check digit, all digits but the last maybe.
fn credit_code(n: usize) -> String {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let body = format!("91440000{n:09}");
    let sum: usize = body.chars().zip(WEIGHTS).map(|(c, w)| ALPHABET.find(c).unwrap() * w).sum();
    let check = ALPHABET.chars().nth((31 - sum % 31) % 31).unwrap();
    format!("{body}{check}")
}

/// An `.xlsx` list: a header row, then one row per company with its name,
/// its credit code as a text cell, and a note.
fn write_xlsx(path: &Path, names: &[String]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("名单").unwrap();
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    for (col, header) in ["企业名称", "统一社会信用代码", "备注"].iter().enumerate() {
        sheet.write_string(0, col as u16, *header).unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, name).unwrap();
        sheet.write_string_with_format(row, 1, credit_code(i), &text).unwrap();
        sheet.write_number(row, 2, i as f64).unwrap();
    }
    book.save(path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_list_with_a_text_formatted_code_column_stores_exactly_the_simulators_rows_for_its_companies() {
    let h = Harness::default().await;
    let names = company_keys(12, "工作簿");
    let xlsx = h.dir.path().join("companies.xlsx");
    write_xlsx(&xlsx, &names);

    let summary = run_input(&h, &xlsx, &InputArgs::default()).await;
    assert_eq!(summary.exit_code, 0);
    assert_eq!(asked(&h), set(&names), "only the companies' names were sent");
    assert_same_rows(&stored_rows(&h.conn()), &expected_rows(h.seed(), &names));
    // The other columns are kept, the code as the text it was typed as.
    let row: String =
        h.conn().query_row("SELECT input_row FROM companies WHERE search_key = ?1", [&names[3]], |r| r.get(0)).unwrap();
    let row: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(row["统一社会信用代码"], credit_code(3));
    assert_eq!(row["备注"], "3");

    // The code column read as the key, by name.
    let h2 = Harness::default().await;
    let by_code = InputArgs { column: Some("统一社会信用代码".into()), ..Default::default() };
    run_input(&h2, &xlsx, &by_code).await;
    assert_eq!(asked(&h2), (0..12).map(credit_code).collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workbooks_numeric_18_digit_cell_is_reported_as_invalid_with_its_row() {
    let h = Harness::default().await;
    let xlsx = h.dir.path().join("codes.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "统一社会信用代码").unwrap();
    sheet.write_string(1, 0, credit_code(1)).unwrap();
    // What Excel makes of an 18-digit code typed into a General cell.
    sheet.write_number(2, 0, 914400000000000069.0).unwrap();
    // A 15-digit registration number is held exactly, so it is sent.
    sheet.write_number(3, 0, 110108000000016.0).unwrap();
    book.save(&xlsx).unwrap();

    let summary = run_input(&h, &xlsx, &InputArgs::default()).await;
    assert_eq!(summary.exit_code, 0);
    assert_eq!(asked(&h), set(&[credit_code(1), "110108000000016".to_string()]));
    let (state, line, message): (String, i64, String) = h
        .conn()
        .query_row("SELECT state, input_line, message FROM companies WHERE search_key LIKE '9144%00'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), line), ("invalid", 3), "row 3 of the sheet");
    assert!(message.contains("the cell is a number") && message.contains("format the column as text"), "{message}");

    // The dry run names the row and the reason before anything is paid.
    let report = dry_run_report(&xlsx, &h.dir.path().join("dry.sqlite"), &[]);
    assert!(report.contains("line 3") && report.contains("format the column as text"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_semicolon_and_pipe_separated_lists_send_only_the_names() {
    for (sep, ext) in [('\t', "txt"), ('\t', "tsv"), (';', "csv"), ('|', "txt")] {
        let h = Harness::default().await;
        let names = company_keys(6, &format!("分隔{}", sep as u32));
        let mut text = format!("企业名称{sep}统一社会信用代码{sep}备注\n");
        for (i, name) in names.iter().enumerate() {
            // Notes with commas must not outvote the real separator.
            text.push_str(&format!("{name}{sep}{}{sep}第{i}条,备注\n", credit_code(i)));
        }
        let input = h.dir.path().join(format!("list.{ext}"));
        std::fs::write(&input, text).unwrap();
        let summary = run_input(&h, &input, &InputArgs::default()).await;
        assert_eq!(summary.exit_code, 0, "{sep:?}");
        assert_eq!(asked(&h), set(&names), "separator {sep:?}, .{ext}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holding_a_separator_or_a_control_character_is_invalid_and_never_sent() {
    let h = Harness::default().await;
    let names = company_keys(2, "控制");
    // Read with the wrong --delimiter, a tab-separated line stays whole.
    let text =
        format!("企业名称\n{}\t{}\n{}\n\"甲公司;乙公司\"\n\"丙公司\u{7}有限\"\n", names[0], credit_code(0), names[1]);
    std::fs::write(&h.input, text).unwrap();
    let summary = run_input(&h, &h.input, &InputArgs { delimiter: Some(b','), ..Default::default() }).await;
    assert_eq!(summary.exit_code, 0);
    assert_eq!(asked(&h), set(&names[1..]));
    let invalid = count(&h.conn(), "SELECT COUNT(*) FROM companies WHERE state = 'invalid'");
    assert_eq!(invalid, 3);
    let tab: String = h
        .conn()
        .query_row("SELECT message FROM companies WHERE search_key LIKE '%' || char(9) || '%'", [], |r| r.get(0))
        .unwrap();
    assert!(tab.contains("tab"), "{tab}");
}

/// A minimal zip with these members, stored uncompressed.
fn zip_of(path: &Path, members: &[(&str, &str)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, body) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_spreadsheet_is_read_like_a_workbook() {
    let h = Harness::default().await;
    let names = company_keys(3, "开放文档");
    let cells: String = std::iter::once("企业名称".to_string())
        .chain(names.iter().cloned())
        .map(|v| format!("<table:table-row><table:table-cell office:value-type=\"string\"><text:p>{v}</text:p></table:table-cell></table:table-row>"))
        .collect();
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\"><office:body>\
         <office:spreadsheet><table:table table:name=\"Sheet1\">{cells}</table:table></office:spreadsheet>\
         </office:body></office:document-content>"
    );
    let ods = h.dir.path().join("list.ods");
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest \
                    xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"><manifest:file-entry \
                    manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>";
    zip_of(
        &ods,
        &[
            ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", &content),
        ],
    );
    let summary = run_input(&h, &ods, &InputArgs::default()).await;
    assert_eq!(summary.exit_code, 0);
    assert_eq!(asked(&h), set(&names));
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_a_docx_a_png_and_random_bytes_exit_65_with_no_request_and_no_file_written() {
    let h = Harness::default().await;
    let dir = h.dir.path();
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    let pdf = dir.join("report.pdf");
    std::fs::write(&pdf, b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n").unwrap();
    files.push((pdf, "a PDF document"));
    let docx = dir.join("list.docx");
    zip_of(&docx, &[("[Content_Types].xml", "<Types/>"), ("word/document.xml", "<w:document/>")]);
    files.push((docx, "a Word document"));
    let png = dir.join("scan.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0").unwrap();
    files.push((png, "a PNG image"));
    let mut rng = fastrand::Rng::with_seed(17);
    let random: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
    let noise = dir.join("noise.csv");
    std::fs::write(&noise, &random).unwrap();
    files.push((noise, "binary data"));
    // Random bytes with no NUL among them: refused for what they decode to.
    let no_nul: Vec<u8> = random.iter().map(|b| b.max(&1)).copied().collect();
    let noise2 = dir.join("noise2.txt");
    std::fs::write(&noise2, &no_nul).unwrap();
    files.push((noise2, "binary data"));
    // A workbook named .csv is still a workbook; a .docx named .xlsx is not.
    let fake = dir.join("list.xlsx");
    zip_of(&fake, &[("word/document.xml", "<w:document/>")]);
    files.push((fake, "a Word document"));

    for (i, (input, looks_like)) in files.iter().enumerate() {
        let db = dir.join(format!("out{i}.sqlite"));
        for dry in [false, true] {
            let mut cmd = bin();
            cmd.args(["run", "--quiet", "--input"])
                .arg(input)
                .arg("--db")
                .arg(&db)
                .args(["--endpoint", &h.sim.endpoint()])
                .env("QCC_KEY", DEMO_KEY)
                .env("QCC_SECRET_KEY", DEMO_SECRET);
            if dry {
                cmd.arg("--dry-run");
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(65), "{} (dry run {dry}): {stderr}", input.display());
            assert!(stderr.contains(looks_like) && stderr.contains("no call was made"), "{stderr}");
            assert_eq!(h.sim.handle.request_count(), 0, "{}", input.display());
            assert!(!db.exists(), "nothing written for {}", input.display());
            let leftovers: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("out{i}")))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_prints_the_first_keys_the_separator_and_the_column() {
    let h = Harness::default().await;
    let names = company_keys(8, "预览");
    let mut text = String::from("备注;企业名称\n");
    for name in &names {
        text.push_str(&format!("x;{name}\n"));
    }
    std::fs::write(&h.input, text).unwrap();
    let report = dry_run_report(&h.input, &h.db, &[]);
    assert!(report.contains("separator semicolon (;) (detected)"), "{report}");
    assert!(report.contains("column 2 (\"企业名称\")"), "{report}");
    let shown: Vec<String> = names[..5].iter().map(|n| format!("{n:?}")).collect();
    assert!(report.contains(&format!("first keys {}", shown.join(", "))), "{report}");
    assert_eq!(h.sim.handle.request_count(), 0);

    // The same for a workbook: its format and sheet.
    let xlsx = h.dir.path().join("list.xlsx");
    write_xlsx(&xlsx, &names);
    let report = dry_run_report(&xlsx, &h.db, &["--sheet", "名单"]);
    assert!(report.contains("Excel workbook (.xlsx), sheet \"名单\""), "{report}");
    assert!(report.contains(&format!("first keys {}", shown.join(", "))), "{report}");
    // A sheet that is not there is named, with the ones that are.
    let out = bin()
        .args(["run", "--dry-run", "--sheet", "Sheet9", "--input"])
        .arg(&xlsx)
        .arg("--db")
        .arg(&h.db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("Sheet9") && stderr.contains("名单"), "{stderr}");
}

/// The everyday list the regression was found on: GBK, CRLF, written by a
/// standard CSV writer, so a name with a comma or a quote is quoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_comma_or_quote_in_a_name_is_sent_as_written() {
    let h = Harness::default().await;
    let odd = [
        "北京\"星河\",科技有限公司".to_string(),
        "Apple & Orange Trading Co., Ltd.".to_string(),
        "O'Brien (Hong Kong) Co., Ltd.".to_string(),
        "\"引号\"贸易有限公司".to_string(),
    ];
    let plain = company_keys(4, "日常");
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(["企业名称", "内部编号"]).unwrap();
    let names: Vec<String> = odd.iter().zip(&plain).flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    for (i, name) in names.iter().enumerate() {
        w.write_record([name.as_str(), &format!("N{i:03}")]).unwrap();
    }
    w.write_record(["'); DROP TABLE customers;--", "N999"]).unwrap();
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    assert!(text.contains("\"北京\"\"星河\"\",科技有限公司\""), "the writer quoted it: {text}");
    let (gbk, _, unencodable) = encoding_rs::GBK.encode(&text);
    assert!(!unencodable);
    let input = h.dir.path().join("everyday.csv");
    std::fs::write(&input, &gbk).unwrap();

    // The dry run shows them as keys, not as invalid rows.
    let report = dry_run_report(&input, &h.dir.path().join("dry.sqlite"), &[]);
    assert!(report.contains("1 invalid"), "{report}");
    assert!(report.contains("DROP TABLE") && !report.contains("Apple & Orange Trading Co., Ltd.\":"), "{report}");

    let summary = run_input(&h, &input, &InputArgs::default()).await;
    assert_eq!(summary.exit_code, 0);
    assert_eq!(asked(&h), set(&names), "exactly these keys were sent, as written");
    let stored = stored_rows(&h.conn());
    assert_same_rows(&stored, &expected_rows(h.seed(), &names));
    let odd_rows = stored.keys().filter(|(key, _, _)| odd.contains(key)).count();
    assert!(odd_rows > 0, "the quoted names' rows are stored");
    let invalid: String =
        h.conn().query_row("SELECT search_key FROM companies WHERE state = 'invalid'", [], |r| r.get(0)).unwrap();
    assert_eq!(invalid, "'); DROP TABLE customers;--");
}
