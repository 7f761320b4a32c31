//! Who calls the dialect: a key of an environment (an organisation that
//! owns applications) or of one application (the key an app-portal access
//! hands out), which reaches that application only.
use super::error::SvixError;
use crate::config_commands::CommandMetadata;
use crate::http::auth::{authenticate, Caller};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use aggregates::values::{OrganisationId, Scope};
use projections::svix::{self, Application};
use projections::tenancy::Organisation;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

pub struct SvixCaller {
    caller: Caller,
    /// The application a key of an application's own organisation is for.
    scoped_to: Option<Application>,
    metadata: CommandMetadata,
}

impl Deref for SvixCaller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl FromRequest for SvixCaller {
    type Error = SvixError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, SvixError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| SvixError::internal("application state missing"))?;
            let caller = authenticate(&req, &state.keys).await?;
            caller.require_webhooks_access()?;
            let scoped_to = svix::application_of(&state.db, caller.organisation_id()).await?;
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(RequestId::generate);
            let metadata = caller.command_metadata(&request_id);
            Ok(SvixCaller {
                caller,
                scoped_to,
                metadata,
            })
        })
    }
}

impl SvixCaller {
    /// Writes a change this caller made to the catalog to the admin log.
    pub async fn log_change(
        &self,
        db: &projections::Db,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<(), projections::Error> {
        let change = projections::admin_log::AdminChange {
            actor: &self.metadata.actor,
            request_id: self.metadata.request_id.as_deref(),
            action,
            organisation: Some(self.caller.organisation.id),
            target,
            details,
        };
        projections::admin_log::record(db, &change).await
    }

    /// The caller acting on an application's endpoints.
    pub fn actor_in(&self, app: &Application) -> crate::app::Actor<'_> {
        crate::app::Actor {
            organisation: OrganisationId::new(app.organisation),
            metadata: &self.metadata,
        }
    }

    /// The caller acting for its own organisation.
    pub fn actor(&self) -> crate::app::Actor<'_> {
        self.caller.actor(&self.metadata)
    }

    /// The environment, for what only an environment's key may do (list
    /// and create applications, change the event types).
    pub fn environment(&self) -> Result<&Organisation, SvixError> {
        match self.scoped_to {
            None => Ok(&self.caller.organisation),
            Some(_) => Err(SvixError::forbidden(
                "this key is scoped to one application",
            )),
        }
    }

    /// The application `id_or_uid` of the caller's (404 otherwise), with
    /// the caller holding `scope`.
    pub async fn application(
        &self,
        state: &AppState,
        id_or_uid: &str,
        scope: Scope,
    ) -> Result<Application, SvixError> {
        self.caller.require(scope)?;
        match &self.scoped_to {
            Some(app) => {
                let named = svix::application_id(app.organisation) == id_or_uid
                    || app.uid.as_deref() == Some(id_or_uid);
                named.then(|| app.clone()).ok_or_else(SvixError::not_found)
            }
            None => svix::find_application(&state.db, self.caller.organisation_id(), id_or_uid)
                .await?
                .ok_or_else(SvixError::not_found),
        }
    }
}
