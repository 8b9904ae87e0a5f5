//! Any bytes as an input list (the first byte picks the options).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qcc_customers::fuzz::input(data);
});
