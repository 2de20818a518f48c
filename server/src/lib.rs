//! # holdfast-server
//!
//! The Holdfast issuer, `holdfastd`: it enrolls device keys, mints access
//! and refresh tokens bound to them (RFC 9449 `cnf.jkt`), rotates refresh
//! tokens, revokes, answers introspection, and keeps a hash-chained audit log.
//!
//! The domain modules (`enrollment`, `issuer`, `sessions`, `revocation`,
//! `audit`) never touch HTTP; `http/` turns requests into domain calls and
//! domain errors into RFC 6749 / RFC 9449 answers; `store/` is the only
//! place that knows about sled.

#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod enrollment;
pub mod http;
pub mod issuer;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod revocation;
pub mod secret;
pub mod sessions;
pub mod state;
pub mod step_up;
pub mod store;
#[doc(hidden)]
pub mod testing;
