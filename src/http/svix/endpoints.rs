//! `/api/v1/app/{app_id}/endpoint…`: an application's endpoints, each a
//! config of profile `svix` (its uid and metadata beside it).
use super::answer::{idempotent, Answer};
use super::applications::{check_uid, json_body, optional_json_body, present};
use super::caller::SvixCaller;
use super::error::{SvixError, ValidationItem};
use super::list::{ListResponse, Query};
use super::messages::MessageOut;
use super::{parse_time, timestamp, AppPath, EndpointPath};
use crate::app::endpoints::{DEFAULT_OVERLAP, MAX_OVERLAP};
use crate::app::{NewEndpoint, Rotation};
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use aggregates::values::{
    ConfigId, ConfigName, CustomHeaders, RateLimit, Scope, SubscribedEvents, WebhookSecret,
    WebhookUrl,
};
use aggregates::webhook_config::{ConfigChanges, ConfigState, Profile};
use projections::db::{now_micros, JsonText};
use projections::svix::{self, Application, Channels, EndpointExtras};
use projections::webhook_configs::{self, ConfigRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// An endpoint as Svix shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    #[schema(example = "ep_7")]
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i64,
    pub rate_limit: Option<i64>,
    /// `rateLimit` under the name the newer SDKs read.
    pub throttle_rate: Option<i64>,
    pub disabled: bool,
    /// `null`: every event type.
    pub filter_types: Option<Vec<String>>,
    /// `filterTypes` under the name the newer SDKs read.
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

impl EndpointOut {
    pub fn of(config: &ConfigRow, extras: Option<&EndpointExtras>) -> Self {
        let filter = (!config.events.0.iter().any(|e| e == "*")).then(|| config.event_types());
        Self {
            id: svix::endpoint_id(config.id),
            uid: extras.and_then(|e| e.uid.clone()),
            url: config.url.clone(),
            description: config.name.clone(),
            version: 1,
            rate_limit: config.rate_limit,
            throttle_rate: config.rate_limit,
            disabled: config.state == ConfigState::Deactivated,
            filter_types: filter.clone(),
            event_types: filter,
            channels: extras.and_then(|e| e.channels.0.clone()),
            metadata: extras.map(|e| e.metadata.0.clone()).unwrap_or_default(),
            created_at: timestamp(config.created_at),
            updated_at: timestamp(config.updated_at),
        }
    }
}

/// The body of a create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    #[schema(example = "https://example.com/webhook")]
    url: String,
    description: Option<String>,
    #[serde(alias = "throttleRate")]
    rate_limit: Option<i64>,
    uid: Option<String>,
    disabled: Option<bool>,
    /// Event types it receives (`null`: all).
    #[serde(alias = "eventTypes")]
    filter_types: Option<Vec<String>>,
    /// 1–10 channels: it then receives only messages with one of them
    /// (`null`: every message its event types let through).
    channels: Option<Vec<String>>,
    /// `whsec_` and base64 (the prefix may be left out); `null`: generated.
    secret: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    headers: Option<BTreeMap<String, String>>,
    /// Svix's deprecated endpoint version: at least 1 if given (always 1 here).
    version: Option<i64>,
}

/// The body of a replace (PUT): what it leaves out is reset.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointUpdate {
    url: String,
    description: Option<String>,
    #[serde(alias = "throttleRate")]
    rate_limit: Option<i64>,
    uid: Option<String>,
    disabled: Option<bool>,
    #[serde(alias = "eventTypes")]
    filter_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    metadata: Option<BTreeMap<String, String>>,
    /// At least 1 if given (always 1 here).
    version: Option<i64>,
}

/// The body of a patch: what it names changes; `null` resets.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", alias = "throttleRate")]
    #[schema(value_type = Option<i64>)]
    rate_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    disabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present", alias = "eventTypes")]
    #[schema(value_type = Option<Vec<String>>)]
    filter_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    channels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Option<BTreeMap<String, String>>>,
}

