//! `POST /api/v1/portal-links`: a one-time URL that opens the console for
//! the caller's organisation (see `http/console`), for a platform to hand
//! to its own customer.
use super::caller::V1Caller;
use super::envelope::{respond, Envelope};
use super::error::{ApiError, FieldErrors};
use crate::http::body::{members, read_optional_json_object, Member};
use crate::http::console::session::portal;
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use projections::db::{micros_to_rfc3339, now_micros};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use utoipa::ToSchema;

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A portal link: open `url` once, before `expires_at`.
#[derive(Serialize, ToSchema)]
pub struct PortalLink {
    pub id: String,
    /// Opens a console session for the organisation, once; the session
    /// ends when the link would have expired.
    pub url: String,
    pub expires_at: String,
}

/// The body of `POST /api/v1/portal-links` (optional), read member by
/// member; no other member is taken.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub struct CreatePortalLinkBody {
    /// How long the link and its session last: a duration such as `"1h"`
    /// or `"30m"`, 1 minute to 7 days (default 1 hour).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "1h")]
    ttl: Member,
}

fn parse_ttl(body: Option<&serde_json::Map<String, Value>>) -> Result<Duration, FieldErrors> {
    let invalid = |message: &str| FieldErrors::single("ttl", message);
    let Some(body) = body else {
        return Ok(DEFAULT_TTL);
    };
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "ttl") {
        return Err(FieldErrors::single(
            unknown,
            "is not a field of a portal link",
        ));
    }
    let body: CreatePortalLinkBody = members(body.clone());
    match body.ttl.get() {
        None | Some(Value::Null) => Ok(DEFAULT_TTL),
        Some(Value::String(text)) => {
            let ttl = humantime::parse_duration(text)
                .map_err(|_| invalid("must be a duration such as \"1h\" or \"30m\""))?;
            if ttl < Duration::from_secs(60) || ttl > MAX_TTL {
                return Err(invalid("must be between 1 minute and 7 days"));
            }
            Ok(ttl)
        }
        Some(_) => Err(invalid("must be a duration such as \"1h\"")),
    }
}

#[utoipa::path(
    post, path = "/api/v1/portal-links", tag = "webhooks", operation_id = "createPortalLink",
    request_body(content = Option<CreatePortalLinkBody>, description = "Optional: how long the link lasts"),
    responses((status = 201, description = "A one-time console link for the organisation", body = Envelope<PortalLink>)),
)]
/// `POST /api/v1/portal-links {"ttl": "1h"}` (scope `webhooks`).
pub async fn create(
    req: HttpRequest,
    caller: V1Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let body = read_optional_json_object(&req, payload).await?;
    let ttl = parse_ttl(body.as_ref()).map_err(ApiError::invalid)?;
    let expires_at = now_micros() + ttl.as_micros() as i64;
    let (id, token) = portal::create(
        &state.db,
        caller.organisation_id(),
        caller.key.id,
        expires_at,
    )
    .await?;
    // Who handed out access to the organisation's console, and until when
    // (never the token: it is the access).
    caller
        .log_change(
            &state.db,
            &request_id,
            "PortalLinkCreated",
            format!("portal_link:{id}"),
            serde_json::json!({ "expires_at": micros_to_rfc3339(expires_at) }),
        )
        .await?;
    let connection = req.connection_info();
    let link = PortalLink {
        id,
        url: format!(
            "{}://{}/console/portal/{token}",
            connection.scheme(),
            connection.host()
        ),
        expires_at: micros_to_rfc3339(expires_at),
    };
    Ok(respond(StatusCode::CREATED, link, &request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_is_a_duration_between_a_minute_and_a_week() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(parse_ttl(None).unwrap(), DEFAULT_TTL);
        assert_eq!(
            parse_ttl(Some(&body(serde_json::json!({"ttl": "2h"})))).unwrap(),
            Duration::from_secs(7200)
        );
        for bad in [
            serde_json::json!({"ttl": "10s"}),
            serde_json::json!({"ttl": "8d"}),
            serde_json::json!({"ttl": 5}),
            serde_json::json!({"ttl": "soon"}),
            serde_json::json!({"other": 1}),
        ] {
            assert!(parse_ttl(Some(&body(bad))).is_err());
        }
    }
}
