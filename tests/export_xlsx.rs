//! `export --out F.xlsx`: a workbook Excel opens without losing digits.

mod common;

use std::process::Command;

use calamine::{open_workbook, Data, Reader, Xlsx};
use common::*;
use qcc_customers::store::export::ExportFilter;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
}

/// An input whose own columns hold an 18-digit credit code and a 15-digit
/// registration number, all digits (Excel would keep 15 of them from a CSV).
fn write_input(h: &Harness, keys: &[String]) {
    let mut text = String::from("企业名称,统一社会信用代码,注册号\n");
    for (i, k) in keys.iter().enumerate() {
        text.push_str(&format!("{k},91110000100007955{},1100000000{:05}\n", i % 10, i));
    }
    std::fs::write(&h.input, text).unwrap();
}

fn sheet(path: &std::path::Path, name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    wb.worksheet_range(name).unwrap().rows().map(|r| r.to_vec()).collect()
}

fn column(header: &[Data], name: &str) -> usize {
    header.iter().position(|c| c == &Data::String(name.into())).unwrap_or_else(|| panic!("{name} in {header:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_export_keeps_every_digit_of_all_digit_codes_as_text_and_amounts_as_numbers() {
    let h = Harness::default().await;
    let keys = company_keys(12, "表格");
    write_input(&h, &keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let out = h.dir.path().join("customers.xlsx");
    let run = bin().args(["export", "--db"]).arg(&h.db).arg("--out").arg(&out).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));

    let rows = sheet(&out, "customers");
    let header = &rows[0];
    let (key, code, reg) = (column(header, "search_key"), column(header, "统一社会信用代码"), column(header, "注册号"));
    let (amount, percent, key_no) =
        (column(header, "sales_amount_wan_yuan"), column(header, "sales_percent"), column(header, "customer_key_no"));
    let conn = h.conn();
    assert_eq!(rows.len() as i64 - 1, count(&conn, "SELECT COUNT(*) FROM customers"), "one line per customer row");
    let (mut numbers, mut texts) = (0, 0);
    for row in &rows[1..] {
        let Data::String(k) = &row[key] else { panic!("search_key is text: {:?}", row[key]) };
        let i = keys.iter().position(|x| x == k).expect("a known company");
        assert_eq!(row[code], Data::String(format!("91110000100007955{}", i % 10)), "all 18 digits, as text");
        assert_eq!(row[reg], Data::String(format!("1100000000{i:05}")), "all 15 digits, as text");
        match &row[amount] {
            Data::Float(_) => numbers += 1,
            Data::Empty => {}
            other => panic!("an amount is a number or empty, not {other:?}"),
        }
        assert!(matches!(row[percent], Data::Float(_) | Data::Empty), "{:?}", row[percent]);
        if let Data::String(k) = &row[key_no] {
            assert_eq!(k.len(), 32);
            texts += 1;
        }
    }
    assert!(numbers > 0 && texts > 0, "{numbers} amounts, {texts} KeyNos");
    // The stored amounts, to the last digit.
    let sum: f64 = conn.query_row("SELECT TOTAL(sales_amount) FROM customers", [], |r| r.get(0)).unwrap();
    let read: f64 = rows[1..].iter().filter_map(|r| if let Data::Float(f) = r[amount] { Some(f) } else { None }).sum();
    assert!((sum - read).abs() < 1e-6 * sum.abs().max(1.0), "{sum} stored, {read} read back");

    let companies = sheet(&out, "companies");
    assert_eq!(companies.len() as i64 - 1, count(&conn, "SELECT COUNT(*) FROM companies"));
    let state = column(&companies[0], "state");
    let message = column(&companies[0], "message");
    for row in &companies[1..] {
        if row[state] == Data::String("done".into()) {
            assert_eq!(row[message], Data::Empty, "a done company has no message");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_row_limit_customers_continue_on_numbered_sheets_with_their_header() {
    let h = Harness::default().await;
    let keys = company_keys(8, "分页表");
    write_input(&h, &keys);
    assert_eq!(h.run(&fast_fetch()).await.exit_code, 0);
    let conn = h.conn();
    let total = count(&conn, "SELECT COUNT(*) FROM customers") as usize;
    let out = h.dir.path().join("split.xlsx");
    // 100 rows a sheet (and the header) instead of Excel's 1,048,575.
    let mut notices = Vec::new();
    let written =
        qcc_customers::cmd::xlsx::write(&conn, &ExportFilter::default(), &out, 101, |m| notices.push(m.to_string()))
            .unwrap();
    let sheets = total.div_ceil(100);
    assert!(sheets >= 3, "{total} rows make {sheets} sheets");
    let names: Vec<String> =
        (1..=sheets).map(|i| if i == 1 { "customers".into() } else { format!("customers ({i})") }).collect();
    assert_eq!(written.customer_sheets, names);
    assert_eq!(notices.len(), sheets - 1, "{notices:?}");
    assert!(notices[0].contains("customers (2)"), "{}", notices[0]);
    let mut seen = 0;
    let mut first_header = None;
    for name in &names {
        let rows = sheet(&out, name);
        assert!(rows.len() <= 101);
        let header = rows[0].clone();
        assert_eq!(first_header.get_or_insert_with(|| header.clone()), &header, "every sheet has the header");
        seen += rows.len() - 1;
    }
    assert_eq!(seen, total, "every row once, across the sheets");
    assert_eq!(written.customer_rows as usize, total);
}

#[test]
fn a_workbook_to_stdout_is_refused_with_a_usage_error_before_anything_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["export", "--format", "xlsx", "--out", "-", "--db"])
        .arg(dir.path().join("none.sqlite"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a file"), "{stderr}");
    assert!(!dir.path().join("none.sqlite").exists(), "no database was created");
}
