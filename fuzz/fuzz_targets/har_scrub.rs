//! `cargo fuzz run har_scrub`: see fuzz/README.md and `holdfast_tests::fuzz::har_scrub`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::har_scrub(data);
});
