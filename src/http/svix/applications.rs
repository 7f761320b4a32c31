//! `/api/v1/app`: an environment's applications.
use super::answer::{idempotent, Answer};
use super::caller::SvixCaller;
use super::error::{SvixError, ValidationItem};
use super::list::{ListResponse, Query};
use super::{timestamp, AppPath};
use crate::app::ApplicationFields;
use crate::http::body::read_body;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use aggregates::values::{RateLimit, Scope};
use projections::svix::{self, Application};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An application as Svix shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    #[schema(example = "app_12")]
    id: String,
    uid: Option<String>,
    name: String,
    rate_limit: Option<i64>,
    /// `rateLimit` under the name the newer SDKs read.
    throttle_rate: Option<i64>,
    metadata: BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
}

impl From<&Application> for ApplicationOut {
    fn from(app: &Application) -> Self {
        Self {
            id: svix::application_id(app.organisation),
            uid: app.uid.clone(),
            name: app.name.clone(),
            rate_limit: app.rate_limit,
            throttle_rate: app.rate_limit,
            metadata: app.metadata.0.clone(),
            created_at: timestamp(app.created_at),
            updated_at: timestamp(app.updated_at),
        }
    }
}

/// The body of a create or a replace.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    #[schema(example = "Customer 42")]
    name: String,
    /// Your own id for it (`a-z A-Z 0-9 - _ .`, 1–256).
    uid: Option<String>,
    #[serde(alias = "throttleRate")]
    rate_limit: Option<i64>,
    metadata: Option<BTreeMap<String, String>>,
}

impl ApplicationIn {
    pub fn into_fields(self) -> Result<ApplicationFields, SvixError> {
        let mut errors = Vec::new();
        check_name(&self.name, &mut errors);
        if let Some(uid) = &self.uid {
            check_uid(uid, &mut errors);
        }
        if let Some(rate) = self.rate_limit {
            check_rate(rate, &mut errors);
        }
        if !errors.is_empty() {
            return Err(SvixError::invalid(errors));
        }
        Ok(ApplicationFields {
            uid: self.uid,
            name: self.name,
            rate_limit: self.rate_limit,
            metadata: self.metadata.unwrap_or_default(),
        })
    }
}

/// The body of a patch: only what it names changes; `null` clears.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", alias = "throttleRate")]
    #[schema(value_type = Option<i64>)]
    rate_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Option<BTreeMap<String, String>>>,
}

/// A member that is there (`null` included): `Some`. With
/// `#[serde(default)]`, an absent one is `None`.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn check_uid(uid: &str, errors: &mut Vec<ValidationItem>) {
    if !svix::is_valid_uid(uid) {
        errors.push(ValidationItem::body(
            "uid",
            "must be 1 to 256 of a-z A-Z 0-9 - _ . and not shaped like an id",
        ));
    }
}

fn check_name(name: &str, errors: &mut Vec<ValidationItem>) {
    let chars = name.chars().count();
    if chars == 0 || chars > 256 || name.chars().any(char::is_control) {
        errors.push(ValidationItem::body(
            "name",
            "must be 1 to 256 characters, none of them control characters",
        ));
    }
}

fn check_rate(rate: i64, errors: &mut Vec<ValidationItem>) {
    if let Err(error) = RateLimit::parse(Some(rate)) {
        errors.push(ValidationItem::body("rateLimit", error.to_string()));
    }
}

/// Reads a JSON body into `T`; a body that does not fit is a 422.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, SvixError> {
    let bytes = read_body(req, payload).await?;
    parse_object(&bytes)
}

/// A body that is a JSON object fitting `T` (serde would also take an
/// array for a struct), or a 422.
fn parse_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SvixError> {
    let decode_error = |msg: String| {
        SvixError::invalid(vec![ValidationItem {
            loc: vec!["body".to_owned()],
            msg,
            kind: "value_error.jsondecode".to_owned(),
        }])
    };
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(decode_error("the body must be a JSON object".to_owned()));
    }
    serde_json::from_slice(bytes).map_err(|error| decode_error(error.to_string()))
}

/// Reads an optional JSON body into `T`: no body is `None`.
pub async fn optional_json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Option<T>, SvixError> {
    match read_body(req, payload).await {
        Err(crate::http::body::BodyError::Empty) => Ok(None),
        Err(error) => Err(error.into()),
        Ok(bytes) => parse_object(&bytes).map(Some),
    }
}

#[utoipa::path(
    get, path = "/api/v1/app", tag = "svix", operation_id = "v1.application.list",
    params(
        ("limit" = Option<i64>, Query, description = "1–250, default 50"),
        ("iterator" = Option<String>, Query, description = "From a previous page's `iterator` or `prevIterator`"),
        ("order" = Option<String>, Query, description = "`ascending` (default) or `descending`"),
    ),
    responses((status = 200, description = "A page of the environment's applications", body = ListResponse<ApplicationOut>)),
)]
pub async fn list(
    req: HttpRequest,
    caller: SvixCaller,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Webhooks)?;
    let environment = caller.environment()?;
    let paging = Query::of(&req).paging(false)?;
    let (cursor, reverse) = paging.numeric("app_")?;
    let (mut apps, has_more) =
        svix::list_applications(&state.db, environment.id, cursor, paging.limit).await?;
    if reverse {
        apps.reverse();
    }
    let data: Vec<ApplicationOut> = apps.iter().map(ApplicationOut::from).collect();
    Ok(Answer::ok(&ListResponse::page(
        data,
        |app| app.id.clone(),
        paging.done(has_more),
    )))
}

