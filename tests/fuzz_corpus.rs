//! Every file of the fuzz targets' committed corpora (`fuzz/corpus/`),
//! replayed through the same functions the targets drive, so CI checks
//! what the fuzzers found without a nightly toolchain. A corpus file that
//! once crashed a target is kept in its corpus once fixed.

use std::path::PathBuf;

use qcc_customers::fuzz;

/// The files of one target's corpus, in name order.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{}: the corpus is committed with the code", dir.display());
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn every_input_corpus_file_reads_without_a_panic() {
    for (path, data) in corpus("input") {
        let outcome = std::panic::catch_unwind(|| fuzz::input(&data));
        assert!(outcome.is_ok(), "{}", path.display());
    }
}

#[test]
fn every_wire_corpus_file_parses_to_a_value_or_an_error() {
    for (path, data) in corpus("wire") {
        let outcome = std::panic::catch_unwind(|| fuzz::wire(&data).is_ok());
        assert!(outcome.is_ok(), "{}", path.display());
    }
}

#[test]
fn every_schedule_corpus_file_moves_time_forward() {
    for (path, data) in corpus("schedule") {
        let case = fuzz::ScheduleCase::from_bytes(&data);
        let outcome = std::panic::catch_unwind(|| fuzz::schedule(&case));
        assert!(outcome.is_ok(), "{}: {case:?}", path.display());
    }
}

/// The seeds say what the corpora start from: the everyday list's odd
/// names are sent as written.
#[test]
fn the_everyday_seed_sends_its_quoted_names() {
    let data = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/input/everyday-gbk")).unwrap();
    let sent = fuzz::input(&data);
    assert!(sent.contains(&"北京\"星河\",科技有限公司".to_string()), "{sent:?}");
    assert!(sent.contains(&"Apple & Orange Trading Co., Ltd.".to_string()), "{sent:?}");
    assert!(!sent.iter().any(|k| k.contains("DROP TABLE")), "{sent:?}");
}
