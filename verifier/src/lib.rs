//! # holdfast-verifier
//!
//! What a backend service puts in front of its handlers so that a request
//! gets through only with an access token from its Holdfast issuer **and** a
//! fresh DPoP proof by the enrolled, unrevoked device key the token is bound
//! to (RFC 9449 §7).
//!
//! - [`check`]: the per-request decision, pure: headers, method and URI in;
//!   a [`VerifiedIdentity`] or a [`VerifyError`] (status and
//!   `WWW-Authenticate`) out.
//! - [`Registry`]: what the issuer has pushed: enrolled device keys, revoked
//!   sessions, devices and principals, the revoke-all instant.
//! - [`jwks`] and [`feed`]: the IO at the edge that keeps the issuer's keys
//!   and the registry current; [`connect`] sets it all up.
//! - [`Verifier`]: the check with its configuration and state.
//! - [`VerifierLayer`] / [`Verified`]: the tower layer and axum extractor
//!   (`docs/verifier.md`).
//! - IP binding at the edge: a token whose session is IP-bound (`ipb`) is
//!   refused from outside the binding; the client's address is the TCP peer
//!   or, behind [`VerifierConfig::trusted_proxies`], read from
//!   `X-Forwarded-For`; each deviation is reported to the issuer
//!   ([`DeviationReporter`]).
//! - [`proxy`]: the verifying reverse proxy ([`proxy_router`]) that puts
//!   the same checks in front of a service in any language.

#![forbid(unsafe_code)]

pub mod check;
mod client_ip;
mod error;
mod extract;
pub mod feed;
mod identity;
pub mod jwks;
mod layer;
pub mod proxy;
pub mod registry;
mod replay;
mod report;
mod verifier;

pub use check::{CheckContext, RequestParts, check};
pub use error::VerifyError;
pub use extract::{NotBehindVerifierLayer, Verified};
pub use feed::{
    ConnectError, FeedHandle, FeedMonitor, FeedOptions, FeedStats, connect, connect_with,
};
pub use identity::VerifiedIdentity;
pub use jwks::JwksCache;
pub use layer::{ResponseFuture, VerifierLayer, VerifierMetrics, VerifierService};
pub use proxy::{ProxyError, ProxyOptions, proxy_router};
pub use registry::Registry;
pub use replay::SledReplayGuard;
pub use report::DeviationReporter;
pub use verifier::{Verifier, VerifierConfig};
