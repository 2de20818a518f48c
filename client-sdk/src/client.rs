//! `DpopClient`: every request DPoP-correct without thinking about it.
//!
//! It obtains tokens with `client_credentials` + `private_key_jwt` + DPoP,
//! refreshes before expiry (and once on `invalid_token`), signs a fresh proof
//! for every request and every retry, keeps one server nonce per origin and
//! retries once on `use_dpop_nonce`, and corrects its `iat` for the clock
//! skew it learns from the server's `Date` header. Signing runs on the
//! blocking pool: a hardware signature can take hundreds of milliseconds.
//! Tokens live in memory only; nothing secret is logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use getrandom::SysRng;
use holdfast_proto::endpoints::METADATA_PATH;
use holdfast_proto::{
    AccessToken, CLIENT_ASSERTION_TYPE, Clock, Htu, JwtHeader, ProofRequest, Signer, SystemClock,
    UnixTime, build_proof, sign_jwt,
};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::ClientError;

/// Refresh this long before the access token expires.
const REFRESH_MARGIN_SECS: u64 = 30;

/// A DPoP client for one device identity.
pub struct DpopClient {
    http: reqwest::Client,
    signer: Arc<dyn Signer>,
    client_id: String,
    issuer: String,
    token_endpoint: Htu,
    clock: Arc<dyn Clock>,
    /// Server time minus our time, in seconds.
    skew: AtomicI64,
    /// The latest `DPoP-Nonce` per origin.
    nonces: Mutex<HashMap<String, String>>,
    /// The session; one refresh at a time.
    tokens: tokio::sync::Mutex<Option<TokenSet>>,
}

struct TokenSet {
    access: AccessToken,
    refresh: Option<Zeroizing<String>>,
    expires_at: UnixTime,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: u64,
    refresh_token: Option<String>,
}

impl DpopClient {
    /// Discovers the issuer's metadata (RFC 8414) and builds a client for
    /// `client_id`, whose enrolled key is `signer`.
    ///
    /// # Errors
    /// [`ClientError`] if the metadata cannot be fetched or is unusable.
    pub async fn discover(
        issuer_url: &str,
        client_id: &str,
        signer: Arc<dyn Signer>,
    ) -> Result<Self, ClientError> {
        Self::discover_with(
            issuer_url,
            client_id,
            signer,
            reqwest::Client::new(),
            Arc::new(SystemClock),
        )
        .await
    }

