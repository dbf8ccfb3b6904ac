//! JSON request bodies, with the API's errors instead of axum's plain-text
//! rejections.
//!
//! - a body that says it is something else than JSON → 415;
//! - no `Content-Type` at all → read as JSON anyway (scripting tools often
//!   leave it out, and the body can only mean one thing here);
//! - malformed JSON or the wrong shape → 422, naming line and column or the
//!   field;
//! - larger than [`MAX_BODY`] → 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest body the API reads. The largest legitimate one (64
/// attributes of 4 KiB) stays under it.
pub(crate) const MAX_BODY: usize = 512 * 1024;

/// A required JSON body.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

/// A JSON body that may be left out (empty body = `T::default()`).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub T);

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    let json = essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json");
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the body must be JSON (Content-Type: application/json), not {essence:?}"
        )))
    }
}

/// Parses `bytes` as `T`, with a message that says what is wrong.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "the body is not valid JSON"
            }
            _ => "the body does not have the expected fields",
        };
        ApiError::InvalidBody(format!("{what}: {e}"))
    })
}

async fn read(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(MAX_BODY)
        } else {
            ApiError::InvalidBody(format!("the body could not be read: {rejection}"))
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        check_content_type(req.headers())?;
        let bytes = read(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::InvalidBody(
                "the body is empty; a JSON object is required".into(),
            ));
        }
        parse(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = read(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        check_content_type(&headers)?;
        parse(&bytes).map(OptionalJsonBody)
    }
}

/// The `{call_id}` of a path. An id that does not even decode (bad
/// percent-encoding, not UTF-8) names no call: 404 like any unknown id,
/// instead of axum's plain-text 400.
#[derive(Debug)]
pub(crate) struct IdPath(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdPath(id))
            .map_err(|_| ApiError::NotFound("no call or record has this id".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    struct Shape {
        id: String,
    }

    fn request(content_type: Option<&str>, body: &'static str) -> Request {
        let mut b = axum::http::Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body)).unwrap()
    }

    async fn required(ct: Option<&str>, body: &'static str) -> Result<Shape, u16> {
        JsonBody::<Shape>::from_request(request(ct, body), &())
            .await
            .map(|b| b.0)
            .map_err(|e| e.status().as_u16())
    }

    #[tokio::test]
    async fn bodies_map_to_the_right_status() {
        let ok = Ok(Shape { id: "a".into() });
        let table: [(Option<&str>, &'static str, Result<Shape, u16>); 9] = [
            (Some("application/json"), r#"{"id":"a"}"#, ok),
            (
                Some("application/json; charset=utf-8"),
                r#"{"id":"b"}"#,
                Ok(Shape { id: "b".into() }),
            ),
            (None, r#"{"id":"c"}"#, Ok(Shape { id: "c".into() })),
            (
                Some("application/merge-patch+json"),
                r#"{"id":"d"}"#,
                Ok(Shape { id: "d".into() }),
            ),
            (Some("text/plain"), r#"{"id":"a"}"#, Err(415)),
            (Some("application/x-www-form-urlencoded"), "id=a", Err(415)),
            (Some("application/json"), r#"{"id":"a""#, Err(422)),
            (Some("application/json"), r#"{"id":7}"#, Err(422)),
            (Some("application/json"), "", Err(422)),
        ];
        for (ct, body, want) in table {
            assert_eq!(required(ct, body).await, want, "{ct:?} {body:?}");
        }
    }

    #[tokio::test]
    async fn an_optional_body_may_be_empty_but_not_wrong() {
        let empty = OptionalJsonBody::<Shape>::from_request(request(None, ""), &()).await;
        assert_eq!(empty.unwrap().0, Shape::default());
        let empty_typed =
            OptionalJsonBody::<Shape>::from_request(request(Some("text/plain"), " "), &()).await;
        assert!(empty_typed.is_ok(), "no body, nothing to misread");
        let bad = OptionalJsonBody::<Shape>::from_request(request(None, "{"), &()).await;
        assert_eq!(bad.unwrap_err().status().as_u16(), 422);
    }
}
