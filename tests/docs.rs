//! The docs say what the code does: the claims that could drift silently
//! are checked here.

use qcc_customers::qcc::codes::{classify, classify_http, Action, TABLE};

const DESIGN: &str = include_str!("../docs/design.md");

/// The rows of design.md §1.3: (the codes cell, the `Action` cell).
fn status_code_rows() -> Vec<(String, String)> {
    let start = DESIGN.find("### 1.3").expect("design.md has §1.3");
    let section = &DESIGN[start..];
    let end = section[4..].find("\n#").map_or(section.len(), |e| e + 4);
    section[..end]
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| codes"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row of §1.3 has three cells: {l}");
            (cells[0].to_string(), cells[1].trim_matches('`').to_string())
        })
        .collect()
}

/// The vendor codes a cell names: `202, 208`, ranges `101–108`; HTTP
/// statuses and words are left out.
fn vendor_codes(cell: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in cell.split([',', ';']) {
        let part = part.trim();
        if part.starts_with("HTTP") {
            continue;
        }
        let numbers: Vec<u32> = part.split('–').filter_map(|n| n.trim().parse().ok()).collect();
        match numbers[..] {
            [one] => out.push(one),
            [from, to] => out.extend(from..=to),
            _ => {}
        }
    }
    out
}

/// The HTTP statuses a cell names: `HTTP 429`, or a class `HTTP 5xx`
/// (checked at its first, middle and last status).
fn http_statuses(cell: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in cell.split([',', ';']) {
        let Some(status) = part.trim().strip_prefix("HTTP ") else { continue };
        match status.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()) {
            Some(class) => out.extend([class * 100, class * 100 + 50, class * 100 + 99]),
            None => out.push(status.parse().expect("an HTTP status")),
        }
    }
    out
}

fn action_named(name: &str) -> Action {
    match name {
        "Data" => Action::Data,
        "NoResult" => Action::NoResult,
        "Rejected" => Action::Rejected,
        "Truncated" => Action::Truncated,
        "Pending" => Action::Pending,
        "Park" => Action::Park,
        "Throttle" => Action::Throttle,
        "Transient" => Action::Transient,
        "QuotaExhausted" => Action::QuotaExhausted,
        "Fatal" => Action::Fatal,
        other => panic!("design.md §1.3 names an action the code does not have: {other}"),
    }
}

#[test]
fn docs_status_code_table_matches_the_code() {
    let rows = status_code_rows();
    assert_eq!(rows.len(), 10, "one row per action");
    let mut documented = Vec::new();
    for (codes, action) in &rows {
        let action = action_named(action);
        for code in vendor_codes(codes) {
            assert_eq!(classify(code), action, "design.md §1.3 says {code} is {action:?}");
            documented.push(code);
        }
        for status in http_statuses(codes) {
            assert_eq!(classify_http(status), action, "design.md §1.3 says HTTP {status} is {action:?}");
        }
    }
    // Both ways: every code of the code's table is in the docs' table, once.
    for info in TABLE {
        let times = documented.iter().filter(|&&c| c == info.code).count();
        assert_eq!(times, 1, "code {} is in design.md §1.3 {times} times", info.code);
    }
    // The words "other 1xx" and "unknown codes" hold for codes nobody lists.
    assert_eq!(classify(197), Action::Fatal);
    assert_eq!(classify(998), Action::Transient);
}

#[test]
fn the_readme_stays_a_front_door() {
    let readme = include_str!("../README.md");
    let lines = readme.lines().count();
    assert!(lines <= 220, "README.md is {lines} lines: the details belong in docs/");
    for link in ["docs/user-guide.md", "docs/analyst-guide.md", "docs/design.md", "BENCHMARKS.md", "CHANGELOG.md"] {
        assert!(readme.contains(link), "README.md links {link}");
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(link).exists(), "{link} exists");
    }
}

/// No function outside the benchmark harness is longer than 90 lines (from
/// its `fn` line to its closing brace, as rustfmt lays it out).
#[test]
fn no_function_is_over_90_lines() {
    let mut long = Vec::new();
    let mut files = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            if !path.ends_with("bin/bench") {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let body = line.trim_start();
            let indent = line.len() - body.len();
            let is_fn = ["fn ", "pub fn ", "async fn ", "pub async fn ", "pub(crate) fn ", "pub(super) fn "]
                .iter()
                .any(|p| body.starts_with(p));
            if !is_fn || line.ends_with(';') {
                continue;
            }
            let close = format!("{}}}", " ".repeat(indent));
            if let Some(end) = lines[i..].iter().position(|l| *l == close) {
                if end + 1 > 90 {
                    long.push(format!("{}:{} ({} lines)", path.display(), i + 1, end + 1));
                }
            }
        }
    }
    assert!(long.is_empty(), "functions over 90 lines: {long:?}");
}
