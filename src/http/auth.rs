//! API keys: who is calling, for which organisation, with which scopes.
//! Dialect-neutral; each dialect turns an [`AuthError`] into its own format.
use crate::config_commands::CommandMetadata;
use crate::crypto::hash_api_token;
use crate::http::key_cache::KeyCache;
use crate::http::request_id::RequestId;
use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;
use aggregates::values::{Plan, Scope, WEBHOOKS_FEATURE};
use projections::tenancy::{ApiKey, Organisation};
use std::borrow::Cow;
use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Arc<ApiKey>,
    pub organisation: Arc<Organisation>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send it as 'Authorization: Bearer <key>', 'Authorization: Token <key>', 'X-API-Key: <key>' or '?api_key=<key>'")]
    Missing,
    #[error("invalid API key")]
    Unknown,
    #[error("this API key lacks the '{}' scope", .0.as_str())]
    MissingScope(Scope),
    #[error("webhooks need the business plan or above; this organisation is on the {0} plan")]
    PlanTooLow(String),
    #[error("the 'webhooks' feature is not enabled for this organisation")]
    FeatureDisabled,
    #[error("API keys cannot be checked right now")]
    Unavailable(#[source] projections::Error),
}

impl AuthError {
    /// 401 for who-are-you, 403 for not-allowed, 503 for our own trouble.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Unknown => 401,
            AuthError::MissingScope(_) | AuthError::PlanTooLow(_) | AuthError::FeatureDisabled => {
                403
            }
            AuthError::Unavailable(_) => 503,
        }
    }
}

/// The token the request presents, in any of the four accepted places.
fn presented_token(req: &HttpRequest) -> Option<Cow<'_, str>> {
    // Names as `HeaderName` constants: a `&str` name is parsed on every
    // lookup. The token is borrowed from the request where it can be.
    static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    let header = |name: &HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(authorization) = header(&header::AUTHORIZATION) {
        let (scheme, token) = authorization.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            .then(|| Cow::Borrowed(token.trim()))
            .filter(|t| !t.is_empty());
    }
    if let Some(key) = header(&X_API_KEY) {
        return Some(Cow::Borrowed(key));
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "api_key")
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether an organisation may use webhooks: plan `business` or above and
/// the `webhooks` feature flag (checked on every request: either can
/// change at any time).
pub fn webhooks_access(organisation: &Organisation) -> Result<(), AuthError> {
    match organisation.plan() {
        Some(plan) if plan >= Plan::Business => {}
        _ => return Err(AuthError::PlanTooLow(organisation.plan.clone())),
    }
    if !organisation.has_feature(WEBHOOKS_FEATURE) {
        return Err(AuthError::FeatureDisabled);
    }
    Ok(())
}

/// Identifies the caller by its key.
pub async fn authenticate(req: &HttpRequest, keys: &KeyCache) -> Result<Caller, AuthError> {
    let token = presented_token(req).ok_or(AuthError::Missing)?;
    let (key, organisation) = keys
        .find(&hash_api_token(&token))
        .await
        .map_err(AuthError::Unavailable)?
        .ok_or(AuthError::Unknown)?;
    Ok(Caller { key, organisation })
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }

    /// The webhook routes are for organisations on `business` or above with
    /// the `webhooks` feature flag.
    pub fn require_webhooks_access(&self) -> Result<(), AuthError> {
        webhooks_access(&self.organisation)
    }

    pub fn organisation_id(&self) -> i64 {
        self.organisation.id
    }

    /// Writes a change this caller made to organisations or keys to the
    /// admin log (beside the config events in `webhookd audit`).
    pub async fn log_change(
        &self,
        db: &projections::Db,
        request_id: &RequestId,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<(), projections::Error> {
        let metadata = self.command_metadata(request_id);
        let change = projections::admin_log::AdminChange {
            actor: &metadata.actor,
            request_id: metadata.request_id.as_deref(),
            action,
            organisation: Some(self.organisation.id),
            target,
            details,
        };
        projections::admin_log::record(db, &change).await
    }

    /// Who sent a command, in which request: stored with its events.
    pub fn command_metadata(&self, request_id: &RequestId) -> CommandMetadata {
        CommandMetadata::api_key(self.key.id, request_id.as_str())
    }

    /// This caller as the actor of a use case (see `crate::app`).
    pub fn actor<'a>(&self, metadata: &'a CommandMetadata) -> crate::app::Actor<'a> {
        crate::app::Actor {
            organisation: aggregates::values::OrganisationId::new(self.organisation.id),
            metadata,
        }
    }
}
