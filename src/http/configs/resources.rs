//! The configs API's resources: every object carries `"resource": "<type>"`,
//! times are ISO 8601 UTC (`2026-11-22T10:25:05Z`).
use crate::delivery::tasks::TaskRow;
use projections::db::micros_to_rfc3339;
use projections::tenancy::{ApiKey, Organisation};
use projections::webhook_configs::ConfigRow;
use serde_json::{json, Value};

pub fn webhook_config(row: &ConfigRow) -> Value {
    json!({
        "id": row.id,
        "resource": "webhook_config",
        "organisation": row.organisation,
        "url": row.url,
        "secret": row.secret,
        "state": row.state,
        "date_created": micros_to_rfc3339(row.created_at),
    })
}

pub fn task(row: &TaskRow) -> Value {
    json!({
        "id": row.id,
        "resource": "task",
        "organisation": row.organisation,
        "key": row.key_id,
        "type": row.task_type,
        "target": row.target,
        "state": row.state,
        "results": row.results.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": row.error,
        "date_created": micros_to_rfc3339(row.date_created),
        "date_started": row.date_started.map(micros_to_rfc3339),
        "date_completed": row.date_completed.map(micros_to_rfc3339),
    })
}

pub fn key(row: &ApiKey) -> Value {
    let scopes: Vec<&str> = row.scopes().iter().map(|s| s.as_str()).collect();
    json!({
        "id": row.id,
        "resource": "key",
        "organisation": row.organisation,
        "webhook_config": row.webhook_config,
        "scopes": scopes,
        "date_created": micros_to_rfc3339(row.created_at),
    })
}

pub fn organisation(row: &Organisation) -> Value {
    json!({
        "id": row.id,
        "resource": "organisation",
        "name": row.name,
        "plan": row.plan,
        "features": row.feature_flags(),
        "webhook_config_default": row.webhook_config_default,
        "date_created": micros_to_rfc3339(row.created_at),
    })
}

/// `{"resource": "list", "data", "has_more", "total_count", "url"}`.
pub fn list(data: Vec<Value>, has_more: bool, total_count: i64, url: &str) -> Value {
    json!({
        "resource": "list",
        "data": data,
        "has_more": has_more,
        "total_count": total_count,
        "url": url,
    })
}
