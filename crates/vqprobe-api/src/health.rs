//! `GET /healthz` (is the store readable, is the daemon running) and `GET /metrics`
//! (Prometheus text from the [`crate::Probe`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::db::blocking;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::App;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Response of `GET /healthz`. A caller without a valid key (when keys are configured)
/// gets `status` alone: up, degraded or unavailable, nothing about calls.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` (status 200) when records cannot be written to the store and
    /// wait in memory; `unavailable` (with status 503).
    pub status: String,
    /// `ok`, `error` when the call store cannot be read, `degraded` when it cannot be
    /// written (the reason is in `error`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub db: Option<String>,
    /// `running`, `stopping`, or `none` when this process has no capture pipeline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capture: Option<String>,
    /// vqprobe version.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
    /// `created_at` of the newest stored call (absent when there is none, or for a
    /// caller without a key).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_call_at: Option<String>,
    /// Present when `status` is not `ok`: why, in the usual error shape.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorDetail>,
}

/// Liveness and readiness: 200 when the call store can be read and the daemon is
/// not stopping, else 503. Never needs a key.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    security(()),
    responses(
        (status = 200, description = "Healthy, or degraded (records wait in memory for the disk)", body = Health),
        (status = 503, description = "The store cannot be read or the daemon is stopping", body = Health),
    )
)]
pub(crate) async fn healthz(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let insider = app.keys.allows(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let capture = match &app.probe {
        None => "none",
        Some(p) if p.stopping() => "stopping",
        Some(_) => "running",
    };
    let db = Arc::clone(&app.db);
    // The newest call comes off the end of the created_at index: O(log n).
    let newest = blocking(move || Ok(db.newest_created_at()?)).await;
    let (db_state, last_call_at, mut error) = match newest {
        Ok(at) => ("ok", at, None),
        Err(e) => ("error", None, Some(e)),
    };
    if error.is_none() && capture == "stopping" {
        error = Some(ApiError::Unavailable("vqprobe is shutting down".into()));
    }
    let fault = app.probe.as_ref().and_then(|p| p.store_fault());
    let status = if error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let (state, db_state, detail) = match (&error, fault) {
        (Some(_), _) => ("unavailable", db_state, None),
        // Still serving, and nothing lost yet: records wait in memory. Not a 503, so
        // an orchestrator does not restart the process and lose them.
        (None, Some(why)) => (
            "degraded",
            "degraded",
            Some(ErrorDetail {
                code: "store_degraded".into(),
                message: format!("records wait in memory: the store refuses writes: {why}"),
            }),
        ),
        (None, None) => ("ok", db_state, None),
    };
    if !insider {
        let body = Health {
            status: state.into(),
            db: None,
            capture: None,
            version: None,
            last_call_at: None,
            error: None,
        };
        return (status, Json(body)).into_response();
    }
    let body = Health {
        status: state.into(),
        db: Some(db_state.into()),
        capture: Some(capture.into()),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        last_call_at,
        error: error
            .map(|e| {
                // Log the cause the envelope hides.
                if let ApiError::Internal(detail) = &e {
                    eprintln!("vqprobe: api: healthz: {detail}");
                }
                e.body().error
            })
            .or(detail),
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics of the capture, the pipeline and the calls.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    // As enforced: open on a loopback listen unless api.metrics_require_auth = true,
    // a bearer key otherwise (and whenever metrics_require_auth is set).
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "No valid key, when a key is required: listen not loopback (unless api.metrics_require_auth = false) or api.metrics_require_auth = true", body = ErrorBody),
        (status = 503, description = "This process keeps no metrics", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let probe = app.probe.clone();
    // Rendering locks worker snapshots; keep that off the async threads.
    let text = blocking(move || Ok(probe.and_then(|p| p.metrics_text()))).await?;
    let Some(text) = text else {
        return Err(ApiError::Unavailable(
            "metrics are not collected by this process".into(),
        ));
    };
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    Ok(resp)
}
