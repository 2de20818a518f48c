//! `cargo fuzz run jwk`: see fuzz/README.md and `holdfast_tests::fuzz::jwk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::jwk(data);
});
