//! # holdfast-client
//!
//! What a Holdfast device agent embeds, and the `holdfast` command-line tool.
//!
//! Today this crate holds the `holdfast` CLI's offline tools (key
//! generation, JWK thumbprints, signing, inspecting and verifying DPoP
//! proofs). The `DpopClient`, which makes every HTTP request DPoP-correct,
//! arrives with the issuer.

#![forbid(unsafe_code)]
