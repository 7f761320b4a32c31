//! `/api/v1/app/{app_id}/msg…` and `…/attempt…`: an application's messages
//! (events published for its organisation), where each went, and the
//! attempts to send them.
use super::answer::{idempotency_key, idempotent, Answer};
use super::applications::{json_body, ApplicationIn};
use super::caller::SvixCaller;
use super::endpoints::{endpoint_of, is_channel, EndpointOut};
use super::error::{SvixError, ValidationItem};
use super::list::{invalid, ListResponse, Query};
use super::{timestamp, AppPath, AttemptPath, EndpointPath, MessagePath, ResendPath};
use crate::delivery::publish::PublishError;
use crate::delivery::wire::{EventData, EventRecord};
use crate::http::AppState;
use crate::telemetry::PublishResult;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use aggregates::values::Scope;
use projections::svix::{
    self, Application, AttemptRow, AttemptsOf, DeliveryState, MessageFilter, MessageRow, TimeCursor,
};
use projections::{tenancy, webhook_configs};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use utoipa::ToSchema;

/// A message as Svix shows it; `payload` is as it was sent.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    #[schema(example = "msg_0f8fad5bd9cb469fa16570867728950e")]
    id: String,
    /// The publisher's own unique id of the message, if it gave one.
    event_id: Option<String>,
    event_type: String,
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    channels: Option<Vec<String>>,
    timestamp: String,
}

impl MessageOut {
    pub fn of_event(
        event: &EventRecord,
        event_id: Option<String>,
        channels: Option<Vec<String>>,
    ) -> Self {
        Self {
            id: svix::message_id(&event.id),
            event_id,
            event_type: event.event_type.clone(),
            payload: event.data.as_ref().to_owned(),
            channels,
            timestamp: timestamp(event.published_at),
        }
    }

    fn of_row(row: &MessageRow, with_content: bool) -> Self {
        let payload = if with_content {
            RawValue::from_string(row.data.clone())
        } else {
            RawValue::from_string("{}".to_owned())
        };
        Self {
            id: svix::message_id(&row.id),
            event_id: row.event_id().map(str::to_owned),
            event_type: row.event_type.clone(),
            payload: payload.unwrap_or_else(|_| empty_object()),
            channels: row.channel_list(),
            timestamp: timestamp(row.published_at),
        }
    }

    pub fn answer(&self, status: StatusCode) -> Answer {
        Answer::json(status, self)
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("{} is JSON")
}

/// How a message stands at one endpoint: 0 success, 1 pending, 2 fail.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatusOut {
    status: u8,
    status_text: &'static str,
    next_attempt: Option<String>,
}

impl From<&DeliveryState> for DeliveryStatusOut {
    fn from(delivery: &DeliveryState) -> Self {
        let (status, status_text) = match delivery.status.as_str() {
            "succeeded" => (0, "success"),
            "failed" => (2, "fail"),
            _ => (1, "pending"),
        };
        Self {
            status,
            status_text,
            next_attempt: (status == 1).then(|| timestamp(delivery.next_attempt_at)),
        }
    }
}

/// A message with how it stands at one endpoint.
#[derive(Serialize, ToSchema)]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    message: MessageOut,
    #[serde(flatten)]
    delivery: DeliveryStatusOut,
}

/// An endpoint with how one message stands there.
#[derive(Serialize, ToSchema)]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    endpoint: EndpointOut,
    #[serde(flatten)]
    delivery: DeliveryStatusOut,
}

/// One attempt to send a message to an endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    #[schema(example = "atmpt_12")]
    id: String,
    msg_id: String,
    endpoint_id: String,
    /// The endpoint's URL (as it is now).
    url: String,
    /// The receiver's answer (its first 4 KiB), or what went wrong.
    response: String,
    /// 0 when no answer came.
    response_status_code: i64,
    response_duration_ms: i64,
    /// 0 success, 2 fail.
    status: u8,
    status_text: &'static str,
    /// 0 scheduled, 1 manual (a recovery).
    trigger_type: u8,
    timestamp: String,
}

impl MessageAttemptOut {
    fn of(attempt: &AttemptRow, url: &str) -> Self {
        let (status, status_text) = if attempt.success {
            (0, "success")
        } else {
            (2, "fail")
        };
        Self {
            id: svix::attempt_id(attempt.id),
            msg_id: svix::message_id(&attempt.event_id),
            endpoint_id: svix::endpoint_id(attempt.config_id),
            url: url.to_owned(),
            response: attempt
                .response_body
                .clone()
                .or_else(|| attempt.error.clone())
                .unwrap_or_default(),
            response_status_code: attempt.status_code.unwrap_or(0),
            response_duration_ms: attempt.duration_ms,
            status,
            status_text,
            trigger_type: u8::from(attempt.manual),
            timestamp: timestamp(attempt.attempted_at),
        }
    }
}

