//! `webhookd audit`: replays the event log for people and machines, with
//! every secret redacted; `--verify` checks the read model against the log.
use futures_util::StreamExt;
use projections::admin_log::{self, AdminEntry, AdminFilter};
use projections::event_log::{self, fold_config, LogFilter, StoredEvent};
use projections::redact::redact;
use projections::webhook_configs::{drift, stream_all, ConfigRow};
use projections::Db;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

/// Which events to show, and how.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub organisation: Option<i64>,
    pub filter: LogFilter,
    pub json: bool,
}

/// One event as the audit shows it (secrets redacted).
pub fn audit_record(event: &StoredEvent) -> Value {
    let mut payload = event.payload.clone();
    redact(&mut payload);
    json!({
        "position": event.position,
        "aggregate_type": "WebhookConfig",
        "time": chrono::DateTime::from_timestamp_micros(event.recorded_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": payload,
        "metadata": {
            "actor": event.metadata.get("actor"),
            "request_id": event.metadata.get("request_id"),
        },
    })
}

const TABLE_HEADER: &str = "POSITION  TIME                         WEBHOOK  SEQ  EVENT                 ACTOR       REQUEST                   DETAILS";

fn table_line(record: &Value) -> String {
    let payload = &record["payload"];
    // `{"Created": {…}}` → the inner object; compact and cut for the eye.
    let inner = payload
        .as_object()
        .and_then(|o| o.values().next())
        .unwrap_or(payload);
    let mut details = inner.to_string();
    if details.chars().count() > 100 {
        details = details.chars().take(99).collect::<String>() + "…";
    }
    format!(
        "{:>8}  {:<27}  {:>7}  {:>3}  {:<20}  {:<10}  {:<24}  {}",
        dash_if_null(&record["position"]),
        record["time"]
            .as_str()
            .unwrap_or_default()
            .get(..26)
            .unwrap_or_default()
            .to_owned()
            + "Z",
        record["aggregate_id"].as_str().unwrap_or_default(),
        dash_if_null(&record["sequence"]),
        format!(
            "{} v{}",
            record["event_type"].as_str().unwrap_or_default(),
            record["event_version"].as_str().unwrap_or_default()
        ),
        record["metadata"]["actor"].as_str().unwrap_or("-"),
        record["metadata"]["request_id"].as_str().unwrap_or("-"),
        details
    )
}

fn dash_if_null(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Streams the matching events to `out`, with the admin log's entries
/// (operator changes to organisations, keys and the catalog) in time order
/// among them; returns how many it wrote. A `--webhook` audit shows that
/// config's events only.
pub async fn audit(db: &Db, query: &AuditQuery, out: &mut impl Write) -> anyhow::Result<u64> {
    if !query.json {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let mut admin = admin_entries(db, query).await?.into_iter().peekable();
    let show = |record: Value, out: &mut dyn Write| -> std::io::Result<()> {
        if query.json {
            writeln!(out, "{record}")
        } else {
            writeln!(out, "{}", table_line(&record))
        }
    };
    let mut organisations: HashMap<String, i64> = HashMap::new();
    let mut written = 0;
    let mut events = event_log::stream(db, &query.filter);
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some(wanted) = query.organisation {
            if organisation_of(db, &event, &mut organisations).await? != wanted {
                continue;
            }
        }
        while let Some(entry) = admin.next_if(|entry| entry.recorded_at <= event.recorded_at) {
            show(admin_record(&entry), out)?;
            written += 1;
        }
        show(audit_record(&event), out)?;
        written += 1;
    }
    for entry in admin {
        show(admin_record(&entry), out)?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

async fn admin_entries(db: &Db, query: &AuditQuery) -> anyhow::Result<Vec<AdminEntry>> {
    if query.filter.aggregate_id.is_some() {
        return Ok(Vec::new());
    }
    let filter = AdminFilter {
        organisation: query.organisation,
        since: query.filter.since,
        until: query.filter.until,
        action: query.filter.event_type.clone(),
    };
    Ok(admin_log::list(db, &filter).await?)
}

/// An admin log entry in the shape of an event record: `aggregate_type`
/// `Admin`, its target as the aggregate id, no position in the event log.
pub fn admin_record(entry: &AdminEntry) -> Value {
    let details: Value = serde_json::from_str(&entry.details).unwrap_or(Value::Null);
    json!({
        "position": null,
        "time": chrono::DateTime::from_timestamp_micros(entry.recorded_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "aggregate_type": "Admin",
        "aggregate_id": entry.target,
        "organisation": entry.organisation,
        "sequence": null,
        "event_type": entry.action,
        "event_version": "1.0",
        "payload": { &entry.action: details },
        "metadata": {
            "actor": entry.actor,
            "request_id": entry.request_id,
        },
    })
}

/// The organisation of an event's config, from its `Created` event (read
/// once per config, from the log itself).
async fn organisation_of(
    db: &Db,
    event: &StoredEvent,
    known: &mut HashMap<String, i64>,
) -> anyhow::Result<i64> {
    if let Some(organisation) = known.get(&event.aggregate_id) {
        return Ok(*organisation);
    }
    let created = if event.sequence == 1 {
        event.payload.clone()
    } else {
        projections::event_log::first_payload(db, "WebhookConfig", &event.aggregate_id).await?
    };
    let organisation = created["Created"]["organisation"].as_i64().ok_or_else(|| {
        anyhow::anyhow!("config {} does not start with Created", event.aggregate_id)
    })?;
    known.insert(event.aggregate_id.clone(), organisation);
    Ok(organisation)
}

/// What `--verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    pub events: u64,
    pub configs: u64,
    pub drifts: Vec<String>,
}

/// Folds every config from the log and compares it with its read model row,
/// walking both in id order side by side.
pub async fn verify(db: &Db) -> anyhow::Result<Verification> {
    let mut report = Verification::default();
    let mut rows = stream_all(db).peekable();
    let mut events = event_log::stream_by_aggregate(db);
    let mut current: Vec<StoredEvent> = Vec::new();
    loop {
        let next = events.next().await.transpose()?;
        let boundary = match (&next, current.first()) {
            (Some(event), Some(first)) => event.aggregate_id != first.aggregate_id,
            (None, Some(_)) => true,
            _ => false,
        };
        if boundary {
            let id: i64 = current[0].aggregate_id.parse()?;
            // Rows with no events before this id are orphans.
            while let Some(row) = next_row_before(&mut rows, id).await? {
                report.drifts.push(format!(
                    "webhook config {}: a read model row with no events in the log",
                    row.id
                ));
            }
            let folded = fold_config(&current)?.expect("events were read");
            match next_row_at(&mut rows, id).await? {
                Some(row) => {
                    for difference in drift(&folded, &row)? {
                        report
                            .drifts
                            .push(format!("webhook config {id}: {difference}"));
                    }
                }
                None => report
                    .drifts
                    .push(format!("webhook config {id}: no read model row")),
            }
            report.configs += 1;
            current.clear();
        }
        match next {
            Some(event) => {
                report.events += 1;
                current.push(event);
            }
            None => break,
        }
    }
    while let Some(row) = rows.next().await.transpose()? {
        report.drifts.push(format!(
            "webhook config {}: a read model row with no events in the log",
            row.id
        ));
    }
    Ok(report)
}

type RowStream<'a> = futures_util::stream::Peekable<
    futures_util::stream::BoxStream<'a, Result<ConfigRow, projections::Error>>,
>;

async fn next_row_before(rows: &mut RowStream<'_>, id: i64) -> anyhow::Result<Option<ConfigRow>> {
    let mut rows = std::pin::Pin::new(rows);
    let before = match rows.as_mut().peek().await {
        Some(Ok(row)) => row.id < id,
        Some(Err(_)) => true,
        None => false,
    };
    if before {
        Ok(rows.next().await.transpose()?)
    } else {
        Ok(None)
    }
}

async fn next_row_at(rows: &mut RowStream<'_>, id: i64) -> anyhow::Result<Option<ConfigRow>> {
    let mut rows = std::pin::Pin::new(rows);
    let at = matches!(rows.as_mut().peek().await, Some(Ok(row)) if row.id == id);
    if at {
        Ok(rows.next().await.transpose()?)
    } else {
        Ok(None)
    }
}
