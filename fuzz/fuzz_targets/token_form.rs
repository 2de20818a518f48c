//! `cargo fuzz run token_form`: see fuzz/README.md and `holdfast_tests::fuzz::token_form`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::token_form(data);
});
