//! Endpoints (webhook configs): create, change, rotate the secret, delete.
//!
//! Every way of creating a config — the v1 API, the configs API, the
//! console, an organisation's operational webhook — goes through
//! [`Endpoints::create`], so the checks and the command are written once.
//! Who may touch which config (the dialect's ownership rules, its 404) is
//! the dialect's: it hands over a config it has found to be the caller's.
use crate::config_commands::{CommandError, CommandMetadata, ConfigCommands};
use crate::crypto::generate_webhook_secret;
use crate::delivery::http_client::resolution_refusal;
use aggregates::values::{
    ConfigId, ConfigName, CustomHeaders, DeliveryOrdering, OrganisationId, RateLimit, RetryCount,
    SubscribedEvents, TimeoutSeconds, UrlPolicy, WebhookSecret, WebhookUrl,
};
use aggregates::webhook_config::{ConfigChanges, NewWebhookConfig, Profile, WebhookConfigCommand};
use projections::db::now_micros;
use projections::webhook_configs;
use projections::Db;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Who acts, and for which organisation.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub organisation: OrganisationId,
    /// Who, and the request: recorded with every event the action causes.
    pub metadata: &'a CommandMetadata,
}

/// A config to create, as any dialect describes it. [`NewEndpoint::new`]
/// gives every setting its default; a dialect sets what its request named.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub profile: Profile,
    pub url: WebhookUrl,
    pub name: ConfigName,
    pub events: SubscribedEvents,
    pub headers: CustomHeaders,
    pub retry_count: RetryCount,
    pub timeout_seconds: TimeoutSeconds,
    /// The caller's own signing secret; `None`: a new one is generated.
    pub secret: Option<WebhookSecret>,
    pub active: bool,
    pub rate_limit: RateLimit,
    pub ordering: DeliveryOrdering,
}

impl NewEndpoint {
    /// An active config of `profile` for every event type, with the
    /// defaults of every setting.
    pub fn new(profile: Profile, url: WebhookUrl) -> Self {
        Self {
            profile,
            url,
            name: ConfigName::default(),
            events: SubscribedEvents::all(),
            headers: CustomHeaders::default(),
            retry_count: RetryCount::default(),
            timeout_seconds: TimeoutSeconds::default(),
            secret: None,
            active: true,
            rate_limit: RateLimit::UNLIMITED,
            ordering: DeliveryOrdering::None,
        }
    }
}

/// How long the replaced secret keeps signing when the body does not say.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap a rotation may ask for.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// A secret rotation: the new secret, and how long the replaced one
/// keeps signing beside it.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The caller's own new secret; `None`: webhookd generates one.
    pub secret: Option<WebhookSecret>,
    /// Zero: the replaced secret ends at once.
    pub previous_valid_for: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            secret: None,
            previous_valid_for: DEFAULT_OVERLAP,
        }
    }
}

impl Rotation {
    /// The command that carries the rotation out at `now` (µs): the new
    /// secret (generated when none was chosen) and when the replaced one
    /// stops signing (`None`: at once).
    fn into_command(self, now: i64) -> WebhookConfigCommand {
        let previous_expires_at = (!self.previous_valid_for.is_zero())
            .then(|| now.saturating_add(self.previous_valid_for.as_micros() as i64));
        WebhookConfigCommand::RotateSecret {
            secret: self.secret.unwrap_or_else(generate_webhook_secret),
            previous_expires_at,
        }
    }
}

/// Why a use case did not happen. Nothing was stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL's host name resolves to an address webhookd does not send
    /// to (the message says which); a dialect reports it on `url`.
    #[error("{0}")]
    RefusedUrl(String),
    /// The command did not happen: the domain refused it, or the event
    /// store was contended or away (the dialects map each case).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The database, for the id or the read-back.
    #[error(transparent)]
    Storage(#[from] projections::Error),
}

/// The endpoint use cases, with what they need and nothing more.
#[derive(Clone)]
pub struct Endpoints {
    db: Db,
    commands: ConfigCommands,
    url_policy: UrlPolicy,
    resolve_overrides: Arc<HashMap<String, IpAddr>>,
}

impl Endpoints {
    pub fn new(
        db: Db,
        commands: ConfigCommands,
        url_policy: UrlPolicy,
        resolve_overrides: HashMap<String, IpAddr>,
    ) -> Self {
        Self {
            db,
            commands,
            url_policy,
            resolve_overrides: Arc::new(resolve_overrides),
        }
    }

    /// A URL whose host name resolves to an internal address is refused
    /// like a literal one (the delivery client checks again when it
    /// connects). A URL the policy's parse accepted is checked here.
    pub async fn check_url(&self, url: &WebhookUrl) -> Result<(), EndpointError> {
        match resolution_refusal(url.as_str(), &self.url_policy, &self.resolve_overrides).await {
            Some(refusal) => Err(EndpointError::RefusedUrl(refusal)),
            None => Ok(()),
        }
    }

    /// Creates a config: checks its URL's address, allocates its id,
    /// generates its secret unless one was given, and records `Created`.
    /// Its read model is written when this returns.
    pub async fn create(
        &self,
        actor: Actor<'_>,
        new: NewEndpoint,
    ) -> Result<ConfigId, EndpointError> {
        self.check_url(&new.url).await?;
        let id = ConfigId::new(webhook_configs::allocate_id(&self.db).await?);
        let command = WebhookConfigCommand::Create(NewWebhookConfig {
            id,
            organisation: actor.organisation,
            profile: new.profile,
            url: new.url,
            name: new.name,
            events: new.events,
            headers: new.headers,
            retry_count: new.retry_count,
            timeout_seconds: new.timeout_seconds,
            secret: new.secret.unwrap_or_else(generate_webhook_secret),
            active: new.active,
            rate_limit: new.rate_limit,
            ordering: new.ordering,
        });
        self.commands.execute(id, command, actor.metadata).await?;
        Ok(id)
    }

    /// Changes what `changes` names (a new URL's address checked first).
    pub async fn update(
        &self,
        actor: Actor<'_>,
        id: ConfigId,
        changes: ConfigChanges,
    ) -> Result<(), EndpointError> {
        if let Some(url) = &changes.url {
            self.check_url(url).await?;
        }
        self.execute(actor, id, WebhookConfigCommand::Update(changes))
            .await
    }

    /// Signs with the rotation's secret (or a new one) from now on (by the
    /// cluster's clock); the replaced secret also signs until its overlap
    /// ends.
    pub async fn rotate_secret(
        &self,
        actor: Actor<'_>,
        id: ConfigId,
        rotation: Rotation,
    ) -> Result<(), EndpointError> {
        let command = rotation.into_command(now_micros());
        self.execute(actor, id, command).await
    }

    /// Deletes a config; its events stay in the log.
    pub async fn delete(&self, actor: Actor<'_>, id: ConfigId) -> Result<(), EndpointError> {
        self.execute(actor, id, WebhookConfigCommand::Delete).await
    }

    async fn execute(
        &self,
        actor: Actor<'_>,
        id: ConfigId,
        command: WebhookConfigCommand,
    ) -> Result<(), EndpointError> {
        Ok(self.commands.execute(id, command, actor.metadata).await?)
    }
}
