//! A company's cycle against the simulator, from the commits it hands over.

use super::*;
use crate::pipeline::fetch::testing::Rig;
use crate::pipeline::plan::listing::Coverage;
use crate::simulator::SimConfig;
use crate::store::records::{Commit, CompanySnapshot};

fn fresh(rig: &Rig, key: &str) -> Job {
    let snapshot = CompanySnapshot { search_key: key.into(), state: CompanyState::Pending, ..Default::default() };
    plan::plan(snapshot, &rig.ctx.plan, rig.ctx.clock.now()).expect("a new company is due")
}

/// The state the company's last commit set, if one did.
fn ended_as(commits: &[Commit]) -> Option<CompanyState> {
    commits.iter().rev().flat_map(|c| c.events.iter().rev()).find_map(|e| match e {
        Event::Company { state, .. } => Some(*state),
        _ => None,
    })
}

#[tokio::test]
async fn a_company_with_no_result_is_final_after_one_call() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    let job = fresh(&rig, "QCC-SIM-201-a");
    assert_eq!(run_company(&rig.ctx, job).await, CompanyOutcome::Final);
    let commits = rig.commits();
    assert_eq!(commits.len(), 1, "one commit: the call and the company's state");
    assert_eq!(ended_as(&commits), Some(CompanyState::NoResult));
    assert_eq!(rig.sim.handle.request_count(), 1);
}

#[tokio::test]
async fn a_rejected_company_is_final_and_a_parked_one_unfinished_with_its_wait() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    assert_eq!(run_company(&rig.ctx, fresh(&rig, "QCC-SIM-202-a")).await, CompanyOutcome::Final);
    assert_eq!(ended_as(&rig.commits()), Some(CompanyState::Rejected));
    assert_eq!(run_company(&rig.ctx, fresh(&rig, "QCC-SIM-110-a")).await, CompanyOutcome::Unfinished);
    let commits = rig.commits();
    assert_eq!(ended_as(&commits), Some(CompanyState::Parked));
    let parked = commits.iter().flat_map(|c| &c.events).find_map(|e| match e {
        Event::Company { retry_after, .. } => retry_after.clone(),
        _ => None,
    });
    assert!(parked.is_some(), "a parked company says when it is due again");
}

#[tokio::test]
async fn a_company_paged_per_year_ends_done_having_asked_each_page_once() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::SomeYears, |_| {}).await;
    let job = fresh(&rig, "普通企业丙有限公司");
    assert_eq!(run_company(&rig.ctx, job).await, CompanyOutcome::Final);
    let commits = rig.commits();
    assert!(matches!(commits[0].events[0], Event::Discovered { .. }), "discovery is handed over first");
    assert_eq!(ended_as(&commits), Some(CompanyState::Done));
    assert_eq!(rig.sim.handle.pages_served_twice(), 0);
    let pages: usize = commits.iter().flat_map(|c| &c.events).filter(|e| matches!(e, Event::Page(_))).count();
    let calls = commits.iter().filter(|c| c.call.is_some()).count();
    assert_eq!(calls, rig.sim.handle.request_count(), "every call made is in a commit");
    assert!(pages + 1 >= calls, "every call but discovery brought a page or ended a year");
}

#[tokio::test]
async fn a_stopped_run_leaves_a_company_unfinished_without_a_call() {
    let mut rig = Rig::new(SimConfig::default(), Coverage::Unknown, |_| {}).await;
    rig.ctx.stop.stop(crate::pipeline::control::shutdown::StopReason::Interrupted);
    let job = fresh(&rig, "普通企业丁有限公司");
    assert_eq!(run_company(&rig.ctx, job).await, CompanyOutcome::Unfinished);
    assert!(rig.commits().is_empty());
    assert_eq!(rig.sim.handle.request_count(), 0);
}
