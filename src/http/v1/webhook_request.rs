//! Parsing v1 webhook request bodies into validated domain values.
//! Every field is checked and every problem reported at once, per field.
use super::error::FieldErrors;
use crate::app::NewEndpoint;
use crate::http::body::{members, Member};
use aggregates::values::{
    ConfigName, CustomHeaders, DeliveryOrdering, RateLimit, RetryCount, SubscribedEvents,
    TimeoutSeconds, UrlPolicy, ValidationError, WebhookUrl,
};
use aggregates::webhook_config::{ConfigChanges, Profile};
use serde_json::{Map, Value};

/// A validated `POST /api/v1/webhooks` body: the v1 config it creates
/// (webhookd generates its secret).
pub fn parse_create(
    body: &CreateWebhookBody,
    policy: &UrlPolicy,
) -> Result<NewEndpoint, FieldErrors> {
    let mut errors = FieldErrors::default();
    let url = required(&body.url, "url", &mut errors, |v| parse_url(v, policy));
    let events = required(&body.events, "events", &mut errors, parse_events);
    let changes = parse_optional_settings(&body.settings, &mut errors);
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
    body: &UpdateWebhookBody,
    policy: &UrlPolicy,
) -> Result<ConfigChanges, FieldErrors> {
    let mut errors = FieldErrors::default();
    let url = optional(&body.url, "url", &mut errors, |v| parse_url(v, policy));
    let events = optional(&body.events, "events", &mut errors, parse_events);
    let mut changes = parse_optional_settings(&body.settings, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    changes.url = url;
    changes.events = events;
    Ok(changes)
}

/// The fields both bodies may carry and none requires. `null` for `name`
/// and `headers` clears them; for the others it means "not given".
fn parse_optional_settings(body: &WebhookSettings, errors: &mut FieldErrors) -> ConfigChanges {
    ConfigChanges {
        name: nullable(&body.name, "name", errors, parse_name),
        headers: nullable(&body.headers, "headers", errors, parse_headers),
        retry_count: optional(&body.retry_count, "retry_count", errors, |v| {
            integer(v).and_then(RetryCount::parse)
        }),
        timeout_seconds: optional(&body.timeout_seconds, "timeout_seconds", errors, |v| {
            integer(v).and_then(TimeoutSeconds::parse)
        }),
        rate_limit: nullable(&body.rate_limit, "rate_limit", errors, |v| {
            integer(v).and_then(|n| RateLimit::parse(Some(n)))
        }),
        ordering: nullable(&body.ordering, "ordering", errors, |v| {
            v.as_str()
                .ok_or_else(|| ValidationError::new("must be \"fifo\" or \"none\""))
                .and_then(DeliveryOrdering::parse)
        }),
        active: optional(&body.is_active, "is_active", errors, |v| {
            v.as_bool()
                .ok_or_else(|| ValidationError::new("must be true or false"))
        }),
        ..ConfigChanges::default()
    }
}

fn required<T>(
    member: &Member,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match member.get() {
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            None
        }
        Some(value) => record(field, errors, parse(value)),
    }
}

/// Absent or `null`: not given.
fn optional<T>(
    member: &Member,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match member.get() {
        None | Some(Value::Null) => None,
        Some(value) => record(field, errors, parse(value)),
    }
}

/// Absent: not given; `null`: reset to the default.
fn nullable<T: Default>(
    member: &Member,
    field: &str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value) -> Result<T, ValidationError>,
) -> Option<T> {
    match member.get() {
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

/// The body of `POST /api/v1/webhooks`: read member by member (see
/// [`parse_create`]) so that every problem is reported at once.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "url": "https://example.com/webhooks",
    "events": ["invoice.paid"],
    "name": "Billing",
    "retry_count": 5
}))]
pub struct CreateWebhookBody {
    /// Absolute `https://` URL, no credentials, not an internal address
    /// (`--dev` lifts both rules).
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 2048, format = "uri")]
    url: Member,
    /// Event type names from the catalog, or `["*"]` for all.
    #[serde(default)]
    #[schema(value_type = Vec<String>, required = true, min_items = 1)]
    events: Member,
    #[serde(flatten)]
    settings: WebhookSettings,
}

/// The body of `PATCH /api/v1/webhooks/{id}`: only the members given
/// change; `null` clears `name` and `headers`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"timeout_seconds": 10, "is_active": false}))]
pub struct UpdateWebhookBody {
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2048, format = "uri")]
    url: Member,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, min_items = 1)]
    events: Member,
    #[serde(flatten)]
    settings: WebhookSettings,
}

impl From<Map<String, Value>> for CreateWebhookBody {
    fn from(object: Map<String, Value>) -> Self {
        members(object)
    }
}

impl From<Map<String, Value>> for UpdateWebhookBody {
    fn from(object: Map<String, Value>) -> Self {
        members(object)
    }
}

/// The members both bodies may carry and none requires.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookSettings {
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 200, nullable)]
    name: Member,
    /// Default `true`; `false` creates it deactivated (on a change:
    /// `false` deactivates, `true` reactivates).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    is_active: Member,
    /// Sent with every delivery (≤ 20; no hop-by-hop, `Host`,
    /// `Content-*`, `User-Agent` or signature headers).
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>, nullable)]
    headers: Member,
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10, default = 3)]
    retry_count: Member,
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 60, default = 30)]
    timeout_seconds: Member,
    /// At most this many deliveries per second reach the endpoint (they
    /// wait, they do not fail); `null` (the default): no limit.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000, nullable)]
    rate_limit: Member,
    /// `fifo`: events arrive in publish order, one in flight, a failing
    /// delivery holding the ones behind it; `none` (the default): as fast
    /// as they go.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, pattern = "^(fifo|none)$")]
    ordering: Member,
}
