//! `cargo fuzz run piv_chain`: see fuzz/README.md and `holdfast_tests::fuzz::piv_chain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::piv_chain(data);
});
