//! Any bytes as the schedule's settings and a company's history.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qcc_customers::fuzz::schedule(&qcc_customers::fuzz::ScheduleCase::from_bytes(data));
});
