//! Setup against a running issuer: enroll an admin device with the code
//! `holdfastd admin bootstrap` printed, have it create one enrollment code
//! per load device, enroll those (with `holdfast_client::enroll`), and, for
//! the proxy, log each in once. Raw requests, so the nonce the issuer hands
//! out is kept for the pre-signed proofs.

use std::sync::Arc;

use getrandom::SysRng;
use holdfast_benches::FastKey;
use holdfast_proto::endpoints::TOKEN_PATH;
use holdfast_proto::{
    AccessToken, CLIENT_ASSERTION_TYPE, Clock as _, Htu, JwtHeader, ProofRequest, SystemClock,
    UnixTime, build_proof, sign_jwt,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Error;

/// Enrollments and logins in flight during setup.
const SETUP_PARALLELISM: usize = 16;

/// One enrolled load device.
pub(crate) struct Device {
    /// Its software key, on aws-lc-rs: the generator shares the machine with
    /// the servers, and this signs at about a fifth of `SoftwareKey`'s cost.
    pub(crate) key: Arc<FastKey>,
    /// Its `client_id`.
    pub(crate) client_id: String,
    /// Its access token (proxy mode).
    pub(crate) access: Option<AccessToken>,
}

/// What setup needs to talk to the issuer.
pub(crate) struct Setup {
    http: reqwest::Client,
    issuer: String,
    token_url: String,
    admin: Option<Device>,
    nonce: Option<String>,
    run_id: String,
}

impl Setup {
    pub(crate) fn new(http: reqwest::Client, issuer: &str) -> Self {
        let mut id = [0u8; 4];
        // A name clash only fails setup loudly; randomness is a nicety.
        let _ = getrandom::fill(&mut id);
        Self {
            http,
            issuer: issuer.to_owned(),
            token_url: format!("{issuer}{TOKEN_PATH}"),
            admin: None,
            nonce: None,
            run_id: hex(&id),
        }
    }

    /// The token endpoint.
    pub(crate) fn token_url(&self) -> String {
        self.token_url.clone()
    }

    /// The last `DPoP-Nonce` the issuer sent.
    pub(crate) fn nonce(&self) -> Option<String> {
        self.nonce.clone()
    }

    /// Enrolls the admin device with `code` and logs it in.
    pub(crate) async fn enroll_admin(&mut self, code: &str) -> Result<(), Error> {
        let mut admin = enroll_one(&self.http, &self.issuer, code, "load-admin").await?;
        let (access, nonce) = log_in(
            &self.http,
            &self.token_url,
            &admin.key,
            &admin.client_id,
            None,
        )
        .await?;
        admin.access = Some(access);
        self.nonce = nonce;
        self.admin = Some(admin);
        Ok(())
    }

    /// Creates `n` device codes through the admin API and enrolls `n`
    /// software-key devices with them.
    pub(crate) async fn enroll_devices(&mut self, n: u32) -> Result<Vec<Device>, Error> {
        let mut codes = Vec::new();
        for i in 0..n {
            let principal = format!("load-{}-{i:05}", self.run_id);
            let body = json!({"principal": principal, "roles": ["device"], "kinds": ["software"]});
            let created = self.admin_post("/admin/enrollment-codes", &body).await?;
            let code = created
                .get("code")
                .and_then(Value::as_str)
                .ok_or("the admin API answered without a code")?;
            codes.push((principal, code.to_owned()));
        }
        let semaphore = Arc::new(tokio::sync::Semaphore::new(SETUP_PARALLELISM));
        let mut tasks = JoinSet::new();
        for (index, (principal, code)) in codes.into_iter().enumerate() {
            let (http, issuer, semaphore) = (
                self.http.clone(),
                self.issuer.clone(),
                Arc::clone(&semaphore),
            );
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await?;
                let device = enroll_one(&http, &issuer, &code, &principal).await?;
                Ok::<_, Error>((index, device))
            });
        }
        let mut devices = collect(tasks).await?;
        devices.sort_by_key(|(index, _)| *index);
        Ok(devices.into_iter().map(|(_, device)| device).collect())
    }

    /// Gives every device an access token (one `client_credentials` each).
    pub(crate) async fn log_in_all(&mut self, devices: &mut [Device]) -> Result<(), Error> {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(SETUP_PARALLELISM));
        let mut tasks = JoinSet::new();
        for (index, device) in devices.iter().enumerate() {
            let (http, url, semaphore) = (
                self.http.clone(),
                self.token_url.clone(),
                Arc::clone(&semaphore),
            );
            let nonce = self.nonce.clone();
            let (key, client_id) = (Arc::clone(&device.key), device.client_id.clone());
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await?;
                let (access, _) = log_in(&http, &url, &key, &client_id, nonce).await?;
                Ok::<_, Error>((index, access))
            });
        }
        for (index, access) in collect(tasks).await? {
            if let Some(device) = devices.get_mut(index) {
                device.access = Some(access);
            }
        }
        Ok(())
    }

    /// A DPoP-authenticated `POST` to the admin API.
    async fn admin_post(&mut self, path: &str, body: &Value) -> Result<Value, Error> {
        let admin = self.admin.as_ref().ok_or("no admin enrolled")?;
        let access = admin.access.as_ref().ok_or("the admin has no token")?;
        let url = format!("{}{path}", self.issuer);
        let htu = Htu::parse(&url)?;
        let proof = proof(&admin.key, "POST", &htu, None, Some(access))?;
        let response = self
            .http
            .post(&url)
            .header("Authorization", format!("DPoP {}", access.expose()))
            .header("DPoP", proof)
            .json(body)
            .send()
            .await?;
        json_or_error(response, &url).await
    }
}

