#!/usr/bin/env bash
# Build in release mode and run the benchmark harness; prints a markdown table.
#   bench/run.sh                 every scenario (about 6 minutes on 2 cores)
#   bench/run.sh --only rate     one scenario (rate, latency, overhead, writer, dry, memory, cost,
#                                api-rate, tail, bytes, receipts, queries, readers, revisit)
#   READERS_COMPANIES=10000 bench/run.sh --only readers   the readers' model on a smaller file (default 100,000)
#   REVISIT_KEEP_DB=DIR bench/run.sh --only revisit   keeps each workload's database in DIR
#   BENCH_KEEP_DIR=DIR bench/run.sh --only bytes   keeps every scenario's files in a new folder under DIR
#   REVISIT_ONLY=heavy bench/run.sh --only revisit   runs only the workloads whose name holds "heavy"
#   bench/run.sh --smoke         tiny sizes: checks the harness works, figures mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec target/release/bench "$@"
