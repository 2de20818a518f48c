//! `POST /sessions/ip-deviation`: a verifier (authenticated as a resource
//! server, HTTP Basic) reports a request it refused for coming from outside
//! its session's IP binding; the issuer audits it and applies
//! `policy.on_ip_violation` (`sessions.rs`). Answers 202: the verifier
//! refused the request already and does not wait for this.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use holdfast_proto::IpDeviationReport;
use holdfast_proto::endpoints::IP_DEVIATION_PATH;
use tracing::field::Empty;

use super::error::ApiError;
use super::rs_auth::ResourceServer;
use crate::sessions::{ReportError, report_ip_deviation};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(IP_DEVIATION_PATH, post(ip_deviation))
}

#[tracing::instrument(skip_all, fields(caller = %caller.0, sid = Empty, client_id = Empty))]
async fn ip_deviation(
    State(state): State<AppState>,
    caller: ResourceServer,
    body: Result<Json<IpDeviationReport>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(report) = body.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let span = tracing::Span::current();
    span.record("sid", report.sid.chars().take(64).collect::<String>());
    span.record(
        "client_id",
        report.client_id.chars().take(64).collect::<String>(),
    );
    match report_ip_deviation(&state, &report, &caller.0, state.clock.now()) {
        Ok(action) => {
            tracing::info!(?action, request_ip = %report.request_ip, "ip deviation reported");
            Ok(StatusCode::ACCEPTED)
        }
        Err(ReportError::UnknownSession) => Err(ApiError::invalid_request("unknown session")),
        Err(ReportError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;

    use super::super::rs_auth::fixtures::{enroll, issuer, rs_auth, send};
    use super::IP_DEVIATION_PATH;

    fn post(body: &serde_json::Value, auth: Option<&str>) -> Request<Body> {
        let mut request =
            Request::post(IP_DEVIATION_PATH).header("content-type", "application/json");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn accepts_a_report_and_revokes_the_session() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let report = json!({
            "sid": holder.session.id.as_str(),
            "client_id": holder.device.id.as_str(),
            "session_ip": "127.0.0.1",
            "request_ip": "127.0.0.2",
        });
        let auth = rs_auth();
        let (status, _, body) = send(&issuer, post(&report, Some(&auth))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let session = issuer
            .state
            .store
            .session(&holder.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(session.revoked.unwrap().reason, "ip_deviation");
    }

    #[tokio::test]
    async fn refuses_a_report_without_credentials_or_for_an_unknown_session() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let report = json!({
            "sid": holder.session.id.as_str(),
            "client_id": holder.device.id.as_str(),
            "request_ip": "127.0.0.2",
        });
        let (status, headers, body) = send(&issuer, post(&report, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"holdfast\""
        );
        assert_eq!(body["error"], "invalid_client");

        let auth = rs_auth();
        let unknown = json!({"sid": "s-nope", "client_id": "d-nope", "request_ip": "127.0.0.2"});
        let (status, _, body) = send(&issuer, post(&unknown, Some(&auth))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
        let malformed = json!({"sid": holder.session.id.as_str(), "request_ip": "nowhere"});
        let (status, _, body) = send(&issuer, post(&malformed, Some(&auth))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");

        let session = issuer
            .state
            .store
            .session(&holder.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(session.revoked, None);
    }
}
