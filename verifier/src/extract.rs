//! The axum extractor: a handler behind [`crate::VerifierLayer`] names the
//! caller by taking a [`Verified`] argument.

use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::identity::VerifiedIdentity;

/// The verified caller of this request, put there by
/// [`crate::VerifierLayer`].
///
/// ```
/// use axum::Json;
/// use holdfast_verifier::{Verified, VerifiedIdentity};
///
/// async fn orders(Verified(id): Verified) -> Json<VerifiedIdentity> {
///     Json(id)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified(pub VerifiedIdentity);

impl<S> FromRequestParts<S> for Verified
where
    S: Send + Sync,
{
    type Rejection = NotBehindVerifierLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<VerifiedIdentity>() {
            Some(identity) => Ok(Self(identity.clone())),
            None => {
                // A route that takes `Verified` but is not behind the layer:
                // the service is wired wrongly, the client did nothing wrong.
                let matched_path = parts
                    .extensions
                    .get::<MatchedPath>()
                    .map_or("(unmatched)", MatchedPath::as_str);
                tracing::error!(
                    matched_path,
                    "a handler takes `Verified` but its route is not behind `VerifierLayer`; \
                     add the layer to this route"
                );
                Err(NotBehindVerifierLayer)
            }
        }
    }
}

/// The rejection of [`Verified`] on a route without the layer: a
/// programming error, answered `500 server_error` (and logged once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBehindVerifierLayer;

impl IntoResponse for NotBehindVerifierLayer {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": "server_error" });
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
}
