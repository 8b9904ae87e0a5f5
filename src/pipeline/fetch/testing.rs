//! A fetch stage against the simulator on 127.0.0.1, without a writer: what
//! the stage hands over is read straight off the writer's channel, so its
//! unit tests see every commit (and every call record) it makes.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::context::Ctx;
use super::handoff::Handoff;
use crate::cli::{FetchArgs, InputArgs};
use crate::pipeline::control::shutdown::Stop;
use crate::pipeline::intake::input::InputSource;
use crate::pipeline::plan::listing::Coverage;
use crate::pipeline::report::progress::ProgressMode;
use crate::pipeline::report::stats::Stats;
use crate::pipeline::writer::{CommitWindow, WriteMsg};
use crate::pipeline::{fetch_context, Before};
use crate::qcc::{Client, Credentials};
use crate::simulator::{self, SimConfig, Simulator};
use crate::store::read::ListingKnowledge;
use crate::store::records::{Commit, Evidence, EvidenceKind};

/// The simulator, a fetch context talking to it, and the writer's end.
pub(crate) struct Rig {
    pub sim: Simulator,
    pub ctx: Arc<Ctx>,
    pub writer: mpsc::Receiver<WriteMsg>,
}

impl Rig {
    /// A rig with the `run` defaults but no rate limit and short backoffs,
    /// changed by `tweak`; the listing's coverage starts as `coverage`.
    pub async fn new(config: SimConfig, coverage: Coverage, tweak: impl FnOnce(&mut FetchArgs)) -> Rig {
        let sim = Simulator::start(config).await.expect("the simulator starts");
        let mut fetch = crate::cmd::demo::default_fetch_args();
        fetch.qps = 0.0;
        fetch.retry_base = std::time::Duration::from_millis(1);
        fetch.throttle_base = std::time::Duration::from_millis(1);
        tweak(&mut fetch);
        let opts = crate::cmd::run::options(
            InputSource::Bytes(bytes::Bytes::new()),
            "test".into(),
            &InputArgs::default(),
            "unused.sqlite".into(),
            reqwest::Url::parse(&sim.endpoint()).unwrap(),
            Credentials::new(simulator::DEMO_KEY, simulator::DEMO_SECRET),
            &fetch,
            ProgressMode::Quiet,
        )
        .expect("valid options");
        let (tx, writer) = mpsc::channel(4096);
        let stop = Arc::new(Stop::default());
        let stats = Arc::new(Stats::default());
        // Room for every commit a test makes: nothing drains it until the end.
        let handoff = Handoff::new(tx, CommitWindow::new(1024), stop.clone());
        let mut known = ListingKnowledge::default();
        let evidence = |kind| Evidence {
            kind,
            search_key: "test".into(),
            order_number: None,
            observed_at: String::new(),
            detail: String::new(),
        };
        match coverage {
            Coverage::EveryYear => known.every_year = Some(evidence(EvidenceKind::EveryYear)),
            Coverage::SomeYears => known.some_years = Some(evidence(EvidenceKind::SomeYears)),
            Coverage::Unknown => {}
        }
        let client = Client::new(&opts.client, opts.credentials.clone(), opts.clock).expect("a client");
        let before = Before { used_today: 0, knowledge: known, dictionary: None, next_dictionary_id: 1 };
        let ctx = Arc::new(fetch_context(&opts, client, handoff, &stop, &stats, &before, 4));
        Rig { sim, ctx, writer }
    }

    /// Every commit handed over so far, in order.
    pub fn commits(&mut self) -> Vec<Commit> {
        let mut out = Vec::new();
        while let Ok(msg) = self.writer.try_recv() {
            if let WriteMsg::Commit { commit, .. } = msg {
                out.push(commit);
            }
        }
        out
    }
}
