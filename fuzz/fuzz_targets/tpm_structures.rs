//! `cargo fuzz run tpm_structures`: see fuzz/README.md and `holdfast_tests::fuzz::tpm_structures`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::tpm_structures(data);
});
