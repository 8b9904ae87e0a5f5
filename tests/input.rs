//! Input robustness (docs/design.md §3): encodings, headers, validation, duplicates,
//! malformed records — and nothing invalid is ever paid for.

mod common;

use std::process::{Command, Stdio};

use common::*;
use qcc_customers::pipeline::intake::input::{InputOptions, InputReader, InputSource, Item};

const TEXT: &str = "企业名称,备注\n中国平安保险（集团）股份有限公司,保险\n比亚迪股份有限公司,汽车\n";

fn keys_of(bytes: Vec<u8>, opts: &InputOptions) -> Vec<String> {
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let mut reader = InputReader::open(InputSource::Bytes(bytes.into()), opts)
        .unwrap_or_else(|e| panic!("{e} for {:?}", &bytes[..4]));
    let mut keys = Vec::new();
    while let Some(item) = reader.next_item() {
        if let Item::Record(r) = item {
            keys.push(r.search_key);
        }
    }
    keys
}

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut out = if little_endian { vec![0xFF, 0xFE] } else { vec![0xFE, 0xFF] };
    for unit in text.encode_utf16() {
        out.extend(if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
    }
    out
}

#[test]
fn every_supported_encoding_reads_the_same_keys() {
    let want = vec!["中国平安保险（集团）股份有限公司".to_string(), "比亚迪股份有限公司".to_string()];
    let opts = InputOptions::default();
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(TEXT.as_bytes());
    let (gbk, _, _) = encoding_rs::GBK.encode(TEXT);
    let (gb18030, _, _) = encoding_rs::GB18030.encode(TEXT);
    for (name, bytes) in [
        ("utf-8", TEXT.as_bytes().to_vec()),
        ("utf-8 with BOM", bom),
        ("utf-16le with BOM", utf16(TEXT, true)),
        ("utf-16be with BOM", utf16(TEXT, false)),
        ("gbk", gbk.into_owned()),
        ("gb18030", gb18030.into_owned()),
    ] {
        assert_eq!(keys_of(bytes, &opts), want, "{name}");
    }
    // --encoding overrides detection.
    let (gbk, _, _) = encoding_rs::GBK.encode(TEXT);
    let forced = InputOptions { encoding: Some("gbk".into()), ..Default::default() };
    assert_eq!(keys_of(gbk.into_owned(), &forced), want);
}

#[test]
fn no_header_takes_the_first_column_or_a_column_number() {
    let text = "甲公司有限公司,x\n乙公司有限公司,y\n".as_bytes().to_vec();
    let opts = InputOptions { no_header: true, ..Default::default() };
    assert_eq!(keys_of(text.clone(), &opts), vec!["甲公司有限公司", "乙公司有限公司"]);
    let opts = InputOptions { no_header: true, column: Some("2".into()), ..Default::default() };
    assert_eq!(keys_of(text, &opts), vec!["x", "y"]);
}

#[test]
fn a_file_without_a_usable_column_exits_65_and_lists_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "foo,bar\n1,2\n").unwrap();
    let run_on = |input: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
            .args(["run", "--input"])
            .arg(input)
            .arg("--db")
            .arg(dir.path().join("x.sqlite"))
            .args(["--endpoint", "http://127.0.0.1:9/x", "--quiet"])
            .env("QCC_KEY", "k")
            .env("QCC_SECRET_KEY", "s")
            .output()
            .unwrap()
    };
    let out = run_on(&input);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"foo\"") && stderr.contains("\"bar\""), "{stderr}");
    assert!(!dir.path().join("x.sqlite").exists(), "nothing is created for an unusable input");
    // What was kept and what to do next.
    assert!(stderr.contains("no call was made") && stderr.contains("--column"), "{stderr}");

    let out = run_on(&dir.path().join("missing.csv"));
    assert_eq!(out.status.code(), Some(65), "an unreadable file is exit 65");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no call was made — check --input"), "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "one sentence per cause: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_keys_are_recorded_without_a_call_and_duplicates_are_queried_once() {
    let h = Harness::default().await;
    let text = "company,ref\n\
                X,short\n\
                91350100M000100Y44,bad check digit\n\
                91350100m000100y43,valid code lower case\n\
                ＡＢＣ（上海）有限公司,full width\n\
                ABC(上海)有限公司,half width duplicate\n\
                \u{3000}ABC(上海)有限公司 ,padded duplicate\n\
                ,blank key\n\
                110108000000016,15-digit registration number\n";
    std::fs::write(&h.input, text).unwrap();
    let summary = h.run(&fast_fetch()).await;
    assert_eq!(summary.duplicates, 2);
    assert_eq!(summary.blank_rows, 1);
    let conn = h.conn();
    let invalid: Vec<(String, String)> = conn
        .prepare("SELECT search_key, message FROM companies WHERE state = 'invalid' ORDER BY search_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(invalid.len(), 2);
    assert!(invalid[0].0 == "91350100M000100Y44" && invalid[0].1.contains("check digit"));
    assert!(invalid[1].0 == "X" && invalid[1].1.contains("shorter than 2"));
    let asked: std::collections::BTreeSet<String> = h.sim.handle.arrivals().into_iter().map(|a| a.search_key).collect();
    let want: std::collections::BTreeSet<String> =
        ["91350100m000100y43", "ＡＢＣ（上海）有限公司", "110108000000016"].iter().map(|s| s.to_string()).collect();
    assert_eq!(asked, want, "the first spelling is sent, invalid and duplicate rows are not");
    // The row's other columns are kept as JSON.
    let row: String =
        conn.query_row("SELECT input_row FROM companies WHERE search_key = 'ＡＢＣ（上海）有限公司'", [], |r| r.get(0))
            .unwrap();
    let row: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(row["ref"], "full width");
}