async fn enroll_one(
    http: &reqwest::Client,
    issuer: &str,
    code: &str,
    name: &str,
) -> Result<Device, Error> {
    let key = FastKey::generate()?;
    let request = holdfast_client::EnrollRequest {
        code,
        kind: "software",
        name,
        signer: &key,
        evidence: &mut holdfast_client::NoEvidence,
    };
    let enrolled = holdfast_client::enroll(http, issuer, request, now()).await?;
    Ok(Device {
        key: Arc::new(key),
        client_id: enrolled.client_id,
        access: None,
    })
}

/// `client_credentials` for `device`, retried once on `use_dpop_nonce`;
/// the access token and the issuer's latest nonce.
async fn log_in(
    http: &reqwest::Client,
    token_url: &str,
    key: &FastKey,
    client_id: &str,
    mut nonce: Option<String>,
) -> Result<(AccessToken, Option<String>), Error> {
    let htu = Htu::parse(token_url)?;
    for _ in 0..2 {
        let assertion = client_assertion(key, client_id, &htu, now())?;
        let proof = proof(key, "POST", &htu, nonce.as_deref(), None)?;
        let response = http
            .post(token_url)
            .header("DPoP", proof)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ])
            .send()
            .await?;
        if let Some(fresh) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
        {
            nonce = Some(fresh.to_owned());
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let token = body
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or("the token response has no access_token")?;
            return Ok((AccessToken::new(token.to_owned()), nonce));
        }
        if body.get("error").and_then(Value::as_str) != Some("use_dpop_nonce") {
            return Err(format!("{token_url} refused a login: {status} {body}").into());
        }
    }
    Err(format!("{token_url} asked for a nonce twice").into())
}

/// A `private_key_jwt` client assertion (RFC 7523 §3) for `client_id`,
/// addressed to the token endpoint, with a fresh `jti`.
pub(crate) fn client_assertion(
    key: &FastKey,
    client_id: &str,
    token_endpoint: &Htu,
    now: UnixTime,
) -> Result<String, Error> {
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| format!("no randomness: {e}"))?;
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint.as_str(),
        "iat": now,
        "exp": now.plus(60),
        "jti": hex(&jti),
    });
    let header = JwtHeader {
        typ: "JWT",
        kid: None,
        jwk: None,
    };
    Ok(sign_jwt(key, &header, &claims)?)
}

/// A DPoP proof for `htm htu`, now.
pub(crate) fn proof(
    key: &FastKey,
    htm: &str,
    htu: &Htu,
    nonce: Option<&str>,
    access_token: Option<&AccessToken>,
) -> Result<String, Error> {
    let request = ProofRequest {
        htm,
        htu,
        nonce,
        access_token,
    };
    Ok(build_proof(key, &mut SysRng, &request, now())?)
}

/// The time, from the one clock reader.
pub(crate) fn now() -> UnixTime {
    SystemClock.now()
}

async fn json_or_error(response: reqwest::Response, url: &str) -> Result<Value, Error> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{url}: {status} {body}").into())
    }
}

async fn collect<T: 'static>(mut tasks: JoinSet<Result<T, Error>>) -> Result<Vec<T>, Error> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        out.push(joined??);
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