/// Collects every field's problem, then answers them together.
#[derive(Default)]
struct Checks(Vec<ValidationItem>);

impl Checks {
    fn take<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(ValidationItem::body(field, error.to_string()));
                None
            }
        }
    }

    fn url(&mut self, state: &AppState, raw: &str) -> Option<WebhookUrl> {
        self.take("url", WebhookUrl::parse(raw, &state.url_policy))
    }

    fn description(&mut self, raw: Option<&str>) -> Option<ConfigName> {
        self.take("description", ConfigName::parse(raw.unwrap_or_default()))
    }

    fn rate(&mut self, raw: Option<i64>) -> Option<RateLimit> {
        self.take("rateLimit", RateLimit::parse(raw))
    }

    fn filter(&mut self, raw: Option<&[String]>) -> Option<SubscribedEvents> {
        match raw {
            None => Some(SubscribedEvents::all()),
            Some(types) => self.take("filterTypes", SubscribedEvents::parse(types)),
        }
    }

    fn uid(&mut self, raw: Option<&str>) {
        if let Some(uid) = raw {
            check_uid(uid, &mut self.0);
        }
    }

    fn channels(&mut self, raw: Option<&[String]>) {
        let Some(channels) = raw else {
            return;
        };
        if !(1..=10).contains(&channels.len()) || !channels.iter().all(|c| is_channel(c)) {
            self.0.push(ValidationItem::body(
                "channels",
                "must be 1 to 10 channels of 1 to 128 of a-z A-Z 0-9 - _ . : (or null)",
            ));
        }
    }

    fn version(&mut self, raw: Option<i64>) {
        if raw.is_some_and(|version| version < 1) {
            self.0
                .push(ValidationItem::body("version", "must be at least 1"));
        }
    }

    fn finish(self) -> Result<(), SvixError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SvixError::invalid(self.0))
        }
    }
}

