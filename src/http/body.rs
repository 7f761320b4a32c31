//! Reading a JSON object body with a size limit, whatever the Content-Type
//! (curl's `-d` sends form encoding by default; the body is still JSON).
use actix_web::error::PayloadError;
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
    /// The client sent the body too slowly (see `http::deadline`).
    #[error("{0}")]
    TimedOut(String),
}

pub async fn read_json_object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Value>, BodyError> {
    let bytes = read_body(req, payload).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => Err(BodyError::Malformed(e.to_string())),
    }
}

/// For routes whose body is optional: no body is `None`.
pub async fn read_optional_json_object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Option<Map<String, Value>>, BodyError> {
    match read_json_object(req, payload).await {
        Ok(map) => Ok(Some(map)),
        Err(BodyError::Empty) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A member of a JSON object body as it was sent: absent (`None`) or its
/// value, `null` included.
///
/// A request type declares each of its members as one (with
/// `#[serde(default)]`) and documents the member's type with
/// `#[schema(value_type = …)]`: the dialects check members one by one, to
/// report every problem at once and in their own words, and the same type
/// is what the OpenAPI document shows — one type per body, no copy kept
/// for the documentation only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member(pub Option<Value>);

impl<'de> serde::Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| Member(Some(value)))
    }
}

impl Member {
    pub fn get(&self) -> Option<&Value> {
        self.0.as_ref()
    }
}

/// A request type whose members are all [`Member`]s (or raw JSON) from a
/// JSON object: it cannot fail, every value fits a member.
pub fn members<T: serde::de::DeserializeOwned + Default>(object: Map<String, Value>) -> T {
    serde_json::from_value(Value::Object(object)).unwrap_or_default()
}

/// A JSON object body read straight into a request type (whose members
/// borrow from `bytes` where they are kept as sent).
pub fn parse_object<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BodyError> {
    let is_object = bytes.trim_ascii_start().first() == Some(&b'{');
    let parsed = if is_object {
        serde_json::from_slice::<T>(bytes).map_err(|e| e.to_string())
    } else {
        Err(String::new())
    };
    parsed.map_err(
        |message| match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) if !is_object => BodyError::NotAnObject,
            Ok(_) => BodyError::Malformed(message),
            Err(e) => BodyError::Malformed(e.to_string()),
        },
    )
}

/// The request body, at most [`MAX_BODY_BYTES`], not blank.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut bytes = web::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(BodyError::from)?;
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
    Ok(bytes.freeze())
}

impl From<PayloadError> for BodyError {
    fn from(error: PayloadError) -> Self {
        match error {
            PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                BodyError::TimedOut(io.to_string())
            }
            other => BodyError::Unreadable(other.to_string()),
        }
    }
}
