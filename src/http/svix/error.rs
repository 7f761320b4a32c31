//! The Svix error format: `{"code", "detail"}`, and for 422
//! `{"detail": [{"loc", "msg", "type"}]}` — what the official SDKs turn
//! into `HttpError` and `HTTPValidationError`.
use crate::app::{ApplicationError, DeliveryError, EndpointError};
use crate::config_commands::CommandError;
use crate::delivery::publish::PublishError;
use crate::http::auth::AuthError;
use crate::http::body::BodyError;
use crate::http::RETRY_AFTER_SECONDS;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aggregates::webhook_config::WebhookConfigError;
use serde::Serialize;
use std::fmt;

/// One validation failure: where (`["body", "url"]`), what, and its kind.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SvixValidationError)]
pub struct ValidationItem {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationItem {
    /// A body field's value error.
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["body".to_owned(), field.to_owned()],
            msg: msg.into(),
            kind: "value_error".to_owned(),
        }
    }

    /// A query parameter's value error.
    pub fn query(name: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["query".to_owned(), name.to_owned()],
            msg: msg.into(),
            kind: "value_error".to_owned(),
        }
    }
}

/// The two bodies, as the Svix server writes them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = SvixError)]
pub enum ErrorBody {
    Standard { code: String, detail: String },
    Validation { detail: Vec<ValidationItem> },
}

#[derive(Debug)]
pub struct SvixError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    validation: Vec<ValidationItem>,
}

impl SvixError {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            validation: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Entity not found")
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "insufficient access", detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn invalid(items: Vec<ValidationItem>) -> Self {
        Self {
            validation: items,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "")
        }
    }

    pub fn invalid_field(field: &str, msg: impl Into<String>) -> Self {
        Self::invalid(vec![ValidationItem::body(field, msg)])
    }

    pub fn unavailable(error: impl fmt::Display) -> Self {
        tracing::warn!(%error, "request refused: the database is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable (its database cannot be reached); try again shortly",
        )
    }

    /// A fault of webhookd itself: logged in full, answered without detail.
    pub fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal Server Error",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for SvixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl ResponseError for SvixError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = if self.status == StatusCode::UNPROCESSABLE_ENTITY {
            ErrorBody::Validation {
                detail: self.validation.clone(),
            }
        } else {
            ErrorBody::Standard {
                code: self.code.to_owned(),
                detail: self.detail.clone(),
            }
        };
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", RETRY_AFTER_SECONDS.to_string()));
        }
        response.json(body)
    }
}

impl From<AuthError> for SvixError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unavailable(source) => source.into(),
            AuthError::Missing | AuthError::Unknown => Self::new(
                StatusCode::UNAUTHORIZED,
                "authentication_failed",
                "Incorrect authentication credentials.",
            ),
            other => Self::forbidden(other.to_string()),
        }
    }
}

impl From<BodyError> for SvixError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                error.to_string(),
            ),
            BodyError::TimedOut(_) => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                error.to_string(),
            ),
            BodyError::Unreadable(_) => Self::bad_request("bad_request", error.to_string()),
            _ => Self::invalid(vec![ValidationItem {
                loc: vec!["body".to_owned()],
                msg: error.to_string(),
                kind: "value_error.jsondecode".to_owned(),
            }]),
        }
    }
}

impl From<projections::Error> for SvixError {
    fn from(error: projections::Error) -> Self {
        if error.is_unavailable() {
            Self::unavailable(error)
        } else if error.is_bad_input() {
            Self::invalid(vec![ValidationItem {
                loc: vec!["body".to_owned()],
                msg: format!("cannot be stored: {error}"),
                kind: "value_error".to_owned(),
            }])
        } else {
            Self::internal(error)
        }
    }
}

impl From<CommandError> for SvixError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(rejection) => match rejection {
                WebhookConfigError::NotFound => Self::not_found(),
                WebhookConfigError::UnknownEventTypes { .. } => {
                    Self::invalid_field("filterTypes", rejection.to_string())
                }
                WebhookConfigError::CatalogUnavailable(_) => Self::unavailable(rejection),
                other => Self::conflict(other.to_string()),
            },
            CommandError::Contended => Self::conflict(error.to_string()),
            CommandError::Unavailable(_) => Self::unavailable(error),
            CommandError::Store(_) => Self::internal(error),
        }
    }
}

impl From<EndpointError> for SvixError {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::RefusedUrl(refusal) => Self::invalid_field("url", refusal),
            EndpointError::Command(error) => error.into(),
            EndpointError::Storage(error) => error.into(),
        }
    }
}

impl From<DeliveryError> for SvixError {
    fn from(error: DeliveryError) -> Self {
        if let Some(refusal) = error.refusal("endpoint") {
            return Self::conflict(refusal);
        }
        match error {
            DeliveryError::NotFound => Self::not_found(),
            DeliveryError::Storage(error) => error.into(),
            DeliveryError::Publish(PublishError::Store(error)) => error.into(),
            DeliveryError::Publish(other) => Self::invalid_field("eventType", other.to_string()),
            DeliveryError::NotReceiving { .. } => Self::conflict(error.to_string()),
        }
    }
}

impl From<ApplicationError> for SvixError {
    fn from(error: ApplicationError) -> Self {
        match error {
            ApplicationError::UidTaken => Self::conflict(error.to_string()),
            ApplicationError::Endpoint(error) => error.into(),
            ApplicationError::Storage(error) => error.into(),
        }
    }
}

/// 405 in this format, naming the methods the resource has.
pub async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = SvixError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; {allow} is",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    crate::http::set_allow(&mut response, allow);
    response
}

/// An unknown path under the dialect's routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    SvixError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}
