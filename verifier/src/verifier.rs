//! A configured verifier: the check plus the state it needs. Cheap to share
//! (`Arc<Verifier>`); the layer and the proxy hold one.

use std::sync::Arc;

use holdfast_proto::{
    AllowedAlgs, Clock, IatWindow, IpDeviationReport, IpPrefix, IssuerKeys, MemoryReplayGuard,
    NonceCheck, NonceIssuer, ProofVerifier, ReplayGuard, SystemClock,
};

use crate::check::{CheckContext, RequestParts, TokenCache, check};
use crate::error::VerifyError;
use crate::identity::VerifiedIdentity;
use crate::registry::Registry;
use crate::report::DeviationReporter;

/// How a service verifies requests.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The issuer URL (`iss`, and where metadata, JWKS and the feed are).
    pub issuer: String,
    /// Audiences this service accepts (`aud` must name one).
    pub audiences: Vec<String>,
    /// This service's public base URL: `htu` is this plus the request path.
    pub base_url: String,
    /// Proof acceptance window.
    pub window: IatWindow,
    /// Accepted proof algorithms.
    pub algs: AllowedAlgs,
    /// Clock leeway for token `exp`/`nbf`, seconds. Default 5.
    pub leeway: u64,
    /// Refuse every request when the registry has not synchronised with the
    /// issuer for this long (fail closed). `None` disables the bound
    /// (`danger`: revocations may then be missed silently). Default 30 s.
    pub max_staleness: Option<u64>,
    /// Resource-server credentials for the issuer's feed endpoints.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Proxies in front of this service whose `X-Forwarded-For` entries
    /// are believed (`10.0.0.0/8`, `::1`). The client's address, which IP
    /// binding is checked against, is the TCP peer unless the peer is one
    /// of these. Default none: the peer is the client.
    pub trusted_proxies: Vec<IpPrefix>,
}

impl VerifierConfig {
    /// Defaults for everything but the issuer, audience, base URL and
    /// credentials.
    pub fn new(
        issuer: &str,
        audience: &str,
        base_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audiences: vec![audience.to_owned()],
            base_url: base_url.trim_end_matches('/').to_owned(),
            window: IatWindow::default(),
            algs: AllowedAlgs::default(),
            leeway: 5,
            max_staleness: Some(30),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// A verifier with its state.
pub struct Verifier {
    config: VerifierConfig,
    keys: Arc<dyn IssuerKeys + Send + Sync>,
    registry: Arc<Registry>,
    proofs: ProofVerifier,
    replay: Arc<dyn ReplayGuard>,
    tokens: TokenCache,
    nonces: Option<NonceIssuer>,
    clock: Arc<dyn Clock>,
    reporter: Option<DeviationReporter>,
}

impl Verifier {
    /// A verifier over the given issuer keys and registry (tests, or a
    /// caller that keeps them current itself).
    pub fn new(
        config: VerifierConfig,
        keys: Arc<dyn IssuerKeys + Send + Sync>,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            proofs: ProofVerifier::new(config.algs.clone(), config.window),
            config,
            keys,
            registry,
            replay: Arc::new(MemoryReplayGuard::default()),
            tokens: TokenCache::default(),
            nonces: None,
            clock: Arc::new(SystemClock),
            reporter: None,
        }
    }

    /// Demands server nonces (RFC 9449 §9): requests without a current one
    /// get 401 `use_dpop_nonce` with a `DPoP-Nonce` header.
    #[must_use]
    pub fn with_nonces(mut self, nonces: NonceIssuer) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Uses another replay guard (e.g. one shared by several instances).
    #[must_use]
    pub fn with_replay_guard(mut self, replay: Arc<dyn ReplayGuard>) -> Self {
        self.replay = replay;
        self
    }

    /// Uses another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports IP deviations to the issuer through `reporter` ([`crate::connect`]
    /// sets this up).
    #[must_use]
    pub fn with_deviation_reporter(mut self, reporter: DeviationReporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// A fresh nonce to send with a `use_dpop_nonce` refusal, if nonces are on.
    pub fn fresh_nonce(&self) -> Option<String> {
        self.nonces.as_ref().map(|n| n.issue(self.clock.now()))
    }

    /// Checks one request. A refusal for an IP deviation is also reported
    /// to the issuer (queued, never waited for) when the client's address
    /// is known; an unknown address is this service's configuration, not
    /// the client's doing, so it is refused but not reported.
    ///
    /// # Errors
    /// The first failed check.
    pub fn check_request(
        &self,
        request: &RequestParts<'_>,
    ) -> Result<VerifiedIdentity, VerifyError> {
        let ctx = CheckContext {
            issuer: &self.config.issuer,
            audiences: &self.config.audiences,
            base_url: &self.config.base_url,
            keys: self.keys.as_ref(),
            registry: &self.registry,
            max_staleness: self.config.max_staleness,
            proofs: &self.proofs,
            replay: self.replay.as_ref(),
            nonce: self
                .nonces
                .as_ref()
                .map_or(NonceCheck::NotRequired, NonceCheck::Issuer),
            tokens: &self.tokens,
            leeway: self.config.leeway,
            now: self.clock.now(),
        };
        let result = check(request, &ctx);
        if let Err(VerifyError::IpDeviation {
            sid,
            client_id,
            session_ip,
            request_ip,
        }) = &result
        {
            match (request_ip, &self.reporter) {
                (Some(request_ip), Some(reporter)) => reporter.report(IpDeviationReport {
                    sid: sid.clone(),
                    client_id: client_id.clone(),
                    session_ip: *session_ip,
                    request_ip: *request_ip,
                }),
                (None, _) => tracing::warn!(
                    sid = %sid,
                    "an IP-bound token arrived and the client's address is unknown: \
                     serve with ConnectInfo<SocketAddr> (and list trusted proxies)"
                ),
                (Some(_), None) => {}
            }
        }
        result
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.config.issuer)
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}
