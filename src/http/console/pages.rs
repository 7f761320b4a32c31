//! What every console page shares: the layout, the security headers, the
//! error pages, and small helpers for times and forms. Pages are written
//! with maud, whose `(…)` splices escape everything (only `PreEscaped`,
//! never used with user input, does not).
use super::session::Session;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use maud::{html, Markup, DOCTYPE};

/// No inline script or style, nothing from another origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// htmx's settings: swap 4xx pages too (a form refused with 422 shows its
/// field errors, a 403 or 404 its page), inject no inline style (the CSP
/// forbids it) and never evaluate script text.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true,"error":false}]}"#;

/// A page with the console's headers.
pub fn page(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string());
    secure_headers(&mut response);
    response
}

pub fn secure_headers(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// 303 to `location` (after a form: the browser GETs it).
pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish();
    secure_headers(&mut response);
    response
}

/// A page's `head`; `htmx` for the pages of a signed-in user.
fn head(title: &str, htmx: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · webhookd" }
            link rel="stylesheet" href="/console/assets/console.css";
            @if htmx {
                meta name="htmx-config" content=(HTMX_CONFIG);
                script src="/console/assets/htmx.min.js" defer {}
            }
        }
    }
}

/// The frame of every page of a signed-in user.
pub fn layout(title: &str, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body hx-boost="true" {
                header.top {
                    a.brand href="/console/endpoints" { "webhookd" }
                    nav {
                        a href="/console/endpoints" { "Endpoints" }
                        a href="/console/event-types" { "Event types" }
                    }
                    span.org { (session.organisation.name) }
                    form method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.link type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page for someone not signed in.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body { main.narrow { (body) } }
        }
    }
}

/// A console request that did not work out.
#[derive(Debug)]
pub enum PageError {
    /// No (valid) session: to the sign-in page.
    SignIn,
    /// Not there, or another organisation's (the same answer).
    NotFound,
    /// A form without its session's CSRF token.
    Forbidden,
    /// The organisation may no longer use webhooks (the message says why).
    NotAllowed(String),
    /// Refused as it stands (the message says why).
    Conflict(String),
    /// A form's value is not acceptable (the message says which and why).
    Invalid(String),
    Unavailable,
    Internal(String),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn => f.write_str("not signed in"),
            Self::NotFound => f.write_str("not found"),
            Self::Forbidden => f.write_str("the form's CSRF token is missing or wrong"),
            Self::NotAllowed(message) => f.write_str(message),
            Self::Conflict(message) | Self::Invalid(message) => f.write_str(message),
            Self::Unavailable => f.write_str("the database cannot be reached right now"),
            Self::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl From<projections::Error> for PageError {
    fn from(error: projections::Error) -> Self {
        if error.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<crate::app::EndpointError> for PageError {
    fn from(error: crate::app::EndpointError) -> Self {
        use crate::app::EndpointError;
        match error {
            EndpointError::RefusedUrl(refusal) => Self::Invalid(refusal),
            EndpointError::Command(error) => error.into(),
            EndpointError::Storage(error) => error.into(),
        }
    }
}

impl From<crate::app::DeliveryError> for PageError {
    fn from(error: crate::app::DeliveryError) -> Self {
        use crate::app::DeliveryError;
        if let Some(refusal) = error.refusal("endpoint") {
            return Self::Conflict(refusal);
        }
        match error {
            DeliveryError::NotFound => Self::NotFound,
            DeliveryError::Storage(error)
            | DeliveryError::Publish(crate::delivery::publish::PublishError::Store(error)) => {
                error.into()
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::config_commands::CommandError> for PageError {
    fn from(error: crate::config_commands::CommandError) -> Self {
        use crate::config_commands::CommandError;
        match error {
            CommandError::Rejected(rejected) => Self::Conflict(rejected.to_string()),
            CommandError::Unavailable(_) => Self::Unavailable,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::SignIn = self {
            return see_other("/console/login");
        }
        if let Self::Internal(message) = self {
            tracing::error!(error = %message, "console request failed");
        }
        let message = match self {
            Self::Internal(_) => "Something went wrong on our side.".to_owned(),
            other => other.to_string(),
        };
        let mut response = page(
            self.status_code(),
            bare(
                "Error",
                html! {
                    h1 { (self.status_code().as_u16()) " " (self.status_code().canonical_reason().unwrap_or("")) }
                    p.error { (message) }
                    p { a href="/console/endpoints" { "Back to the endpoints" } }
                },
            ),
        );
        if let Self::Unavailable = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

/// A query parameter of the request.
pub fn query_param(req: &actix_web::HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A time (µs since the epoch) as people read it, UTC.
pub fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

pub fn optional_time(micros: Option<i64>) -> String {
    micros.map(time).unwrap_or_else(|| "—".to_owned())
}

/// The CSRF field every form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button form posting to `action` (with the CSRF token).
pub fn action_button(session: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(session))
            button class=(class) type="submit" { (label) }
        }
    }
}
