//! Flow control's rules on the paused tokio clock.

use super::*;

fn flow(concurrency: Concurrency) -> Flow {
    Flow::new(FlowConfig {
        qps: 0.0,
        burst: 1,
        concurrency,
        throttle_base: Duration::from_secs(1),
        throttle_cap: Duration::from_secs(60),
        max_throttle_wait: Duration::from_secs(1800),
    })
}

#[tokio::test(start_paused = true)]
async fn throttle_pauses_everyone_and_cuts_concurrency() {
    let f = flow(Concurrency::Fixed(8));
    let stop = Stop::default();
    let p = f.permit(&stop).await.unwrap();
    assert!(f.on_throttle(&p, None).is_none());
    drop(p);
    let st = f.status();
    assert!(st.paused);
    assert_eq!(st.limit, 4);
    assert_eq!(st.rate_factor, 0.5);
    let before = Instant::now();
    let _p = f.permit(&stop).await.unwrap();
    let waited = before.elapsed();
    assert!(waited >= Duration::from_millis(500) && waited <= Duration::from_secs(1), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn answers_to_calls_sent_before_a_reaction_do_not_escalate() {
    let f = flow(Concurrency::Fixed(8));
    let stop = Stop::default();
    let a = f.permit(&stop).await.unwrap();
    let b = f.permit(&stop).await.unwrap();
    f.on_throttle(&a, None);
    f.on_throttle(&b, None);
    assert_eq!(f.status().limit, 4, "one reaction for two answers to one burst");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_minimum_pause() {
    let f = flow(Concurrency::Fixed(2));
    let stop = Stop::default();
    let p = f.permit(&stop).await.unwrap();
    f.on_throttle(&p, Some(Duration::from_secs(30)));
    drop(p);
    let before = Instant::now();
    let _p = f.permit(&stop).await.unwrap();
    assert!(before.elapsed() >= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn long_throttling_stops_the_run() {
    let mut f = flow(Concurrency::Fixed(1));
    f.config.max_throttle_wait = Duration::from_secs(10);
    let stop = Stop::default();
    let p = f.permit(&stop).await.unwrap();
    assert!(f.on_throttle(&p, None).is_none());
    drop(p);
    tokio::time::advance(Duration::from_secs(11)).await;
    let p = f.permit(&stop).await.unwrap();
    assert_eq!(f.on_throttle(&p, None), Some(StopReason::Throttled));
}

#[tokio::test(start_paused = true)]
async fn auto_concurrency_follows_littles_law() {
    let mut f = Flow::new(FlowConfig {
        qps: 50.0,
        burst: 1,
        concurrency: Concurrency::Auto { max: 32 },
        throttle_base: Duration::from_secs(1),
        throttle_cap: Duration::from_secs(60),
        max_throttle_wait: Duration::from_secs(1800),
    });
    f.limiter = None; // the rate is not under test; governor runs on the real clock
    let stop = Stop::default();
    let hold = |ms: u64| {
        let f = &f;
        let stop = &stop;
        async move {
            let mut p = f.permit(stop).await.unwrap();
            p.mark_used();
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    };
    for _ in 0..100 {
        hold(600).await;
    }
    // 50/s × 0.6 s × 1.5 + 2 = 47 → capped at 32.
    assert_eq!(f.status().limit, 32);
    for _ in 0..200 {
        hold(100).await;
    }
    // 50 × 0.1 × 1.5 + 2 ≈ 10 (the average decays towards 100 ms).
    assert!((9..=11).contains(&f.status().limit), "{:?}", f.status());
}