#[test]
fn a_broken_byte_in_a_utf8_file_costs_one_row_not_the_file() {
    let mut bytes = "company\n甲公司有限公司\n".as_bytes().to_vec();
    bytes.extend(b"\xff\xfe broken \xc3\n"); // record 3: not UTF-8
    bytes.extend("乙公司有限公司\n".as_bytes());
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let mut reader = InputReader::open(InputSource::Bytes(bytes.into()), &InputOptions::default()).unwrap();
    assert_eq!(reader.layout.encoding.as_deref(), Some("UTF-8"));
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    while let Some(item) = reader.next_item() {
        match item {
            Item::Record(r) => keys.push(r.search_key),
            Item::Problem(p) => problems.push((p.line, p.message)),
            Item::Blank => {}
        }
    }
    assert_eq!(keys, vec!["甲公司有限公司", "乙公司有限公司"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 3, "the problem names its line");
}

#[test]
fn an_unbalanced_quote_is_reported_not_silently_swallowed() {
    let text = "company,note\n甲公司有限公司,ok\n\"乙公司有限公司,oops\n丙公司有限公司,x\n".as_bytes().to_vec();
    let bytes: &'static [u8] = Box::leak(text.into_boxed_slice());
    let mut reader = InputReader::open(InputSource::Bytes(bytes.into()), &InputOptions::default()).unwrap();
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    while let Some(item) = reader.next_item() {
        match item {
            Item::Record(r) => keys.push(r.search_key),
            Item::Problem(p) => problems.push(p.message),
            Item::Blank => {}
        }
    }
    assert_eq!(keys, vec!["甲公司有限公司"]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("unbalanced quote"), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_utf8_line_late_in_a_utf8_file_is_skipped_with_its_line_number() {
    let h = Harness::default().await;
    // 70 KiB of good UTF-8 first, so sniffing settles on UTF-8.
    let mut text = String::from("company,pad\n");
    for i in 0..600 {
        text.push_str(&format!("填充企业{i:04}有限公司,{}\n", "x".repeat(100)));
    }
    let mut bytes = text.into_bytes();
    bytes.extend(b"\xff\xfe\xfd,broken\n");
    bytes.extend("最后一家有限公司,ok\n".as_bytes());
    std::fs::write(&h.input, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(["run", "--input"])
        .arg(&h.input)
        .arg("--db")
        .arg(&h.db)
        .args(["--endpoint", &h.sim.endpoint(), "--qps", "0", "--years", "1900"])
        .env("QCC_KEY", qcc_customers::simulator::DEMO_KEY)
        .env("QCC_SECRET_KEY", qcc_customers::simulator::DEMO_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line=602") || stderr.contains("line 602"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    let conn = h.conn();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM companies"), 601, "every good row was kept");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM companies WHERE search_key = '最后一家有限公司'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_search_key_is_just_a_name_stored_verbatim() {
    let h = Harness::default().await;
    let hostile = "'); DROP TABLE customers;--";
    h.write_keys(&[hostile.to_string(), "Robert\"); DELETE FROM companies; --".to_string()]);
    let summary = h.run(&fast_fetch()).await;
    assert_eq!(summary.exit_code, 0, "{}", summary.render());
    let conn = h.conn();
    let stored: String =
        conn.query_row("SELECT search_key FROM companies WHERE search_key = ?1", [hostile], |r| r.get(0)).unwrap();
    assert_eq!(stored, hostile);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM companies"), 2);
    count(&conn, "SELECT COUNT(*) FROM customers"); // the table is still there
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_can_come_from_stdin() {
    let h = Harness::default().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(["run", "--input", "-", "--db"])
        .arg(&h.db)
        .args(["--endpoint", &h.sim.endpoint(), "--qps", "0", "--quiet"])
        .env("QCC_KEY", qcc_customers::simulator::DEMO_KEY)
        .env("QCC_SECRET_KEY", qcc_customers::simulator::DEMO_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all("公司名称\n标准输入测试有限公司\n".as_bytes()).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(count(&h.conn(), "SELECT COUNT(*) FROM companies WHERE search_key = '标准输入测试有限公司'"), 1);
}
