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

/// A page of a list: `meta` also carries `page`, `per_page` and `total`.
pub fn respond_page(
    data: impl Serialize,
    request_id: &RequestId,
    page: i64,
    per_page: i64,
    total: i64,
) -> HttpResponse {
    let mut meta = Map::new();
    meta.insert("page".into(), json!(page));
    meta.insert("per_page".into(), json!(per_page));
    meta.insert("total".into(), json!(total));
    respond_with_meta(StatusCode::OK, data, request_id, meta)
}