/// A channel name: 1–128 of `a-z A-Z 0-9 - _ . :`.
pub fn is_channel(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// A secret as Svix takes it: base64, with or without `whsec_`.
fn parse_secret(raw: &str) -> Result<WebhookSecret, aggregates::values::ValidationError> {
    if raw.starts_with("whsec_") {
        WebhookSecret::parse(raw)
    } else {
        WebhookSecret::parse(&format!("whsec_{raw}"))
    }
}

/// The application `app_id` and its endpoint `endpoint_id` (id or uid).
async fn find(
    state: &AppState,
    caller: &SvixCaller,
    path: &EndpointPath,
) -> Result<(Application, ConfigRow), SvixError> {
    let app = caller
        .application(state, &path.app_id, Scope::Webhooks)
        .await?;
    let config = endpoint_of(state, &app, &path.endpoint_id).await?;
    Ok((app, config))
}

/// An application's endpoint by id or uid (404 otherwise).
pub async fn endpoint_of(
    state: &AppState,
    app: &Application,
    id_or_uid: &str,
) -> Result<ConfigRow, SvixError> {
    let id = match svix::parse_numeric_id("ep_", id_or_uid) {
        Some(id) => Some(id),
        None => svix::endpoint_by_uid(&state.db, app.organisation, id_or_uid).await?,
    };
    let Some(id) = id else {
        return Err(SvixError::not_found());
    };
    webhook_configs::find(&state.db, app.organisation, id)
        .await?
        .ok_or_else(SvixError::not_found)
}

async fn extras_of(
    state: &AppState,
    app: &Application,
    config: i64,
) -> Result<Option<EndpointExtras>, SvixError> {
    Ok(
        svix::endpoint_extras(&state.db, app.organisation, &[config])
            .await?
            .remove(&config),
    )
}

/// The uid is the application's only: another endpoint with it is a 409.
async fn check_uid_free(
    state: &AppState,
    app: &Application,
    uid: Option<&str>,
    this: Option<i64>,
) -> Result<(), SvixError> {
    if let Some(uid) = uid {
        if let Some(other) = svix::endpoint_by_uid(&state.db, app.organisation, uid).await? {
            if Some(other) != this {
                return Err(SvixError::conflict(
                    "an endpoint with this uid already exists",
                ));
            }
        }
    }
    Ok(())
}

async fn answer_endpoint(
    state: &AppState,
    app: &Application,
    id: ConfigId,
    status: StatusCode,
) -> Result<Answer, SvixError> {
    let config = webhook_configs::find(&state.db, app.organisation, id.get())
        .await?
        .ok_or_else(SvixError::not_found)?;
    let extras = extras_of(state, app, config.id).await?;
    Ok(Answer::json(
        status,
        &EndpointOut::of(&config, extras.as_ref()),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint", tag = "svix", operation_id = "v1.endpoint.list",
    params(
        AppPath,
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page"),
        ("order" = Option<String>, Query, description = "`ascending` (default) or `descending`"),
    ),
    responses((status = 200, description = "A page of the application's endpoints", body = ListResponse<EndpointOut>)),
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
    let paging = Query::of(&req).paging(false)?;
    let (cursor, reverse) = paging.numeric("ep_")?;
    let (mut configs, has_more) =
        webhook_configs::list_page(&state.db, app.organisation, cursor, paging.limit).await?;
    if reverse {
        configs.reverse();
    }
    let ids: Vec<i64> = configs.iter().map(|c| c.id).collect();
    let extras = svix::endpoint_extras(&state.db, app.organisation, &ids).await?;
    let data: Vec<EndpointOut> = configs
        .iter()
        .map(|config| EndpointOut::of(config, extras.get(&config.id)))
        .collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |endpoint| endpoint.id.clone(),
        paging.done(has_more),
    )))
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/endpoint", tag = "svix", operation_id = "v1.endpoint.create",
    params(AppPath),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "An endpoint with this uid exists", body = super::ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    idempotent(&req, &state, &caller, async {
        let body: EndpointIn = json_body(&req, payload).await?;
        create_endpoint(&state, &caller, &app, body).await
    })
    .await
}

/// Creates an application's endpoint from a create body (or a replace's,
/// for a uid that names none yet).
async fn create_endpoint(
    state: &AppState,
    caller: &SvixCaller,
    app: &Application,
    body: EndpointIn,
) -> Result<Answer, SvixError> {
    let mut checks = Checks::default();
    let url = checks.url(state, &body.url);
    let name = checks.description(body.description.as_deref());
    let rate = checks.rate(body.rate_limit);
    let events = checks.filter(body.filter_types.as_deref());
    checks.uid(body.uid.as_deref());
    checks.channels(body.channels.as_deref());
    checks.version(body.version);
    let secret = match &body.secret {
        None => Some(None),
        Some(raw) => checks.take("secret", parse_secret(raw)).map(Some),
    };
    let headers = match &body.headers {
        None => Some(CustomHeaders::default()),
        Some(headers) => checks.take("headers", CustomHeaders::parse(headers)),
    };
    checks.finish()?;
    check_uid_free(state, app, body.uid.as_deref(), None).await?;
    let new = NewEndpoint {
        name: name.expect("checked"),
        events: events.expect("checked"),
        headers: headers.expect("checked"),
        rate_limit: rate.expect("checked"),
        secret: secret.expect("checked"),
        active: !body.disabled.unwrap_or(false),
        ..NewEndpoint::new(Profile::Svix, url.expect("checked"))
    };
    let id = state.endpoints.create(caller.actor_in(app), new).await?;
    let extras = EndpointExtras {
        config_id: id.get(),
        uid: body.uid,
        metadata: JsonText(body.metadata.unwrap_or_default()),
        channels: Channels(body.channels),
    };
    svix::set_endpoint_extras(&state.db, app.organisation, &extras)
        .await
        .map_err(uid_conflict)?;
    answer_endpoint(state, app, id, StatusCode::CREATED).await
}

