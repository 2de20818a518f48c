//! A service whose `/orders` answers only requests with a fresh DPoP proof
//! by an enrolled, unrevoked Holdfast device key, and says who sent them.
//!
//! ```sh
//! HOLDFAST_ISSUER=https://issuer.example HOLDFAST_RS_SECRET=… \
//!     cargo run -p holdfast-verifier --example protected_service
//! ```
//!
//! `HOLDFAST_ISSUER` is the issuer's `public_url`; `HOLDFAST_RS_SECRET` the
//! secret of the resource server `api` in its `resource_servers`. The service
//! listens on 127.0.0.1:3000, which is also its public base URL (`htu`).

use axum::routing::get;
use axum::{Json, Router};
use holdfast_verifier::{Verified, VerifiedIdentity, VerifierConfig, VerifierLayer, connect};

const LISTEN: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("HOLDFAST_ISSUER")?;
    let secret = std::env::var("HOLDFAST_RS_SECRET")?;
    let base_url = format!("http://{LISTEN}");
    let config = VerifierConfig::new(&issuer, "holdfast", &base_url, "api", &secret);
    // Loads the issuer's keys and registry, then follows its feed.
    let (verifier, _feed) = connect(config, reqwest::Client::new()).await?;

    let app = Router::new()
        .route("/orders", get(orders))
        .layer(VerifierLayer::new(verifier));
    axum::serve(tokio::net::TcpListener::bind(LISTEN).await?, app).await?;
    Ok(())
}

/// Only reached by verified requests.
async fn orders(Verified(caller): Verified) -> Json<VerifiedIdentity> {
    Json(caller)
}
