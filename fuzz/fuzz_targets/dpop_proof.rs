//! `cargo fuzz run dpop_proof`: see fuzz/README.md and `holdfast_tests::fuzz::dpop_proof`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::dpop_proof(data);
});