fn uid_conflict(error: projections::Error) -> SvixError {
    if error.is_unique_violation() {
        SvixError::conflict("an endpoint with this uid already exists")
    } else {
        error.into()
    }
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "svix", operation_id = "v1.endpoint.get",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint", body = EndpointOut)),
)]
pub async fn show(
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    let extras = extras_of(&state, &app, config.id).await?;
    Ok(Answer::ok(&EndpointOut::of(&config, extras.as_ref())))
}

/// What a replace or a patch asks for, checked.
struct EndpointChanges {
    changes: ConfigChanges,
    uid: Option<Option<String>>,
    metadata: Option<BTreeMap<String, String>>,
    channels: Option<Option<Vec<String>>>,
}

/// Writes `changes` to the endpoint's config and its uid and metadata.
async fn apply(
    state: &AppState,
    caller: &SvixCaller,
    app: &Application,
    config: &ConfigRow,
    mut wanted: EndpointChanges,
) -> Result<Answer, SvixError> {
    if let Some(uid) = &wanted.uid {
        check_uid_free(state, app, uid.as_deref(), Some(config.id)).await?;
    }
    // Only a change of state is a command (re-enabling an enabled endpoint
    // is not an error in Svix).
    let disabled = config.state == ConfigState::Deactivated;
    if wanted.changes.active == Some(!disabled) {
        wanted.changes.active = None;
    }
    let id = ConfigId::new(config.id);
    state
        .endpoints
        .update(caller.actor_in(app), id, wanted.changes)
        .await?;
    if wanted.uid.is_some() || wanted.metadata.is_some() || wanted.channels.is_some() {
        let current = extras_of(state, app, config.id).await?.unwrap_or_default();
        let extras = EndpointExtras {
            config_id: config.id,
            uid: wanted.uid.unwrap_or(current.uid),
            metadata: wanted.metadata.map(JsonText).unwrap_or(current.metadata),
            channels: wanted.channels.map(Channels).unwrap_or(current.channels),
        };
        svix::set_endpoint_extras(&state.db, app.organisation, &extras)
            .await
            .map_err(uid_conflict)?;
    }
    answer_endpoint(state, app, id, StatusCode::OK).await
}

#[utoipa::path(
    put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "svix", operation_id = "v1.endpoint.update",
    params(EndpointPath),
    request_body = EndpointUpdate,
    responses(
        (status = 200, description = "Replaced", body = EndpointOut),
        (status = 201, description = "Created (a uid that names no endpoint)", body = EndpointOut),
    ),
)]
pub async fn replace(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    let found = endpoint_of(&state, &app, &path.endpoint_id).await;
    let body: EndpointUpdate = json_body(&req, payload).await?;
    let config = match found {
        Ok(config) => config,
        // Svix's PUT creates what the path's uid does not name yet.
        Err(error)
            if error.status() == StatusCode::NOT_FOUND && svix::is_valid_uid(&path.endpoint_id) =>
        {
            if body
                .uid
                .as_deref()
                .is_some_and(|uid| uid != path.endpoint_id)
            {
                return Err(SvixError::invalid_field(
                    "uid",
                    "must be the uid of the path",
                ));
            }
            let create = EndpointIn {
                url: body.url,
                description: body.description,
                rate_limit: body.rate_limit,
                uid: Some(path.endpoint_id.clone()),
                disabled: body.disabled,
                filter_types: body.filter_types,
                channels: body.channels,
                secret: None,
                metadata: body.metadata,
                headers: None,
                version: body.version,
            };
            return create_endpoint(&state, &caller, &app, create).await;
        }
        Err(error) => return Err(error),
    };
    let mut checks = Checks::default();
    let changes = ConfigChanges {
        url: checks.url(&state, &body.url),
        name: checks.description(body.description.as_deref()),
        rate_limit: checks.rate(body.rate_limit),
        events: checks.filter(body.filter_types.as_deref()),
        active: Some(!body.disabled.unwrap_or(false)),
        ..ConfigChanges::default()
    };
    checks.uid(body.uid.as_deref());
    checks.channels(body.channels.as_deref());
    checks.version(body.version);
    checks.finish()?;
    let wanted = EndpointChanges {
        changes,
        uid: Some(body.uid),
        metadata: Some(body.metadata.unwrap_or_default()),
        channels: Some(body.channels),
    };
    apply(&state, &caller, &app, &config, wanted).await
}