#[utoipa::path(
    post, path = "/api/v1/app", tag = "svix", operation_id = "v1.application.create",
    params(("get_if_exists" = Option<bool>, Query, description = "Answer the application with this `uid` (200) instead of 409")),
    request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 200, description = "`get_if_exists`: the application with this uid", body = ApplicationOut),
        (status = 409, description = "An application with this uid exists", body = super::ErrorBody),
    ),
)]
pub async fn create(
    req: HttpRequest,
    caller: SvixCaller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    caller.require(Scope::Webhooks)?;
    let environment = caller.environment()?;
    let get_if_exists = Query::of(&req).bool("get_if_exists", false)?;
    idempotent(&req, &state, &caller, async {
        let fields = json_body::<ApplicationIn>(&req, payload)
            .await?
            .into_fields()?;
        if get_if_exists {
            if let Some(uid) = &fields.uid {
                if let Some(app) = svix::find_application(&state.db, environment.id, uid).await? {
                    return Ok(Answer::ok(&ApplicationOut::from(&app)));
                }
            }
        }
        let app = state
            .applications
            .create(caller.actor(), environment, fields)
            .await?;
        Ok(Answer::json(
            StatusCode::CREATED,
            &ApplicationOut::from(&app),
        ))
    })
    .await
}

#[utoipa::path(
    get, path = "/api/v1/app/{app_id}", tag = "svix", operation_id = "v1.application.get",
    params(AppPath),
    responses((status = 200, description = "The application", body = ApplicationOut)),
)]
pub async fn show(
    caller: SvixCaller,
    path: web::Path<AppPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    Ok(Answer::ok(&ApplicationOut::from(&app)))
}

#[utoipa::path(
    put, path = "/api/v1/app/{app_id}", tag = "svix", operation_id = "v1.application.update",
    params(AppPath),
    request_body = ApplicationIn,
    responses(
        (status = 200, description = "Replaced", body = ApplicationOut),
        (status = 201, description = "Created (a uid that names no application)", body = ApplicationOut),
    ),
)]
pub async fn replace(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let found = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await;
    let mut fields = json_body::<ApplicationIn>(&req, payload)
        .await?
        .into_fields()?;
    let app = match found {
        Ok(app) => app,
        // Svix's PUT creates what the path's uid does not name yet.
        Err(error)
            if error.status() == StatusCode::NOT_FOUND && svix::is_valid_uid(&path.app_id) =>
        {
            if fields.uid.as_deref().is_some_and(|uid| *uid != path.app_id) {
                return Err(SvixError::invalid_field(
                    "uid",
                    "must be the uid of the path",
                ));
            }
            fields.uid = Some(path.into_inner().app_id);
            let app = state
                .applications
                .create(caller.actor(), caller.environment()?, fields)
                .await?;
            return Ok(Answer::json(
                StatusCode::CREATED,
                &ApplicationOut::from(&app),
            ));
        }
        Err(error) => return Err(error),
    };
    let app = state
        .applications
        .update(caller.actor(), &app, fields)
        .await?;
    Ok(Answer::ok(&ApplicationOut::from(&app)))
}

#[utoipa::path(
    patch, path = "/api/v1/app/{app_id}", tag = "svix", operation_id = "v1.application.patch",
    params(AppPath),
    request_body = ApplicationPatch,
    responses((status = 200, description = "Changed", body = ApplicationOut)),
)]
pub async fn patch(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    let patch = json_body::<ApplicationPatch>(&req, payload).await?;
    let mut errors = Vec::new();
    let name = match patch.name {
        None => app.name.clone(),
        Some(None) => {
            errors.push(ValidationItem::body("name", "must not be null"));
            String::new()
        }
        Some(Some(name)) => {
            check_name(&name, &mut errors);
            name
        }
    };
    let uid = match patch.uid {
        None => app.uid.clone(),
        Some(uid) => {
            if let Some(uid) = &uid {
                check_uid(uid, &mut errors);
            }
            uid
        }
    };
    let rate_limit = match patch.rate_limit {
        None => app.rate_limit,
        Some(rate) => {
            if let Some(rate) = rate {
                check_rate(rate, &mut errors);
            }
            rate
        }
    };
    if !errors.is_empty() {
        return Err(SvixError::invalid(errors));
    }
    let fields = ApplicationFields {
        uid,
        name,
        rate_limit,
        metadata: match patch.metadata {
            None => app.metadata.0.clone(),
            Some(metadata) => metadata.unwrap_or_default(),
        },
    };
    let app = state
        .applications
        .update(caller.actor(), &app, fields)
        .await?;
    Ok(Answer::ok(&ApplicationOut::from(&app)))
}

#[utoipa::path(
    delete, path = "/api/v1/app/{app_id}", tag = "svix", operation_id = "v1.application.delete",
    params(AppPath),
    responses((status = 204, description = "Deleted, with its endpoints")),
)]
pub async fn delete(
    caller: SvixCaller,
    path: web::Path<AppPath>,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    let app = caller
        .application(&state, &path.app_id, Scope::Webhooks)
        .await?;
    state.applications.delete(caller.actor(), &app).await?;
    Ok(Answer::no_content())
}
