//! Shared fixtures for the Holdfast benches.
//!
//! - [`ProofFactory`]: realistic DPoP proofs made in bulk, each with a fresh
//!   `jti` and signed on every core, so a bench of the verifier never
//!   measures a replay refusal.
//! - [`fake_access_token`]: an `at+jwt`-shaped token of realistic size, for
//!   the `ath` check.
//! - [`prefilled_guard`]: a replay guard as full as a busy server's.
//! - [`ProofParts`]: a proof taken apart for bare signature verification,
//!   and [`distinct_signatures`], many of them.
//! - [`print_results`]: the table of this run's estimates.
//! - [`ResultFile`]: criterion's `estimates.json` for one benchmark, read back
//!   after the groups ran, and only if this run wrote it, so a ratio printed
//!   at the end comes from the run that printed it; [`ThisRun`], the
//!   estimates of a whole group and the ratios between them.
//! - [`FastKey`]: a software P-256 [`Signer`] on aws-lc-rs, for fixtures and
//!   the load generator, where signing is overhead rather than the subject.
//!
//! Nothing in Holdfast depends on this crate; it never touches the network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use std::{env, fs, thread};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64ct::{Base64UrlUnpadded, Encoding};
use getrandom::SysRng;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    AccessToken, CompactJws, Htu, Jkt, Jwk, MemoryReplayGuard, ProofRequest, ReplayGuard,
    ReplayKey, Signer, SignerError, UnixTime, build_proof,
};

/// A fixture failure. Benches report it and stop.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The time every proof is made at and checked at, so runs are comparable
/// and no proof ages out of the acceptance window mid-run.
pub const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

/// The target for a whole proof check (or a whole request): no less than
/// this fraction of the bare P-256 verification rate.
pub const TARGET_RATIO: f64 = 0.80;

/// Different signatures the `*_distinct` bare cases cycle through.
pub const DISTINCT_SIGNATURES: usize = 4096;

/// Live entries put in each replay guard before measuring: a server at
/// ~3.3k proofs/s over the 61 s a record is kept. An empty map would flatter
/// the guard (everything in cache).
pub const GUARD_PREFILL: usize = 200_000;

/// Far above what a run inserts (prefill + at most ~30k/s for ~10 s); a
/// full guard refuses, and a refusal stops the bench.
pub const GUARD_CAPACITY: usize = 4_000_000;

/// Makes DPoP proofs for one request: one method, one URI, optionally one
/// access token, signed by a [`SoftwareKey`].
pub struct ProofFactory {
    key: SoftwareKey,
    htm: &'static str,
    htu: Htu,
    access_token: Option<AccessToken>,
}

impl ProofFactory {
    /// A factory signing with `key` for `htm htu`, with `ath` when
    /// `access_token` is given.
    ///
    /// # Errors
    /// When `htu` is not an acceptable `htu`.
    pub fn new(
        key: SoftwareKey,
        htm: &'static str,
        htu: &str,
        access_token: Option<AccessToken>,
    ) -> Result<Self, Error> {
        Ok(Self {
            key,
            htm,
            htu: Htu::parse(htu)?,
            access_token,
        })
    }

    /// The signing key.
    pub fn key(&self) -> &SoftwareKey {
        &self.key
    }

    /// The method the proofs are for.
    pub fn htm(&self) -> &'static str {
        self.htm
    }

    /// The normalised URI the proofs are for.
    pub fn htu(&self) -> &Htu {
        &self.htu
    }

    /// One proof signed by the factory's key.
    ///
    /// # Errors
    /// When signing or the random number generator fails.
    pub fn one(&self) -> Result<String, Error> {
        self.sign_with(&self.key)
    }

    /// `n` proofs signed by the factory's key, each with its own `jti`,
    /// made on all cores.
    ///
    /// # Errors
    /// As [`ProofFactory::one`].
    pub fn many(&self, n: usize) -> Result<Vec<String>, Error> {
        on_all_cores(n, || self.one())
    }

    /// `n` proofs, each signed by a key generated for it: every proof
    /// misses the verifier's key cache.
    ///
    /// # Errors
    /// When key generation or signing fails.
    pub fn many_with_new_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        on_all_cores(n, || self.sign_with(&SoftwareKey::generate()?))
    }

    fn sign_with(&self, signer: &dyn Signer) -> Result<String, Error> {
        let request = ProofRequest {
            htm: self.htm,
            htu: &self.htu,
            nonce: None,
            access_token: self.access_token.as_ref(),
        };
        Ok(build_proof(signer, &mut SysRng, &request, NOW)?)
    }
}

