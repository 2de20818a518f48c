//! A trivial upstream for the proxy: every `GET` answers `200 ok`, at once,
//! so a proxy benchmark measures the proxy rather than the service behind
//! it. Loopback only.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

use crate::Error;

/// Serves until the process is killed.
pub(crate) async fn serve(listen: SocketAddr) -> Result<(), Error> {
    if !listen.ip().is_loopback() {
        return Err(format!("the upstream listens on loopback only, not {listen}").into());
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "upstream: answering 200 ok on http://{}",
        listener.local_addr()?
    );
    let app = Router::new().fallback(get(|| async { "ok\n" }));
    axum::serve(listener, app).await?;
    Ok(())
}
