//! JWKS parsing, and the refetch on an unknown `kid` with its rate limit,
//! against a tiny JWKS server on 127.0.0.1 that counts its hits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{IssuerKeys, Signer as _};
use serde_json::{Value, json};

use super::*;

/// A JWK Set entry for `key`, with `kid` and the members the issuer adds.
fn entry(key: &SoftwareKey, kid: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(&key.public_jwk().to_json()).unwrap();
    let object = jwk.as_object_mut().unwrap();
    object.insert("kid".into(), kid.into());
    object.insert("use".into(), "sig".into());
    object.insert("alg".into(), "ES256".into());
    jwk
}

#[test]
fn parses_the_issuers_key_set() {
    let k1 = SoftwareKey::generate().unwrap();
    let k2 = SoftwareKey::generate().unwrap();
    let keys = parse_jwks(&json!({ "keys": [entry(&k1, "k1"), entry(&k2, "k2")] })).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains_key("k1") && keys.contains_key("k2"));
}

#[test]
fn skips_keys_it_cannot_use() {
    let good = SoftwareKey::generate().unwrap();
    let other = SoftwareKey::generate().unwrap();
    let mut no_kid = entry(&other, "x");
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut encryption = entry(&other, "enc");
    encryption["use"] = "enc".into();
    let mut es384 = entry(&other, "es384");
    es384["alg"] = "ES384".into();
    let mut private = entry(&other, "private");
    private["d"] = "AAAA".into();
    let p384 = json!({"kty": "EC", "crv": "P-384", "kid": "p384",
        "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
    let hmac = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
    let duplicate = entry(&other, "good");
    let keys = parse_jwks(&json!({ "keys": [
        entry(&good, "good"), no_kid, encryption, es384, private, p384, hmac, duplicate,
        entry(&other, ""),
    ]}))
    .unwrap();
    assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["good"]);
    // The first key with a kid wins: it verifies `good`'s signatures.
    let signature = good.try_sign(b"input").unwrap();
    assert!(keys["good"].verify(b"input", &signature).is_ok());
}

#[test]
fn rejects_documents_that_are_not_key_sets_or_have_no_usable_key() {
    for document in [json!([]), json!({"keys": {}}), json!({"jwks": []})] {
        assert!(
            matches!(parse_jwks(&document), Err(JwksError::NotAKeySet)),
            "{document}"
        );
    }
    for document in [json!({"keys": []}), json!({"keys": [{"kty": "EC"}]})] {
        assert!(
            matches!(parse_jwks(&document), Err(JwksError::NoUsableKeys)),
            "{document}"
        );
    }
}

/// A JWKS endpoint serving `document`, counting its hits.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

type Served = (Arc<Mutex<Value>>, Arc<AtomicUsize>);

async fn serve(document: Value) -> JwksServer {
    async fn jwks(State((document, hits)): State<Served>) -> Json<Value> {
        hits.fetch_add(1, Ordering::SeqCst);
        Json(document.lock().unwrap().clone())
    }
    let document = Arc::new(Mutex::new(document));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/jwks", get(jwks))
        .with_state((document.clone(), hits.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer {
        url,
        document,
        hits,
    }
}

/// Polls `done` until it holds, for at most 5 s.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn options(min_refetch_interval: Duration) -> JwksOptions {
    JwksOptions {
        min_refetch_interval,
        ..JwksOptions::default()
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused_then_found_after_the_refetch() {
    let old = SoftwareKey::generate().unwrap();
    let new = SoftwareKey::generate().unwrap();
    let server = serve(json!({ "keys": [entry(&old, "old")] })).await;
    let cache = Arc::new(JwksCache::new(
        &server.url,
        reqwest::Client::new(),
        options(Duration::ZERO),
    ));
    assert_eq!(cache.refresh().await.unwrap(), 1);
    let refresher = tokio::spawn(cache.clone().run());
    assert!(cache.key("old").is_some());

    // The issuer rotates: the first token with the new kid is refused...
    *server.document.lock().unwrap() = json!({ "keys": [entry(&old, "old"), entry(&new, "new")] });
    assert!(cache.key("new").is_none());
    // ...and the refetch it caused brings the key for the next one.
    eventually("the new key", || cache.stats().keys == 2).await;
    assert!(cache.key("new").is_some());
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.unknown_kids), (2, 1));
    refresher.abort();
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let key = SoftwareKey::generate().unwrap();
    let server = serve(json!({ "keys": [entry(&key, "k1")] })).await;
    let cache = Arc::new(JwksCache::new(
        &server.url,
        reqwest::Client::new(),
        options(Duration::from_secs(3600)),
    ));
    cache.refresh().await.unwrap();
    let refresher = tokio::spawn(cache.clone().run());

    for i in 0..10_000 {
        assert!(cache.key(&format!("forged-{i}")).is_none());
    }
    // The refresher took the request and holds it back for the interval.
    eventually("the refetch to be deferred", || cache.stats().deferred == 1).await;
    for i in 0..10_000 {
        assert!(cache.key(&format!("forged-again-{i}")).is_none());
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "only the first fetch"
    );
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.unknown_kids), (1, 20_000));
    assert!(cache.key("k1").is_some());
    refresher.abort();
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_keys_held() {
    let key = SoftwareKey::generate().unwrap();
    let server = serve(json!({ "keys": [entry(&key, "k1")] })).await;
    let cache = JwksCache::new(&server.url, reqwest::Client::new(), JwksOptions::default());
    cache.refresh().await.unwrap();
    *server.document.lock().unwrap() = json!({ "keys": [] });
    assert!(matches!(
        cache.refresh().await,
        Err(JwksError::NoUsableKeys)
    ));
    assert!(cache.key("k1").is_some());
    let unreachable = JwksCache::new(
        "http://127.0.0.1:9/jwks",
        reqwest::Client::new(),
        JwksOptions::default(),
    );
    assert!(matches!(
        unreachable.refresh().await,
        Err(JwksError::Fetch(FetchError::Request { .. }))
    ));
    assert_eq!(cache.stats().failures, 1);
}
