//! The API's errors and their one JSON shape:
//! `{"error": "<code>", "message": "<for a person>"}`.
//!
//! Clients (Five9 scripting, agents) branch on `error`, a stable code;
//! `message` says what to fix. Every client mistake has its own 4xx: bad
//! input never becomes a 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::b2bua::ControlError;

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` key, or one the config does not list: 401
    /// with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No such call or record, or one of another tenant (the two answer the
    /// same, so a key cannot probe other tenants' ids): 404.
    #[error("{0}")]
    NotFound(String),
    /// The call is already ending; it takes no more orders: 409.
    #[error("{0}")]
    Conflict(String),
    /// The call cannot take this order in its state (a transfer before the
    /// answer or during another): 409.
    #[error("{0}")]
    WrongState(String),
    /// The body is not JSON of the expected shape, or a value is out of
    /// bounds: 422.
    #[error("{0}")]
    InvalidBody(String),
    /// A query string parameter is missing or malformed: 422.
    #[error("{0}")]
    InvalidQuery(String),
    /// The body says it is not JSON: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the API accepts: 413.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No route has this path: 404.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// The path exists but not with this method: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The gateway has stopped (shutting down): 503.
    #[error("{0}")]
    Unavailable(String),
    /// A limit is reached (an outbound trunk's `max_concurrent`): 429 with
    /// `Retry-After`.
    #[error("{0}")]
    TooManyRequests(String),
    /// Our fault (a task died): 500.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: &'a str,
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::WrongState(_) => StatusCode::CONFLICT,
            ApiError::InvalidBody(_) | ApiError::InvalidQuery(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) | ApiError::NoRoute(_) => "not_found",
            ApiError::Conflict(_) => "call_ending",
            ApiError::WrongState(_) => "wrong_state",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooManyRequests(_) => "too_many_calls",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NoSuchCall => ApiError::NotFound("no active call has this id".into()),
            ControlError::Ending => ApiError::Conflict(
                "the call is already ending; it takes no more attributes or orders".into(),
            ),
            ControlError::Stopped => ApiError::Unavailable("the gateway is shutting down".into()),
            ControlError::Conflict(why) => ApiError::WrongState(why),
            ControlError::Invalid(why) => ApiError::InvalidBody(why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let body = ErrorBody {
            error: self.code(),
            message: &message,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::TooManyRequests(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            // RFC 6750 §3: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trunkline\""),
            );
        }
        response
    }
}

/// Unknown paths answer in the API's JSON shape, not axum's empty 404.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_error_has_its_status_code_and_json_shape() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::Unauthorized("no key"), 401, "unauthorized"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (ApiError::NoRoute("/nope".into()), 404, "not_found"),
            (ApiError::Conflict("x".into()), 409, "call_ending"),
            (ApiError::InvalidBody("x".into()), 422, "invalid_body"),
            (ApiError::InvalidQuery("x".into()), 422, "invalid_query"),
            (
                ApiError::UnsupportedMediaType("x".into()),
                415,
                "unsupported_media_type",
            ),
            (ApiError::BodyTooLarge(10), 413, "body_too_large"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (ApiError::Internal("x".into()), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let message = e.to_string();
            let r = e.into_response();
            assert_eq!(r.status().as_u16(), status, "{code}");
            let json = body_json(r).await;
            assert_eq!(json["error"], code);
            assert_eq!(json["message"], message.as_str());
        }
    }

    #[tokio::test]
    async fn unauthorized_names_the_bearer_scheme() {
        let r = ApiError::Unauthorized("no key").into_response();
        let www = r.headers().get(header::WWW_AUTHENTICATE).unwrap();
        assert!(www.to_str().unwrap().starts_with("Bearer"));
        let r = ApiError::NotFound("x".into()).into_response();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn control_errors_map_to_404_409_422_503() {
        let table = [
            (ControlError::NoSuchCall, 404),
            (ControlError::Ending, 409),
            (ControlError::Stopped, 503),
            (ControlError::Conflict("not answered".into()), 409),
            (ControlError::Invalid("no such trunk".into()), 422),
        ];
        for (e, status) in table {
            assert_eq!(ApiError::from(e.clone()).status().as_u16(), status, "{e:?}");
        }
    }
}
