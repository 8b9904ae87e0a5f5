//! `qcc-customers mock-server`: the simulator as a standalone server.

use std::time::Duration;

use crate::cli::{parse_range, MockServerArgs, SimListing, SimProfile};
use crate::exit::{Ended, Failure};
use crate::simulator::{Faults, Listing, Profile, SimConfig, Simulator, Timeline};

pub async fn run(args: MockServerArgs) -> anyhow::Result<Ended> {
    let usage = |m: String| Failure::usage(m);
    for (name, share) in [
        ("--throttle-share", args.throttle_share),
        ("--http500-share", args.http500_share),
        ("--http502-share", args.http502_share),
        ("--drop-share", args.drop_share),
        ("--truncate-share", args.truncate_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(usage(format!("{name} {share} must be between 0.0 and 1.0")).into());
        }
    }
    let latency = match &args.latency_ms {
        Some(r) => {
            let (lo, hi) = parse_range(r).map_err(|e| usage(format!("--latency-ms: {e}")))?;
            Some((Duration::from_secs_f64(lo / 1000.0), Duration::from_secs_f64(hi / 1000.0)))
        }
        None => None,
    };
    let storm = match &args.storm {
        Some(r) => {
            let (a, b) = parse_range(r).map_err(|e| usage(format!("--storm: {e}")))?;
            Some((Duration::from_secs_f64(a), Duration::from_secs_f64(b)))
        }
        None => None,
    };
    let config = SimConfig {
        seed: args.seed,
        accounts: vec![(args.key.clone(), args.secret.clone())],
        faults: Faults {
            throttle_share: args.throttle_share,
            http500_share: args.http500_share,
            http502_share: args.http502_share,
            drop_share: args.drop_share,
            truncate_share: args.truncate_share,
            latency,
            storm,
            qps_cap: args.qps_cap,
            daily_quota: args.daily_quota,
        },
        listing: match args.listing {
            SimListing::EveryYear => Listing::EveryYear,
            SimListing::LatestYear => Listing::LatestYear,
            SimListing::LatestRowsAllTotal => Listing::LatestRowsAllTotal,
        },
        profile: match args.profile {
            SimProfile::Paging => Profile::Paging,
            SimProfile::Annual => Profile::Annual,
        },
        timeline: match (&args.as_of, args.timeline) {
            (Some(when), _) => Some(Timeline {
                as_of: Some(parse_as_of(when)?),
                random_corrections: true,
                corrections: vec![],
                ..Default::default()
            }),
            (None, true) => {
                Some(Timeline { as_of: None, random_corrections: true, corrections: vec![], ..Default::default() })
            }
            (None, false) => None,
        },
        keep_arrivals: false,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let sim = Simulator::serve(listener, config)?;
    println!("Simulator serving {} (key {:?}); Ctrl-C to stop.", sim.endpoint(), args.key);
    println!("Try: QCC_KEY={} QCC_SECRET_KEY={} qcc-customers run --endpoint {} --input sample_inputs/companies.csv --db out.sqlite",
        args.key, args.secret, sim.endpoint());
    // Without a Ctrl-C handler the server stops at once and says so below.
    let _ = tokio::signal::ctrl_c().await;
    println!(
        "Served {} billable requests; {} of them for a page served before.",
        sim.handle.billed(),
        sim.handle.pages_served_twice()
    );
    sim.stop().await;
    Ok(Ended::Done)
}

/// `--as-of`: a day (its start, UTC) or an RFC 3339 moment.
fn parse_as_of(when: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(when) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(when, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| Failure::usage(format!("--as-of {when:?}: give a day (2026-04-25) or an RFC 3339 time")))
}
