//! An endpoint's page: its settings and actions, a chart of the last 24
//! hours, and its deliveries (filterable by status), each with its attempt
//! log and a retry button; a form to recover failed deliveries.
use super::chart;
use super::endpoints::{back_to, owned, posted_to, state_badge};
use super::pages::{
    action_button, csrf_field, layout, optional_time, page, query_param as query, time, PageError,
};
use super::session::Session;
use crate::http::v1::recovery::parse_window;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::ConfigId;
use aggregates::webhook_config::ConfigState;
use maud::{html, Markup};
use projections::db::now_micros;
use projections::deliveries::{AttemptRow, DeliveryStatus};
use projections::webhook_configs::ConfigRow;

const DELIVERIES_SHOWN: i64 = 50;
/// How much of an answer the attempt log shows.
const BODY_SHOWN: usize = 4096;

/// A fixed message for each notice a redirect names (nothing a URL says
/// is shown as it is).
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Endpoint created. Reveal its secret below to set up your receiver.",
        "saved" => "Saved.",
        "tested" => "A test event is on its way; its delivery appears below.",
        "rotated" => "The secret was rotated; the previous one keeps signing for 24 hours.",
        "reactivated" => "The endpoint receives events again.",
        "retried" => "The delivery was queued again.",
        "recovering" => "Failed deliveries in that window are being sent again.",
        _ => return None,
    })
}

/// `GET /console/endpoints/{id}?status=&notice=`
pub async fn show(
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = owned(&state, &session, &path).await?;
    render(&req, &state, &session, row, false).await
}

pub async fn render(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    row: ConfigRow,
    reveal: bool,
) -> Result<HttpResponse, PageError> {
    let status = query(req, "status").and_then(|s| DeliveryStatus::parse(&s));
    let store = state.deliveries.store();
    let (deliveries, total) = store
        .list_deliveries(ConfigId::new(row.id), status, 1, DELIVERIES_SHOWN)
        .await?;
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let attempts = store.attempts_of(&ids).await?;
    let hours = chart::last_24_hours(&state.db, row.id, now_micros()).await?;
    let base = format!("/console/endpoints/{}", row.id);
    let body = html! {
        @if let Some(message) = notice(query(req, "notice").as_deref()) {
            p.notice role="status" { (message) }
        }
        div.heading {
            h1 { @if row.name.is_empty() { "Endpoint #" (row.id) } @else { (row.name) } }
            (state_badge(row.state))
        }
        dl.settings {
            dt { "URL" } dd.url { (row.url) }
            dt { "Events" } dd { (row.event_types().join(", ")) }
            dt { "Retries" } dd { (row.retry_count) }
            dt { "Timeout" } dd { (row.timeout_seconds) " s" }
            dt { "Rate limit" } dd { @match row.rate_limit { Some(n) => { (n) " / s" }, None => "none" } }
            dt { "Ordering" } dd { (row.ordering.as_str()) }
            dt { "Last success" } dd { (optional_time(row.last_success_at)) }
            dt { "Last failure" } dd { (optional_time(row.last_failure_at)) }
            dt { "Failures in a row" } dd { (row.failure_count) }
            dt { "Secret" } dd {
                @if reveal {
                    code.secret { (row.secret) }
                } @else {
                    (action_button(session, &format!("{base}/reveal"), "Reveal secret", "secondary"))
                }
            }
        }
        div.actions {
            a.button href={(base) "/edit"} { "Edit" }
            (action_button(session, &format!("{base}/test"), "Send test event", ""))
            (action_button(session, &format!("{base}/rotate"), "Rotate secret", "secondary"))
            @if row.state == ConfigState::Deactivated {
                (action_button(session, &format!("{base}/reactivate"), "Reactivate", ""))
            }
            a.button.secondary href={(base) "/history"} { "History" }
            a.button.danger href={(base) "/delete"} { "Delete…" }
        }
        section {
            h2 { "Last 24 hours" }
            (chart::svg(&hours))
        }
        section {
            div.heading {
                h2 { "Deliveries" }
                nav.filters {
                    a href=(base) aria-current=[status.is_none().then_some("true")] { "All" }
                    @for option in DeliveryStatus::ALL {
                        a href={(base) "?status=" (option.as_str())}
                            aria-current=[(status == Some(option)).then_some("true")] { (option.as_str()) }
                    }
                }
            }
            p { (total) " in all; the " (DELIVERIES_SHOWN) " newest are shown." }
            @for delivery in &deliveries {
                details.delivery {
                    summary {
                        span class={"badge " (delivery.status.as_str())} { (delivery.status.as_str()) }
                        " " code { (delivery.event_type) } " · " (time(delivery.created_at))
                        " · " (delivery.attempts) " attempt(s)"
                    }
                    p { "Event " code { (delivery.event_id) } }
                    (attempt_log(attempts.iter().filter(|a| a.delivery_id == delivery.id)))
                    @if delivery.status != DeliveryStatus::Pending {
                        (action_button(session, &format!("{base}/deliveries/{}/retry", delivery.id), "Retry", "secondary"))
                    }
                }
            }
        }
        section {
            h2 { "Recover failed deliveries" }
            form method="post" action={(base) "/recover"} {
                (csrf_field(session))
                label for="since" { "Failed since (UTC, up to 14 days back)" }
                input id="since" name="since" type="datetime-local" required;
                button type="submit" { "Send them again" }
            }
        }
    };
    Ok(page(StatusCode::OK, layout("Endpoint", session, body)))
}

