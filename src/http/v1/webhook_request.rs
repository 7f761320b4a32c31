//! Parsing v1 webhook request bodies into validated domain values.
//! Every field is checked and every problem reported at once, per field.
use super::error::FieldErrors;
use crate::app::NewEndpoint;
use aggregates::values::{
    ConfigName, CustomHeaders, DeliveryOrdering, RateLimit, RetryCount, SubscribedEvents,
    TimeoutSeconds, UrlPolicy, ValidationError, WebhookUrl,
};
use aggregates::webhook_config::{ConfigChanges, Profile};
use serde_json::{Map, Value};

/// A validated `POST /api/v1/webhooks` body: the v1 config it creates
/// (webhookd generates its secret).
pub fn parse_create(
    body: &Map<String, Value>,
    policy: &UrlPolicy,
) -> Result<NewEndpoint, FieldErrors> {
    let mut errors = FieldErrors::default();
    let url = required(body, "url", &mut errors, |v| parse_url(v, policy));
    let events = required(body, "events", &mut errors, parse_events);
    let changes = parse_optional_settings(body, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewEndpoint {
        events: events.expect("checked above"),
        name: changes.name.unwrap_or_default(),
        headers: changes.headers.unwrap_or_default(),
        retry_count: changes.retry_count.unwrap_or_default(),
        timeout_seconds: changes.timeout_seconds.unwrap_or_default(),
        active: changes.active.unwrap_or(true),
        rate_limit: changes.rate_limit.unwrap_or_default(),
        ordering: changes.ordering.unwrap_or_default(),
        ..NewEndpoint::new(Profile::V1, url.expect("checked above"))
    })
}

/// A validated `PATCH /api/v1/webhooks/{id}` body: only what it names changes.
pub fn parse_update(
    body: &Map<String, Value>,
    policy: &UrlPolicy,
) -> Result<ConfigChanges, FieldErrors> {
    let mut errors = FieldErrors::default();
    let url = optional(body, "url", &mut errors, |v| parse_url(v, policy));
    let events = optional(body, "events", &mut errors, parse_events);
    let mut changes = parse_optional_settings(body, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    changes.url = url;
    changes.events = events;
    Ok(changes)
}

/// The fields both bodies may carry and none requires. `null` for `name`
/// and `headers` clears them; for the others it means "not given".
fn parse_optional_settings(body: &Map<String, Value>, errors: &mut FieldErrors) -> ConfigChanges {
    ConfigChanges {
        name: nullable(body, "name", errors, parse_name),
        headers: nullable(body, "headers", errors, parse_headers),
        retry_count: optional(body, "retry_count", errors, |v| {
            integer(v).and_then(RetryCount::parse)
        }),
        timeout_seconds: optional(body, "timeout_seconds", errors, |v| {
            integer(v).and_then(TimeoutSeconds::parse)
        }),
        rate_limit: nullable(body, "rate_limit", errors, |v| {
            integer(v).and_then(|n| RateLimit::parse(Some(n)))
        }),
        ordering: nullable(body, "ordering", errors, |v| {
            v.as_str()
                .ok_or_else(|| ValidationError::new("must be \"fifo\" or \"none\""))
                .and_then(DeliveryOrdering::parse)
        }),
        active: optional(body, "is_active", errors, |v| {
            v.as_bool()
                .ok_or_else(|| ValidationError::new("must be true or false"))
        }),
        ..ConfigChanges::default()
    }
}

fn required<T>(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match body.get(field) {
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            None
        }
        Some(value) => record(field, errors, parse(value)),
    }
}

/// Absent or `null`: not given.
fn optional<T>(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(value) => record(field, errors, parse(value)),
    }
}

/// Absent: not given; `null`: reset to the default.
fn nullable<T: Default>(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match body.get(field) {
        None => None,
        Some(Value::Null) => Some(T::default()),
        Some(value) => record(field, errors, parse(value)),
    }
}

fn record<T>(
    field: &str,
    errors: &mut FieldErrors,
    result: Result<T, ValidationError>,
) -> Option<T> {
    result.map_err(|e| errors.add(field, e.0)).ok()
}

fn string(value: &Value) -> Result<&str, ValidationError> {
    value
        .as_str()
        .ok_or_else(|| ValidationError::new("must be a string"))
}

