//! Console sessions: an API key (scope `webhooks`) or a portal link is
//! exchanged for a random session token kept in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` over HTTPS); the browser never holds
//! the key. Sessions live in the database (every node of a cluster knows
//! them), stored by hash, and end at their expiry, at logout, or when the
//! key they were opened with is revoked. Each has a CSRF token that every
//! form posts back.
use crate::config_commands::CommandMetadata;
use crate::crypto::hash_api_token;
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use projections::console_sessions::{self, NewSession};
use projections::tenancy::Organisation;
use projections::{Db, Error};
use rand::RngCore;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub const COOKIE: &str = "webhookd_console";
/// How long a session opened with a key lasts.
pub const KEY_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in console user.
pub struct Session {
    pub organisation: Organisation,
    /// As recorded in the events the session causes.
    pub actor: String,
    pub csrf: String,
    /// The API key it was opened with (`None`: a portal link's).
    pub key_id: Option<i64>,
    token_hash: String,
}

impl Session {
    pub fn organisation_id(&self) -> i64 {
        self.organisation.id
    }

    /// This session's user as the actor of a use case (see `crate::app`).
    pub fn actor<'a>(&self, metadata: &'a CommandMetadata) -> crate::app::Actor<'a> {
        crate::app::Actor {
            organisation: aggregates::values::OrganisationId::new(self.organisation.id),
            metadata,
        }
    }

    pub fn command_metadata(&self, request_id: &RequestId) -> CommandMetadata {
        CommandMetadata {
            actor: self.actor.clone(),
            request_id: Some(request_id.as_str().to_owned()),
        }
    }

    /// Whether a posted form carries this session's CSRF token.
    pub fn csrf_matches(&self, posted: Option<&str>) -> bool {
        posted.is_some_and(|posted| constant_time_eq(posted.as_bytes(), self.csrf.as_bytes()))
    }

    pub async fn revoke(&self, db: &Db) -> Result<(), Error> {
        console_sessions::revoke(db, &self.token_hash).await
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random token: 32 bytes, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens a session; returns its token (for the cookie).
pub async fn open(
    db: &Db,
    organisation: i64,
    actor: &str,
    key_id: Option<i64>,
    expires_at: i64,
) -> Result<String, Error> {
    let token = random_token();
    let session = NewSession {
        token_hash: &hash_api_token(&token),
        organisation,
        actor,
        key_id,
        csrf: &random_token(),
        expires_at,
    };
    console_sessions::insert(db, session).await?;
    Ok(token)
}

/// The session cookie: `Secure` when the console is served over HTTPS.
pub fn cookie(req: &HttpRequest, token: String, max_age: Duration) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, token)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
        max_age.as_secs() as i64,
    ));
    cookie
}

/// The cookie that ends the session in the browser too.
pub fn removal(req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = cookie(req, String::new(), Duration::ZERO);
    cookie.make_removal();
    cookie
}

async fn find(db: &Db, token: &str) -> Result<Option<Session>, Error> {
    let token_hash = hash_api_token(token);
    let row = console_sessions::find_live(db, &token_hash).await?;
    let Some((organisation, actor, key_id, csrf)) = row else {
        return Ok(None);
    };
    let Some(organisation) = projections::tenancy::find_organisation(db, organisation).await?
    else {
        return Ok(None);
    };
    Ok(Some(Session {
        organisation,
        actor,
        csrf,
        key_id,
        token_hash,
    }))
}

impl FromRequest for Session {
    type Error = super::pages::PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                super::pages::PageError::Internal("application state missing".into())
            })?;
            let token = req
                .cookie(COOKIE)
                .map(|c| c.value().to_owned())
                .filter(|t| !t.is_empty())
                .ok_or(super::pages::PageError::SignIn)?;
            match find(&state.db, &token).await {
                // The organisation's plan or flags may have changed since.
                Ok(Some(session)) => {
                    crate::http::auth::webhooks_access(&session.organisation).map_err(
                        |refused| super::pages::PageError::NotAllowed(refused.to_string()),
                    )?;
                    Ok(session)
                }
                Ok(None) => Err(super::pages::PageError::SignIn),
                Err(error) => Err(super::pages::PageError::from(error)),
            }
        })
    }
}

/// Portal links: one-time URLs that open a session for an organisation.
pub mod portal {
    use super::*;

    /// Stores a link; returns (its id, its token).
    pub async fn create(
        db: &Db,
        organisation: i64,
        key_id: i64,
        expires_at: i64,
    ) -> Result<(String, String), Error> {
        let (id, token) = (format!("pl_{}", &random_token()[..16]), random_token());
        let token_hash = hash_api_token(&token);
        console_sessions::insert_portal_link(
            db,
            &id,
            &token_hash,
            organisation,
            key_id,
            expires_at,
        )
        .await?;
        Ok((id, token))
    }

    /// Uses a link up (once, before it expires): (its id, organisation,
    /// expiry).
    pub async fn redeem(db: &Db, token: &str) -> Result<Option<(String, i64, i64)>, Error> {
        console_sessions::redeem_portal_link(db, &hash_api_token(token)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }
}