/// Runs `make` `n` times spread over the available cores, keeping the results.
fn on_all_cores<F>(n: usize, make: F) -> Result<Vec<String>, Error>
where
    F: Fn() -> Result<String, Error> + Sync,
{
    let threads = thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, n.max(1));
    let per_thread = n.div_ceil(threads);
    thread::scope(|scope| {
        let make = &make;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = per_thread.min(n.saturating_sub(t * per_thread));
                scope.spawn(move || (0..count).map(|_| make()).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for handle in handles {
            let made = handle
                .join()
                .map_err(|_| Error::from("a proof-making thread panicked"))??;
            out.extend(made);
        }
        Ok(out)
    })
}

/// A guard of [`GUARD_CAPACITY`] holding [`GUARD_PREFILL`] live entries for
/// `htu` (by a key of its own), as a busy server's would.
///
/// # Errors
/// When key generation fails or the guard refuses an entry.
pub fn prefilled_guard(htu: &Htu) -> Result<MemoryReplayGuard, Error> {
    let guard = MemoryReplayGuard::new(GUARD_CAPACITY);
    let jkt = SoftwareKey::generate()?.public_jwk().thumbprint();
    for i in 0..GUARD_PREFILL {
        let key = ReplayKey::new(&jkt, htu.as_str(), &format!("prefill-{i}"));
        guard.check_and_record(key, NOW.plus(61), NOW)?;
    }
    Ok(guard)
}

/// A proof split into what a bare signature verification needs, and what
/// the steps around it read.
#[derive(Debug, Clone)]
pub struct ProofParts {
    /// The JWS signing input (`header.payload`).
    pub signing_input: Vec<u8>,
    /// The raw `r ‖ s` signature.
    pub signature: Vec<u8>,
    /// The header's `jwk`.
    pub jwk: Jwk,
    /// That key as an uncompressed SEC 1 point.
    pub sec1: Vec<u8>,
    /// The decoded payload (the claims' JSON).
    pub payload: Vec<u8>,
}

impl ProofParts {
    /// Takes `proof` apart.
    ///
    /// # Errors
    /// When `proof` is not a compact JWS with a P-256 `jwk` in its header.
    pub fn of(proof: &str) -> Result<Self, Error> {
        let jws = CompactJws::parse(proof)?;
        let jwk = jws
            .header()
            .jwk()
            .ok_or("the proof has no jwk")?
            .map_err(|e| e.to_string())?
            .clone();
        let Jwk::Ec(ec) = &jwk else {
            return Err("the proof's key is not P-256".into());
        };
        let sec1 = ec.sec1_uncompressed();
        Ok(Self {
            signing_input: jws.signing_input().to_vec(),
            signature: jws.signature().to_vec(),
            payload: jws.payload().to_vec(),
            jwk,
            sec1,
        })
    }
}

/// A JWS signing input and its signature.
pub type Signed = (Vec<u8>, Vec<u8>);

/// The signing inputs and signatures of [`DISTINCT_SIGNATURES`] fresh
/// proofs from `factory`: a bare verification floor over new data each
/// time, as a server sees it.
///
/// # Errors
/// When making or taking apart a proof fails.
pub fn distinct_signatures(factory: &ProofFactory) -> Result<Vec<Signed>, Error> {
    factory
        .many(DISTINCT_SIGNATURES)?
        .iter()
        .map(|proof| {
            let parts = ProofParts::of(proof)?;
            Ok((parts.signing_input, parts.signature))
        })
        .collect()
}