/// The body of a create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    #[schema(example = "invoice.paid")]
    event_type: String,
    /// Your own unique id of the message; a second message with it is a 409.
    event_id: Option<String>,
    /// The body every endpoint receives, byte for byte (a JSON object).
    #[serde(alias = "data")]
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    /// 1–5 labels: an endpoint that names channels receives the message
    /// only if it shares one.
    channels: Option<Vec<String>>,
    /// Days (5–90); retention is the operator's setting in webhookd.
    payload_retention_period: Option<i64>,
    /// Hours (1–2160); see `payloadRetentionPeriod`.
    payload_retention_hours: Option<i64>,
    /// Creates the application (with the path's uid) when there is none.
    application: Option<ApplicationIn>,
    /// Not offered (refused when given).
    deliver_at: Option<String>,
}

fn check_message(body: &MessageIn) -> Result<(), SvixError> {
    let mut errors = Vec::new();
    if !body.payload.get().trim_start().starts_with('{') {
        errors.push(ValidationItem::body("payload", "must be a JSON object"));
    }
    if let Some(uid) = &body.event_id {
        if !svix::is_valid_uid(uid) {
            errors.push(ValidationItem::body(
                "eventId",
                "must be 1 to 256 of a-z A-Z 0-9 - _ . and not shaped like an id",
            ));
        }
    }
    if let Some(channels) = &body.channels {
        let well_formed = channels.iter().all(|channel| is_channel(channel));
        if !(1..=5).contains(&channels.len()) || !well_formed {
            errors.push(ValidationItem::body(
                "channels",
                "must be 1 to 5 channels of 1 to 128 of a-z A-Z 0-9 - _ . :",
            ));
        }
    }
    if body
        .payload_retention_period
        .is_some_and(|days| !(5..=90).contains(&days))
    {
        errors.push(ValidationItem::body(
            "payloadRetentionPeriod",
            "must be between 5 and 90 days",
        ));
    }
    if body
        .payload_retention_hours
        .is_some_and(|hours| !(1..=2160).contains(&hours))
    {
        errors.push(ValidationItem::body(
            "payloadRetentionHours",
            "must be between 1 and 2160 hours",
        ));
    }
    if body.deliver_at.is_some() {
        errors.push(ValidationItem::body(
            "deliverAt",
            "webhookd does not offer delayed messages",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SvixError::invalid(errors))
    }
}

/// The application of a message create: the path's, or one created from
/// the body's `application` (its uid must be the path's).
async fn application_for_message(
    state: &AppState,
    caller: &SvixCaller,
    app_id: &str,
    new: Option<ApplicationIn>,
) -> Result<Application, SvixError> {
    match caller.application(state, app_id, Scope::Publish).await {
        Err(error) if error.status() == StatusCode::NOT_FOUND && new.is_some() => {
            let fields = new.expect("checked").into_fields()?;
            if fields.uid.as_deref() != Some(app_id) {
                return Err(SvixError::invalid(vec![ValidationItem {
                    loc: vec!["body".into(), "application".into(), "uid".into()],
                    msg: "must be the application uid of the path".into(),
                    kind: "value_error".into(),
                }]));
            }
            Ok(state
                .applications
                .create(caller.actor(), caller.environment()?, fields)
                .await?)
        }
        other => other,
    }
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/msg", tag = "svix", operation_id = "v1.message.create",
    params(
        AppPath,
        ("with_content" = Option<bool>, Query, description = "Include the payload in the answer (default true)"),
    ),
    request_body = MessageIn,
    responses(
        (status = 202, description = "Stored; deliveries are under way", body = MessageOut),
        (status = 409, description = "A message with this eventId exists", body = super::ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let answer = create_message(&req, &caller, &path.app_id, payload, &state).await;
    crate::telemetry::publish_answered(match &answer {
        Ok(_) => PublishResult::Accepted,
        Err(_) => PublishResult::Refused,
    });
    answer
}

async fn create_message(
    req: &HttpRequest,
    caller: &SvixCaller,
    app_id: &str,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Publish)?;
    let with_content = Query::of(req).bool("with_content", true)?;
    idempotent(req, state, caller, async {
        let mut body: MessageIn = json_body(req, payload).await?;
        check_message(&body)?;
        let app = application_for_message(state, caller, app_id, body.application.take()).await?;
        let organisation = tenancy::find_organisation(&state.db, app.organisation)
            .await?
            .ok_or_else(SvixError::not_found)?;
        // An application's messages go to its endpoints: no configs-API
        // routing of the key applies.
        let mut key = projections::tenancy::ApiKey::clone(&caller.key);
        key.webhook_config = None;
        let data: EventData = EventData::from(body.payload);
        // The event's idempotency key: the `eventId`, else the request's
        // `Idempotency-Key` (a repeat after a crash between the commit and
        // the answer then finds the message instead of storing it again).
        let stored_key = match (&body.event_id, idempotency_key(req)) {
            (Some(event_id), _) => Some(event_id.clone()),
            (None, Some(key)) => Some(svix::idempotency_key_of_request(&key)),
            (None, None) => None,
        };
        let published = state
            .deliveries
            .publish_message(
                &organisation,
                &key,
                &body.event_type,
                data,
                stored_key.as_deref(),
                body.channels.as_deref().unwrap_or_default(),
            )
            .await
            .map_err(|error| match error {
                PublishError::UnknownEventType { .. } => {
                    SvixError::invalid_field("eventType", error.to_string())
                }
                PublishError::SchemaViolation { violations, .. } => SvixError::invalid(
                    violations
                        .into_iter()
                        .map(|v| ValidationItem::body("payload", v))
                        .collect(),
                ),
                PublishError::Store(store) => store.into(),
            })?;
        if published.duplicate && body.event_id.is_some() {
            return Err(SvixError::conflict(
                "a message with this eventId already exists",
            ));
        }
        if let Some(channels) = &body.channels {
            svix::set_message_channels(&state.db, app.organisation, &published.event.id, channels)
                .await?;
        }
        let mut message = MessageOut::of_event(&published.event, body.event_id, body.channels);
        if !with_content {
            message.payload = empty_object();
        }
        Ok(message.answer(StatusCode::ACCEPTED))
    })
    .await
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/msg", tag = "svix", operation_id = "v1.message.list",
    params(
        AppPath,
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page"),
        ("before" = Option<String>, Query, description = "Only messages published before this time"),
        ("after" = Option<String>, Query, description = "Only messages published after this time"),
        ("event_types" = Option<String>, Query, description = "Only these types (comma-separated or repeated)"),
        ("channel" = Option<String>, Query, description = "Only messages with this channel"),
        ("with_content" = Option<bool>, Query, description = "Include payloads (default true)"),
    ),
    responses((status = 200, description = "A page of messages, newest first", body = ListResponse<MessageOut>)),
)]
pub async fn list(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    let query = Query::of(&req);
    let paging = query.paging(true)?;
    let with_content = query.bool("with_content", true)?;
    let filter = MessageFilter {
        event_types: query.all("event_types"),
        channel: query
            .get("channel")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        before: query.time("before")?,
        after: query.time("after")?,
    };
    let mut cursor = TimeCursor {
        after: None,
        reverse: paging.backwards,
    };
    if let Some(iterator) = &paging.iterator {
        let event_id = svix::event_id_of(iterator)
            .ok_or_else(|| invalid("iterator", "is not a message id"))?;
        let time = svix::message_position(&state.db, app.organisation, &event_id)
            .await?
            .ok_or_else(|| invalid("iterator", "is not a message of this application"))?;
        cursor.after = Some((time, event_id));
    }
    let (rows, has_more) = svix::list_messages(
        &state.db,
        app.organisation,
        &filter,
        &cursor,
        !paging.descending,
        paging.limit,
    )
    .await?;
    let data: Vec<MessageOut> = rows
        .iter()
        .map(|row| MessageOut::of_row(row, with_content))
        .collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |message| message.id.clone(),
        paging.done(has_more),
    )))
}

