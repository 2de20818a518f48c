//! Issuer endpoint paths, shared by the server's router, its RFC 8414
//! metadata and the client SDK, so they cannot drift apart.

/// RFC 8414 authorization server metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// The JWK Set of the issuer's signing keys.
pub const JWKS_PATH: &str = "/jwks";
/// The token endpoint (RFC 6749 §3.2).
pub const TOKEN_PATH: &str = "/token";
/// Enrollment challenge: a one-time server nonce to sign.
pub const ENROLL_CHALLENGE_PATH: &str = "/enroll/challenge";
/// Enrollment: redeem a code with a proof of possession of the new key.
pub const ENROLL_PATH: &str = "/enroll";
/// Token revocation (RFC 7009).
pub const REVOKE_PATH: &str = "/revoke";
/// Token introspection (RFC 7662).
pub const INTROSPECT_PATH: &str = "/introspect";
/// The revocation feed verifiers follow.
pub const REVOCATIONS_PATH: &str = "/revocations";
/// The snapshot of enrolled device keys verifiers start from.
pub const ENROLLED_KEYS_PATH: &str = "/keys/enrolled";
/// Where verifiers report a request refused for coming from outside its
/// session's IP binding (resource-server authentication).
pub const IP_DEVIATION_PATH: &str = "/sessions/ip-deviation";
/// Prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/admin";
/// Liveness.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
