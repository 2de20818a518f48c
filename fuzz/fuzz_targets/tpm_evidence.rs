//! `cargo fuzz run tpm_evidence`: see fuzz/README.md and `holdfast_tests::fuzz::tpm_evidence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::tpm_evidence(data);
});
