//! End-to-end tests across the Holdfast crates: one binary, a module per
//! feature. Later issues add the issuer, verifier, swtpm and virtual-card
//! modules here.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod software_key_proofs;