/// The application `app_id` and its message `msg_id` (id or eventId).
async fn find_message(
    state: &AppState,
    caller: &SvixCaller,
    app_id: &str,
    msg_id: &str,
) -> Result<(Application, MessageRow), SvixError> {
    let app = caller.application(state, app_id, Scope::Webhooks).await?;
    let message = svix::find_message(&state.db, app.organisation, msg_id)
        .await?
        .ok_or_else(SvixError::not_found)?;
    Ok((app, message))
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/msg/{msg_id}", tag = "svix", operation_id = "v1.message.get",
    params(
        MessagePath,
        ("with_content" = Option<bool>, Query, description = "Include the payload (default true)"),
    ),
    responses((status = 200, description = "The message", body = MessageOut)),
)]
pub async fn show(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<MessagePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let with_content = Query::of(&req).bool("with_content", true)?;
    let (_, message) = find_message(&state, &caller, &path.app_id, &path.msg_id).await?;
    Ok(MessageOut::of_row(&message, with_content).answer(StatusCode::OK))
}

#[utoipa::path(
    delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/content", tag = "svix", operation_id = "v1.message.expunge-content",
    params(MessagePath),
    responses((status = 204, description = "The payload is gone (`{}` from now on, also for attempts still to come)")),
)]
pub async fn delete_content(
    caller: SvixCaller,
    path: web::Path<MessagePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, message) = find_message(&state, &caller, &path.app_id, &path.msg_id).await?;
    svix::delete_message_content(&state.db, &message.id).await?;
    Ok(Answer::no_content())
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint", tag = "svix", operation_id = "v1.message-attempt.list-attempted-destinations",
    params(MessagePath),
    responses((status = 200, description = "The endpoints the message went to, with its status at each", body = ListResponse<MessageEndpointOut>)),
)]
pub async fn endpoints_of_message(
    caller: SvixCaller,
    path: web::Path<MessagePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, message) = find_message(&state, &caller, &path.app_id, &path.msg_id).await?;
    let deliveries = svix::deliveries_of_message(&state.db, app.organisation, &message.id).await?;
    let ids: Vec<i64> = deliveries.iter().map(|d| d.config_id).collect();
    let extras = svix::endpoint_extras(&state.db, app.organisation, &ids).await?;
    let mut data = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        // A deleted endpoint is no longer listed.
        if let Some(config) =
            webhook_configs::find(&state.db, app.organisation, delivery.config_id).await?
        {
            data.push(MessageEndpointOut {
                endpoint: EndpointOut::of(&config, extras.get(&config.id)),
                delivery: DeliveryStatusOut::from(delivery),
            });
        }
    }
    Ok(Answer::ok(&ListResponse::page(
        data,
        |e| e.endpoint.id.clone(),
        true,
    )))
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", tag = "svix", operation_id = "v1.message-attempt.list-attempted-messages",
    params(
        EndpointPath,
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page"),
    ),
    responses((status = 200, description = "The messages sent to the endpoint, newest first, with their status there", body = ListResponse<EndpointMessageOut>)),
)]
pub async fn messages_of_endpoint(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    let config = endpoint_of(&state, &app, &path.endpoint_id).await?;
    let paging = Query::of(&req).paging(true)?;
    let after = match &paging.iterator {
        None => 0,
        Some(iterator) => {
            let event_id = svix::event_id_of(iterator)
                .ok_or_else(|| invalid("iterator", "is not a message id"))?;
            svix::deliveries_of_message(&state.db, app.organisation, &event_id)
                .await?
                .into_iter()
                .find(|d| d.config_id == config.id)
                .map(|d| d.delivery_id)
                .ok_or_else(|| invalid("iterator", "is not a message of this endpoint"))?
        }
    };
    let (deliveries, has_more) =
        svix::deliveries_to_endpoint(&state.db, config.id, after, paging.limit).await?;
    let event_ids: Vec<String> = deliveries.iter().map(|d| d.event_id.clone()).collect();
    let messages = svix::messages_by_id(&state.db, &event_ids).await?;
    let data: Vec<EndpointMessageOut> = deliveries
        .iter()
        .filter_map(|delivery| {
            let message = messages.get(&delivery.event_id)?;
            Some(EndpointMessageOut {
                message: MessageOut::of_row(message, true),
                delivery: DeliveryStatusOut::from(delivery),
            })
        })
        .collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |m| m.message.id.clone(),
        !has_more,
    )))
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", tag = "svix", operation_id = "v1.message-attempt.resend",
    params(ResendPath),
    responses((status = 202, description = "Sent again (a message still being sent goes on as it is)")),
)]
pub async fn resend(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<ResendPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let ResendPath {
        app_id,
        msg_id,
        endpoint_id,
    } = path.into_inner();
    let (app, message) = find_message(&state, &caller, &app_id, &msg_id).await?;
    let config = endpoint_of(&state, &app, &endpoint_id).await?;
    idempotent(&req, &state, &caller, async {
        let delivery = svix::deliveries_of_message(&state.db, app.organisation, &message.id)
            .await?
            .into_iter()
            .find(|d| d.config_id == config.id)
            .ok_or_else(SvixError::not_found)?;
        if delivery.status != "pending" {
            state
                .deliveries
                .send_again(&config, delivery.delivery_id)
                .await?;
        }
        Ok(Answer::json(StatusCode::ACCEPTED, &serde_json::json!({})))
    })
    .await
}