    /// As [`DpopClient::discover`], with an HTTP client and a clock of the
    /// caller's (tests inject a skewed clock).
    ///
    /// # Errors
    /// [`ClientError`] if the metadata cannot be fetched or is unusable.
    pub async fn discover_with(
        issuer_url: &str,
        client_id: &str,
        signer: Arc<dyn Signer>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientError> {
        let base = issuer_url.trim_end_matches('/');
        let url = format!("{base}{METADATA_PATH}");
        let response = send(http.get(&url), &url).await?;
        let skew = skew_from(response.headers(), clock.as_ref()).unwrap_or(0);
        let metadata: Metadata = json_or_refusal(response, &url).await.and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| ClientError::Protocol(format!("issuer metadata: {e}")))
        })?;
        if metadata.issuer != base {
            return Err(ClientError::Protocol(format!(
                "issuer metadata names {:?}, expected {base:?} (RFC 8414 §3.3)",
                metadata.issuer
            )));
        }
        let token_endpoint = Htu::parse(&metadata.token_endpoint)
            .map_err(|_| ClientError::BadUrl(metadata.token_endpoint.clone()))?;
        Ok(Self {
            http,
            signer,
            client_id: client_id.to_owned(),
            issuer: metadata.issuer,
            token_endpoint,
            clock,
            skew: AtomicI64::new(skew),
            nonces: Mutex::new(HashMap::new()),
            tokens: tokio::sync::Mutex::new(None),
        })
    }

    /// The device's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A valid access token: the current one, a refreshed one, or a new
    /// session.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::ReauthenticationRequired`] when the
    /// issuer refuses both refresh and a new session.
    pub async fn access_token(&self) -> Result<AccessToken, ClientError> {
        let mut tokens = self.tokens.lock().await;
        if let Some(set) = tokens.as_ref()
            && set.expires_at > self.now().plus(REFRESH_MARGIN_SECS)
        {
            return Ok(set.access.clone());
        }
        // On failure the old set stays: a network error must not cost the
        // refresh token.
        let set = self.renew(tokens.as_ref()).await?;
        let access = set.access.clone();
        *tokens = Some(set);
        Ok(access)
    }

    /// Forgets the access token (not the refresh token), so the next call
    /// refreshes: used after a resource server says `invalid_token`.
    pub async fn invalidate_access_token(&self) {
        if let Some(set) = self.tokens.lock().await.as_mut() {
            set.expires_at = UnixTime::from_secs(0);
        }
    }

    /// Sends a DPoP-signed request with the current access token: a fresh
    /// proof (with `ath`) each time, one retry on `use_dpop_nonce`, and one
    /// on `invalid_token` after a refresh.
    ///
    /// # Errors
    /// [`ClientError`] for transport failures and refusals of the token
    /// itself; other HTTP statuses are returned as responses.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut refreshed = false;
        let mut nonce_retried = false;
        loop {
            let token = self.access_token().await?;
            let proof = self.proof(method.as_str(), url, Some(&token)).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone())
                .header("Authorization", format!("DPoP {}", token.expose()))
                .header("DPoP", proof);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = send(request, url).await?;
            self.learn(url, response.headers());
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if challenge.contains("use_dpop_nonce") && !nonce_retried {
                nonce_retried = true;
                continue;
            }
            if challenge.contains("invalid_token") && !refreshed {
                refreshed = true;
                self.invalidate_access_token().await;
                continue;
            }
            return Ok(response);
        }
    }

    /// The time as the server sees it.
    fn now(&self) -> UnixTime {
        let local = self.clock.now().as_secs();
        let skew = self.skew.load(Ordering::Relaxed);
        UnixTime::from_secs(local.saturating_add_signed(skew))
    }

    /// Signs a proof for `method url` off the async executor.
    async fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&AccessToken>,
    ) -> Result<String, ClientError> {
        let htu = Htu::parse(url).map_err(|_| ClientError::BadUrl(url.to_owned()))?;
        let nonce = self.nonce_for(url);
        let signer = Arc::clone(&self.signer);
        let method = method.to_owned();
        let token = token.cloned();
        let now = self.now();
        tokio::task::spawn_blocking(move || {
            let request = ProofRequest {
                htm: &method,
                htu: &htu,
                nonce: nonce.as_deref(),
                access_token: token.as_ref(),
            };
            build_proof(signer.as_ref(), &mut SysRng, &request, now)
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("signing task failed: {e}")))?
        .map_err(ClientError::from)
    }

    /// The `private_key_jwt` assertion (RFC 7523 §3), signed off the executor.
    async fn client_assertion(&self) -> Result<String, ClientError> {
        let signer = Arc::clone(&self.signer);
        let now = self.now();
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti)
            .map_err(|e| ClientError::Protocol(format!("no randomness: {e}")))?;
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint.as_str(),
            "iat": now,
            "exp": now.plus(60),
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        tokio::task::spawn_blocking(move || {
            let header = JwtHeader {
                typ: "JWT",
                kid: None,
                jwk: None,
            };
            sign_jwt(signer.as_ref(), &header, &claims)
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("signing task failed: {e}")))?
        .map_err(ClientError::from)
    }

    /// Refreshes `old` if it has a refresh token, else (or if refresh is
    /// refused) starts a new session.
    async fn renew(&self, old: Option<&TokenSet>) -> Result<TokenSet, ClientError> {
        if let Some(refresh) = old.and_then(|set| set.refresh.as_ref()) {
            match self
                .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
                .await
            {
                Ok(set) => return Ok(set),
                Err(ClientError::Refused { error, .. }) if error == "invalid_grant" => {
                    tracing::info!("refresh refused; starting a new session");
                }
                Err(other) => return Err(other),
            }
        }
        let assertion = self.client_assertion().await?;
        match self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ])
            .await
        {
            Err(ClientError::Refused {
                error, description, ..
            }) if error == "invalid_client" || error == "invalid_grant" => {
                Err(ClientError::ReauthenticationRequired(description))
            }
            other => other,
        }
    }

    /// One token request, retried once with a fresh proof on `use_dpop_nonce`.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenSet, ClientError> {
        let url = self.token_endpoint.as_str().to_owned();
        for attempt in 0..2 {
            let proof = self.proof("POST", &url, None).await?;
            let response =
                send(self.http.post(&url).header("DPoP", proof).form(form), &url).await?;
            self.learn(&url, response.headers());
            match json_or_refusal(response, &url).await {
                Ok(body) => return self.token_set(body),
                Err(ClientError::Refused { error, .. })
                    if error == "use_dpop_nonce" && attempt == 0 => {}
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Protocol(
            "the issuer asked for a nonce twice".into(),
        ))
    }

    fn token_set(&self, body: Value) -> Result<TokenSet, ClientError> {
        let response: TokenResponse = serde_json::from_value(body)
            .map_err(|e| ClientError::Protocol(format!("token response: {e}")))?;
        // RFC 9449 §5: a DPoP-bound token says so; anything else is refused
        // rather than used as a bearer token.
        if !response.token_type.eq_ignore_ascii_case("DPoP") {
            return Err(ClientError::Protocol(format!(
                "token_type is {:?}, not DPoP: refusing an unbound token",
                response.token_type
            )));
        }
        Ok(TokenSet {
            access: AccessToken::new(response.access_token),
            refresh: response.refresh_token.map(Zeroizing::new),
            expires_at: self.now().plus(response.expires_in),
        })
    }

    /// Learns the server's nonce and clock from a response.
    fn learn(&self, url: &str, headers: &HeaderMap) {
        if let Some(nonce) = headers.get("dpop-nonce").and_then(|v| v.to_str().ok())
            && let Some(origin) = origin(url)
        {
            let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
            nonces.insert(origin, nonce.to_owned());
        }
        if let Some(skew) = skew_from(headers, self.clock.as_ref()) {
            self.skew.store(skew, Ordering::Relaxed);
        }
    }

    fn nonce_for(&self, url: &str) -> Option<String> {
        let origin = origin(url)?;
        let nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.get(&origin).cloned()
    }
}

