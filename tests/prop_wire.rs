//! Property: for any bytes, the answer parser returns a value or an error;
//! it never panics, and what it allocates is bounded by the body it was
//! given (the client reads at most `MAX_BODY` bytes of a body, so the
//! parser never holds more than a small multiple of that). Bodies are drawn
//! as plain bytes, as JSON of any shape, and as answers whose lists repeat a
//! small element many times (the shape that turns bytes into the most memory).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use qcc_customers::fuzz;
use qcc_customers::qcc::wire::{WireError, MAX_LIST};

/// Counts what this thread holds and the most it held, so that tests
/// running beside it do not count.
struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = HELD.try_with(|h| {
            h.set(h.get() + layout.size());
            let _ = PEAK.try_with(|p| p.set(p.get().max(h.get())));
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(layout.size())));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most the parser may allocate for a body of `len` bytes: a few times
/// the body (the texts it keeps, with their growth), and a constant for
/// the rows one page can list (at most `MAX_LIST`).
fn allowed(len: usize) -> usize {
    PER_BYTE * len + (1 << 20)
}

/// Bytes the parser may hold per byte of body, at most.
const PER_BYTE: usize = 4;

/// Parse, returning what it returned and the most it held meanwhile.
fn parse_counted(body: &[u8]) -> (Result<qcc_customers::qcc::Response, WireError>, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let parsed = fuzz::wire(body);
    let peak = PEAK.with(Cell::get) - before;
    (parsed, peak)
}

fn config() -> ProptestConfig {
    // At least 256 cases; PROPTEST_CASES (read by the default) asks for more.
    let default = ProptestConfig::default();
    ProptestConfig { cases: default.cases.max(256), failure_persistence: None, ..default }
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9.,%-]{0,8}".prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "Status",
                        "Paging",
                        "Result",
                        "YearList",
                        "ClientList",
                        "TotalRecords",
                        "Name",
                        "SalesAmount",
                        "Year",
                        "Message",
                        "x"
                    ]),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// An answer whose Status and Result come from anywhere.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    (json(), json(), json(), prop::option::of(json())).prop_map(|(status, paging, result, extra)| {
        let mut body = serde_json::json!({ "Status": status, "Paging": paging, "Result": result });
        if let Some(extra) = extra {
            body["Extra"] = extra;
        }
        serde_json::to_vec(&body).unwrap()
    })
}

/// An answer holding a list of `n` times `element` at `place`: a result's
/// list, a row's name, or a top-level field.
fn answer_with_list(element: &str, n: usize, place: &str) -> String {
    let list = format!("[{}]", vec![element; n].join(","));
    match place {
        "ClientList" | "YearList" => format!(r#"{{"Status":"200","Result":{{"{place}":{list}}}}}"#),
        "Name" => format!(r#"{{"Status":"200","Result":{{"ClientList":[{{"Name":{list}}}]}}}}"#),
        _ => format!(r#"{{"Status":"200","{place}":{list}}}"#),
    }
}

/// A list of one small element repeated: the most memory a byte can become.
fn repeated() -> impl Strategy<Value = Vec<u8>> {
    let element = prop::sample::select(vec!["0", "{}", "[]", "\"\"", "\"a\"", "null", "{\"Name\":\"a\"}", "[0]"]);
    let place = prop::sample::select(vec!["ClientList", "YearList", "Message", "Paging", "Result", "Name"]);
    (element, place, 1..20_000usize).prop_map(|(element, place, n)| answer_with_list(element, n, place).into_bytes())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_parse_to_a_value_or_an_error_within_bounded_memory(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (_, peak) = parse_counted(&body);
        prop_assert!(peak <= allowed(body.len()), "{} bytes held for a body of {}", peak, body.len());
    }

    #[test]
    fn any_json_answer_parses_within_bounded_memory(body in answer()) {
        let (parsed, peak) = parse_counted(&body);
        prop_assert!(peak <= allowed(body.len()), "{} bytes held for a body of {}", peak, body.len());
        if let Ok(r) = parsed {
            prop_assert!(r.clients.len() <= MAX_LIST && r.year_list.len() <= MAX_LIST);
        }
    }

    #[test]
    fn a_long_list_of_small_elements_stays_within_bounded_memory(body in repeated()) {
        let (parsed, peak) = parse_counted(&body);
        prop_assert!(peak <= allowed(body.len()), "{} bytes held for a body of {}", peak, body.len());
        if let Ok(r) = parsed {
            prop_assert!(r.clients.len() <= MAX_LIST && r.year_list.len() <= MAX_LIST);
        }
    }
}

/// At the body limit itself, in the shapes that once turned a byte into
/// a hundred (a JSON tree of a long list of small elements).
#[test]
fn a_body_at_the_limit_of_the_worst_shapes_holds_a_few_times_its_size() {
    let limit = qcc_customers::qcc::client::MAX_BODY;
    for (element, place) in [("{}", "Message"), ("0", "ClientList"), ("[0]", "Name"), ("\"a\"", "YearList")] {
        let n = (limit - 100) / (element.len() + 1);
        let body = answer_with_list(element, n, place);
        assert!(body.len() <= limit);
        let (_, peak) = parse_counted(body.as_bytes());
        assert!(peak <= allowed(body.len()), "{element} in {place}: {peak} bytes held for a body of {}", body.len());
    }
}
