//! Applications (the Svix dialect's tenants of a tenant): create, change,
//! delete, and the key an application portal acts with.
//!
//! An application is an organisation of its own, owned by the
//! organisation whose keys manage it (its "environment"; see
//! `projections::svix`). Creating one creates that organisation with the
//! environment's plan and features, so everything that works per
//! organisation — routing, idempotency, the console, retention — works per
//! application without a second mechanism.
use super::endpoints::{Actor, EndpointError, Endpoints};
use crate::crypto::{generate_api_token, hash_api_token};
use aggregates::values::{ConfigId, Plan, Scope};
use projections::admin_log::{self, AdminChange};
use projections::db::{now_micros, JsonText};
use projections::svix::{self, Application};
use projections::tenancy::{self, Organisation};
use projections::Db;
use std::collections::BTreeMap;

/// An application to create or the new state of one.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFields {
    pub uid: Option<String>,
    pub name: String,
    pub rate_limit: Option<i64>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    /// Another application of the environment has this uid.
    #[error("an application with this uid already exists")]
    UidTaken,
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Storage(#[from] projections::Error),
}

/// The application use cases.
#[derive(Clone)]
pub struct Applications {
    db: Db,
    endpoints: Endpoints,
}

impl Applications {
    pub fn new(db: Db, endpoints: Endpoints) -> Self {
        Self { db, endpoints }
    }

    /// Creates an application of `environment`: its organisation (the
    /// environment's plan and features) and its row.
    pub async fn create(
        &self,
        actor: Actor<'_>,
        environment: &Organisation,
        fields: ApplicationFields,
    ) -> Result<Application, ApplicationError> {
        if let Some(uid) = &fields.uid {
            if svix::find_application(&self.db, environment.id, uid)
                .await?
                .is_some()
            {
                return Err(ApplicationError::UidTaken);
            }
        }
        let plan = Plan::parse(&environment.plan).unwrap_or(Plan::Business);
        let organisation = tenancy::create_organisation(
            &self.db,
            &fields.name,
            plan,
            &environment.feature_flags(),
        )
        .await?;
        let now = now_micros();
        let app = Application {
            organisation,
            environment: environment.id,
            uid: fields.uid,
            name: fields.name,
            rate_limit: fields.rate_limit,
            metadata: JsonText(fields.metadata),
            created_at: now,
            updated_at: now,
        };
        svix::insert_application(&self.db, &app)
            .await
            .map_err(uid_conflict)?;
        self.log(actor, "ApplicationCreated", &app).await?;
        Ok(app)
    }

    /// Writes an application's new fields.
    pub async fn update(
        &self,
        actor: Actor<'_>,
        app: &Application,
        fields: ApplicationFields,
    ) -> Result<Application, ApplicationError> {
        let updated = Application {
            uid: fields.uid,
            name: fields.name,
            rate_limit: fields.rate_limit,
            metadata: JsonText(fields.metadata),
            updated_at: now_micros(),
            ..app.clone()
        };
        svix::update_application(&self.db, &updated)
            .await
            .map_err(uid_conflict)?;
        self.log(actor, "ApplicationUpdated", &updated).await?;
        Ok(updated)
    }

    /// Deletes an application's endpoints (each a `Deleted` event in its
    /// log), then the application. Its organisation stays, empty, so the
    /// events and the audit of its endpoints keep their owner.
    pub async fn delete(
        &self,
        actor: Actor<'_>,
        app: &Application,
    ) -> Result<(), ApplicationError> {
        let as_app = Actor {
            organisation: aggregates::values::OrganisationId::new(app.organisation),
            metadata: actor.metadata,
        };
        for config in svix::live_configs(&self.db, app.organisation).await? {
            self.endpoints.delete(as_app, ConfigId::new(config)).await?;
            svix::delete_endpoint_extras(&self.db, config).await?;
        }
        svix::delete_application(&self.db, app.organisation).await?;
        self.log(actor, "ApplicationDeleted", app).await?;
        Ok(())
    }

    /// A new key of the application's own organisation (scopes `webhooks`
    /// and `publish`): it reaches that application only. The token is
    /// returned once and stored as its hash, like every key.
    pub async fn scoped_key(
        &self,
        actor: Actor<'_>,
        app: &Application,
    ) -> Result<String, ApplicationError> {
        let token = generate_api_token();
        let id = tenancy::create_key(
            &self.db,
            app.organisation,
            &hash_api_token(&token),
            &[Scope::Webhooks, Scope::Publish],
            None,
        )
        .await?;
        admin_log::record(
            &self.db,
            &AdminChange {
                actor: &actor.metadata.actor,
                request_id: actor.metadata.request_id.as_deref(),
                action: "ApplicationKeyCreated",
                organisation: Some(app.environment),
                target: format!("key:{id}"),
                details: serde_json::json!({ "application": svix::application_id(app.organisation) }),
            },
        )
        .await?;
        Ok(token)
    }

    async fn log(
        &self,
        actor: Actor<'_>,
        action: &str,
        app: &Application,
    ) -> Result<(), projections::Error> {
        admin_log::record(
            &self.db,
            &AdminChange {
                actor: &actor.metadata.actor,
                request_id: actor.metadata.request_id.as_deref(),
                action,
                organisation: Some(app.environment),
                target: format!("application:{}", svix::application_id(app.organisation)),
                details: serde_json::json!({ "uid": app.uid, "name": app.name }),
            },
        )
        .await
    }
}

fn uid_conflict(error: projections::Error) -> ApplicationError {
    if error.is_unique_violation() {
        ApplicationError::UidTaken
    } else {
        ApplicationError::Storage(error)
    }
}
