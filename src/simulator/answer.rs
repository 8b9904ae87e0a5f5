//! What the simulator answers a request: authentication, parameters, the
//! injected faults, then the page itself (with the timeline, when there is
//! one), and how each answer is billed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::config::Listing;
use super::data::{self, triggers};
use super::state::{lock, SimState};
use crate::qcc::{codes, sign};

pub(crate) enum Answer {
    Code(u32),
    /// A 200 page, serialized.
    Data(String),
    Http(StatusCode),
    Drop,
    Truncated(String),
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn decide(
    state: &SimState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    search_key: &str,
    year: Option<&str>,
    page_index: u32,
    page_size: u32,
    at: Duration,
) -> Answer {
    // Authentication first, as the real API does: nothing past here is free.
    if let Err(code) = authenticate(state, params, headers) {
        return Answer::Code(code);
    }
    if let Some(answer) = injected_limit(state, at) {
        return answer;
    }
    let faults = &state.config.faults;
    let roll = fastrand::f64();
    let mut edge = faults.throttle_share;
    if roll < edge {
        return Answer::Code(120);
    }
    for (share, answer) in [
        (faults.http500_share, Answer::Http(StatusCode::INTERNAL_SERVER_ERROR)),
        (faults.http502_share, Answer::Http(StatusCode::BAD_GATEWAY)),
        (faults.drop_share, Answer::Drop),
    ] {
        edge += share;
        if roll < edge {
            return answer;
        }
    }
    let truncate = roll < edge + faults.truncate_share;

    // Parameter checks.
    if search_key.chars().count() < 2 {
        return bill(state, search_key, year, page_index, Answer::Code(213));
    }
    if page_size == 0 || page_size > 50 || page_index == 0 {
        return bill(state, search_key, year, page_index, Answer::Code(202));
    }
    if u64::from(page_index) * u64::from(page_size) > 5000 {
        return bill(state, search_key, year, page_index, Answer::Code(207));
    }

    // Documented trigger keys.
    if let Some(code) = triggers::number_after(search_key, triggers::HTTP) {
        let status = StatusCode::from_u16(code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Answer::Http(status);
    }
    if let Some(code) = triggers::number_after(search_key, triggers::CODE) {
        // The vendor bills what it calls valid requests (有效请求).
        return if codes::info(code).is_some_and(|i| i.valid_request) {
            bill(state, search_key, year, page_index, Answer::Code(code))
        } else {
            Answer::Code(code)
        };
    }
    for (prefix, code) in [(triggers::REJECTED, 202), (triggers::PENDING, 205), (triggers::PARKED, 110)] {
        if search_key.starts_with(prefix) {
            return bill(state, search_key, year, page_index, Answer::Code(code));
        }
    }
    if search_key.starts_with(triggers::THROTTLED) {
        let mut calls = lock(&state.trigger_calls);
        let n = calls.entry(search_key.to_string()).or_insert(0);
        *n += 1;
        if *n <= 2 {
            return Answer::Code(120);
        }
    }

    let answer = page_answer(state, search_key, year, page_index, page_size);
    let answer = match answer {
        Answer::Data(body) if truncate => Answer::Truncated(body),
        other => other,
    };
    bill(state, search_key, year, page_index, answer)
}

/// The key, the token and the Timespan: the vendor code that refuses them.
fn authenticate(state: &SimState, params: &HashMap<String, String>, headers: &HeaderMap) -> Result<(), u32> {
    let Some(key) = params.get("key") else {
        return Err(101);
    };
    let Some((_, secret)) = state.config.accounts.iter().find(|(k, _)| k == key) else {
        return Err(101);
    };
    let timespan = headers.get("Timespan").and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = headers.get("Token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if token != sign::token(key, timespan, secret) {
        return Err(107);
    }
    let now = state.wall_now().timestamp();
    match timespan.parse::<i64>() {
        Ok(ts) if now.abs_diff(ts) <= state.config.max_clock_skew.as_secs() => {}
        _ => return Err(115),
    }

    Ok(())
}

/// The injected daily quota, storm and per-second cap, when one applies.
fn injected_limit(state: &SimState, at: Duration) -> Option<Answer> {
    let faults = &state.config.faults;
    if let Some(quota) = faults.daily_quota {
        if state.billed.load(Ordering::Relaxed) >= quota {
            return Some(Answer::Code(116));
        }
    }
    if let Some((from, to)) = faults.storm {
        if at >= from && at < to {
            return Some(Answer::Code(120));
        }
    }
    if let Some(cap) = faults.qps_cap {
        let mut w = lock(&state.second_window);
        let second = at.as_secs();
        if w.0 != second {
            *w = (second, 0);
        }
        w.1 += 1;
        if w.1 > cap {
            return Some(Answer::Code(120));
        }
    }
    None
}

/// Count a billable answer (data or a final 2xx code) for the served ledger.
fn bill(state: &SimState, search_key: &str, year: Option<&str>, page_index: u32, answer: Answer) -> Answer {
    if matches!(answer, Answer::Truncated(_)) {
        // The client never saw this page whole; the vendor would still bill
        // it, but it is not a page the client could have stored.
        return answer;
    }
    state.billed.fetch_add(1, Ordering::Relaxed);
    let key = (search_key.to_string(), year.unwrap_or("").to_string(), page_index);
    *lock(&state.served).entry(key).or_insert(0) += 1;
    answer
}

fn page_answer(state: &SimState, search_key: &str, year: Option<&str>, page_index: u32, page_size: u32) -> Answer {
    let config = &state.config;
    let seed = config.seed;
    if let Some(timeline) = &config.timeline {
        return timed_page_answer(state, timeline, search_key, year, page_index, page_size);
    }
    let company = data::company_of(config.profile, seed, search_key, config.extra_years);
    if company.years.is_empty() {
        return Answer::Code(201);
    }
    // The years whose rows this query lists, in order, and its TotalRecords.
    let (listed, total): (&[data::SimYear], u64) = match year {
        None => {
            let all = company.years.iter().map(|y| u64::from(y.total)).sum::<u64>();
            match config.listing {
                Listing::EveryYear => (&company.years[..], all),
                Listing::LatestYear => (&company.years[..1], u64::from(company.years[0].total)),
                Listing::LatestRowsAllTotal => (&company.years[..1], all),
            }
        }
        Some(y) => match company.years.iter().position(|sy| sy.year == y) {
            Some(i) if company.years[i].total > 0 => (&company.years[i..=i], u64::from(company.years[i].total)),
            _ => return Answer::Code(201),
        },
    };
    let first = u64::from(page_index - 1) * u64::from(page_size);
    if first >= total && (year.is_some() || page_index > 1) {
        return Answer::Code(201);
    }
    let end = first + u64::from(page_size);
    // Rows `first..end` of the years listed one after another.
    let mut client_list = Vec::with_capacity(page_size as usize);
    let mut offset = 0u64;
    for sy in listed {
        let n = u64::from(sy.total);
        let (lo, hi) = (first.max(offset), end.min(offset + n));
        let revised = !config.revise_latest_year_only || sy.year == company.years[0].year;
        let revision = if revised { config.revision } else { 0 };
        for i in lo..hi {
            client_list.push(
                data::SimRow::new(seed, revision, search_key, &sy.year, (i - offset) as u32)
                    .own_names(config.own_names, seed, search_key)
                    .pictured(config.pictures, seed, search_key),
            );
        }
        offset += n;
        if offset >= end {
            break;
        }
    }
    let year_list = company.years.iter().map(|y| y.year.as_str()).collect();
    data_page(state, Paging { page_size, page_index, total_records: total }, year_list, client_list)
}

/// [`page_answer`] with the timeline on: the company as the vendor shows it
/// at the simulator's clock, paged the same way.
fn timed_page_answer(
    state: &SimState,
    timeline: &super::Timeline,
    search_key: &str,
    year: Option<&str>,
    page_index: u32,
    page_size: u32,
) -> Answer {
    let config = &state.config;
    let years = super::timeline::company_as_of(config.profile, config.seed, search_key, timeline, state.now());
    if years.is_empty() || search_key.trim().starts_with(data::triggers::NO_RESULT) {
        return Answer::Code(201);
    }
    let listed: &[super::timeline::TimedYear] = match year {
        None => &years[..],
        Some(y) => match years.iter().position(|ty| ty.year == y) {
            Some(i) if !years[i].rows.is_empty() => &years[i..=i],
            _ => return Answer::Code(201),
        },
    };
    let total: u64 = listed.iter().map(|ty| ty.rows.len() as u64).sum();
    let first = u64::from(page_index - 1) * u64::from(page_size);
    if first >= total && (year.is_some() || page_index > 1) {
        return Answer::Code(201);
    }
    let client_list = listed
        .iter()
        .flat_map(|ty| ty.rows.iter().map(move |r| (ty, r)))
        .skip(first as usize)
        .take(page_size as usize)
        .map(|(ty, r)| {
            data::SimRow::new(config.seed, r.revision, search_key, &ty.year, r.index)
                .in_report(&ty.year, r.half)
                .own_names(config.own_names, config.seed, search_key)
                .pictured(config.pictures, config.seed, search_key)
        })
        .collect();
    let year_list = years.iter().map(|y| y.year.as_str()).collect();
    data_page(state, Paging { page_size, page_index, total_records: total }, year_list, client_list)
}

/// A 200 answer with these rows, written straight from them (no JSON tree per page).
fn data_page(state: &SimState, paging: Paging, year_list: Vec<&str>, client_list: Vec<data::SimRow>) -> Answer {
    let page = DataPage {
        order_number: order_number(state),
        paging,
        result: PageResult { year_list, client_list },
        status: "200",
        message: codes::wire_message(200),
        job_id: job_id(state),
        group_items: [],
    };
    match serde_json::to_string(&page) {
        Ok(body) => Answer::Data(body),
        Err(_) => Answer::Http(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A 200 answer's body, in the API's field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataPage<'a> {
    order_number: String,
    paging: Paging,
    result: PageResult<'a>,
    status: &'static str,
    message: String,
    /// Top-level fields real answers carry beside the documented ones.
    job_id: String,
    group_items: [(); 0],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Paging {
    page_size: u32,
    page_index: u32,
    total_records: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PageResult<'a> {
    year_list: Vec<&'a str>,
    client_list: Vec<data::SimRow>,
}

pub(crate) fn order_number(state: &SimState) -> String {
    let n = state.orders.fetch_add(1, Ordering::Relaxed);
    let now = state.wall_now().format("%Y%m%d%H%M%S");
    format!("CUSTOMER{now}{n:08}")
}

/// A job id as real answers carry one (32 hex digits).
fn job_id(state: &SimState) -> String {
    format!("{:032x}", u128::from(state.orders.load(Ordering::Relaxed)).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c))
}

pub(crate) fn json_response(state: &SimState, code: u32, paging: Value, result: Value) -> Response {
    let valid = codes::info(code).is_some_and(|i| i.valid_request);
    let body = json!({
        "OrderNumber": if valid { Value::String(order_number(state)) } else { Value::Null },
        "Paging": paging,
        "Result": result,
        "Status": code.to_string(),
        "Message": codes::wire_message(code),
    });
    (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
}

/// A response whose body stream fails at once: hyper then closes the
/// connection mid-response, which the client sees as a dropped connection.
pub(crate) fn abort_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("simulated dropped connection"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", "4096")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