#[utoipa::path(
    patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "svix", operation_id = "v1.endpoint.patch",
    params(EndpointPath),
    request_body = EndpointPatch,
    responses((status = 200, description = "Changed", body = EndpointOut)),
)]
pub async fn patch(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    let body: EndpointPatch = json_body(&req, payload).await?;
    let mut checks = Checks::default();
    let url = match &body.url {
        None => None,
        Some(None) => {
            checks
                .0
                .push(ValidationItem::body("url", "must not be null"));
            None
        }
        Some(Some(raw)) => checks.url(&state, raw),
    };
    let changes = ConfigChanges {
        url,
        name: body
            .description
            .as_ref()
            .and_then(|d| checks.description(d.as_deref())),
        rate_limit: body.rate_limit.and_then(|rate| checks.rate(rate)),
        events: body
            .filter_types
            .as_ref()
            .and_then(|types| checks.filter(types.as_deref())),
        active: body.disabled.map(|disabled| !disabled.unwrap_or(false)),
        ..ConfigChanges::default()
    };
    if let Some(Some(uid)) = &body.uid {
        checks.uid(Some(uid));
    }
    if let Some(channels) = &body.channels {
        checks.channels(channels.as_deref());
    }
    checks.finish()?;
    let wanted = EndpointChanges {
        changes,
        uid: body.uid,
        metadata: body.metadata.map(Option::unwrap_or_default),
        channels: body.channels,
    };
    apply(&state, &caller, &app, &config, wanted).await
}

#[utoipa::path(
    delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "svix", operation_id = "v1.endpoint.delete",
    params(EndpointPath),
    responses((status = 204, description = "Deleted (its history stays in the log)")),
)]
pub async fn delete(
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    state
        .endpoints
        .delete(caller.actor_in(&app), ConfigId::new(config.id))
        .await?;
    svix::delete_endpoint_extras(&state.db, config.id).await?;
    Ok(Answer::no_content())
}

