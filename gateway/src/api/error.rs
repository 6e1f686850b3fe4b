//! Every error answer is JSON with one sentence: `{"error": "<sentence>"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error answer: `{"error": "<sentence>"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

pub struct ApiError {
    status: StatusCode,
    sentence: String,
}

impl ApiError {
    pub fn new(status: StatusCode, sentence: impl Into<String>) -> ApiError {
        ApiError { status, sentence: sentence.into() }
    }
    pub fn unauthorized(sentence: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, sentence)
    }
    pub fn bad_request(sentence: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, sentence)
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn sentence(&self) -> &str {
        &self.sentence
    }
    pub fn store_down() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The bot's database is unreachable; try again later.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.sentence })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"iaas\""));
        }
        response
    }
}
