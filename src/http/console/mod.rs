//! The console at `/console`: a web page where a tenant manages its
//! endpoints and sees every delivery. Server-rendered HTML (maud, escaping
//! every value it splices in), usable without JavaScript; htmx (embedded,
//! like the stylesheet) only makes links and forms swap the page in
//! place. Every page carries a strict Content-Security-Policy: no inline
//! script or style, nothing from another origin.
//!
//! | route | what |
//! |---|---|
//! | `GET/POST /console/login`, `POST /console/logout` | sign in with a key, out |
//! | `GET /console/portal/{token}` | a portal link (`POST /api/v1/portal-links`) |
//! | `GET /console/endpoints`, `…/new`, `POST /console/endpoints` | list, create |
//! | `GET /console/endpoints/{id}` | an endpoint's page: settings, chart, deliveries |
//! | `GET …/{id}/edit`, `POST …/{id}` | edit |
//! | `GET/POST …/{id}/delete` | delete, after a confirmation |
//! | `POST …/{id}/test`, `…/rotate`, `…/reveal`, `…/reactivate`, `…/recover` | actions |
//! | `POST …/{id}/deliveries/{delivery_id}/retry` | retry one delivery |
//! | `GET …/{id}/history[?as_of=µs]` | the event log, and the endpoint as it was |
//! | `GET /console/event-types` | the catalog |
mod chart;
mod endpoint_page;
mod endpoints;
mod event_types;
mod forms;
mod history;
mod pages;
pub mod session;
mod sign_in;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const STYLESHEET: &str = include_str!("assets/console.css");
/// htmx 2.0.11, from the npm package `htmx.org` (BSD-2-Clause, see
/// `assets/htmx-LICENSE`).
const HTMX: &[u8] = include_bytes!("assets/htmx-2.0.11.min.js");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/console.css", web::get().to(stylesheet))
            .route("/assets/htmx.min.js", web::get().to(htmx))
            .route("/login", web::get().to(sign_in::form))
            .route("/login", web::post().to(sign_in::sign_in))
            .route("/logout", web::post().to(sign_in::log_out))
            .route("/portal/{token}", web::get().to(sign_in::portal))
            .route("/event-types", web::get().to(event_types::list))
            .route("/endpoints", web::get().to(endpoints::list))
            .route("/endpoints", web::post().to(endpoints::create))
            .route("/endpoints/new", web::get().to(endpoints::new))
            .route("/endpoints/{id}", web::get().to(endpoint_page::show))
            .route("/endpoints/{id}", web::post().to(endpoints::update))
            .route("/endpoints/{id}/edit", web::get().to(endpoints::edit))
            .route(
                "/endpoints/{id}/delete",
                web::get().to(endpoints::confirm_delete),
            )
            .route("/endpoints/{id}/delete", web::post().to(endpoints::delete))
            .route("/endpoints/{id}/test", web::post().to(endpoints::test))
            .route("/endpoints/{id}/rotate", web::post().to(endpoints::rotate))
            .route("/endpoints/{id}/reveal", web::post().to(endpoints::reveal))
            .route(
                "/endpoints/{id}/reactivate",
                web::post().to(endpoints::reactivate),
            )
            .route(
                "/endpoints/{id}/recover",
                web::post().to(endpoint_page::recover),
            )
            .route(
                "/endpoints/{id}/deliveries/{delivery_id}/retry",
                web::post().to(endpoint_page::retry),
            )
            .route("/endpoints/{id}/history", web::get().to(history::show))
            .default_service(web::to(not_found)),
    );
}

async fn home() -> HttpResponse {
    pages::see_other("/console/endpoints")
}

async fn not_found() -> Result<HttpResponse, pages::PageError> {
    Err(pages::PageError::NotFound)
}

fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET.as_bytes())
}

async fn htmx() -> HttpResponse {
    asset("text/javascript; charset=utf-8", HTMX)
}