#[derive(Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// `whsec_` and base64.
    key: String,
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", tag = "svix", operation_id = "v1.endpoint.get-secret",
    params(EndpointPath),
    responses((status = 200, description = "The signing secret", body = EndpointSecretOut)),
)]
pub async fn secret(
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, config) = find(&state, &caller, &path).await?;
    Ok(Answer::ok(&EndpointSecretOut { key: config.secret }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret; `null`: generated.
    key: Option<String>,
    /// How long the replaced secret keeps signing beside the new one
    /// (default 24 h, at most 7 days).
    grace_period_seconds: Option<i64>,
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", tag = "svix", operation_id = "v1.endpoint.rotate-secret",
    params(EndpointPath),
    request_body(content = Option<EndpointSecretRotateIn>, description = "Optional: the new secret and the grace period"),
    responses((status = 200, description = "Rotated: the new secret; both sign during the grace period", body = EndpointSecretOut)),
)]
pub async fn rotate_secret(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    idempotent(&req, &state, &caller, async {
        let body: EndpointSecretRotateIn =
            optional_json_body(&req, payload).await?.unwrap_or_default();
        let mut checks = Checks::default();
        let secret = match &body.key {
            None => Some(None),
            Some(raw) => checks.take("key", parse_secret(raw)).map(Some),
        };
        let grace = match body.grace_period_seconds {
            None => Some(DEFAULT_OVERLAP),
            Some(seconds) if (0..=MAX_OVERLAP.as_secs() as i64).contains(&seconds) => {
                Some(Duration::from_secs(seconds as u64))
            }
            Some(_) => checks.take::<Duration, _>(
                "gracePeriodSeconds",
                Err(format!("must be between 0 and {}", MAX_OVERLAP.as_secs())),
            ),
        };
        checks.finish()?;
        let rotation = Rotation {
            secret: secret.expect("checked"),
            previous_valid_for: grace.expect("checked"),
        };
        let id = ConfigId::new(config.id);
        state
            .endpoints
            .rotate_secret(caller.actor_in(&app), id, rotation)
            .await?;
        let rotated = webhook_configs::find(&state.db, app.organisation, id.get())
            .await?
            .ok_or_else(SvixError::not_found)?;
        Ok(Answer::ok(&EndpointSecretOut {
            key: rotated.secret,
        }))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    headers: BTreeMap<String, String>,
    /// Names whose values are not shown (none: webhookd shows them all).
    sensitive: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    /// Headers to set; a `null` value removes the header.
    #[schema(value_type = BTreeMap<String, Option<String>>)]
    headers: BTreeMap<String, Option<String>>,
    /// Headers to remove.
    delete_headers: Option<Vec<String>>,
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "svix", operation_id = "v1.endpoint.get-headers",
    params(EndpointPath),
    responses((status = 200, description = "The custom headers", body = EndpointHeadersOut)),
)]
pub async fn headers(
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, config) = find(&state, &caller, &path).await?;
    Ok(Answer::ok(&EndpointHeadersOut {
        headers: config.header_map(),
        sensitive: Vec::new(),
    }))
}

async fn set_headers(
    state: &AppState,
    caller: &SvixCaller,
    app: &Application,
    config: &ConfigRow,
    headers: BTreeMap<String, String>,
) -> Result<Answer, SvixError> {
    let mut checks = Checks::default();
    let headers = checks.take("headers", CustomHeaders::parse(&headers));
    checks.finish()?;
    let changes = ConfigChanges {
        headers,
        ..ConfigChanges::default()
    };
    state
        .endpoints
        .update(caller.actor_in(app), ConfigId::new(config.id), changes)
        .await?;
    Ok(Answer::no_content())
}

#[utoipa::path(
    put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "svix", operation_id = "v1.endpoint.update-headers",
    params(EndpointPath),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "Replaced")),
)]
pub async fn replace_headers(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    let body: EndpointHeadersIn = json_body(&req, payload).await?;
    set_headers(&state, &caller, &app, &config, body.headers).await
}

#[utoipa::path(
    patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "svix", operation_id = "v1.endpoint.patch-headers",
    params(EndpointPath),
    request_body = EndpointHeadersPatchIn,
    responses((status = 204, description = "Changed")),
)]
pub async fn patch_headers(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (app, config) = find(&state, &caller, &path).await?;
    let body: EndpointHeadersPatchIn = json_body(&req, payload).await?;
    let mut headers = config.header_map();
    for (name, value) in body.headers {
        let name = name.to_ascii_lowercase();
        match value {
            Some(value) => headers.insert(name, value),
            None => headers.remove(&name),
        };
    }
    for name in body.delete_headers.unwrap_or_default() {
        headers.remove(&name.to_ascii_lowercase());
    }
    set_headers(&state, &caller, &app, &config, headers).await
}

