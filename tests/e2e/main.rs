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

mod client_sdk;
mod issuer_flow;
mod proxy;
mod software_key_proofs;
mod support;
mod verifier_feed;
mod verifier_layer;
