//! The configs API's resources: every object carries `"resource": "<type>"`,
//! times are ISO 8601 UTC (`2026-11-22T10:25:05Z`). Serialized as they are
//! documented (`ToSchema`).
use crate::http::openapi::enums;
use aggregates::webhook_config::ConfigState;
use projections::db::micros_to_rfc3339;
use projections::deliveries::TaskRow;
use projections::tenancy::{ApiKey, Organisation};
use projections::webhook_configs::ConfigRow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A webhook config as ricloud shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookConfig {
    pub id: i64,
    #[schema(pattern = "^webhook_config$")]
    pub resource: &'static str,
    pub organisation: i64,
    pub url: String,
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    #[schema(schema_with = enums::config_state)]
    pub state: ConfigState,
    pub date_created: String,
}

impl From<&ConfigRow> for WebhookConfig {
    fn from(row: &ConfigRow) -> Self {
        Self {
            id: row.id,
            resource: "webhook_config",
            organisation: row.organisation,
            url: row.url.clone(),
            secret: row.secret.clone(),
            state: row.state,
            date_created: micros_to_rfc3339(row.created_at),
        }
    }
}

/// A background task (a config test): `pending` → `processing` →
/// `completed` or `failed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Task {
    pub id: i64,
    #[schema(pattern = "^task$")]
    pub resource: &'static str,
    pub organisation: i64,
    /// The key that started it.
    pub key: Option<i64>,
    #[serde(rename = "type")]
    #[schema(example = "webhook_config.test")]
    pub task_type: String,
    /// The config it tests.
    pub target: i64,
    #[schema(example = "completed")]
    pub state: String,
    pub results: Option<Value>,
    pub error: Option<String>,
    pub date_created: String,
    pub date_started: Option<String>,
    pub date_completed: Option<String>,
}

impl From<&TaskRow> for Task {
    fn from(row: &TaskRow) -> Self {
        Self {
            id: row.id,
            resource: "task",
            organisation: row.organisation,
            key: row.key_id,
            task_type: row.task_type.as_str().to_owned(),
            target: row.target,
            state: row.state.as_str().to_owned(),
            results: row
                .results
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            error: row.error.clone(),
            date_created: micros_to_rfc3339(row.date_created),
            date_started: row.date_started.map(micros_to_rfc3339),
            date_completed: row.date_completed.map(micros_to_rfc3339),
        }
    }
}

/// An API key (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    pub id: i64,
    #[schema(pattern = "^key$")]
    pub resource: &'static str,
    pub organisation: i64,
    /// The config that receives the events this key publishes, if set.
    pub webhook_config: Option<i64>,
    #[schema(example = json!(["webhooks", "publish"]))]
    pub scopes: Vec<&'static str>,
    pub date_created: String,
}

impl From<&ApiKey> for Key {
    fn from(row: &ApiKey) -> Self {
        Self {
            id: row.id,
            resource: "key",
            organisation: row.organisation,
            webhook_config: row.webhook_config,
            scopes: row.scopes().iter().map(|s| s.as_str()).collect(),
            date_created: micros_to_rfc3339(row.created_at),
        }
    }
}

/// The caller's organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationResource {
    pub id: i64,
    #[schema(pattern = "^organisation$")]
    pub resource: &'static str,
    pub name: String,
    #[schema(example = "business")]
    pub plan: String,
    #[schema(example = json!(["webhooks"]))]
    pub features: Vec<String>,
    /// The config that receives events published with keys that name none.
    pub webhook_config_default: Option<i64>,
    pub date_created: String,
}

impl From<&Organisation> for OrganisationResource {
    fn from(row: &Organisation) -> Self {
        Self {
            id: row.id,
            resource: "organisation",
            name: row.name.clone(),
            plan: row.plan.clone(),
            features: row.feature_flags(),
            webhook_config_default: row.webhook_config_default,
            date_created: micros_to_rfc3339(row.created_at),
        }
    }
}

/// `{"resource": "list", "data", "has_more", "total_count", "url"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    #[schema(pattern = "^list$")]
    pub resource: &'static str,
    pub data: Vec<T>,
    /// More items follow: ask again with `after_id` = the last id.
    pub has_more: bool,
    pub total_count: i64,
    pub url: &'static str,
}

impl<T> List<T> {
    pub fn new(data: Vec<T>, has_more: bool, total_count: i64, url: &'static str) -> Self {
        Self {
            resource: "list",
            data,
            has_more,
            total_count,
            url,
        }
    }
}