#[derive(Deserialize, ToSchema)]
pub struct RecoverIn {
    /// Failed messages since this time are sent again.
    since: String,
    /// Up to this time (default: now).
    until: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    #[schema(example = "qtask_3")]
    id: String,
    /// `running`: the recovery goes on in the background.
    status: &'static str,
    /// `endpoint.recover`.
    task: &'static str,
    updated_at: String,
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", tag = "svix", operation_id = "v1.endpoint.recover",
    params(EndpointPath),
    request_body = RecoverIn,
    responses((status = 202, description = "Recovery started", body = RecoverOut)),
)]
pub async fn recover(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, config) = find(&state, &caller, &path).await?;
    idempotent(&req, &state, &caller, async {
        let body: RecoverIn = json_body(&req, payload).await?;
        let now = now_micros();
        let mut checks = Checks::default();
        let since = checks.take(
            "since",
            parse_time(&body.since).ok_or("must be an RFC 3339 time"),
        );
        let until = match &body.until {
            None => Some(now),
            Some(raw) => checks.take("until", parse_time(raw).ok_or("must be an RFC 3339 time")),
        };
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                checks
                    .0
                    .push(ValidationItem::body("since", "must be before until"));
            }
        }
        checks.finish()?;
        let window = (since.expect("checked"), until.expect("checked"));
        let task = state
            .deliveries
            .recover(&config, Some(caller.key.id), window)
            .await?;
        Ok(Answer::json(
            StatusCode::ACCEPTED,
            &RecoverOut {
                id: format!("qtask_{task}"),
                status: "running",
                task: "endpoint.recover",
                updated_at: timestamp(now),
            },
        ))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    #[schema(example = "invoice.paid")]
    event_type: String,
    /// Which of the type's schema `examples` to send (default the first).
    example_index: Option<usize>,
    /// The payload to send instead of an example.
    #[schema(value_type = Option<Object>)]
    payload: Option<serde_json::Value>,
}

#[utoipa::path(
    post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", tag = "svix", operation_id = "v1.endpoint.send-example",
    params(EndpointPath),
    request_body = EventExampleIn,
    responses((status = 202, description = "Sent to this endpoint only", body = MessageOut)),
)]
pub async fn send_example(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, config) = find(&state, &caller, &path).await?;
    idempotent(&req, &state, &caller, async {
        let body: EventExampleIn = json_body(&req, payload).await?;
        let Some(event_type) = projections::event_types::find(&state.db, &body.event_type).await?
        else {
            return Err(SvixError::invalid_field(
                "eventType",
                "is not an event type of the catalog",
            ));
        };
        let data = match body.payload {
            Some(payload) => payload,
            None => example(
                event_type.schema.as_deref(),
                body.example_index.unwrap_or(0),
            ),
        };
        if !data.is_object() {
            return Err(SvixError::invalid_field("payload", "must be an object"));
        }
        let published = state
            .deliveries
            .send_one(&config, &event_type.name, &data)
            .await?;
        Ok(MessageOut::of_event(&published.event, None, None).answer(StatusCode::ACCEPTED))
    })
    .await
}

/// The `examples[index]` of a JSON Schema, or `{}`.
fn example(schema: Option<&str>, index: usize) -> serde_json::Value {
    schema
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|schema| schema.get("examples")?.get(index).cloned())
        .unwrap_or_else(|| serde_json::json!({}))
}

#[derive(Serialize, ToSchema)]
pub struct EndpointStats {
    success: i64,
    pending: i64,
    sending: i64,
    fail: i64,
    canceled: i64,
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", tag = "svix", operation_id = "v1.endpoint.get-stats",
    params(
        EndpointPath,
        ("since" = Option<String>, Query, description = "Default: 28 days ago"),
        ("until" = Option<String>, Query, description = "Default: now"),
    ),
    responses((status = 200, description = "Its messages by status", body = EndpointStats)),
)]
pub async fn stats(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<EndpointPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let (_, config) = find(&state, &caller, &path).await?;
    let query = Query::of(&req);
    let now = now_micros();
    let since = query
        .time("since")?
        .unwrap_or(now - 28 * 24 * 3600 * 1_000_000);
    let until = query.time("until")?.unwrap_or(now + 1);
    let counts = svix::endpoint_status_counts(&state.db, config.id, since, until).await?;
    let count = |status: &str| counts.get(status).copied().unwrap_or(0);
    Ok(Answer::ok(&EndpointStats {
        success: count("succeeded"),
        pending: count("pending"),
        sending: 0,
        fail: count("failed"),
        canceled: 0,
    }))
}
