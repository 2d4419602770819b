//! The one error shape of the API, `{"error": {"code", "message"}}`, and the mapping of
//! every failure (ours, axum's rejections, the store's) onto it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use vqprobe_store::StoreError;

/// Everything a request can fail with. The variant picks the status and the `code`;
/// the text is the `message`, written for the person who sent the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or names something that does not exist
    /// (a parameter value, a column, a field).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid bearer key.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: the body is larger than the API accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 414: the request target (path and query) is longer than the API accepts.
    #[error("{0}")]
    UriTooLong(String),
    /// 415: a JSON body was sent without `Content-Type: application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a dependency (the database, the capture pipeline, metrics) cannot serve
    /// now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a fault on our side (a corrupt database, a bug). The detail goes to the
    /// log, not to the client.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `bad_request`, `unauthorized`, `not_found`,
    /// `method_not_allowed`, `payload_too_large`, `uri_too_long`, `unsupported_media_type`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// Human-readable explanation naming the offending parameter or value.
    pub message: String,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `code` field of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UriTooLong(_) => "uri_too_long",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The envelope this error is sent as.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            // The detail may name files or SQLite internals; the operator finds it in
            // the log.
            ApiError::Internal(_) => "internal error; the details are in the vqprobe log".into(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                message,
            },
        }
    }

    /// Shorthand for a 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            eprintln!("vqprobe: api: {detail}");
        }
        let mut resp = (self.status(), Json(self.body())).into_response();
        if matches!(self, ApiError::Unauthorized) {
            // RFC 6750 §3: tell the client which scheme to use.
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// axum's rejection statuses, folded into ours: a body that is valid JSON of the wrong
/// shape (axum's 422) is a 400 like any other bad request.
fn from_rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
        s if s.is_server_error() => ApiError::Internal(text),
        _ => ApiError::BadRequest(text),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        from_rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        from_rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        from_rejection(r.status(), r.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::TooLarge(msg) | StoreError::Unsupported(msg) => ApiError::BadRequest(msg),
            e if e.is_unavailable() => {
                ApiError::Unavailable(format!("the call database is not available now: {e}"))
            }
            e => ApiError::Internal(format!("store: {e}")),
        }
    }
}

/// The fallback for paths no route matches.
/// Refuses a request target longer than [`crate::MAX_URI_BYTES`] with a JSON 414, long
/// before hyper's own limit (whose 414 has no body) is reached.
pub async fn uri_limit(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > crate::MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request target is {len} bytes; at most {} are accepted",
            crate::MAX_URI_BYTES
        ))
        .into_response();
    }
    next.run(req).await
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// The fallback for a known path called with a method it does not serve (axum adds
/// the `Allow` header).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} is not allowed on {}", method, uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_agree() {
        let all = [
            ApiError::BadRequest("x".into()),
            ApiError::Unauthorized,
            ApiError::NotFound("x".into()),
            ApiError::MethodNotAllowed("x".into()),
            ApiError::PayloadTooLarge("x".into()),
            ApiError::UriTooLong("x".into()),
            ApiError::UnsupportedMediaType("x".into()),
            ApiError::Unavailable("x".into()),
            ApiError::Internal("secret path".into()),
        ];
        let codes: Vec<_> = all
            .iter()
            .map(|e| (e.status().as_u16(), e.code()))
            .collect();
        assert_eq!(
            codes,
            [
                (400, "bad_request"),
                (401, "unauthorized"),
                (404, "not_found"),
                (405, "method_not_allowed"),
                (413, "payload_too_large"),
                (414, "uri_too_long"),
                (415, "unsupported_media_type"),
                (503, "unavailable"),
                (500, "internal"),
            ]
        );
        assert!(!all[8].body().error.message.contains("secret"));
    }

    #[test]
    fn busy_database_is_unavailable_not_internal() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(
            ApiError::from(StoreError::Sqlite(busy)).code(),
            "unavailable"
        );
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        assert_eq!(
            ApiError::from(StoreError::Sqlite(corrupt)).code(),
            "internal"
        );
    }
}
