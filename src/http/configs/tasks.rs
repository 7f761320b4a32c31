//! `/tasks…`
use super::caller::ConfigsCaller;
use super::error::ConfigsError;
use super::list_params;
use super::resources;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

#[utoipa::path(
    get, path = "/tasks/{id}", tag = "configs", operation_id = "getTask",
    params(("id" = i64, Path, minimum = 1, description = "The task's id")),
    responses((status = 200, description = "The task", body = resources::Task)),
)]
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
    Ok(HttpResponse::Ok().json(resources::Task::from(&task)))
}

#[utoipa::path(
    get, path = "/tasks", tag = "configs", operation_id = "listTasks",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 10)"),
        ("after_id" = Option<i64>, Query, description = "Items after this id (not with before_id)"),
        ("before_id" = Option<i64>, Query, description = "Items before this id (not with after_id)"),
    ),
    responses((status = 200, description = "The organisation's tasks", body = resources::List<resources::Task>)),
)]
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
    let data = rows.iter().map(resources::Task::from).collect();
    Ok(HttpResponse::Ok().json(resources::List::new(data, has_more, total, "/tasks")))
}