/// Prints the estimates of this run as a table, one `(case, estimates)` row
/// each.
pub fn print_results<'a>(rows: impl IntoIterator<Item = (String, &'a Estimates)>) {
    println!();
    println!("== Results of this run (criterion point estimates per iteration) ==");
    println!("| case | mean µs/op | ops/s (from mean) | slope µs/op |");
    println!("|---|---:|---:|---:|");
    for (case, e) in rows {
        let slope = e
            .slope_ns
            .map_or_else(|| "-".to_owned(), |ns| format!("{:.3}", ns / 1e3));
        println!(
            "| {case} | {:.3} | {:.0} | {slope} |",
            e.mean_ns / 1e3,
            1e9 / e.mean_ns
        );
    }
}

/// A DPoP-bound access token shaped like the ones Holdfast issues (RFC 9068
/// `at+jwt`, ES256, `cnf.jkt` = `jkt`), about 700 characters. Its signature
/// is filler: the proof verifier only hashes the token for `ath`.
pub fn fake_access_token(jkt: &Jkt) -> String {
    let exp = NOW.plus(300);
    let header = r#"{"typ":"at+jwt","alg":"ES256","kid":"holdfast-2025-06-a"}"#;
    let claims = format!(
        concat!(
            r#"{{"iss":"https://issuer.example.com","sub":"svc-orders","#,
            r#""aud":"https://api.example.com","exp":{exp},"iat":{iat},"#,
            r#""jti":"Qm9vZ2llV29vZ2llMTIzNA","client_id":"device-7f3a9c1e5b2d","#,
            r#""scope":"orders:read orders:write","sid":"c2Vzc2lvbi0wMDAwMDAwMQ","#,
            r#""cnf":{{"jkt":"{jkt}"}},"amr":["hwk","pop"]}}"#
        ),
        exp = exp,
        iat = NOW,
        jkt = jkt,
    );
    let signature: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    format!(
        "{}.{}.{}",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.as_bytes()),
        Base64UrlUnpadded::encode_string(&signature)
    )
}

/// A software P-256 key held by aws-lc-rs: the same ES256 signatures as a
/// [`SoftwareKey`] (which uses RustCrypto `p256`) at about a fifth of the
/// cost, so fixtures and the load generator spend little time signing.
/// A key for tests and load only: it lives in memory and is never saved.
pub struct FastKey {
    pair: EcdsaKeyPair,
    jwk: Jwk,
    rng: SystemRandom,
}

impl FastKey {
    /// A new random key.
    ///
    /// # Errors
    /// When aws-lc cannot generate a key.
    pub fn generate() -> Result<Self, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "aws-lc cannot generate a P-256 key")?;
        let point = pair.public_key().as_ref();
        // An uncompressed SEC 1 point: 0x04 ‖ x ‖ y.
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(
                "aws-lc returned a public key that is not an uncompressed P-256 point".into(),
            );
        };
        let jwk = Jwk::p256(x.try_into()?, y.try_into()?);
        Ok(Self {
            pair,
            jwk,
            rng: SystemRandom::new(),
        })
    }
}

impl Signer for FastKey {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| SignerError::new("aws-lc could not sign"))
    }
}

impl std::fmt::Debug for FastKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FastKey({})", self.jwk.thumbprint())
    }
}

/// The estimates this run wrote for one criterion group, by case id, and
/// the ratios between them. Cases filtered out (or `--test` runs) are
/// absent; results of earlier runs are never read.
#[derive(Debug, Clone)]
pub struct ThisRun {
    group: String,
    ran: Vec<(String, Estimates)>,
}

/// One [`ResultFile`] per case id of `group`, noted before the run.
pub fn result_files(home: &Path, group: &str, ids: &[String]) -> Vec<(String, ResultFile)> {
    ids.iter()
        .map(|id| (id.clone(), ResultFile::before_run(home, group, id)))
        .collect()
}

impl ThisRun {
    /// The estimates of the files this run rewrote.
    pub fn read(group: &str, files: &[(String, ResultFile)]) -> Self {
        Self {
            group: group.to_owned(),
            ran: files
                .iter()
                .filter_map(|(id, f)| Some((id.clone(), f.estimates()?)))
                .collect(),
        }
    }

    /// The estimates of case `id`, if it ran.
    pub fn get(&self, id: &str) -> Option<Estimates> {
        self.ran.iter().find(|(i, _)| i == id).map(|(_, e)| *e)
    }

