//! The writer alone: pages of 50 rows with call records, checkpoints and receipts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::measure::Spread;
use crate::Bench;

impl Bench {
    /// The writer scenario, [`REPEATS`] times; reports the median and range.
    pub(crate) fn writer(&mut self) -> anyhow::Result<()> {
        let pages: usize = if self.smoke { 50 } else { 20_000 };
        let mut runs = Vec::new();
        for i in 0..self.repeats() {
            runs.push(self.writer_once(i, pages)?);
        }
        let rate = Spread::of(runs.iter().map(|r| r.0));
        let commits = Spread::of(runs.iter().map(|r| r.1 as f64));
        self.push(
            format!("writer: {pages} pages of 50 rows, each with its call record, checkpoint and a 4 KB receipt"),
            "≥ 200,000 rows/s",
            format!("{} rows/s ({:.0} commits per run)", rate.show(true), commits.median),
            rate.median >= 200_000.0,
        );
        Ok(())
    }

    /// One writer run into a fresh file: (rows per second, commits).
    fn writer_once(&self, index: usize, pages: usize) -> anyhow::Result<(f64, u64)> {
        use qcc_customers::pipeline::control::shutdown::Stop;
        use qcc_customers::pipeline::report::stats::Stats;
        use qcc_customers::pipeline::writer::{self, WriteMsg};
        use qcc_customers::qcc::ClientRow;
        use qcc_customers::store::records::{
            CallRecord, Commit, Event, PageEvent, Query, RawPage, StoredPages, YearState,
        };
        let db = self.dir.path().join(format!("writer{index}.sqlite"));
        let store = qcc_customers::store::open_for_writing(&db)?;
        let run_id = qcc_customers::store::write::start_run(&store.conn, "bench", "2026-01-01T00:00:00.000Z")?;
        let stats = Arc::new(Stats::default());
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let clock = qcc_customers::clock::Clock::system();
        // A real commit window, as wide as the writer's channel.
        let window = writer::CommitWindow::new(128);
        let scheduling = writer::Scheduling {
            revisit: qcc_customers::pipeline::plan::schedule::Revisit::Fixed(chrono::Duration::days(7)),
            page_size: 50,
        };
        let handle =
            writer::spawn(store, run_id, rx, stats.clone(), Arc::new(Stop::default()), clock, &window, scheduling)?;
        let runtime = tokio::runtime::Handle::current();
        let body: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 251) as u8).collect();
        // Register the companies first, as a run does (company_years refers to them).
        let records: Vec<_> = (0..pages.div_ceil(4))
            .map(|c| {
                let key = format!("写入基准企业{c:06}有限公司");
                qcc_customers::store::records::InputRecord {
                    line: c as u64 + 2,
                    norm_key: key.clone(),
                    search_key: key,
                    row_json: "{}".into(),
                    invalid: None,
                }
            })
            .collect();
        let (reply, replied) = tokio::sync::oneshot::channel();
        tx.blocking_send(WriteMsg::Register { records, reply })?;
        replied.blocking_recv()?;
        let start = Instant::now();
        for p in 0..pages {
            let key = format!("写入基准企业{:06}有限公司", p / 4);
            let year = format!("{}", 2020 + p % 4);
            let rows: Vec<ClientRow> = (0..50)
                .map(|i| ClientRow {
                    year: Some(year.clone()),
                    key_no: Some(format!("{:032x}", (p * 50 + i) as u128 * 0x9e37_79b9)),
                    name: Some(format!("客户{i}科技股份有限公司")),
                    image_url: None,
                    sales_amount: Some(1234.5 + i as f64),
                    sales_amount_text: Some(format!("{}.50", 1234 + i)),
                    sales_percent: Some(12.5),
                    sales_percent_text: Some("12.50".into()),
                    relationship: None,
                    source: Some("年报".into()),
                })
                .collect();
            let call = CallRecord {
                search_key: key.clone(),
                year: Some(year.clone()),
                page_index: 1,
                page_size: 50,
                http_status: Some(200),
                status: Some("200".into()),
                order_number: Some(format!("CUSTOMER{p:020}")),
                started_at: "2026-01-01T00:00:00.000Z".into(),
                duration_ms: 1,
                attempt: 1,
                error: None,
            };
            let commit = Commit {
                search_key: key,
                call: Some(call),
                events: vec![Event::Page(PageEvent {
                    query: Query::Year(year.clone()),
                    page_index: 1,
                    total_records: 50,
                    pages_total: 1,
                    year_state: YearState::Complete,
                    stored: StoredPages { prefix: 1, ..StoredPages::default() },
                    unit_rows: 50,
                    rows,
                    raw: Some(RawPage {
                        query_year: year,
                        page_index: 1,
                        order_number: None,
                        body: body.clone(),
                        dict_id: None,
                    }),
                })],
            };
            let slot = runtime.block_on(window.enter()).ok_or_else(|| anyhow::anyhow!("window closed"))?;
            tx.blocking_send(WriteMsg::Commit { commit, slot })?;
        }
        drop(tx);
        handle.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        let secs = start.elapsed().as_secs_f64();
        let rows = stats.rows_written.load(Ordering::Relaxed);
        let rate = rows as f64 / secs;
        let commits = stats.commits.load(Ordering::Relaxed);
        eprintln!("  writer run {}: {rate:.0} rows/s, {commits} commits", index + 1);
        Ok((rate, commits))
    }
}
