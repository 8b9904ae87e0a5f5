//! The benchmark harness still works (tiny sizes; figures are not checked —
//! exact figures belong in BENCHMARKS.md, not in timed tests).

#[test]
fn the_benchmark_harness_runs_every_scenario_in_smoke_mode() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench")).arg("--smoke").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    for scenario in ["rate accuracy", "latency hiding", "raw overhead", "writer", "dry-run", "real run", "cost"] {
        assert!(stdout.contains(scenario), "{scenario} missing from:\n{stdout}");
    }
    for profile in ["Annual", "Paging"] {
        for listing in ["EveryYear", "LatestYear"] {
            let row = format!("| cost: 20 companies, {profile} profile, listing {listing} |");
            assert!(stdout.contains(&row), "{row} missing from:\n{stdout}");
        }
    }
}
