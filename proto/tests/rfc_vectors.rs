//! Published vectors, copied from the RFC text into `data/rfc_vectors.json`:
//! RFC 9449 Figures 2, 7 and 13, the RFC 7638 §3.1 RSA key and the RFC 8037
//! A.3 Ed25519 key.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use holdfast_proto::{
    Htu, IatWindow, Jwk, MemoryReplayGuard, NonceCheck, ProofCheck, ProofError, ProofVerifier,
    UnixTime,
};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/rfc_vectors.json")).unwrap()
}

struct Figure {
    name: String,
    proof: String,
    htm: String,
    htu: Htu,
    iat: u64,
    access_token: Option<String>,
    jkt: String,
}

fn figures() -> Vec<Figure> {
    vectors()["rfc9449"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Figure {
            name: f["figure"].as_str().unwrap().to_owned(),
            proof: f["proof"].as_str().unwrap().to_owned(),
            htm: f["htm"].as_str().unwrap().to_owned(),
            htu: Htu::parse(f["htu"].as_str().unwrap()).unwrap(),
            iat: f["iat"].as_u64().unwrap(),
            access_token: f["access_token"].as_str().map(str::to_owned),
            jkt: f["jkt"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn check_at(figure: &Figure, now: u64) -> ProofCheck<'_> {
    ProofCheck {
        htm: &figure.htm,
        htu: &figure.htu,
        access_token: figure.access_token.as_deref(),
        bound_jkt: None,
        nonce: NonceCheck::NotRequired,
        now: UnixTime::from_secs(now),
    }
}

#[test]
fn rfc9449_figures_verify_at_their_own_time() {
    let figures = figures();
    let names: Vec<_> = figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["2", "7", "13"]);
    for figure in &figures {
        let verified = ProofVerifier::default()
            .verify(
                &figure.proof,
                &check_at(figure, figure.iat),
                &MemoryReplayGuard::default(),
            )
            .unwrap_or_else(|e| panic!("Figure {}: {e}", figure.name));
        assert_eq!(
            verified.jkt().as_str(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        assert_eq!(verified.jkt().as_str(), figure.jkt);
        assert_eq!(verified.iat(), UnixTime::from_secs(figure.iat));
    }
}

#[test]
fn rfc9449_figures_are_refused_today() {
    for figure in figures() {
        let now = 1_764_000_000;
        assert_eq!(
            ProofVerifier::default().verify(
                &figure.proof,
                &check_at(&figure, now),
                &MemoryReplayGuard::default()
            ),
            Err(ProofError::IatTooOld {
                iat: UnixTime::from_secs(figure.iat),
                now: UnixTime::from_secs(now),
                max_age: IatWindow::default().max_age
            }),
            "Figure {}",
            figure.name
        );
    }
}

#[test]
fn rfc9449_figure_13_needs_its_access_token() {
    let figure = figures().into_iter().find(|f| f.name == "13").unwrap();
    let mut check = check_at(&figure, figure.iat);
    check.access_token = Some("another-token");
    assert_eq!(
        ProofVerifier::default().verify(&figure.proof, &check, &MemoryReplayGuard::default()),
        Err(ProofError::AthMismatch)
    );
}

#[test]
fn rfc7638_rsa_thumbprint() {
    let v = vectors();
    let jwk = Jwk::from_value(v["rfc7638_rsa"]["jwk"].clone()).unwrap();
    assert_eq!(
        jwk.thumbprint().as_str(),
        v["rfc7638_rsa"]["thumbprint"].as_str().unwrap()
    );
    assert_eq!(
        jwk.thumbprint().as_str(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn rfc8037_ed25519_thumbprint() {
    let v = vectors();
    let jwk = Jwk::from_value(v["rfc8037_ed25519"]["jwk"].clone()).unwrap();
    assert_eq!(
        jwk.thumbprint().as_str(),
        v["rfc8037_ed25519"]["thumbprint"].as_str().unwrap()
    );
    assert_eq!(
        jwk.thumbprint().as_str(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}
