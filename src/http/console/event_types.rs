//! The event-type catalog, with each type's description and JSON Schema.
use super::pages::{layout, page, PageError};
use super::session::Session;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;

/// `GET /console/event-types`
pub async fn list(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let types = projections::event_types::list(&state.db).await?;
    let body = html! {
        h1 { "Event types" }
        table.list {
            thead { tr { th { "Name" } th { "Description" } th { "Schema" } } }
            tbody {
                @for event_type in &types {
                    tr {
                        td { code { (event_type.name) } }
                        td { (event_type.description) }
                        td {
                            @match &event_type.schema {
                                Some(schema) => details {
                                    summary { "JSON Schema" }
                                    pre { (pretty(schema)) }
                                },
                                None => "—",
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, layout("Event types", &session, body)))
}

fn pretty(schema: &str) -> String {
    serde_json::from_str::<serde_json::Value>(schema)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| schema.to_owned())
}
