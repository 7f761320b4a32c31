//! Operator actions: what `webhookd org|key|event-types` do, and the first-run
//! bootstrap of `serve`. The CLI prints; these functions decide and store.
use crate::crypto::{generate_api_token, hash_api_token};
use aggregates::values::{EventTypeName, Plan, Scope, WEBHOOKS_FEATURE};
use anyhow::{bail, Context};
use projections::{event_types, tenancy, webhook_configs, Db};

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
    Ok(tenancy::create_organisation(db, name, plan, features).await?)
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
    Ok(IssuedKey {
        id,
        organisation,
        token,
    })
}

pub async fn add_event_type(db: &Db, name: &str, description: &str) -> anyhow::Result<()> {
    let name = EventTypeName::parse(name).map_err(|e| anyhow::anyhow!("event type: {e}"))?;
    Ok(event_types::upsert(db, name.as_str(), description.trim()).await?)
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
