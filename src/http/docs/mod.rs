//! The API description: `GET /api/v1/openapi.json` (no key) and a viewer
//! at `GET /docs` (Swagger UI, vendored from the npm package
//! `swagger-ui-dist` 5.35.0 into `swagger-ui/` and embedded in the binary:
//! nothing is fetched from another host).
use super::openapi;
use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};
use std::sync::OnceLock;

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>webhookd API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

/// In a file of its own so that the page needs no inline script (CSP).
/// `validatorUrl: null`: Swagger UI would otherwise send the document to
/// validator.swagger.io.
const INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null
});
"##;

const BUNDLE: &[u8] = include_bytes!("swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("swagger-ui/swagger-ui.css");

/// Scripts and styles from this origin only; Swagger UI sets inline
/// styles and shows `data:` images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    let get_only = |to| web::resource(to);
    cfg.service(
        get_only("/api/v1/openapi.json")
            .get(document)
            .default_service(not_allowed()),
    )
    .service(get_only("/docs").get(page).default_service(not_allowed()))
    .service(get_only("/docs/").get(page).default_service(not_allowed()))
    .service(get_only("/docs/init.js").get(|| asset("text/javascript", INIT.as_bytes())))
    .service(get_only("/docs/swagger-ui-bundle.js").get(|| asset("text/javascript", BUNDLE)))
    .service(get_only("/docs/swagger-ui.css").get(|| asset("text/css", CSS)));
}

fn not_allowed() -> actix_web::Route {
    web::to(|req| super::v1::method_not_allowed_here(req, "GET"))
}

/// Generated once per process: it depends on the code only.
async fn document() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(openapi::document_json);
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json.as_str())
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(PAGE)
}

async fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(86_400),
        ]))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
