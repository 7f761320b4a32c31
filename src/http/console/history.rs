//! An endpoint's history: its event log as a timeline (when, who, what
//! changed, the request id; secrets redacted), and for any point of it the
//! endpoint as it was then (the `as_of` read).
use super::endpoints::{owned, state_badge};
use super::pages::{layout, page, query_param, time, PageError};
use super::session::Session;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::webhook_config::WebhookConfig;
use cqrs_es::Aggregate;
use maud::html;
use projections::event_log::load_aggregate;
use projections::redact::redact;
use projections::webhook_configs;

/// `GET /console/endpoints/{id}/history?as_of=<µs>`
pub async fn show(
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = owned(&state, &session, &path).await?;
    let events = load_aggregate(&state.db, WebhookConfig::TYPE, &row.id.to_string()).await?;
    let as_of = query_param(&req, "as_of").and_then(|v| v.parse::<i64>().ok());
    let then = match as_of {
        Some(at) => webhook_configs::as_of(&state.db, row.id, at)
            .await?
            .filter(|then| then.organisation == session.organisation_id()),
        None => None,
    };
    let base = format!("/console/endpoints/{}", row.id);
    let entries: Vec<_> = events
        .iter()
        .map(|event| {
            let mut payload = event.payload.clone();
            redact(&mut payload);
            (
                event,
                serde_json::to_string_pretty(&payload).unwrap_or_default(),
            )
        })
        .collect();
    let body = html! {
        div.heading {
            h1 { "History of endpoint #" (row.id) }
            a.button.secondary href=(base) { "Back" }
        }
        @if let (Some(at), Some(then)) = (as_of, &then) {
            section.as-of {
                h2 { "As it was at " (time(at)) }
                dl.settings {
                    dt { "URL" } dd.url data-as-of-url { (then.url) }
                    dt { "State" } dd { (state_badge(then.state)) }
                    dt { "Name" } dd { (then.name) }
                    dt { "Events" } dd { (then.event_types().join(", ")) }
                    dt { "Retries" } dd { (then.retry_count) }
                    dt { "Timeout" } dd { (then.timeout_seconds) " s" }
                }
            }
        }
        ol.timeline {
            @for (event, payload) in &entries {
                li {
                    div.when { (time(event.recorded_at)) }
                    div.what {
                        strong { (event.event_type) }
                        " by " code { (event.metadata.get("actor").map(String::as_str).unwrap_or("unknown")) }
                        @if let Some(request) = event.metadata.get("request_id") {
                            " · request " code { (request) }
                        }
                    }
                    pre { (payload) }
                    a href={(base) "/history?as_of=" (event.recorded_at)} { "See the endpoint as it was then" }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, layout("History", &session, body)))
}