fn attempt_log<'a>(attempts: impl Iterator<Item = &'a AttemptRow>) -> Markup {
    html! {
        table.attempts {
            thead { tr { th { "Time" } th { "Duration" } th { "Status" } th { "Answer or error" } } }
            tbody {
                @for attempt in attempts {
                    tr class=(if attempt.success { "ok" } else { "failed" }) {
                        td { (time(attempt.attempted_at)) }
                        td.number { (attempt.duration_ms) " ms" }
                        td.number { @match attempt.status_code { Some(code) => (code), None => "—" } }
                        td { pre { (shown(attempt)) } }
                    }
                }
            }
        }
    }
}

/// The first 4 KiB of the answer, or the error.
fn shown(attempt: &AttemptRow) -> String {
    let text = attempt
        .error
        .as_deref()
        .or(attempt.response_body.as_deref())
        .unwrap_or_default();
    let mut end = text.len().min(BODY_SHOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// `POST /console/endpoints/{id}/deliveries/{delivery_id}/retry`
pub async fn retry(
    session: Session,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (config_path, delivery_path) = path.into_inner();
    let (_, row) = posted_to(&state, &session, &config_path, &body).await?;
    let delivery_id = delivery_path
        .parse::<i64>()
        .map_err(|_| PageError::NotFound)?;
    state.deliveries.send_again(&row, delivery_id).await?;
    Ok(back_to(row.id, "retried"))
}

/// `POST /console/endpoints/{id}/recover` (`since`: a local date-time
/// field, read as UTC).
pub async fn recover(
    session: Session,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (form, row) = posted_to(&state, &session, &path, &body).await?;
    if row.state == ConfigState::Deactivated {
        return Err(PageError::Conflict(
            "a deactivated endpoint receives nothing; reactivate it before recovering deliveries"
                .into(),
        ));
    }
    // The field is a local date-time (`2026-11-29T10:30`), read as UTC and
    // checked by the API's own window rules.
    let since = form.text("since").map(|text| match text.len() {
        16 => format!("{text}:00Z"),
        _ => format!("{text}Z"),
    });
    let body = serde_json::Map::from_iter([("since".to_owned(), serde_json::json!(since))]);
    let window = parse_window(&body.into(), now_micros())
        .map_err(|errors| PageError::Invalid(errors.to_string()))?;
    state
        .deliveries
        .recover(&row, session.key_id, window)
        .await?;
    Ok(back_to(row.id, "recovering"))
}
