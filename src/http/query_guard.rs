//! Query parameters with control characters (a `%00` in `?state=`, say)
//! are refused before any handler sees them: no parameter of either
//! dialect may hold one, and a NUL would otherwise reach the database,
//! which cannot store it. The answer names the parameter, in the format
//! of the dialect the path belongs to.
use super::{configs, svix, v1};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::Error;

pub async fn refuse_control_characters<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    if let Some(name) = first_bad_parameter(req.query_string()) {
        let error = if configs::is_configs_path(req.path()) {
            configs::invalid_query_parameter(&name)
        } else if svix::is_svix_path(req.path()) {
            svix::invalid_query_parameter(&name)
        } else {
            v1::invalid_query_parameter(&name)
        };
        // An answer, not an error: the middleware around this one (request
        // id, log line) sees it like any other.
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The first parameter whose name or value holds a control character once
/// decoded (its name, made printable). `api_key` is not one of them: a
/// malformed key is a key that fits no caller, so authentication answers
/// it with a 401 (it is only ever hashed, never stored).
fn first_bad_parameter(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name != "api_key")
        .find(|(name, value)| name.chars().chain(value.chars()).any(char::is_control))
        .map(|(name, _)| name.chars().filter(|c| !c.is_control()).collect())
}

#[cfg(test)]
mod tests {
    use super::first_bad_parameter;

    #[test]
    fn finds_control_characters_once_decoded() {
        assert_eq!(first_bad_parameter(""), None);
        assert_eq!(first_bad_parameter("page=2&state=new"), None);
        assert_eq!(
            first_bad_parameter("page=2&state=%00"),
            Some("state".into())
        );
        assert_eq!(first_bad_parameter("a%01b=1"), Some("ab".into()));
        assert_eq!(first_bad_parameter("x=%0a"), Some("x".into()));
        assert_eq!(first_bad_parameter("api_key=%00"), None);
    }
}
