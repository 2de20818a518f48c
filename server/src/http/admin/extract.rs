//! Admin request bodies and queries whose rejections are JSON
//! `invalid_request` answers, like every other error of the API.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// A JSON body (`Content-Type: application/json`). An empty body reads as
/// `{}`, so actions whose parameters are all optional need none.
#[derive(Debug)]
pub(super) struct AdminJson<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| crate::http::unreadable_body(&e))?;
        let body: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        if !bytes.is_empty() && !is_json {
            return Err(ApiError::invalid_request(
                "the body must be application/json",
            ));
        }
        serde_json::from_slice(body)
            .map(Self)
            .map_err(|e| ApiError::invalid_request(format!("bad JSON body: {e}")))
    }
}

/// Query parameters.
#[derive(Debug)]
pub(super) struct AdminQuery<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| Self(query))
            .map_err(|e| ApiError::invalid_request(format!("bad query: {}", e.body_text())))
    }
}

/// The one `{id}` segment of a path, as sent; handlers parse it into the
/// id type they need.
#[derive(Debug)]
pub(super) struct AdminPath(pub(super) String);

impl<S: Send + Sync> FromRequestParts<S> for AdminPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|e| ApiError::invalid_request(format!("bad path: {}", e.body_text())))
    }
}