    /// Whether nothing ran in benchmark mode.
    pub fn is_empty(&self) -> bool {
        self.ran.is_empty()
    }

    /// Prints the table of this run's estimates.
    pub fn print_table(&self) {
        print_results(
            self.ran
                .iter()
                .map(|(id, e)| (format!("{}/{id}", self.group), e)),
        );
    }

    /// Prints and returns `case`'s rate as a fraction of `floor`'s (the
    /// floor's time over the case's, from the means), with the slopes'
    /// ratio and, if given, whether it meets `target`.
    pub fn print_ratio(&self, case: &str, floor: &str, target: Option<f64>) -> Option<f64> {
        let (c, f) = (self.get(case)?, self.get(floor)?);
        let ratio = f.mean_ns / c.mean_ns;
        let slopes = match (f.slope_ns, c.slope_ns) {
            (Some(fs), Some(cs)) => format!(", {:.3} from the slopes", fs / cs),
            _ => String::new(),
        };
        let verdict = target.map_or_else(String::new, |t| {
            if ratio >= t {
                format!(" (meets {t:.2})")
            } else {
                format!(" (BELOW {t:.2})")
            }
        });
        println!(
            "{g}/{case}: {:.1} µs = {:.0}/s; {g}/{floor}: {:.1} µs; rate ratio {ratio:.3}{slopes}{verdict}",
            c.mean_ns / 1e3,
            1e9 / c.mean_ns,
            f.mean_ns / 1e3,
            g = self.group,
        );
        Some(ratio)
    }
}

/// Where criterion writes its results, found the way criterion 0.8 finds
/// it: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// target directory `cargo metadata` reports, else `target/criterion`.
/// Benches pass it to criterion explicitly, so both agree.
pub fn criterion_home() -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    cargo_metadata_target_dir().map_or_else(
        || PathBuf::from("target/criterion"),
        |t| t.join("criterion"),
    )
}

fn cargo_metadata_target_dir() -> Option<PathBuf> {
    let cargo = env::var_os("CARGO")?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
}

/// Criterion's `estimates.json` for one benchmark, remembered as it was
/// before the run, so that a result left by an earlier run (or by a run
/// filtered to other benchmarks) is never read as this run's.
#[derive(Debug, Clone)]
pub struct ResultFile {
    path: PathBuf,
    before: Option<SystemTime>,
}

impl ResultFile {
    /// Notes the current state of `home/group/id/new/estimates.json`. Call
    /// before the benchmark runs. `group` and `id` must be plain names
    /// (criterion rewrites some characters in directory names).
    pub fn before_run(home: &Path, group: &str, id: &str) -> Self {
        let path = home.join(group).join(id).join("new").join("estimates.json");
        let before = modified(&path);
        Self { path, before }
    }

    /// Criterion's estimates, if this run wrote the file; `None` if it did
    /// not (benchmark filtered out, `--test` or `--list` mode) or it cannot
    /// be read.
    pub fn estimates(&self) -> Option<Estimates> {
        let after = modified(&self.path)?;
        if self.before == Some(after) {
            return None;
        }
        let text = fs::read_to_string(&self.path).ok()?;
        Estimates::from_json(&text)
    }
}

/// Criterion's point estimates of the time per iteration, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimates {
    /// The mean over samples of each sample's time per iteration. Ratios
    /// are computed from this.
    pub mean_ns: f64,
    /// The slope of a linear fit of time against iterations (what criterion
    /// prints as `time:`), present for linear sampling only.
    pub slope_ns: Option<f64>,
}

