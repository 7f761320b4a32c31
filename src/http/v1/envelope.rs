//! `{"data": …, "meta": {"request_id": …}}`.
use crate::http::request_id::RequestId;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub fn respond(status: StatusCode, data: impl Serialize, request_id: &RequestId) -> HttpResponse {
    respond_with_meta(status, data, request_id, Map::new())
}

pub fn respond_with_meta(
    status: StatusCode,
    data: impl Serialize,
    request_id: &RequestId,
    mut meta: Map<String, Value>,
) -> HttpResponse {
    meta.insert("request_id".into(), json!(request_id.as_str()));
    HttpResponse::build(status).json(json!({ "data": data, "meta": meta }))
}
