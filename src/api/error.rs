//! The one error type of the HTTP API. Every failure becomes a status code and a JSON body that
//! says what was wrong and where:
//!
//! ```json
//! {"error": {"status": 400, "code": "invalid_field", "field": "location.lat",
//!            "message": "latitude 113.6 is out of range; longitude and latitude look swapped"}}
//! ```

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::coords::CoordError;
use crate::report::IllegalTransition;
use crate::store::StoreError;
use crate::store::writer::TransitionError;

/// An API error: status, machine-readable code, the offending field and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
    allowed: Option<Vec<String>>,
    retry_after_s: Option<u64>,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// HTTP status code.
    pub status: u16,
    /// Machine-readable code: `invalid_json`, `invalid_field`, `missing_field`, `not_found`,
    /// `illegal_transition`, `unauthorized`, `forbidden`, `rate_limited`, `payload_too_large`,
    /// `unsupported_media_type`, `timeout`, `unavailable`, `internal`.
    pub code: String,
    /// The field or parameter at fault (a JSON path such as `location.lat` or `reports[3].category`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A sentence for humans.
    pub message: String,
    /// For `illegal_transition`: the actions that are legal now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            allowed: None,
            retry_after_s: None,
        }
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Puts `prefix` in front of the field (for records inside a batch).
    pub fn prefix_field(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) if !f.is_empty() && f != "." => format!("{prefix}.{f}"),
            _ => prefix.to_string(),
        });
        self
    }

    /// 400 `invalid_field`: a field has a value that is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message).at(field)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429 `rate_limited`, with the seconds to wait.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after_s} s"),
        );
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// 500 `internal`, logged with its cause; the client learns nothing private.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed; see the server log"),
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message for humans.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code.to_string(),
                field: self.field,
                message: self.message,
                allowed: self.allowed,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            ),
            other => Self::internal("storage", &other),
        }
    }
}

impl From<IllegalTransition> for ApiError {
    fn from(e: IllegalTransition) -> Self {
        let mut err =
            Self::new(StatusCode::CONFLICT, "illegal_transition", e.to_string()).at("action");
        err.allowed = Some(e.allowed.iter().map(|a| a.name().to_string()).collect());
        err
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotFound(_) => Self::not_found(e.to_string()),
            TransitionError::OutOfScope { .. } => Self::forbidden(e.to_string()),
            TransitionError::Illegal(i) => i.into(),
            TransitionError::AtTop(_) => {
                Self::new(StatusCode::CONFLICT, "illegal_transition", e.to_string()).at("action")
            }
            TransitionError::Store(s) => s.into(),
        }
    }
}

/// A coordinate error, attributed to the field that holds the location.
pub fn coord_error(field: &str, e: &CoordError) -> ApiError {
    let at = match e {
        CoordError::UnknownCrs(_) => format!("{field}.crs"),
        CoordError::OutOfRange { lat, .. } if !(-90.0..=90.0).contains(lat) => {
            format!("{field}.lat")
        }
        CoordError::OutOfRange { .. } => format!("{field}.lon"),
        CoordError::NotFinite { lon, .. } if !lon.is_finite() => format!("{field}.lon"),
        CoordError::NotFinite { .. } => format!("{field}.lat"),
        CoordError::LikelySwapped { .. } => field.to_string(),
    };
    ApiError::invalid(at, e.to_string())
}