fn integer(value: &Value) -> Result<i64, ValidationError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ValidationError::new("must be a whole number in range")),
        _ => Err(ValidationError::new("must be an integer")),
    }
}

fn parse_url(value: &Value, policy: &UrlPolicy) -> Result<WebhookUrl, ValidationError> {
    WebhookUrl::parse(string(value)?, policy)
}

fn parse_name(value: &Value) -> Result<ConfigName, ValidationError> {
    ConfigName::parse(string(value)?)
}

fn parse_events(value: &Value) -> Result<SubscribedEvents, ValidationError> {
    let items = value
        .as_array()
        .ok_or_else(|| ValidationError::new("must be an array of event type names"))?;
    let names = items
        .iter()
        .map(|item| {
            item.as_str()
                .ok_or_else(|| ValidationError::new("must contain only strings"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    SubscribedEvents::parse(&names)
}

fn parse_headers(value: &Value) -> Result<CustomHeaders, ValidationError> {
    let object = value.as_object().ok_or_else(|| {
        ValidationError::new("must be an object of header names to string values")
    })?;
    let pairs = object
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(text) => Ok((name.as_str(), text)),
            None => Err(ValidationError::new(format!(
                "the value of header '{name}' must be a string"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    CustomHeaders::parse(pairs)
}

/// The body of `POST /api/v1/webhooks`, as documented. The handler reads
/// the body field by field (see [`parse_create`]) to report every problem
/// at once; this type only describes it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "url": "https://example.com/webhooks",
    "events": ["invoice.paid"],
    "name": "Billing",
    "retry_count": 5
}))]
#[allow(dead_code)]
pub struct CreateWebhookBody {
    /// Absolute `https://` URL, no credentials, not an internal address
    /// (`--dev` lifts both rules).
    #[schema(max_length = 2048, format = "uri")]
    url: String,
    /// Event type names from the catalog, or `["*"]` for all.
    #[schema(min_items = 1)]
    events: Vec<String>,
    #[schema(max_length = 200, nullable)]
    name: Option<String>,
    /// Default `true`; `false` creates it deactivated.
    is_active: Option<bool>,
    /// Sent with every delivery (≤ 20; no hop-by-hop, `Host`,
    /// `Content-*`, `User-Agent` or signature headers).
    #[schema(nullable)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[schema(minimum = 0, maximum = 10, default = 3)]
    retry_count: Option<i64>,
    #[schema(minimum = 1, maximum = 60, default = 30)]
    timeout_seconds: Option<i64>,
    /// At most this many deliveries per second reach the endpoint (they
    /// wait, they do not fail); `null` (the default): no limit.
    #[schema(minimum = 1, maximum = 10000, nullable)]
    rate_limit: Option<i64>,
    /// `fifo`: events arrive in publish order, one in flight, a failing
    /// delivery holding the ones behind it; `none` (the default): as fast
    /// as they go.
    #[schema(value_type = Option<String>, nullable, pattern = "^(fifo|none)$")]
    ordering: Option<String>,
}

/// The body of `PATCH /api/v1/webhooks/{id}`: only the fields given
/// change; `null` clears `name` and `headers`.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"timeout_seconds": 10, "is_active": false}))]
#[allow(dead_code)]
pub struct UpdateWebhookBody {
    #[schema(max_length = 2048, format = "uri")]
    url: Option<String>,
    #[schema(min_items = 1)]
    events: Option<Vec<String>>,
    #[schema(max_length = 200, nullable)]
    name: Option<String>,
    /// `false` deactivates, `true` reactivates.
    is_active: Option<bool>,
    #[schema(nullable)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[schema(minimum = 0, maximum = 10)]
    retry_count: Option<i64>,
    #[schema(minimum = 1, maximum = 60)]
    timeout_seconds: Option<i64>,
    /// Deliveries per second; `null` removes the limit.
    #[schema(minimum = 1, maximum = 10000, nullable)]
    rate_limit: Option<i64>,
    /// `fifo` or `none`; `null`: `none`.
    #[schema(value_type = Option<String>, nullable, pattern = "^(fifo|none)$")]
    ordering: Option<String>,
}
