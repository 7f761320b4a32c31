//! The Svix dialect (`/api/v1/app…`, `/api/v1/event-type…`,
//! `/api/v1/auth/app-portal-access/…`, `/api/v1/health`): the public API of
//! the Svix server, so that an application built on the official `svix`
//! SDKs moves to webhookd by changing its `server_url`.
//!
//! Applications are organisations owned by the caller's organisation
//! (`projections::svix` says why); endpoints are configs of profile `svix`
//! (the body is the payload as sent, `svix-*` headers beside `webhook-*`);
//! messages are published events. Every use case is `crate::app`'s or the
//! delivery engine's; this module parses Svix's requests into them and
//! writes Svix's answers: camelCase fields, `{data, iterator,
//! prevIterator, done}` lists, `{code, detail}` errors, and the answer of a
//! POST kept for its `Idempotency-Key` (see [`answer::idempotent`]).
mod answer;
mod applications;
mod caller;
mod endpoints;
mod error;
mod event_types;
mod list;
mod messages;
mod portal;

pub use error::{ErrorBody, SvixError};

use actix_web::web;

/// The dialect's part of the OpenAPI document (see `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        applications::list,
        applications::create,
        applications::show,
        applications::replace,
        applications::patch,
        applications::delete,
        endpoints::list,
        endpoints::create,
        endpoints::show,
        endpoints::replace,
        endpoints::patch,
        endpoints::delete,
        endpoints::secret,
        endpoints::rotate_secret,
        endpoints::headers,
        endpoints::replace_headers,
        endpoints::patch_headers,
        endpoints::recover,
        endpoints::send_example,
        endpoints::stats,
        messages::list,
        messages::create,
        messages::show,
        messages::delete_content,
        messages::endpoints_of_message,
        messages::messages_of_endpoint,
        messages::resend,
        messages::attempts_by_endpoint,
        messages::attempts_by_message,
        messages::attempt,
        event_types::list,
        event_types::create,
        event_types::show,
        event_types::replace,
        event_types::patch,
        event_types::delete,
        portal::app_portal_access,
        portal::health,
    ),
    components(schemas(ErrorBody)),
    tags((name = "svix", description = "The Svix dialect: applications, endpoints, messages, attempts, event types")),
)]
pub struct Api;

/// Whether a path belongs to this dialect (for 404s and refused queries).
pub fn is_svix_path(path: &str) -> bool {
    [
        "/api/v1/app",
        "/api/v1/event-type",
        "/api/v1/auth",
        "/api/v1/health",
    ]
    .iter()
    .any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// A query parameter that cannot be taken (see `http::query_guard`).
pub fn invalid_query_parameter(name: &str) -> actix_web::Error {
    SvixError::invalid(vec![error::ValidationItem::query(
        name,
        "must not contain control characters",
    )])
    .into()
}

/// Unknown paths of this dialect, in its format.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    error::not_found(req).await
}

