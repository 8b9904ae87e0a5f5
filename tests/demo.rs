//! `demo` works from a clean clone: nothing but the committed files and the
//! binary, no key, no network.

use std::process::Command;

#[test]
fn demo_from_a_clean_clone_exits_0_and_leaves_customer_rows() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("clone");
    let cloned = Command::new("git").args(["clone", "--quiet", repo]).arg(&clone).status();
    let workdir = match cloned {
        Ok(s) if s.success() => clone,
        // Not a git checkout (e.g. a source tarball): an empty directory
        // proves the same thing, since the sample input is compiled in.
        _ => tmp.path().to_path_buf(),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_qcc-customers"))
        .args(["demo", "--qps", "200", "--quiet"])
        .current_dir(&workdir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Example query"), "{stdout}");
    // It shows what it learned about the all-years listing and what that saved.
    assert!(stdout.contains("the all-years listing covers every year (learned from"), "{stdout}");
    assert!(stdout.contains("  saved      "), "{stdout}");
    let conn = rusqlite::Connection::open(workdir.join("demo.sqlite")).unwrap();
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0)).unwrap();
    assert!(rows > 1000, "{rows} customer rows");
    let states: i64 = conn.query_row("SELECT COUNT(DISTINCT state) FROM companies", [], |r| r.get(0)).unwrap();
    assert!(states >= 5, "the sample shows done, no_result, rejected, invalid, deferred/parked");
    readme_queries_run_on_the_demo_database(&conn);
}

/// Every query the README and the analyst's guide show runs on the demo's
/// database, returns rows, and has the columns its printed output shows.
fn readme_queries_run_on_the_demo_database(conn: &rusqlite::Connection) {
    assert_eq!(doc_queries_run(conn, "README.md"), 3, "the README shows the three questions");
    assert_eq!(doc_queries_run(conn, "docs/analyst-guide.md"), 9, "the analyst's guide shows nine queries");
}

/// Runs each ```sql block of a doc and compares its columns with the
/// output block printed after it; returns how many it checked.
fn doc_queries_run(conn: &rusqlite::Connection, doc: &str) -> usize {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let blocks: Vec<&str> = text.split("```").collect();
    let mut checked = 0;
    for (i, block) in blocks.iter().enumerate() {
        let Some(sql) = block.strip_prefix("sql\n") else { continue };
        let mut stmt = conn.prepare(sql.trim()).unwrap_or_else(|e| panic!("{doc}: {sql}: {e}"));
        let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
        let rows = stmt.query_map([], |_| Ok(())).unwrap().count();
        assert!(rows > 0, "no rows from the {doc} query {sql}");
        // blocks[i + 1] is the text between the two fences; [i + 2] the output.
        let header: Vec<&str> = blocks[i + 2].split_whitespace().take(names.len()).collect();
        assert_eq!(header, names, "the output {doc} prints does not match {sql}");
        checked += 1;
    }
    checked
}
