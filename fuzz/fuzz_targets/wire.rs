//! Any bytes as an answer's body.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = qcc_customers::fuzz::wire(data);
});