/// `status` of an attempt list: 0 success, 2 fail (others match none).
fn status_filter(query: &Query) -> Result<Option<Option<bool>>, SvixError> {
    Ok(match query.int("status")? {
        None => Some(None),
        Some(0) => Some(Some(true)),
        Some(2) => Some(Some(false)),
        Some(1 | 3 | 4) => None,
        Some(_) => return Err(invalid("status", "must be 0, 1, 2, 3 or 4")),
    })
}

async fn attempts_page(
    req: &HttpRequest,
    state: &AppState,
    app: &Application,
    of: AttemptsOf,
) -> Result<Answer, SvixError> {
    let query = Query::of(req);
    let paging = query.paging(true)?;
    let before = match &paging.iterator {
        None => 0,
        Some(iterator) => svix::parse_numeric_id("atmpt_", iterator)
            .ok_or_else(|| invalid("iterator", "is not an attempt id"))?,
    };
    let Some(success) = status_filter(&query)? else {
        return Ok(Answer::ok(&ListResponse::<MessageAttemptOut>::page(
            Vec::new(),
            |a| a.id.clone(),
            true,
        )));
    };
    let (attempts, has_more) = svix::list_attempts(
        &state.db,
        app.organisation,
        &of,
        success,
        before,
        paging.limit,
    )
    .await?;
    let urls = urls_of(state, &attempts).await?;
    let data: Vec<MessageAttemptOut> = attempts
        .iter()
        .map(|a| MessageAttemptOut::of(a, urls.get(&a.config_id).map_or("", String::as_str)))
        .collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |a| a.id.clone(),
        !has_more,
    )))
}

