//! End-to-end tests across the Holdfast crates: one binary, a module per
//! feature. Later issues add the verifier, swtpm and virtual-card modules.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs
)]

mod attacks;
mod client_sdk;
mod crash;
mod fuzz_corpus;
mod hostile;
mod issuer_flow;
mod piv_vcard;
mod proxy;
mod software_key_proofs;
mod support;
mod tpm_swtpm;
mod verifier_feed;
mod verifier_layer;
