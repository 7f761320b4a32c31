use super::error::ApiError;
use crate::http::auth::{authenticate, Caller};
use crate::http::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

/// A caller of the v1 webhooks API: a known key (401 otherwise) of an
/// organisation allowed to use webhooks (403 otherwise). Scopes are checked
/// per route with [`Caller::require`].
pub struct V1Caller(Caller);

impl Deref for V1Caller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequest for V1Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state missing"))?;
            let caller = authenticate(&req, &state.keys).await?;
            caller.require_webhooks_access()?;
            Ok(V1Caller(caller))
        })
    }
}
