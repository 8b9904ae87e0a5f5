//! One call and its retries, against the simulator's trigger keys; the
//! records of retried calls are read off the writer's channel.

use super::*;
use crate::pipeline::fetch::testing::Rig;
use crate::pipeline::plan::listing::Coverage;
use crate::simulator::SimConfig;

#[tokio::test]
async fn a_200_is_the_page_with_its_call_record_and_nothing_is_handed_over_yet() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    let fetched = rig.ctx.caller.fetch("普通企业甲有限公司", None, 1).await;
    let Fetched::Page { call, .. } = fetched else { panic!("a page") };
    assert_eq!((call.status.as_deref(), call.attempt, call.page_index), (Some("200"), 1, 1));
    assert!(rig.commits().is_empty(), "the caller's loop hands the page over, with what it caused");
    assert_eq!(rig.sim.handle.request_count(), 1);
}

#[tokio::test]
async fn a_transient_code_is_retried_max_retries_times_then_deferred_and_every_try_is_recorded() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |f| f.max_retries = 2).await;
    let fetched = rig.ctx.caller.fetch("QCC-SIM-CODE-199", None, 1).await;
    let Fetched::NotNow(NotNow::Deferred { reason, code, call }) = fetched else { panic!("deferred") };
    assert_eq!(code.as_deref(), Some("199"));
    assert!(reason.starts_with("gave up after 3 tries"), "{reason}");
    assert_eq!(call.attempt, 3, "the last try's record comes back with the outcome");
    let retried = rig.commits();
    assert_eq!(retried.len(), 2, "the two retried tries were handed over as they happened");
    for c in &retried {
        assert_eq!(c.call.as_ref().and_then(|c| c.status.as_deref()), Some("199"));
        assert!(c.events.is_empty());
    }
    assert_eq!(rig.sim.handle.request_count(), 3);
}

#[tokio::test]
async fn a_205_is_asked_again_three_times_then_the_company_is_deferred() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    let fetched = rig.ctx.caller.fetch("QCC-SIM-205-x", None, 1).await;
    let Fetched::NotNow(NotNow::Deferred { code, .. }) = fetched else { panic!("deferred") };
    assert_eq!(code.as_deref(), Some("205"));
    assert_eq!(rig.sim.handle.request_count(), PENDING_RETRIES as usize + 1);
    assert_eq!(rig.commits().len(), PENDING_RETRIES as usize);
}

#[tokio::test]
async fn a_daily_quota_answer_stops_the_run_and_says_the_beijing_day_it_resumes() {
    let rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    let fetched = rig.ctx.caller.fetch("QCC-SIM-CODE-109", None, 1).await;
    assert!(matches!(fetched, Fetched::NotNow(NotNow::Stopped { call: Some(_) })), "the call is still recorded");
    let Some(StopReason::QuotaExhausted { code, resumes, .. }) = rig.ctx.stop.reason() else { panic!("quota stop") };
    assert_eq!(code, 109);
    assert_eq!(resumes, clock::next_beijing_day(rig.ctx.clock.now()));
}

#[tokio::test]
async fn max_calls_spent_stops_before_a_request_is_made() {
    let rig = Rig::new(SimConfig::default(), Coverage::Unknown, |f| f.max_calls = Some(1)).await;
    assert!(matches!(rig.ctx.caller.fetch("普通企业乙有限公司", None, 1).await, Fetched::Page { .. }));
    let second = rig.ctx.caller.fetch("普通企业乙有限公司", Some("2024"), 1).await;
    assert!(matches!(second, Fetched::NotNow(NotNow::Stopped { call: None })));
    assert_eq!(rig.ctx.stop.reason(), Some(StopReason::MaxCalls(1)));
    assert_eq!(rig.sim.handle.request_count(), 1, "no request past the budget");
}

#[test]
fn backoff_stays_under_its_doubling_ceiling_and_the_cap() {
    let policy = RetryPolicy { max_retries: 5, base: Duration::from_millis(100), cap: Duration::from_millis(250) };
    for _ in 0..200 {
        assert!(policy.backoff(1) < Duration::from_millis(100));
        assert!(policy.backoff(2) < Duration::from_millis(200));
        assert!(policy.backoff(5) < Duration::from_millis(250));
    }
}
