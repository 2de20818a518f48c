//! `cargo fuzz run x509_cert`: see fuzz/README.md and `holdfast_tests::fuzz::x509_cert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    holdfast_tests::fuzz::x509_cert(data);
});
