//! The v1 error format: `{"error": "message"}`, and for 422 also
//! `"errors": {"field": ["message", …]}`.
use crate::config_commands::CommandError;
use crate::http::auth::AuthError;
use crate::http::body::BodyError;
use crate::http::RETRY_AFTER_SECONDS;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aggregates::webhook_config::WebhookConfigError;
use std::collections::BTreeMap;
use std::fmt;

/// Per-field validation messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages for one field (none: it is fine).
    pub fn for_field(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }
}

/// `field: message; …`, every message of every field.
impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = self
            .0
            .iter()
            .flat_map(|(field, messages)| messages.iter().map(move |m| format!("{field}: {m}")))
            .collect::<Vec<_>>()
            .join("; ");
        f.write_str(&summary)
    }
}

/// The v1 error body, as [`ApiError`] writes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = V1Error)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    #[schema(example = "invalid request: url: is required")]
    error: String,
    /// On 422: the messages for each field (or query parameter) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!({"url": ["is required"]}))]
    errors: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    fields: Option<FieldErrors>,
    www_authenticate: bool,
    /// Seconds, for a 503: when to try again.
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            fields: None,
            www_authenticate: false,
            retry_after: None,
        }
    }

    /// The database cannot be reached: 503 with `Retry-After`, at once.
    pub fn unavailable(error: impl fmt::Display) -> Self {
        tracing::warn!(%error, "request refused: the database is unavailable");
        Self {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable (its database cannot be reached); try again shortly",
            )
        }
    }

    /// 408: the request did not arrive within its deadline.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, message)
    }

    /// A read-side failure: 503 when the database is away, else 500.
    pub fn store(error: projections::Error) -> Self {
        if error.is_unavailable() {
            Self::unavailable(error)
        } else {
            Self::internal(error)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn webhook_not_found() -> Self {
        Self::not_found("webhook not found")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn invalid(fields: FieldErrors) -> Self {
        let summary = fields.to_string();
        Self {
            fields: Some(fields),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid request: {summary}"),
            )
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// A fault of webhookd itself: logged in full, answered without detail.
    pub fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the request id identifies it in the server log",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            error: self.message.clone(),
            errors: self.fields.as_ref().map(|fields| fields.0.clone()),
        };
        let mut response = HttpResponse::build(self.status);
        if self.www_authenticate {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(body)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::FORBIDDEN);
        if let AuthError::Unavailable(source) = error {
            return Self::store(source);
        }
        Self {
            www_authenticate: status == StatusCode::UNAUTHORIZED,
            ..Self::new(status, error.to_string())
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
            BodyError::TimedOut(_) => Self::request_timeout(error.to_string()),
            _ => Self::bad_request(error.to_string()),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(rejection) => match rejection {
                WebhookConfigError::NotFound => Self::webhook_not_found(),
                WebhookConfigError::UnknownEventTypes { .. } => {
                    Self::invalid(FieldErrors::single("events", rejection.to_string()))
                }
                WebhookConfigError::CatalogUnavailable(_) => Self::unavailable(rejection),
                WebhookConfigError::AlreadyExists
                | WebhookConfigError::AlreadyDeactivated
                | WebhookConfigError::NotDeactivated
                | WebhookConfigError::TestWhileDeactivated => {
                    Self::new(StatusCode::CONFLICT, rejection.to_string())
                }
            },
            CommandError::Contended => Self::new(StatusCode::CONFLICT, error.to_string()),
            CommandError::Unavailable(_) => Self::unavailable(error),
            CommandError::Store(_) => Self::internal(error),
        }
    }
}

impl From<crate::app::EndpointError> for ApiError {
    fn from(error: crate::app::EndpointError) -> Self {
        use crate::app::EndpointError;
        match error {
            EndpointError::RefusedUrl(refusal) => {
                Self::invalid(FieldErrors::single("url", refusal))
            }
            EndpointError::Command(error) => error.into(),
            EndpointError::Storage(error) => error.into(),
        }
    }
}

impl ApiError {
    /// A delivery use case's refusal, in this dialect's words for `noun`.
    pub fn from_delivery(error: crate::app::DeliveryError, noun: &str) -> Self {
        use crate::app::DeliveryError;
        if let Some(refusal) = error.refusal(noun) {
            return Self::conflict(refusal);
        }
        match error {
            DeliveryError::NotFound => Self::not_found("delivery not found"),
            DeliveryError::Storage(store)
            | DeliveryError::Publish(crate::delivery::publish::PublishError::Store(store)) => {
                Self::store(store)
            }
            other => Self::internal(other),
        }
    }
}

impl From<projections::Error> for ApiError {
    fn from(error: projections::Error) -> Self {
        Self::store(error)
    }
}

pub async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
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
