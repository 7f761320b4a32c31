//! The endpoints: a paged list, the create and edit forms (the API's
//! validation messages next to each field), delete with a confirmation,
//! and the one-click actions (test, rotate the secret, reveal it,
//! reactivate). Every change is the same command the v1 API sends, with
//! the session's actor in its metadata.
use super::endpoint_page;
use super::forms::{EndpointFields, Form};
use super::pages::{
    action_button, csrf_field, layout, optional_time, page, query_param, see_other, PageError,
};
use super::session::Session;
use crate::app::{EndpointError, Rotation};
use crate::config_commands::CommandError;
use crate::http::request_id::RequestId;
use crate::http::v1::webhook_request::{parse_create, parse_update};
use crate::http::v1::FieldErrors;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::ConfigId;
use aggregates::webhook_config::{ConfigChanges, ConfigState};
use maud::{html, Markup};
use projections::webhook_configs::ConfigRow;

const PER_PAGE: i64 = 25;

/// The session's live config named by the path, or 404 (also another
/// organisation's: ids of other tenants reveal nothing).
pub async fn owned(
    state: &AppState,
    session: &Session,
    raw_id: &str,
) -> Result<ConfigRow, PageError> {
    let id = ConfigId::parse(raw_id).ok_or(PageError::NotFound)?;
    state
        .config_reads
        .find(&state.db, session.organisation_id(), id.get())
        .await?
        .ok_or(PageError::NotFound)
}

/// A posted form, refused without the session's CSRF token.
pub fn checked_form(session: &Session, body: &[u8]) -> Result<Form, PageError> {
    let form = Form::parse(body);
    if session.csrf_matches(form.get("csrf")) {
        Ok(form)
    } else {
        Err(PageError::Forbidden)
    }
}

/// A form posted to one of the session's endpoints: its CSRF token
/// checked, the endpoint found (or 404).
pub async fn posted_to(
    state: &AppState,
    session: &Session,
    raw_id: &str,
    body: &[u8],
) -> Result<(Form, ConfigRow), PageError> {
    let form = checked_form(session, body)?;
    let row = owned(state, session, raw_id).await?;
    Ok((form, row))
}

/// Back to an endpoint's page, with one of its fixed notices.
pub fn back_to(id: i64, notice: &str) -> HttpResponse {
    see_other(&format!("/console/endpoints/{id}?notice={notice}"))
}

pub fn state_badge(state: ConfigState) -> Markup {
    html! { span class={"badge " (state.as_str())} { (state.as_str()) } }
}

/// `GET /console/endpoints?page=`
pub async fn list(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let page_number = query_param(&req, "page")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| (1..=1_000_000).contains(n))
        .unwrap_or(1);
    let (rows, total) = state
        .config_reads
        .list_page(&state.db, session.organisation_id(), page_number, PER_PAGE)
        .await?;
    let last_page = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let body = html! {
        div.heading {
            h1 { "Endpoints" }
            a.button href="/console/endpoints/new" { "New endpoint" }
        }
        @if rows.is_empty() {
            p.empty { "No endpoints yet." }
        } @else {
            table.list {
                thead { tr {
                    th { "Name" } th { "URL" } th { "State" } th { "Events" }
                    th { "Last success" } th { "Last failure" } th { "Failures" }
                } }
                tbody {
                    @for row in rows.iter() {
                        tr {
                            td { a href={"/console/endpoints/" (row.id)} {
                                @if row.name.is_empty() { "#" (row.id) } @else { (row.name) }
                            } }
                            td.url { (row.url) }
                            td { (state_badge(row.state)) }
                            td { (row.event_types().join(", ")) }
                            td { (optional_time(row.last_success_at)) }
                            td { (optional_time(row.last_failure_at)) }
                            td.number { (row.failure_count) }
                        }
                    }
                }
            }
            nav.pages {
                @if page_number > 1 {
                    a href={"/console/endpoints?page=" (page_number - 1)} { "← Newer" }
                }
                span { "Page " (page_number) " of " (last_page) " · " (total) " endpoints" }
                @if page_number < last_page {
                    a href={"/console/endpoints?page=" (page_number + 1)} { "Older →" }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, layout("Endpoints", &session, body)))
}

/// The create or edit form, with what was typed and the API's messages.
fn endpoint_form(
    session: &Session,
    action: &str,
    submit: &str,
    fields: &EndpointFields,
    errors: &FieldErrors,
) -> Markup {
    let field = |name: &str, label: &str, value: &str, hint: &str| {
        let messages = errors.for_field(name);
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) value=(value)
                    aria-invalid=(if messages.is_empty() { "false" } else { "true" });
                @if !hint.is_empty() { small { (hint) } }
                @for message in messages { p.error data-field=(name) { (label) " " (message) } }
            }
        }
    };
    html! {
        form.endpoint method="post" action=(action) {
            (csrf_field(session))
            (field("url", "URL", &fields.url, "https://… (the address rules of the API apply)"))
            (field("events", "Events", &fields.events, "event type names, comma-separated, or *"))
            (field("name", "Name", &fields.name, ""))
            (field("retry_count", "Retries", &fields.retry_count, "0–10 (default 3)"))
            (field("timeout_seconds", "Timeout (s)", &fields.timeout_seconds, "1–60 (default 30)"))
            (field("rate_limit", "Rate limit (/s)", &fields.rate_limit, "blank: no limit"))
            div.field {
                label for="ordering" { "Ordering" }
                select id="ordering" name="ordering" {
                    option value="none" selected[fields.ordering != "fifo"] { "none — as fast as they go" }
                    option value="fifo" selected[fields.ordering == "fifo"] { "fifo — publish order, one at a time" }
                }
                @for message in errors.for_field("ordering") { p.error data-field="ordering" { "Ordering " (message) } }
            }
            @for message in errors.for_field("form") { p.error { (message) } }
            button type="submit" { (submit) }
        }
    }
}