impl Estimates {
    fn from_json(json: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        let point = |name: &str| {
            value
                .get(name)?
                .get("point_estimate")?
                .as_f64()
                .filter(|ns| ns.is_finite() && *ns > 0.0)
        };
        Some(Self {
            mean_ns: point("mean")?,
            slope_ns: point("slope"),
        })
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use holdfast_proto::{MemoryReplayGuard, NonceCheck, ProofCheck, ProofVerifier};

    use super::*;

    #[test]
    fn factory_proofs_verify_once_each() {
        let key = SoftwareKey::generate().unwrap();
        let token = fake_access_token(&key.public_jwk().thumbprint());
        let factory = ProofFactory::new(
            key,
            "GET",
            "https://api.example.com/v1/orders",
            Some(AccessToken::new(token.clone())),
        )
        .unwrap();
        let proofs = factory.many(5).unwrap();
        assert_eq!(proofs.len(), 5);
        let verifier = ProofVerifier::default();
        let guard = MemoryReplayGuard::new(100);
        let check = ProofCheck {
            htm: factory.htm(),
            htu: factory.htu(),
            access_token: Some(&token),
            bound_jkt: None,
            nonce: NonceCheck::NotRequired,
            now: NOW,
        };
        for proof in &proofs {
            verifier.verify(proof, &check, &guard).unwrap();
        }
        assert!(verifier.verify(&proofs[0], &check, &guard).is_err());
    }

    #[test]
    fn new_key_proofs_have_distinct_keys() {
        let factory = ProofFactory::new(
            SoftwareKey::generate().unwrap(),
            "POST",
            "https://issuer.example.com/token",
            None,
        )
        .unwrap();
        let proofs = factory.many_with_new_keys(3).unwrap();
        let headers: std::collections::HashSet<_> =
            proofs.iter().map(|p| p.split('.').next()).collect();
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn proof_parts_take_a_proof_apart() {
        let key = SoftwareKey::generate().unwrap();
        let Jwk::Ec(ec) = key.public_jwk().clone() else {
            panic!("a SoftwareKey is P-256")
        };
        let factory = ProofFactory::new(key, "GET", "https://api.example.com/a", None).unwrap();
        let proof = factory.one().unwrap();
        let parts = ProofParts::of(&proof).unwrap();
        assert_eq!(parts.sec1, ec.sec1_uncompressed());
        let (input, signature) = proof.rsplit_once('.').unwrap();
        assert_eq!(parts.signing_input, input.as_bytes());
        assert_eq!(
            Base64UrlUnpadded::encode_string(&parts.signature),
            signature
        );
        let claims: serde_json::Value = serde_json::from_slice(&parts.payload).unwrap();
        assert_eq!(claims["htm"], "GET");
        assert!(ProofParts::of("not-a-jws").is_err());
    }

    #[test]
    fn prefilled_guard_holds_the_prefill() {
        let htu = Htu::parse("https://api.example.com/a").unwrap();
        let guard = prefilled_guard(&htu).unwrap();
        assert_eq!(guard.len(), GUARD_PREFILL);
    }

    #[test]
    fn fast_key_signs_verifiable_proofs() {
        let key = FastKey::generate().unwrap();
        let htu = Htu::parse("https://api.example.com/a").unwrap();
        let request = ProofRequest {
            htm: "GET",
            htu: &htu,
            nonce: None,
            access_token: None,
        };
        let proof = build_proof(&key, &mut SysRng, &request, NOW).unwrap();
        let check = ProofCheck {
            htm: "GET",
            htu: &htu,
            access_token: None,
            bound_jkt: Some(&key.public_jwk().thumbprint()),
            nonce: NonceCheck::NotRequired,
            now: NOW,
        };
        ProofVerifier::default()
            .verify(&proof, &check, &MemoryReplayGuard::new(10))
            .unwrap();
    }

    #[test]
    fn reads_point_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.5,"standard_error":0.1},"median":{"point_estimate":2.0},"slope":{"point_estimate":2.25}}"#;
        assert_eq!(
            Estimates::from_json(json),
            Some(Estimates {
                mean_ns: 2.5,
                slope_ns: Some(2.25)
            })
        );
        let flat = r#"{"mean":{"point_estimate":3.0},"slope":null}"#;
        assert_eq!(Estimates::from_json(flat).unwrap().slope_ns, None);
        assert_eq!(Estimates::from_json("{}"), None);
    }

    #[test]
    fn result_file_from_an_earlier_run_is_not_read() {
        let dir = env::temp_dir().join(format!("holdfast-benches-{}", std::process::id()));
        let new = dir.join("g").join("id").join("new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":7.0}}"#,
        )
        .unwrap();
        let file = ResultFile::before_run(&dir, "g", "id");
        assert_eq!(file.estimates(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
