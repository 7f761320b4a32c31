use super::error::ConfigsError;
use crate::http::auth::{authenticate, Caller};
use crate::http::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use aggregates::values::Scope;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

/// A caller of the configs API: any known key (401 otherwise). Routes that
/// touch webhooks call [`ConfigsCaller::require_webhooks`].
pub struct ConfigsCaller(Caller);

impl Deref for ConfigsCaller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl ConfigsCaller {
    /// Scope `webhooks`, plan `business`+ and the `webhooks` feature flag.
    pub fn require_webhooks(&self) -> Result<(), ConfigsError> {
        self.0.require_webhooks_access()?;
        self.0.require(Scope::Webhooks)?;
        Ok(())
    }
}

impl FromRequest for ConfigsCaller {
    type Error = ConfigsError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConfigsError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ConfigsError::server_error("application state missing"))?;
            Ok(ConfigsCaller(authenticate(&req, &state.keys).await?))
        })
    }
}