/// `GET /console/endpoints/new`
pub async fn new(session: Session) -> HttpResponse {
    let fields = EndpointFields {
        events: "*".into(),
        ..EndpointFields::default()
    };
    form_page(
        &session,
        StatusCode::OK,
        None,
        &fields,
        &FieldErrors::default(),
    )
}

/// The create form (`editing: None`) or an endpoint's edit form, answered
/// with `status` (422 when it shows what the API refused).
fn form_page(
    session: &Session,
    status: StatusCode,
    editing: Option<i64>,
    fields: &EndpointFields,
    errors: &FieldErrors,
) -> HttpResponse {
    let (title, action, submit) = match editing {
        None => (
            "New endpoint".to_owned(),
            "/console/endpoints".to_owned(),
            "Create",
        ),
        Some(id) => (
            format!("Edit endpoint #{id}"),
            format!("/console/endpoints/{id}"),
            "Save",
        ),
    };
    let body = html! {
        h1 { (title) }
        (endpoint_form(session, &action, submit, fields, errors))
    };
    page(status, layout(&title, session, body))
}

/// `POST /console/endpoints`
pub async fn create(
    session: Session,
    body: web::Bytes,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, PageError> {
    let form = checked_form(&session, &body)?;
    let fields = EndpointFields::from_form(&form);
    let refused = |errors: FieldErrors| {
        form_page(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &fields,
            &errors,
        )
    };
    let input = match parse_create(&fields.to_json().into(), &state.url_policy) {
        Ok(input) => input,
        Err(errors) => return Ok(refused(errors)),
    };
    let metadata = session.command_metadata(&request_id);
    match state
        .endpoints
        .create(session.actor(&metadata), input)
        .await
    {
        Ok(id) => Ok(back_to(id.get(), "created")),
        Err(EndpointError::RefusedUrl(refusal)) => Ok(refused(FieldErrors::single("url", refusal))),
        Err(EndpointError::Command(CommandError::Rejected(rejected))) => {
            Ok(refused(FieldErrors::single("events", rejected.to_string())))
        }
        Err(other) => Err(other.into()),
    }
}

fn fields_of(row: &ConfigRow) -> EndpointFields {
    EndpointFields {
        url: row.url.clone(),
        events: row.event_types().join(", "),
        name: row.name.clone(),
        retry_count: row.retry_count.to_string(),
        timeout_seconds: row.timeout_seconds.to_string(),
        rate_limit: row.rate_limit.map(|n| n.to_string()).unwrap_or_default(),
        ordering: row.ordering.as_str().to_owned(),
    }
}

/// `GET /console/endpoints/{id}/edit`
pub async fn edit(
    session: Session,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = owned(&state, &session, &path).await?;
    Ok(form_page(
        &session,
        StatusCode::OK,
        Some(row.id),
        &fields_of(&row),
        &FieldErrors::default(),
    ))
}

/// `POST /console/endpoints/{id}`
pub async fn update(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, PageError> {
    let (form, row) = posted_to(&state, &session, &path, &body).await?;
    let fields = EndpointFields::from_form(&form);
    let refused = |errors: FieldErrors| {
        form_page(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(row.id),
            &fields,
            &errors,
        )
    };
    let mut json = fields.to_json();
    if !json.contains_key("events") {
        // Blank: the API's message for a missing list.
        json.insert("events".into(), serde_json::Value::Array(Vec::new()));
    }
    let changes = match parse_update(&json.clone().into(), &state.url_policy) {
        Ok(changes) => changes,
        Err(errors) => return Ok(refused(errors)),
    };
    let metadata = session.command_metadata(&request_id);
    match state
        .endpoints
        .update(session.actor(&metadata), ConfigId::new(row.id), changes)
        .await
    {
        Ok(()) => Ok(back_to(row.id, "saved")),
        Err(EndpointError::RefusedUrl(refusal)) => Ok(refused(FieldErrors::single("url", refusal))),
        Err(other) => Err(other.into()),
    }
}

/// `GET /console/endpoints/{id}/delete`: are you sure?
pub async fn confirm_delete(
    session: Session,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = owned(&state, &session, &path).await?;
    let body = html! {
        h1 { "Delete endpoint #" (row.id) "?" }
        p { "Deliveries to " code { (row.url) } " stop at once. Its history stays in the event log." }
        div.actions {
            (action_button(&session, &format!("/console/endpoints/{}/delete", row.id), "Delete", "danger"))
            a.button.secondary href={"/console/endpoints/" (row.id)} { "Cancel" }
        }
    };
    Ok(page(
        StatusCode::OK,
        layout("Delete endpoint", &session, body),
    ))
}

/// `POST /console/endpoints/{id}/delete`
pub async fn delete(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, PageError> {
    let (_, row) = posted_to(&state, &session, &path, &body).await?;
    let metadata = session.command_metadata(&request_id);
    state
        .endpoints
        .delete(session.actor(&metadata), ConfigId::new(row.id))
        .await?;
    Ok(see_other("/console/endpoints"))
}

/// `POST /console/endpoints/{id}/test`: one signed `webhook_config.test`.
pub async fn test(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (_, row) = posted_to(&state, &session, &path, &body).await?;
    state
        .deliveries
        .test(&row, crate::app::TestRecord::None)
        .await?;
    Ok(back_to(row.id, "tested"))
}

/// `POST /console/endpoints/{id}/rotate`: a new secret; the replaced one
/// keeps signing beside it for 24 hours (the API's default).
pub async fn rotate(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, PageError> {
    let (_, row) = posted_to(&state, &session, &path, &body).await?;
    // The API's defaults: a generated secret, the replaced one signing
    // beside it for 24 hours.
    let metadata = session.command_metadata(&request_id);
    state
        .endpoints
        .rotate_secret(
            session.actor(&metadata),
            ConfigId::new(row.id),
            Rotation::default(),
        )
        .await?;
    Ok(back_to(row.id, "rotated"))
}

/// `POST /console/endpoints/{id}/reactivate`
pub async fn reactivate(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, PageError> {
    let (_, row) = posted_to(&state, &session, &path, &body).await?;
    let changes = ConfigChanges {
        active: Some(true),
        ..ConfigChanges::default()
    };
    let metadata = session.command_metadata(&request_id);
    state
        .endpoints
        .update(session.actor(&metadata), ConfigId::new(row.id), changes)
        .await?;
    Ok(back_to(row.id, "reactivated"))
}

/// `POST /console/endpoints/{id}/reveal`: the endpoint page with its
/// secret shown (a POST: an explicit click, never a link or a prefetch).
pub async fn reveal(
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (_, row) = posted_to(&state, &session, &path, &body).await?;
    endpoint_page::render(&req, &state, &session, row, true).await
}
