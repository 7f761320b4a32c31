//! Operator actions: what `webhookd org|key|event-types` do, and the first-run
//! bootstrap of `serve`. The CLI prints; these functions decide and store.
use crate::crypto::{generate_api_token, hash_api_token};
use aggregates::values::{EventTypeName, Plan, Scope, WEBHOOKS_FEATURE};
use anyhow::{bail, Context};
use projections::admin_log::{self, AdminChange};
use projections::{event_types, tenancy, webhook_configs, Db};
use serde_json::json;

/// Writes an operator change to the admin log (actor `cli`: the person at
/// the terminal).
async fn log_change(
    db: &Db,
    action: &str,
    organisation: Option<i64>,
    target: String,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let change = AdminChange {
        actor: "cli",
        request_id: None,
        action,
        organisation,
        target,
        details,
    };
    Ok(admin_log::record(db, &change).await?)
}

/// A key as it is shown once, at creation.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub id: i64,
    pub organisation: i64,
    pub token: String,
}

pub async fn create_organisation(
    db: &Db,
    name: &str,
    plan: Plan,
    features: &[String],
) -> anyhow::Result<i64> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("an organisation name must have 1 to 200 characters");
    }
    let id = tenancy::create_organisation(db, name, plan, features).await?;
    log_change(
        db,
        "OrganisationCreated",
        Some(id),
        format!("organisation:{id}"),
        json!({ "name": name, "plan": plan.as_str(), "features": features }),
    )
    .await?;
    Ok(id)
}

/// Changes an organisation's plan and/or feature flags; running servers
/// see it at once (they watch the admin log).
pub async fn update_organisation(
    db: &Db,
    id: i64,
    plan: Option<Plan>,
    features: Option<&[String]>,
) -> anyhow::Result<tenancy::Organisation> {
    if plan.is_none() && features.is_none() {
        bail!("nothing to change: give --plan and/or --features");
    }
    if !tenancy::update_organisation(db, id, plan, features).await? {
        bail!("organisation {id} does not exist");
    }
    let mut details = json!({});
    if let Some(plan) = plan {
        details["plan"] = json!(plan.as_str());
    }
    if let Some(features) = features {
        details["features"] = json!(features);
    }
    log_change(
        db,
        "OrganisationUpdated",
        Some(id),
        format!("organisation:{id}"),
        details,
    )
    .await?;
    tenancy::find_organisation(db, id)
        .await?
        .with_context(|| format!("organisation {id} does not exist"))
}

/// Revokes a key: refused from now on (by every server within a fraction
/// of a second), still listed, with when.
pub async fn revoke_key(db: &Db, id: i64) -> anyhow::Result<tenancy::ApiKey> {
    let key = tenancy::find_key_any(db, id)
        .await?
        .with_context(|| format!("API key {id} does not exist"))?;
    if key.revoked_at.is_some() || !tenancy::revoke_key(db, id).await? {
        bail!("API key {id} is revoked already");
    }
    log_change(
        db,
        "KeyRevoked",
        Some(key.organisation),
        format!("key:{id}"),
        json!({}),
    )
    .await?;
    tenancy::find_key_any(db, id)
        .await?
        .with_context(|| format!("API key {id} does not exist"))
}

/// Gives a live key a new token: same id, scopes and routing; the old
/// token is refused from now on.
pub async fn rotate_key(db: &Db, id: i64) -> anyhow::Result<IssuedKey> {
    let key = tenancy::find_key_any(db, id)
        .await?
        .with_context(|| format!("API key {id} does not exist"))?;
    let token = generate_api_token();
    if key.revoked_at.is_some()
        || !tenancy::replace_key_token(db, id, &hash_api_token(&token)).await?
    {
        bail!("API key {id} is revoked; create a new key instead");
    }
    log_change(
        db,
        "KeyRotated",
        Some(key.organisation),
        format!("key:{id}"),
        json!({}),
    )
    .await?;
    Ok(IssuedKey {
        id,
        organisation: key.organisation,
        token,
    })
}

/// Issues a key for an organisation. A `webhook_config` must be a live
/// config of that same organisation.
pub async fn create_api_key(
    db: &Db,
    organisation: i64,
    scopes: &[Scope],
    webhook_config: Option<i64>,
) -> anyhow::Result<IssuedKey> {
    tenancy::find_organisation(db, organisation)
        .await?
        .with_context(|| format!("organisation {organisation} does not exist"))?;
    if let Some(config) = webhook_config {
        webhook_configs::find(db, organisation, config)
            .await?
            .with_context(|| {
                format!("webhook config {config} does not exist in organisation {organisation}")
            })?;
    }
    let token = generate_api_token();
    let id = tenancy::create_key(
        db,
        organisation,
        &hash_api_token(&token),
        scopes,
        webhook_config,
    )
    .await?;
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    log_change(
        db,
        "KeyCreated",
        Some(organisation),
        format!("key:{id}"),
        json!({ "scopes": names, "webhook_config": webhook_config }),
    )
    .await?;
    Ok(IssuedKey {
        id,
        organisation,
        token,
    })
}

pub async fn add_event_type(db: &Db, name: &str, description: &str) -> anyhow::Result<()> {
    let name = EventTypeName::parse(name).map_err(|e| anyhow::anyhow!("event type: {e}"))?;
    event_types::upsert(db, name.as_str(), description.trim()).await?;
    log_change(
        db,
        "EventTypeAdded",
        None,
        format!("event_type:{}", name.as_str()),
        json!({ "description": description.trim() }),
    )
    .await?;
    Ok(())
}

/// Sets the JSON Schema of a catalog type (`None` removes it); a text
/// that is not a JSON Schema is refused.
pub async fn set_event_type_schema(
    db: &Db,
    name: &str,
    schema: Option<&str>,
) -> anyhow::Result<()> {
    let name = EventTypeName::parse(name).map_err(|e| anyhow::anyhow!("event type: {e}"))?;
    if let Some(text) = schema {
        crate::delivery::event_schemas::compile(text)
            .map_err(|e| anyhow::anyhow!("--schema: {e}"))?;
    }
    let known = event_types::list(db).await?;
    if !known.iter().any(|t| t.name == name.as_str()) {
        anyhow::bail!("event type '{}' is not in the catalog", name.as_str());
    }
    event_types::set_schema(db, name.as_str(), schema).await?;
    log_change(
        db,
        "EventTypeSchemaSet",
        None,
        format!("event_type:{}", name.as_str()),
        json!({ "schema": schema.is_some() }),
    )
    .await?;
    Ok(())
}

/// On an empty database: organisation `default` (plan business, flag
/// webhooks) and one key with every scope. `None` when organisations exist.
pub async fn bootstrap(db: &Db) -> anyhow::Result<Option<IssuedKey>> {
    if tenancy::count_organisations(db).await? > 0 {
        return Ok(None);
    }
    let organisation = create_organisation(
        db,
        "default",
        Plan::Business,
        &[WEBHOOKS_FEATURE.to_owned()],
    )
    .await?;
    let key = create_api_key(db, organisation, &Scope::ALL, None).await?;
    Ok(Some(key))
}
