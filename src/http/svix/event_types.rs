//! `/api/v1/event-type`: the event type catalog — the same one the other
//! dialects and the CLI manage. A type is never removed (configs and the
//! log name it): `DELETE` archives it, which hides it from lists.
use super::answer::{idempotent, Answer};
use super::applications::{json_body, present};
use super::caller::SvixCaller;
use super::error::{SvixError, ValidationItem};
use super::list::{ListResponse, Query};
use super::{timestamp, EventTypePath};
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use aggregates::values::{EventTypeName, Scope};
use projections::event_types::{self, EventType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    #[schema(example = "invoice.paid")]
    name: String,
    description: String,
    archived: bool,
    deprecated: bool,
    /// The type's JSON Schema under version `"1"`; `null` when it has none
    /// (or a list was asked without content).
    #[schema(value_type = Option<Object>)]
    schemas: Option<Map<String, Value>>,
    feature_flag: Option<String>,
    group_name: Option<String>,
    created_at: String,
    updated_at: String,
}

impl EventTypeOut {
    fn of(event_type: &EventType, with_schema: bool) -> Self {
        let schemas = event_type
            .schema
            .as_deref()
            .filter(|_| with_schema)
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .map(|schema| Map::from_iter([("1".to_owned(), schema)]));
        Self {
            name: event_type.name.clone(),
            description: event_type.description.clone(),
            archived: event_type.archived,
            deprecated: false,
            schemas,
            feature_flag: None,
            group_name: None,
            created_at: timestamp(event_type.created_at),
            updated_at: timestamp(event_type.updated_at.max(event_type.created_at)),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    #[schema(example = "invoice.paid")]
    name: String,
    description: String,
    archived: Option<bool>,
    /// JSON Schemas by version; the newest version is the one publishes
    /// must satisfy.
    #[schema(value_type = Option<Object>)]
    schemas: Option<Map<String, Value>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    description: String,
    archived: Option<bool>,
    #[schema(value_type = Option<Object>)]
    schemas: Option<Map<String, Value>>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    description: Option<String>,
    archived: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    schemas: Option<Option<Map<String, Value>>>,
}

/// The schema of the newest version, checked to be a JSON Schema.
fn schema_text(schemas: Option<&Map<String, Value>>) -> Result<Option<String>, SvixError> {
    let Some(schemas) = schemas else {
        return Ok(None);
    };
    let newest = schemas
        .iter()
        .max_by_key(|(version, _)| version.parse::<u64>().unwrap_or(0))
        .map(|(_, schema)| schema);
    let Some(schema) = newest else {
        return Ok(None);
    };
    let text = schema.to_string();
    crate::delivery::event_schemas::compile(&text)
        .map_err(|error| SvixError::invalid_field("schemas", error))?;
    Ok(Some(text))
}

fn check_description(description: &str) -> Result<(), SvixError> {
    if description.chars().count() > 1000 || description.chars().any(|c| c == '\0') {
        return Err(SvixError::invalid_field(
            "description",
            "must be at most 1000 characters",
        ));
    }
    Ok(())
}

#[utoipa::path(
    get, path = "/api/v1/event-type", tag = "svix", operation_id = "v1.event-type.list",
    params(
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page (a type name)"),
        ("include_archived" = Option<bool>, Query, description = "List archived types too"),
        ("with_content" = Option<bool>, Query, description = "Include the schemas"),
    ),
    responses((status = 200, description = "The catalog by name", body = ListResponse<EventTypeOut>)),
)]
pub async fn list(
    req: HttpRequest,
    caller: SvixCaller,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Webhooks)?;
    let query = Query::of(&req);
    let paging = query.paging(false)?;
    let include_archived = query.bool("include_archived", false)?;
    let with_content = query.bool("with_content", false)?;
    let mut types: Vec<EventType> = event_types::list(&state.db)
        .await?
        .into_iter()
        .filter(|t| include_archived || !t.archived)
        .collect();
    if paging.descending {
        types.reverse();
    }
    // The catalog is small: paged here, in name order.
    let after = |t: &EventType| match &paging.iterator {
        None => true,
        Some(name) => {
            let beyond = if paging.descending {
                t.name.as_str() < name.as_str()
            } else {
                t.name.as_str() > name.as_str()
            };
            beyond != paging.backwards && t.name != *name
        }
    };
    let mut page: Vec<&EventType> = types.iter().filter(|t| after(t)).collect();
    if paging.backwards {
        page.reverse();
    }
    let has_more = page.len() as i64 > paging.limit;
    page.truncate(paging.limit as usize);
    if paging.backwards {
        page.reverse();
    }
    let data: Vec<EventTypeOut> = page
        .into_iter()
        .map(|t| EventTypeOut::of(t, with_content))
        .collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |t| t.name.clone(),
        paging.done(has_more),
    )))
}

#[utoipa::path(
    post, path = "/api/v1/event-type", tag = "svix", operation_id = "v1.event-type.create",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Added to the catalog", body = EventTypeOut),
        (status = 409, description = "A type of this name exists", body = super::ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    caller: SvixCaller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Webhooks)?;
    caller.environment()?;
    idempotent(&req, &state, &caller, async {
        let body: EventTypeIn = json_body(&req, payload).await?;
        let name = EventTypeName::parse(&body.name)
            .map_err(|e| SvixError::invalid(vec![ValidationItem::body("name", e.to_string())]))?;
        check_description(&body.description)?;
        let schema = schema_text(body.schemas.as_ref())?;
        let added = event_types::insert(
            &state.db,
            name.as_str(),
            &body.description,
            body.archived.unwrap_or(false),
            schema.as_deref(),
        )
        .await?;
        if !added {
            return Err(SvixError::conflict("an event type of this name exists"));
        }
        caller
            .log_change(
                &state.db,
                "EventTypeAdded",
                format!("event_type:{}", name.as_str()),
                serde_json::json!({ "description": body.description, "schema": schema.is_some() }),
            )
            .await?;
        answer_type(&state, name.as_str(), StatusCode::CREATED).await
    })
    .await
}