impl std::fmt::Debug for DpopClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopClient")
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Server time minus local time, from a response's `Date` header.
fn skew_from(headers: &HeaderMap, clock: &dyn Clock) -> Option<i64> {
    let server = headers
        .get(reqwest::header::DATE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let server = i64::try_from(server.as_secs()).ok()?;
    let local = i64::try_from(clock.now().as_secs()).ok()?;
    Some(server - local)
}

/// `scheme://host[:port]` of a URL, normalised.
fn origin(url: &str) -> Option<String> {
    let htu = Htu::parse(url).ok()?;
    let s = htu.as_str();
    let after_scheme = s.find("://")? + 3;
    let end = s
        .get(after_scheme..)?
        .find('/')
        .map_or(s.len(), |i| i + after_scheme);
    s.get(..end).map(str::to_owned)
}

/// Sends a request; a transport failure names the URL.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, ClientError> {
    request
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.to_owned(),
            source,
        })
}

/// The JSON body of a 2xx response, or the OAuth refusal it carries.
pub(crate) async fn json_or_refusal(
    response: reqwest::Response,
    url: &str,
) -> Result<Value, ClientError> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(json);
    }
    Err(ClientError::Refused {
        status: status.as_u16(),
        error: json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_owned(),
        description: json
            .get("error_description")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_urls() {
        assert_eq!(
            origin("https://API.example.com:443/x?y").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/token").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("not a url"), None);
    }
}