/// Mounts the dialect. Registered before the v1 dialect's `/api/v1` scope,
/// whose paths it does not share.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let fallback = |allow: &'static str| web::to(move |req| error::method_not_allowed(req, allow));
    let resource = |path: &str| web::resource(path);
    cfg.service(
        resource("/api/v1/health")
            .get(portal::health)
            .head(portal::health)
            .default_service(fallback("GET, HEAD")),
    )
    // Every resource with a parameter sits behind a static prefix: a path
    // outside it (v1's, mounted after this dialect) is turned away by a
    // string comparison instead of a regex match per resource.
    .service(
        web::scope("/api/v1/auth").service(
            resource("/app-portal-access/{app_id}")
                .post(portal::app_portal_access)
                .default_service(fallback("POST")),
        ),
    )
    .service(
        web::scope("/api/v1/event-type")
            .service(
                resource("")
                    .get(event_types::list)
                    .post(event_types::create)
                    .default_service(fallback("GET, POST")),
            )
            .service(
                resource("/{event_type_name}")
                    .get(event_types::show)
                    .put(event_types::replace)
                    .patch(event_types::patch)
                    .delete(event_types::delete)
                    .default_service(fallback("GET, PUT, PATCH, DELETE")),
            ),
    )
    .service(
        // The message route first: every Svix publish takes it.
        web::scope("/api/v1/app")
            .service(
                resource("/{app_id}/msg")
                    .get(messages::list)
                    .post(messages::create)
                    .default_service(fallback("GET, POST")),
            )
            .service(
                resource("")
                    .get(applications::list)
                    .post(applications::create)
                    .default_service(fallback("GET, POST")),
            )
            .service(
                resource("/{app_id}")
                    .get(applications::show)
                    .put(applications::replace)
                    .patch(applications::patch)
                    .delete(applications::delete)
                    .default_service(fallback("GET, PUT, PATCH, DELETE")),
            )
            .service(
                resource("/{app_id}/endpoint")
                    .get(endpoints::list)
                    .post(endpoints::create)
                    .default_service(fallback("GET, POST")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}")
                    .get(endpoints::show)
                    .put(endpoints::replace)
                    .patch(endpoints::patch)
                    .delete(endpoints::delete)
                    .default_service(fallback("GET, PUT, PATCH, DELETE")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/secret")
                    .get(endpoints::secret)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/secret/rotate")
                    .post(endpoints::rotate_secret)
                    .default_service(fallback("POST")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/headers")
                    .get(endpoints::headers)
                    .put(endpoints::replace_headers)
                    .patch(endpoints::patch_headers)
                    .default_service(fallback("GET, PUT, PATCH")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/recover")
                    .post(endpoints::recover)
                    .default_service(fallback("POST")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/send-example")
                    .post(endpoints::send_example)
                    .default_service(fallback("POST")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/stats")
                    .get(endpoints::stats)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/endpoint/{endpoint_id}/msg")
                    .get(messages::messages_of_endpoint)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/msg/{msg_id}")
                    .get(messages::show)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/msg/{msg_id}/content")
                    .delete(messages::delete_content)
                    .default_service(fallback("DELETE")),
            )
            .service(
                resource("/{app_id}/msg/{msg_id}/endpoint")
                    .get(messages::endpoints_of_message)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend")
                    .post(messages::resend)
                    .default_service(fallback("POST")),
            )
            .service(
                resource("/{app_id}/msg/{msg_id}/attempt/{attempt_id}")
                    .get(messages::attempt)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/attempt/endpoint/{endpoint_id}")
                    .get(messages::attempts_by_endpoint)
                    .default_service(fallback("GET")),
            )
            .service(
                resource("/{app_id}/attempt/msg/{msg_id}")
                    .get(messages::attempts_by_message)
                    .default_service(fallback("GET")),
            ),
    );
}

/// The path of an application's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The application's id or uid.
    pub app_id: String,
}

/// The path of an endpoint's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// The application's id or uid.
    pub app_id: String,
    /// The endpoint's id or uid.
    pub endpoint_id: String,
}

/// The path of a message's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The application's id or uid.
    pub app_id: String,
    /// The message's id or eventId.
    pub msg_id: String,
}

/// The path of a message's resend to one endpoint.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ResendPath {
    /// The application's id or uid.
    pub app_id: String,
    /// The message's id or eventId.
    pub msg_id: String,
    /// The endpoint's id or uid.
    pub endpoint_id: String,
}

/// The path of one attempt.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AttemptPath {
    /// The application's id or uid.
    pub app_id: String,
    /// The message's id or eventId.
    pub msg_id: String,
    /// The attempt's id.
    pub attempt_id: String,
}

/// The path of an event type's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventTypePath {
    /// The type's name.
    pub event_type_name: String,
}

/// A time as Svix writes it: RFC 3339, UTC, milliseconds.
fn timestamp(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time as a client sends it: RFC 3339, or without an offset (UTC).
fn parse_time(raw: &str) -> Option<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(time.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|naive| naive.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_dialect_are_recognised_by_segment() {
        assert!(is_svix_path("/api/v1/app"));
        assert!(is_svix_path("/api/v1/app/app_1/endpoint"));
        assert!(is_svix_path("/api/v1/event-type/a.b"));
        assert!(!is_svix_path("/api/v1/apple"));
        assert!(!is_svix_path("/api/v1/webhooks"));
    }

    #[test]
    fn times_parse_with_or_without_an_offset() {
        let utc = parse_time("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_time("2026-01-02T03:04:05+00:00"), Some(utc));
        assert_eq!(parse_time("2026-01-02T03:04:05"), Some(utc));
        assert_eq!(parse_time("2026-01-02T05:04:05+02:00"), Some(utc));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(timestamp(utc), "2026-01-02T03:04:05.000Z");
    }
}
