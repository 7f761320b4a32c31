//! The configs (ricloud) error format: `{"error": "<code>", "message": "…", "params": {…}}`.
use crate::config_commands::CommandError;
use crate::http::auth::AuthError;
use crate::http::body::BodyError;
use crate::http::RETRY_AFTER_SECONDS;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aggregates::webhook_config::WebhookConfigError;
use serde_json::{json, Value};
use std::fmt;

/// The configs API's error body, as [`ConfigsError`] writes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ConfigsError)]
pub struct ErrorBody<'a> {
    /// A stable code: `invalid-parameter`, `not-found`, `conflict`,
    /// `unauthorized`, `forbidden`, `service-unavailable`, …
    #[schema(example = "invalid-parameter")]
    error: &'a str,
    /// What went wrong, for a human.
    #[schema(example = "url: is required")]
    message: &'a str,
    /// The details: for `invalid-parameter`, the parameter and why.
    #[schema(example = json!({"url": "is required"}))]
    params: &'a Value,
}

#[derive(Debug)]
pub struct ConfigsError {
    status: StatusCode,
    code: &'static str,
    message: String,
    params: Value,
    /// Seconds, for a 503: when to try again.
    retry_after: Option<u32>,
}

impl ConfigsError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        params: Value,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            params,
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
                "service-unavailable",
                "the service is temporarily unavailable (its database cannot be reached); try again shortly",
                json!({ "retry_after": RETRY_AFTER_SECONDS }),
            )
        }
    }

    /// A read-side failure: 503 when the database is away, else 500.
    pub fn store(error: projections::Error) -> Self {
        if error.is_unavailable() {
            Self::unavailable(error)
        } else {
            Self::server_error(error)
        }
    }

    pub fn not_found(resource: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no {resource} with id {id}"),
            json!({ "resource": resource, "id": id }),
        )
    }

    /// A query or body parameter with a bad value.
    pub fn invalid_parameter(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            format!("{name}: {reason}"),
            json!({ name: reason }),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message, json!({}))
    }

    pub fn server_error(error: impl fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server-error",
            "internal error; the request id identifies it in the server log",
            json!({}),
        )
    }
}

impl fmt::Display for ConfigsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ConfigsError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(ErrorBody {
            error: self.code,
            message: &self.message,
            params: &self.params,
        })
    }
}

impl From<AuthError> for ConfigsError {
    fn from(error: AuthError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::FORBIDDEN);
        if let AuthError::Unavailable(source) = error {
            return Self::store(source);
        }
        let (code, params) = match &error {
            AuthError::Missing => ("missing-key", json!({})),
            AuthError::Unknown => ("invalid-key", json!({})),
            AuthError::MissingScope(scope) => ("missing-scope", json!({ "scope": scope.as_str() })),
            AuthError::PlanTooLow(plan) => (
                "plan-required",
                json!({ "plan": plan, "required": "business" }),
            ),
            AuthError::FeatureDisabled => ("feature-disabled", json!({ "feature": "webhooks" })),
            AuthError::Unavailable(_) => ("service-unavailable", json!({})),
        };
        Self::new(status, code, error.to_string(), params)
    }
}

impl From<BodyError> for ConfigsError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                error.to_string(),
                json!({ "max_bytes": crate::http::body::MAX_BODY_BYTES }),
            ),
            BodyError::TimedOut(_) => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                error.to_string(),
                json!({}),
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                error.to_string(),
                json!({}),
            ),
        }
    }
}

impl From<crate::app::EndpointError> for ConfigsError {
    fn from(error: crate::app::EndpointError) -> Self {
        use crate::app::EndpointError;
        match error {
            EndpointError::RefusedUrl(refusal) => Self::invalid_parameter("url", refusal),
            EndpointError::Command(error) => error.into(),
            EndpointError::Storage(error) => Self::store(error),
        }
    }
}

impl From<CommandError> for ConfigsError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(WebhookConfigError::NotFound) => Self::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "webhook config not found",
                json!({}),
            ),
            CommandError::Rejected(WebhookConfigError::CatalogUnavailable(_)) => {
                Self::unavailable(error)
            }
            CommandError::Store(_) => Self::server_error(error),
            CommandError::Rejected(rejection) => Self::conflict(rejection.to_string()),
            CommandError::Contended => Self::conflict(error.to_string()),
            CommandError::Unavailable(_) => Self::unavailable(error),
        }
    }
}

impl From<projections::Error> for ConfigsError {
    fn from(error: projections::Error) -> Self {
        Self::store(error)
    }
}

impl From<crate::app::DeliveryError> for ConfigsError {
    fn from(error: crate::app::DeliveryError) -> Self {
        use crate::app::DeliveryError;
        if let Some(refusal) = error.refusal("webhook config") {
            return Self::conflict(refusal);
        }
        match error {
            DeliveryError::Storage(store) => Self::store(store),
            DeliveryError::Publish(publish) => publish.into(),
            other => Self::server_error(other),
        }
    }
}

impl From<crate::delivery::publish::PublishError> for ConfigsError {
    fn from(error: crate::delivery::publish::PublishError) -> Self {
        match error {
            crate::delivery::publish::PublishError::Store(store) => Self::store(store),
            other => Self::server_error(other),
        }
    }
}

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ConfigsError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no route for {} {}", req.method(), req.path()),
        json!({}),
    )
    .error_response()
}

pub async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = ConfigsError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!(
            "{} is not allowed on {}; {allow} is",
            req.method(),
            req.path()
        ),
        json!({}),
    )
    .error_response();
    crate::http::set_allow(&mut response, allow);
    response
}