/// The URLs of the attempts' endpoints.
async fn urls_of(
    state: &AppState,
    attempts: &[AttemptRow],
) -> Result<HashMap<i64, String>, SvixError> {
    let mut urls = HashMap::new();
    for attempt in attempts {
        if let std::collections::hash_map::Entry::Vacant(entry) = urls.entry(attempt.config_id) {
            let url = webhook_configs::find_any(&state.db, attempt.config_id)
                .await?
                .map(|config| config.url)
                .unwrap_or_default();
            entry.insert(url);
        }
    }
    Ok(urls)
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", tag = "svix", operation_id = "v1.message-attempt.list-by-endpoint",
    params(
        EndpointPath,
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page"),
        ("status" = Option<i64>, Query, description = "0 success, 2 fail"),
    ),
    responses((status = 200, description = "The endpoint's attempts, newest first", body = ListResponse<MessageAttemptOut>)),
)]
pub async fn attempts_by_endpoint(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    let config = endpoint_of(&state, &app, &path.endpoint_id).await?;
    attempts_page(&req, &state, &app, AttemptsOf::Endpoint(config.id)).await
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}", tag = "svix", operation_id = "v1.message-attempt.list-by-msg",
    params(
        MessagePath,
        ("endpoint_id" = Option<String>, Query, description = "Only the attempts to this endpoint"),
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page"),
        ("status" = Option<i64>, Query, description = "0 success, 2 fail"),
    ),
    responses((status = 200, description = "The message's attempts, newest first", body = ListResponse<MessageAttemptOut>)),
)]
pub async fn attempts_by_message(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<MessagePath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, message) = find_message(&state, &caller, &path.app_id, &path.msg_id).await?;
    let config_id = match Query::of(&req).get("endpoint_id") {
        None => None,
        Some(endpoint) => Some(endpoint_of(&state, &app, endpoint).await?.id),
    };
    let of = AttemptsOf::Message {
        event_id: message.id,
        config_id,
    };
    attempts_page(&req, &state, &app, of).await
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", tag = "svix", operation_id = "v1.message-attempt.get",
    params(AttemptPath),
    responses((status = 200, description = "The attempt", body = MessageAttemptOut)),
)]
pub async fn attempt(
    caller: SvixCaller,
    path: web::Path<AttemptPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let AttemptPath {
        app_id,
        msg_id,
        attempt_id,
    } = path.into_inner();
    let (app, message) = find_message(&state, &caller, &app_id, &msg_id).await?;
    let attempt = svix::parse_numeric_id("atmpt_", &attempt_id).ok_or_else(SvixError::not_found)?;
    let attempt = svix::find_attempt(&state.db, app.organisation, &message.id, attempt)
        .await?
        .ok_or_else(SvixError::not_found)?;
    let urls = urls_of(&state, std::slice::from_ref(&attempt)).await?;
    let url = urls.get(&attempt.config_id).map_or("", String::as_str);
    Ok(Answer::ok(&MessageAttemptOut::of(&attempt, url)))
}
