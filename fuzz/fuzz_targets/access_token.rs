//! `cargo fuzz run access_token`: see fuzz/README.md and `holdfast_tests::fuzz::access_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::access_token(data);
});
