//! Attack simulations (issue 9, `docs/security.md` "Attack simulations"):
//! each test plays one attacker against a real issuer, the verifying proxy
//! (and, for revoke-all, a service behind `VerifierLayer`), all on
//! loopback, and asserts the refusal: status, `WWW-Authenticate` and body,
//! what never reached the protected service, and the record the refusal
//! left. The issuer's refusals are in its hash-chained audit log; the
//! verifier's are counted on its `/metrics` (`refused_total{check=…}`), and
//! only IP deviations travel from the verifier to the issuer's log.
//!
//! Clients bind to other loopback addresses (127.0.0.2, 127.0.1.2,
//! 127.0.0.9) to be "elsewhere".

mod addresses;
mod har_capture;
mod sessions;
mod signing_key;
mod stage;
mod step_up;
mod stolen_token;
