//! The v1 webhook resource.
use crate::http::openapi::enums;
use aggregates::values::DeliveryOrdering;
use aggregates::webhook_config::ConfigState;
use projections::db::micros_to_rfc3339;
use projections::webhook_configs::ConfigRow;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A webhook (config): where and what to deliver, and how it fares.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResource {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    /// `false` exactly when `state` is `deactivated`.
    pub is_active: bool,
    #[schema(schema_with = enums::config_state)]
    pub state: ConfigState,
    pub retry_count: i64,
    pub timeout_seconds: i64,
    /// Deliveries per second at most; `null`: no limit.
    pub rate_limit: Option<i64>,
    /// `fifo`: events arrive in publish order, one at a time.
    #[schema(schema_with = enums::delivery_ordering)]
    pub ordering: DeliveryOrdering,
    pub last_triggered_at: Option<String>,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub failure_count: i64,
    /// The signing secret (`whsec_…`): only on create, show and
    /// rotate-secret; never in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Whether the resource shows the signing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Shown,
    Hidden,
}

impl WebhookResource {
    pub fn from_row(row: ConfigRow, secret: Secret) -> Self {
        Self {
            events: row.event_types(),
            headers: row.header_map(),
            is_active: row.is_active(),
            last_triggered_at: row.last_triggered_at.map(micros_to_rfc3339),
            last_success_at: row.last_success_at.map(micros_to_rfc3339),
            last_failure_at: row.last_failure_at.map(micros_to_rfc3339),
            created_at: micros_to_rfc3339(row.created_at),
            updated_at: micros_to_rfc3339(row.updated_at),
            secret: (secret == Secret::Shown).then_some(row.secret),
            id: row.id,
            name: row.name,
            url: row.url,
            state: row.state,
            retry_count: row.retry_count,
            timeout_seconds: row.timeout_seconds,
            rate_limit: row.rate_limit,
            ordering: row.ordering,
            failure_count: row.failure_count,
        }
    }
}
