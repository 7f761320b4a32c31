//! Reading a JSON object body with a size limit, whatever the Content-Type
//! (curl's `-d` sends form encoding by default; the body is still JSON).
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// The largest request body webhookd accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of an oversized body is read and dropped before answering 413,
/// so that the client is not cut off mid-upload and sees the answer.
const DRAIN_LIMIT_BYTES: usize = 16 * MAX_BODY_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than 1 MiB")]
    TooLarge,
    #[error("request body is empty; send a JSON object")]
    Empty,
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("request body could not be read: {0}")]
    Unreadable(String),
}

pub async fn read_json_object(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Map<String, Value>, BodyError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut bytes = web::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        seen += chunk.len();
        if seen > DRAIN_LIMIT_BYTES {
            return Err(BodyError::TooLarge);
        }
        if seen <= MAX_BODY_BYTES && declared.is_none_or(|len| len <= MAX_BODY_BYTES) {
            bytes.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => Err(BodyError::Malformed(e.to_string())),
    }
}