async fn answer_type(
    state: &AppState,
    name: &str,
    status: StatusCode,
) -> Result<Answer, SvixError> {
    let event_type = event_types::find(&state.db, name)
        .await?
        .ok_or_else(SvixError::not_found)?;
    Ok(Answer::json(status, &EventTypeOut::of(&event_type, true)))
}

async fn find(state: &AppState, caller: &SvixCaller, name: &str) -> Result<EventType, SvixError> {
    caller.require(Scope::Webhooks)?;
    event_types::find(&state.db, name)
        .await?
        .ok_or_else(SvixError::not_found)
}

#[utoipa::path(
    get, path = "/api/v1/event-type/{event_type_name}", tag = "svix", operation_id = "v1.event-type.get",
    params(EventTypePath),
    responses((status = 200, description = "The type", body = EventTypeOut)),
)]
pub async fn show(
    caller: SvixCaller,
    path: web::Path<EventTypePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let event_type = find(&state, &caller, &path.event_type_name).await?;
    Ok(Answer::ok(&EventTypeOut::of(&event_type, true)))
}

/// Writes a type's new description, archived flag and schema.
async fn change(
    state: &AppState,
    caller: &SvixCaller,
    event_type: &EventType,
    (description, archived, schema): (String, bool, Option<String>),
) -> Result<Answer, SvixError> {
    caller.environment()?;
    check_description(&description)?;
    event_types::update(
        &state.db,
        &event_type.name,
        &description,
        archived,
        schema.as_deref(),
    )
    .await?;
    caller
        .log_change(
            &state.db,
            "EventTypeUpdated",
            format!("event_type:{}", event_type.name),
            serde_json::json!({ "description": description, "archived": archived, "schema": schema.is_some() }),
        )
        .await?;
    answer_type(state, &event_type.name, StatusCode::OK).await
}

#[utoipa::path(
    put, path = "/api/v1/event-type/{event_type_name}", tag = "svix", operation_id = "v1.event-type.update",
    params(EventTypePath),
    request_body = EventTypeUpdate,
    responses(
        (status = 200, description = "Replaced", body = EventTypeOut),
        (status = 201, description = "Added (no type had the name)", body = EventTypeOut),
    ),
)]
pub async fn replace(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EventTypePath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Webhooks)?;
    let found = event_types::find(&state.db, &path.event_type_name).await?;
    let body: EventTypeUpdate = json_body(&req, payload).await?;
    let schema = schema_text(body.schemas.as_ref())?;
    let archived = body.archived.unwrap_or(false);
    let Some(event_type) = found else {
        // Svix's PUT adds what the path does not name yet.
        caller.environment()?;
        let name = EventTypeName::parse(&path.event_type_name).map_err(|e| {
            SvixError::invalid(vec![ValidationItem {
                loc: vec!["path".into(), "event_type_name".into()],
                msg: e.to_string(),
                kind: "value_error".into(),
            }])
        })?;
        check_description(&body.description)?;
        event_types::insert(
            &state.db,
            name.as_str(),
            &body.description,
            archived,
            schema.as_deref(),
        )
        .await?;
        caller
            .log_change(
                &state.db,
                "EventTypeAdded",
                format!("event_type:{}", name.as_str()),
                serde_json::json!({ "description": body.description, "schema": schema.is_some() }),
            )
            .await?;
        return answer_type(&state, name.as_str(), StatusCode::CREATED).await;
    };
    let wanted = (body.description, archived, schema);
    change(&state, &caller, &event_type, wanted).await
}

#[utoipa::path(
    patch, path = "/api/v1/event-type/{event_type_name}", tag = "svix", operation_id = "v1.event-type.patch",
    params(EventTypePath),
    request_body = EventTypePatch,
    responses((status = 200, description = "Changed", body = EventTypeOut)),
)]
pub async fn patch(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EventTypePath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let event_type = find(&state, &caller, &path.event_type_name).await?;
    let body: EventTypePatch = json_body(&req, payload).await?;
    let schema = match &body.schemas {
        None => event_type.schema.clone(),
        Some(schemas) => schema_text(schemas.as_ref())?,
    };
    let wanted = (
        body.description
            .unwrap_or_else(|| event_type.description.clone()),
        body.archived.unwrap_or(event_type.archived),
        schema,
    );
    change(&state, &caller, &event_type, wanted).await
}

#[utoipa::path(
    delete, path = "/api/v1/event-type/{event_type_name}", tag = "svix", operation_id = "v1.event-type.delete",
    params(
        EventTypePath,
        ("expunge" = Option<bool>, Query, description = "Accepted; the type is archived either way"),
    ),
    responses((status = 204, description = "Archived")),
)]
pub async fn delete(
    caller: SvixCaller,
    path: web::Path<EventTypePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let event_type = find(&state, &caller, &path.event_type_name).await?;
    let wanted = (
        event_type.description.clone(),
        true,
        event_type.schema.clone(),
    );
    change(&state, &caller, &event_type, wanted).await?;
    Ok(Answer::no_content())
}
