//! The OpenAPI 3.1 document of both dialects and health, generated from
//! the code: each handler's `#[utoipa::path]` attribute, the `ToSchema`
//! derives of the resources it serializes, and [`common_responses`] for the
//! answers every route of a dialect can give (auth, outage, bad bodies).
//! `webhookd openapi` prints it; `GET /api/v1/openapi.json` serves it;
//! `docs/src/openapi.json` (in the book) is a copy a test compares.
mod common_responses;
pub mod enums;

use crate::http::{configs, health, svix, v1};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "webhookd",
        description = "Self-hosted webhook service: signed, retried, event-sourced webhook delivery.\n\n\
            Two dialects share one set of webhooks: the **v1** API (`/api/v1/…`, `{\"data\", \"meta\"}` \
            envelopes, `{\"error\", \"errors\"}` failures) and the **configs** API modelled on ricloud's \
            `webhook_config` API (`/configs/webhook…`, resources with `\"resource\"`, \
            `{\"error\", \"message\", \"params\"}` failures).\n\n\
            Authenticate with an API key in any of four places: `Authorization: Bearer <key>`, \
            `Authorization: Token <key>`, `X-API-Key: <key>` or `?api_key=<key>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(openapi_json),
    components(schemas(v1::ErrorBody, configs::ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("token" = []), ("x_api_key" = []), ("api_key" = [])),
    tags(
        (name = "webhooks", description = "v1: webhooks, the event type catalog, a webhook's history"),
        (name = "events", description = "v1: publishing events (scope `publish`)"),
        (name = "deliveries", description = "v1: deliveries and their attempt logs, retries, tests"),
        (name = "organisation", description = "v1: the caller's organisation and its operational webhook"),
        (name = "configs", description = "The configs API (ricloud dialect): configs, tasks, keys, organisation"),
        (name = "health", description = "For load balancers and orchestrators; no key"),
        (name = "svix", description = "The Svix dialect (`/api/v1/app…`, `/api/v1/event-type…`): the Svix server's API for its official SDKs"),
    ),
)]
struct Root;

/// The four places an API key may be presented.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            header(
                "Authorization",
                "`Authorization: Token <key>` (ricloud's spelling)",
            ),
        );
        components.add_security_scheme("x_api_key", header("X-API-Key", "`X-API-Key: <key>`"));
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "api_key",
                "`?api_key=<key>` (for clients that cannot set headers)",
            ))),
        );
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = Root::openapi();
    document.merge(v1::Api::openapi());
    document.merge(configs::Api::openapi());
    document.merge(health::Api::openapi());
    document.merge(svix::Api::openapi());
    common_responses::add(&mut document);
    document
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut document = serde_json::to_value(document()).expect("the OpenAPI document serializes");
    camel_case_links(&mut document);
    let mut json = serde_json::to_string_pretty(&document).expect("JSON serializes");
    json.push('\n');
    json
}

/// utoipa 5.5 writes a Link Object's fields in snake case
/// (`operation_id`); OpenAPI names them `operationId`, `operationRef`,
/// `requestBody`, and clients (schemathesis) ignore links without them.
fn camel_case_links(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    let serde_json::Value::Object(link) = link else {
                        continue;
                    };
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(field) = link.remove(snake) {
                            link.insert(camel.to_owned(), field);
                        }
                    }
                }
            }
            map.values_mut().for_each(camel_case_links);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(camel_case_links),
        _ => {}
    }
}

#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "health", operation_id = "openapi", security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)),
)]
#[allow(dead_code)]
fn openapi_json() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation has an id of its own (OpenAPI requires it; clients
    /// name their methods after them).
    #[test]
    fn operation_ids_are_unique() {
        let document: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if let Some(id) = operation["operationId"].as_str() {
                    assert!(seen.insert(id.to_owned()), "{method} {path}: {id} again");
                }
            }
        }
        assert!(seen.len() > 30);
    }

    /// utoipa's `merge` keeps the first of two schemas of the same name
    /// and drops the other without a word: a v1 schema named like a
    /// configs one (both dialects have an organisation resource) once
    /// replaced it in the document. Names the dialects share must be the
    /// same schema.
    #[test]
    fn the_dialects_name_no_two_different_schemas_alike() {
        let schemas = |api: utoipa::openapi::OpenApi| {
            api.components
                .map(|components| components.schemas)
                .unwrap_or_default()
        };
        let parts = [
            ("v1", schemas(v1::Api::openapi())),
            ("configs", schemas(configs::Api::openapi())),
            ("health", schemas(health::Api::openapi())),
            ("svix", schemas(svix::Api::openapi())),
        ];
        for (i, (left_name, left)) in parts.iter().enumerate() {
            for (right_name, right) in &parts[i + 1..] {
                for (name, schema) in left {
                    if let Some(other) = right.get(name) {
                        assert_eq!(
                            serde_json::to_value(schema).unwrap(),
                            serde_json::to_value(other).unwrap(),
                            "{left_name} and {right_name} both name a different schema {name}"
                        );
                    }
                }
            }
        }
    }
}
