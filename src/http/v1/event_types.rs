use super::caller::V1Caller;
use super::envelope::{respond, Envelope};
use super::error::ApiError;
use super::resources::EventTypeResource;
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use aggregates::values::Scope;

#[utoipa::path(
    get, path = "/api/v1/webhooks/events", tag = "webhooks", operation_id = "listEventTypes",
    responses((status = 200, description = "The event types one can subscribe to", body = Envelope<Vec<EventTypeResource>>)),
)]
/// `GET /api/v1/webhooks/events`: the event type catalog.
pub async fn list(
    caller: V1Caller,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let types = projections::event_types::list(&state.db).await?;
    let data: Vec<_> = types
        .into_iter()
        .map(|t| EventTypeResource {
            schema: t
                .schema
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            name: t.name,
            description: t.description,
        })
        .collect();
    Ok(respond(StatusCode::OK, data, &request_id))
}
