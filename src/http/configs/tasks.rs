//! `/tasks…`
use super::caller::ConfigsCaller;
use super::error::ConfigsError;
use super::list_params;
use super::resources;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn show(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let not_found = || ConfigsError::not_found("task", &path);
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let task = state
        .tasks
        .find(caller.organisation_id(), id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(resources::task(&task)))
}

pub async fn list(
    req: HttpRequest,
    caller: ConfigsCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let params = list_params::parse(req.query_string())?;
    let (rows, has_more, total) = state
        .tasks
        .list(caller.organisation_id(), params.cursor, params.limit)
        .await?;
    let data = rows.iter().map(resources::task).collect();
    Ok(HttpResponse::Ok().json(resources::list(data, has_more, total, "/tasks")))
}
