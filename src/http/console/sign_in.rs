//! Getting in and out: sign in with an API key of scope `webhooks` (the
//! key is exchanged for a session and never kept by the browser), open a
//! portal link, log out.
use super::forms::Form;
use super::pages::{bare, page, see_other, PageError};
use super::session::{self, Session, KEY_SESSION_TTL};
use crate::crypto::hash_api_token;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use maud::html;
use projections::db::now_micros;
use std::time::Duration;

/// The sign-in form's own CSRF token, in a cookie of its own and in the
/// form (double submit): a sign-in posted from another site (which would
/// sign the victim in as the attacker) lacks it.
const LOGIN_COOKIE: &str = "webhookd_login";

fn sign_in_page(req: &HttpRequest, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let token = session::random_token();
    let mut cookie = session::cookie(req, token.clone(), Duration::from_secs(3600));
    cookie.set_name(LOGIN_COOKIE);
    cookie.set_path("/console/login");
    let mut response = page(
        status,
        bare(
            "Sign in",
            html! {
                h1 { "webhookd console" }
                form method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(token);
                    label for="key" { "API key (scope webhooks)" }
                    input id="key" name="key" type="password" autocomplete="off" required;
                    @if let Some(message) = message { p.error role="alert" { (message) } }
                    button type="submit" { "Sign in" }
                }
                p.hint { "The key is exchanged for a session; the browser never keeps it." }
            },
        ),
    );
    // A cookie always encodes.
    let _ = response.add_cookie(&cookie);
    response
}

/// `GET /console/login`
pub async fn form(req: HttpRequest) -> HttpResponse {
    sign_in_page(&req, StatusCode::OK, None)
}

/// `POST /console/login` (`key`)
pub async fn sign_in(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let form = Form::parse(&body);
    let expected = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_owned());
    let posted = form.get("csrf");
    if expected.is_none() || expected.as_deref() != posted {
        return Ok(sign_in_page(
            &req,
            StatusCode::FORBIDDEN,
            Some("This sign-in form has expired; please sign in again."),
        ));
    }
    let refused = |message: &str| Ok(sign_in_page(&req, StatusCode::UNAUTHORIZED, Some(message)));
    let Some(token) = form.text("key") else {
        return refused("Enter an API key.");
    };
    let Some((key, organisation)) = state.keys.find(&hash_api_token(token)).await? else {
        return refused("That key is not valid.");
    };
    let caller = crate::http::auth::Caller { key, organisation };
    if caller.require(Scope::Webhooks).is_err() {
        return refused("That key lacks the scope webhooks.");
    }
    if let Err(error) = caller.require_webhooks_access() {
        return refused(&error.to_string());
    }
    let expires_at = now_micros() + KEY_SESSION_TTL.as_micros() as i64;
    let token = session::open(
        &state.db,
        caller.organisation.id,
        &format!("console:key:{}", caller.key.id),
        Some(caller.key.id),
        expires_at,
    )
    .await?;
    let mut response = see_other("/console/endpoints");
    response
        .add_cookie(&session::cookie(&req, token, KEY_SESSION_TTL))
        .map_err(|error| PageError::Internal(error.to_string()))?;
    Ok(response)
}

/// `GET /console/portal/{token}`: a one-time link opens a session for its
/// organisation that ends when the link would have expired.
pub async fn portal(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some((link, organisation, expires_at)) = session::portal::redeem(&state.db, &path).await?
    else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            bare(
                "Link expired",
                html! {
                    h1 { "This link cannot be used" }
                    p { "It was used already or has expired. Ask for a new one." }
                },
            ),
        ));
    };
    let token = session::open(
        &state.db,
        organisation,
        &format!("portal:{link}"),
        None,
        expires_at,
    )
    .await?;
    let left = Duration::from_micros((expires_at - now_micros()).max(0) as u64);
    let mut response = see_other("/console/endpoints");
    response
        .add_cookie(&session::cookie(&req, token, left))
        .map_err(|error| PageError::Internal(error.to_string()))?;
    Ok(response)
}

/// `POST /console/logout`: ends the session on the server and in the browser.
pub async fn log_out(
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    super::endpoints::checked_form(&session, &body)?;
    session.revoke(&state.db).await?;
    let mut response = see_other("/console/login");
    response
        .add_cookie(&session::removal(&req))
        .map_err(|error| PageError::Internal(error.to_string()))?;
    Ok(response)
}
