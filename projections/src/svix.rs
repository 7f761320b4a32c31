//! What the Svix dialect keeps beside configs and events, and its reads.
//!
//! An application is an organisation of its own, owned by the organisation
//! whose keys manage it (Svix's "environment"); its endpoints are configs
//! of that organisation and its messages are events published for it. So
//! routing, idempotency, FIFO, the console and retention work on them
//! unchanged; this module adds only what Svix has and a config has not
//! (an application's uid, name and metadata; an endpoint's uid and
//! metadata; a message's channels), the dialect's ids, and the reads its
//! lists need (messages, attempts and statuses by message or endpoint).
//!
//! Ids are the rows' own keys with Svix's prefixes: `app_<organisation>`,
//! `ep_<config id>`, `msg_<event uuid, 32 hex digits>`,
//! `atmpt_<attempt id>`. A uid can therefore never look like an id
//! (see [`is_valid_uid`]).
use crate::db::{now_micros, Db, Error, JsonText};
use crate::on_pool;
use crate::paging::{Cursor, CursorPage};
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------- ids

/// `app_<organisation>`.
pub fn application_id(organisation: i64) -> String {
    format!("app_{organisation}")
}

/// `ep_<config id>`.
pub fn endpoint_id(config_id: i64) -> String {
    format!("ep_{config_id}")
}

/// `atmpt_<attempt id>`.
pub fn attempt_id(attempt: i64) -> String {
    format!("atmpt_{attempt}")
}

/// The number behind `prefix` (`app_`, `ep_`, `atmpt_`), if `raw` is such
/// an id.
pub fn parse_numeric_id(prefix: &str, raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// The message id of an event: `msg_` and its UUID's 32 hex digits.
pub fn message_id(event_id: &str) -> String {
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    id.extend(event_id.chars().filter(|c| *c != '-'));
    id
}

/// The event id behind a message id (a UUID in its hyphenated form).
pub fn event_id_of(message_id: &str) -> Option<String> {
    let hex = message_id.strip_prefix("msg_")?;
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Svix's uid rule (1–256 of `a-z A-Z 0-9 - _ .`), and not the shape of
/// one of our ids (`app_12`, `ep_7`, `msg_…`): a path segment is then an
/// id or a uid, never both.
pub fn is_valid_uid(raw: &str) -> bool {
    (1..=256).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && parse_numeric_id("app_", raw).is_none()
        && parse_numeric_id("ep_", raw).is_none()
        && event_id_of(raw).is_none()
}

// ---------------------------------------------------------------- applications

/// An application: its own organisation, the environment that owns it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Application {
    pub organisation: i64,
    pub environment: i64,
    pub uid: Option<String>,
    pub name: String,
    /// Messages per second for each of its endpoints without their own
    /// limit (Svix's `throttleRate`); informational here.
    pub rate_limit: Option<i64>,
    #[sqlx(try_from = "String")]
    pub metadata: JsonText<BTreeMap<String, String>>,
    pub created_at: i64,
    pub updated_at: i64,
}

const APP_COLUMNS: &str =
    "organisation, environment, uid, name, rate_limit, metadata, created_at, updated_at";

fn metadata_text(metadata: &BTreeMap<String, String>) -> String {
    serde_json::to_string(metadata).expect("strings serialize")
}

/// Stores a new application (its organisation exists already). A uid
/// taken in the environment fails with a unique violation.
pub async fn insert_application(db: &Db, app: &Application) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO svix_applications ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    on_pool!(db, |pool| sqlx::query(&sql)
        .bind(app.organisation)
        .bind(app.environment)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(app.rate_limit)
        .bind(metadata_text(&app.metadata.0))
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Writes an application's changed fields. A uid taken fails with a
/// unique violation.
pub async fn update_application(db: &Db, app: &Application) -> Result<(), Error> {
    let sql = "UPDATE svix_applications SET uid = $2, name = $3, rate_limit = $4, \
               metadata = $5, updated_at = $6 WHERE organisation = $1";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(app.organisation)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(app.rate_limit)
        .bind(metadata_text(&app.metadata.0))
        .bind(now_micros())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn delete_application(db: &Db, organisation: i64) -> Result<(), Error> {
    on_pool!(db, |pool| sqlx::query(
        "DELETE FROM svix_applications WHERE organisation = $1"
    )
    .bind(organisation)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(())
}

/// The environment's application with this id or uid.
pub async fn find_application(
    db: &Db,
    environment: i64,
    id_or_uid: &str,
) -> Result<Option<Application>, Error> {
    let sql = format!(
        "SELECT {APP_COLUMNS} FROM svix_applications \
         WHERE environment = $1 AND (organisation = $2 OR uid = $3)"
    );
    let id = parse_numeric_id("app_", id_or_uid).unwrap_or(0);
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(environment)
        .bind(id)
        .bind(id_or_uid)
        .fetch_optional(pool)
        .await?))
}

/// The application whose own organisation this is (an application-scoped
/// key's), if it is one.
pub async fn application_of(db: &Db, organisation: i64) -> Result<Option<Application>, Error> {
    let sql = format!("SELECT {APP_COLUMNS} FROM svix_applications WHERE organisation = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .fetch_optional(pool)
        .await?))
}

/// A page of an environment's applications in id order, and whether more
/// follow in that direction.
pub async fn list_applications(
    db: &Db,
    environment: i64,
    cursor: Cursor,
    limit: i64,
) -> Result<(Vec<Application>, bool), Error> {
    let page = CursorPage::new(cursor, limit);
    let sql = format!(
        "SELECT {APP_COLUMNS} FROM svix_applications WHERE environment = $1 AND {} \
         ORDER BY organisation {} LIMIT $3",
        page.condition("organisation", "$2"),
        page.order()
    );
    let rows = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(environment)
        .bind(page.cursor_value())
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
    Ok(page.finish(rows))
}

// ---------------------------------------------------------------- endpoints

/// An endpoint's uid, metadata and channels (the rest is its config).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct EndpointExtras {
    pub config_id: i64,
    pub uid: Option<String>,
    #[sqlx(try_from = "String")]
    pub metadata: JsonText<BTreeMap<String, String>>,
    /// `None`: every message; else only messages with one of these.
    #[sqlx(try_from = "Option<String>")]
    pub channels: Channels,
}

/// An endpoint's channels as stored (a JSON array, or NULL); a value that
/// does not decode fails the row's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Channels(pub Option<Vec<String>>);

impl TryFrom<Option<String>> for Channels {
    type Error = serde_json::Error;

    fn try_from(text: Option<String>) -> Result<Self, Self::Error> {
        text.map(|text| serde_json::from_str(&text))
            .transpose()
            .map(Channels)
    }
}

impl Channels {
    fn text(&self) -> Option<String> {
        self.0
            .as_ref()
            .map(|channels| serde_json::to_string(channels).expect("strings serialize"))
    }

    /// Whether a message with `message` channels reaches an endpoint with
    /// these: an endpoint without channels takes every message, one with
    /// channels only messages that share one.
    pub fn admit(&self, message: &[String]) -> bool {
        match &self.0 {
            None => true,
            Some(mine) => message.iter().any(|channel| mine.contains(channel)),
        }
    }
}

/// Writes an endpoint's uid and metadata. A uid taken in the application
/// fails with a unique violation.
pub async fn set_endpoint_extras(
    db: &Db,
    organisation: i64,
    extras: &EndpointExtras,
) -> Result<(), Error> {
    let sql = "INSERT INTO svix_endpoints (config_id, organisation, uid, metadata, channels) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (config_id) \
               DO UPDATE SET uid = excluded.uid, metadata = excluded.metadata, \
               channels = excluded.channels";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(extras.config_id)
        .bind(organisation)
        .bind(&extras.uid)
        .bind(metadata_text(&extras.metadata.0))
        .bind(extras.channels.text())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn delete_endpoint_extras(db: &Db, config_id: i64) -> Result<(), Error> {
    on_pool!(db, |pool| sqlx::query(
        "DELETE FROM svix_endpoints WHERE config_id = $1"
    )
    .bind(config_id)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(())
}

/// The uid and metadata of these configs (of one organisation), by id.
pub async fn endpoint_extras(
    db: &Db,
    organisation: i64,
    config_ids: &[i64],
) -> Result<HashMap<i64, EndpointExtras>, Error> {
    if config_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = config_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT config_id, uid, metadata, channels FROM svix_endpoints \
         WHERE organisation = $1 AND config_id IN ({ids})"
    );
    let rows: Vec<EndpointExtras> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .fetch_all(pool)
        .await?);
    Ok(rows.into_iter().map(|row| (row.config_id, row)).collect())
}

/// The endpoints of an organisation that take only some channels, with
/// them (what a message's routing must filter by).
pub async fn channel_endpoints(
    db: &Db,
    organisation: i64,
) -> Result<HashMap<i64, Channels>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        config_id: i64,
        #[sqlx(try_from = "Option<String>")]
        channels: Channels,
    }
    let sql = "SELECT config_id, channels FROM svix_endpoints \
               WHERE organisation = $1 AND channels IS NOT NULL";
    let rows: Vec<Row> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(organisation)
        .fetch_all(pool)
        .await?);
    Ok(rows
        .into_iter()
        .map(|row| (row.config_id, row.channels))
        .collect())
}

/// The config of an application's endpoint with this uid.
pub async fn endpoint_by_uid(db: &Db, organisation: i64, uid: &str) -> Result<Option<i64>, Error> {
    Ok(on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT config_id FROM svix_endpoints WHERE organisation = $1 AND uid = $2"
    )
    .bind(organisation)
    .bind(uid)
    .fetch_optional(pool)
    .await?))
}

/// The live configs of an organisation (an application's endpoints).
pub async fn live_configs(db: &Db, organisation: i64) -> Result<Vec<i64>, Error> {
    Ok(on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT id FROM webhook_configs WHERE organisation = $1 AND deleted = FALSE ORDER BY id"
    )
    .bind(organisation)
    .fetch_all(pool)
    .await?))
}

// ---------------------------------------------------------------- messages

/// A message: an event of an application, with its channels.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRow {
    /// The event's id (a UUID); see [`message_id`].
    pub id: String,
    /// The publisher's `eventId`, when it gave one.
    pub idempotency_key: Option<String>,
    pub event_type: String,
    /// The payload as sent.
    pub data: String,
    pub published_at: i64,
    /// JSON array, when the message named channels.
    pub channels: Option<String>,
}

impl MessageRow {
    /// The publisher's `eventId` (not a request's idempotency key kept in
    /// its place).
    pub fn event_id(&self) -> Option<&str> {
        self.idempotency_key
            .as_deref()
            .filter(|key| !key.starts_with(IDEMPOTENCY_KEY_PREFIX))
    }

    pub fn channel_list(&self) -> Option<Vec<String>> {
        self.channels
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
    }
}

const MESSAGE_SELECT: &str = "SELECT e.id, e.idempotency_key, e.event_type, e.data, \
    e.published_at, m.channels FROM published_events e \
    LEFT JOIN svix_messages m ON m.event_id = e.id";

/// Records a message's channels (after its publish committed).
pub async fn set_message_channels(
    db: &Db,
    organisation: i64,
    event_id: &str,
    channels: &[String],
) -> Result<(), Error> {
    let sql = "INSERT INTO svix_messages (event_id, organisation, channels) VALUES ($1, $2, $3) \
               ON CONFLICT (event_id) DO NOTHING";
    let channels = serde_json::to_string(channels).expect("strings serialize");
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(event_id)
        .bind(organisation)
        .bind(&channels)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// One message of an application, by message id or `eventId`.
pub async fn find_message(
    db: &Db,
    organisation: i64,
    id_or_uid: &str,
) -> Result<Option<MessageRow>, Error> {
    let sql = format!(
        "{MESSAGE_SELECT} WHERE e.organisation = $1 AND (e.id = $2 OR e.idempotency_key = $3)"
    );
    let event_id = event_id_of(id_or_uid).unwrap_or_default();
    // Only a uid is an `eventId` (never an idempotency key kept in its
    // place, see [`MessageRow::event_id`]).
    let uid = is_valid_uid(id_or_uid).then_some(id_or_uid);
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(&event_id)
        .bind(uid)
        .fetch_optional(pool)
        .await?))
}

/// What a message without an `eventId` keeps as its event's idempotency
/// key: its request's `Idempotency-Key`, so that a repeat after a crash
/// between the commit and the answer finds the message instead of storing
/// it again. The `:` keeps it apart from every `eventId` (a uid has none).
pub fn idempotency_key_of_request(key: &str) -> String {
    format!("{IDEMPOTENCY_KEY_PREFIX}{key}")
}

const IDEMPOTENCY_KEY_PREFIX: &str = "idempotency-key:";

/// Replaces a message's payload with `{}` (Svix's "delete content").
pub async fn delete_message_content(db: &Db, event_id: &str) -> Result<(), Error> {
    on_pool!(db, |pool| sqlx::query(
        "UPDATE published_events SET data = '{}' WHERE id = $1"
    )
    .bind(event_id)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(())
}

/// Where a list of messages (or attempts) starts: after the item with this
/// key, in the list's order; `reverse` pages back towards the start.
#[derive(Debug, Clone, Default)]
pub struct TimeCursor {
    /// `(time, id)` of the item the page starts after.
    pub after: Option<(i64, String)>,
    /// Page backwards (Svix's `prevIterator`).
    pub reverse: bool,
}

/// The filters of a message list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    /// `published_at < before` (µs).
    pub before: Option<i64>,
    /// `published_at > after` (µs).
    pub after: Option<i64>,
}

/// `(published_at, id)` of an application's message, for a cursor.
pub async fn message_position(
    db: &Db,
    organisation: i64,
    event_id: &str,
) -> Result<Option<i64>, Error> {
    Ok(on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT published_at FROM published_events WHERE organisation = $1 AND id = $2"
    )
    .bind(organisation)
    .bind(event_id)
    .fetch_optional(pool)
    .await?))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A page of an application's messages, newest first (or oldest first
/// when `ascending`), and whether more follow.
pub async fn list_messages(
    db: &Db,
    organisation: i64,
    filter: &MessageFilter,
    cursor: &TimeCursor,
    ascending: bool,
    limit: i64,
) -> Result<(Vec<MessageRow>, bool), Error> {
    // The page's direction: the list's, turned round to page back.
    let forward = ascending != cursor.reverse;
    let (cmp, order) = if forward { (">", "ASC") } else { ("<", "DESC") };
    let mut conditions = vec!["e.organisation = $1".to_owned()];
    let mut binds: Vec<Bind> = vec![Bind::Int(organisation)];
    if let Some((time, id)) = &cursor.after {
        binds.push(Bind::Int(*time));
        let t = binds.len();
        binds.push(Bind::Text(id.clone()));
        let i = binds.len();
        conditions.push(format!(
            "(e.published_at {cmp} ${t} OR (e.published_at = ${t} AND e.id {cmp} ${i}))"
        ));
    }
    if let Some(before) = filter.before {
        binds.push(Bind::Int(before));
        conditions.push(format!("e.published_at < ${}", binds.len()));
    }
    if let Some(after) = filter.after {
        binds.push(Bind::Int(after));
        conditions.push(format!("e.published_at > ${}", binds.len()));
    }
    if !filter.event_types.is_empty() {
        let mut placeholders = Vec::new();
        for event_type in &filter.event_types {
            binds.push(Bind::Text(event_type.clone()));
            placeholders.push(format!("${}", binds.len()));
        }
        conditions.push(format!("e.event_type IN ({})", placeholders.join(", ")));
    }
    if let Some(channel) = &filter.channel {
        let quoted = serde_json::to_string(channel).expect("a string serializes");
        binds.push(Bind::Text(format!("%{}%", like_literal(&quoted))));
        conditions.push(format!("m.channels LIKE ${} ESCAPE '\\'", binds.len()));
    }
    binds.push(Bind::Int(limit + 1));
    let sql = format!(
        "{MESSAGE_SELECT} WHERE {} ORDER BY e.published_at {order}, e.id {order} LIMIT ${}",
        conditions.join(" AND "),
        binds.len()
    );
    let mut rows: Vec<MessageRow> = on_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql);
        for bind in &binds {
            query = match bind {
                Bind::Int(n) => query.bind(*n),
                Bind::Text(t) => query.bind(t.clone()),
            };
        }
        query.fetch_all(pool).await?
    });
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    if cursor.reverse {
        rows.reverse();
    }
    Ok((rows, has_more))
}

enum Bind {
    Int(i64),
    Text(String),
}

// ---------------------------------------------------------------- deliveries and attempts

/// A delivery of a message to an endpoint, as Svix shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryState {
    pub delivery_id: i64,
    pub event_id: String,
    pub config_id: i64,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

const STATE_SELECT: &str = "SELECT d.id AS delivery_id, d.event_id, d.config_id, d.status, \
    d.attempts, d.next_attempt_at FROM deliveries d";

/// The deliveries of one message (one per endpoint it went to).
pub async fn deliveries_of_message(
    db: &Db,
    organisation: i64,
    event_id: &str,
) -> Result<Vec<DeliveryState>, Error> {
    let sql = format!(
        "{STATE_SELECT} WHERE d.event_id = $1 AND d.organisation = $2 AND d.kind = 'event' \
         ORDER BY d.config_id"
    );
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(event_id)
        .bind(organisation)
        .fetch_all(pool)
        .await?))
}

/// A page of the deliveries to one endpoint, newest first, after the
/// delivery `after` (0: from the newest).
pub async fn deliveries_to_endpoint(
    db: &Db,
    config_id: i64,
    after: i64,
    limit: i64,
) -> Result<(Vec<DeliveryState>, bool), Error> {
    let sql = format!(
        "{STATE_SELECT} WHERE d.config_id = $1 AND d.kind = 'event' AND ($2 = 0 OR d.id < $2) \
         ORDER BY d.id DESC LIMIT $3"
    );
    let mut rows: Vec<DeliveryState> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(config_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, has_more))
}

/// The messages with these event ids, by event id.
pub async fn messages_by_id(
    db: &Db,
    event_ids: &[String],
) -> Result<HashMap<String, MessageRow>, Error> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders: Vec<String> = (1..=event_ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "{MESSAGE_SELECT} WHERE e.id IN ({})",
        placeholders.join(", ")
    );
    let rows: Vec<MessageRow> = on_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql);
        for id in event_ids {
            query = query.bind(id);
        }
        query.fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
}

/// Delivery counts of one endpoint by status, within `[since, until)` of
/// their creation (µs).
pub async fn endpoint_status_counts(
    db: &Db,
    config_id: i64,
    since: i64,
    until: i64,
) -> Result<HashMap<String, i64>, Error> {
    let sql = "SELECT status, COUNT(*) FROM deliveries WHERE config_id = $1 AND kind = 'event' \
               AND created_at >= $2 AND created_at < $3 GROUP BY status";
    let rows: Vec<(String, i64)> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(config_id)
        .bind(since)
        .bind(until)
        .fetch_all(pool)
        .await?);
    Ok(rows.into_iter().collect())
}

/// One attempt, with what Svix shows of it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: String,
    pub config_id: i64,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub success: bool,
    /// The delivery was sent again by hand (`resend`, a recovery).
    pub manual: bool,
}

const ATTEMPT_SELECT: &str = "SELECT a.id, a.delivery_id, d.event_id, d.config_id, \
    a.attempted_at, a.duration_ms, a.status_code, a.response_body, a.error, a.success, \
    (d.recovered_by IS NOT NULL) AS manual \
    FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id";

/// What a list of attempts is of.
#[derive(Debug, Clone)]
pub enum AttemptsOf {
    Endpoint(i64),
    /// A message's, optionally to one endpoint only.
    Message {
        event_id: String,
        config_id: Option<i64>,
    },
}

/// A page of an application's attempts, newest first, before attempt
/// `before` (0: from the newest); `success` filters by outcome.
pub async fn list_attempts(
    db: &Db,
    organisation: i64,
    of: &AttemptsOf,
    success: Option<bool>,
    before: i64,
    limit: i64,
) -> Result<(Vec<AttemptRow>, bool), Error> {
    let (condition, text, config) = match of {
        AttemptsOf::Endpoint(config) => ("d.config_id = $3", String::new(), *config),
        AttemptsOf::Message {
            event_id,
            config_id,
        } => (
            "d.event_id = $2 AND ($3 = 0 OR d.config_id = $3)",
            event_id.clone(),
            config_id.unwrap_or(0),
        ),
    };
    let sql = format!(
        "{ATTEMPT_SELECT} WHERE d.organisation = $1 AND {condition} AND d.kind = 'event' \
         AND ($4 = 0 OR a.id < $4) AND ($5 < 0 OR a.success = ($5 = 1)) \
         AND $2 = $2 ORDER BY a.id DESC LIMIT $6"
    );
    let success = success.map_or(-1i64, i64::from);
    let mut rows: Vec<AttemptRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(&text)
        .bind(config)
        .bind(before)
        .bind(success)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, has_more))
}

/// One attempt of an application's message.
pub async fn find_attempt(
    db: &Db,
    organisation: i64,
    event_id: &str,
    attempt: i64,
) -> Result<Option<AttemptRow>, Error> {
    let sql =
        format!("{ATTEMPT_SELECT} WHERE d.organisation = $1 AND d.event_id = $2 AND a.id = $3");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(event_id)
        .bind(attempt)
        .fetch_optional(pool)
        .await?))
}

// ---------------------------------------------------------------- idempotency keys

/// What a POST with an `Idempotency-Key` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// The key is new and now taken by this request: answer, then
    /// [`finish_idempotency`] (or [`release_idempotency`] on failure).
    Claimed,
    /// Answered before: the first answer's status and body.
    Answered { status: u16, body: String },
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for another request (method and path).
    Mismatch,
}

/// Claims `key` for `request` (method and path) of `organisation`.
pub async fn claim_idempotency(
    db: &Db,
    organisation: i64,
    key: &str,
    request: &str,
) -> Result<Idempotency, Error> {
    let insert = "INSERT INTO idempotency_keys \
                  (organisation, idempotency_key, request, status, body, created_at) \
                  VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT DO NOTHING";
    // A claim whose request never answered (its node died, or the commit
    // was cut off) is taken over once no request could still be running.
    let take_over = "UPDATE idempotency_keys SET created_at = $4 \
                     WHERE organisation = $1 AND idempotency_key = $2 AND request = $3 \
                     AND status = 0 AND created_at < $5";
    let now = now_micros();
    let claimed = on_pool!(db, |pool| {
        let inserted = sqlx::query(insert)
            .bind(organisation)
            .bind(key)
            .bind(request)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
        // A new key (the common case) needs no second statement.
        if inserted == 1 {
            1
        } else {
            sqlx::query(take_over)
                .bind(organisation)
                .bind(key)
                .bind(request)
                .bind(now)
                .bind(now - ABANDONED_AFTER_MICROS)
                .execute(pool)
                .await?
                .rows_affected()
        }
    });
    if claimed >= 1 {
        return Ok(Idempotency::Claimed);
    }
    let select = "SELECT request, status, body FROM idempotency_keys \
                  WHERE organisation = $1 AND idempotency_key = $2";
    let row: Option<(String, i64, Option<String>)> = on_pool!(db, |pool| sqlx::query_as(select)
        .bind(organisation)
        .bind(key)
        .fetch_optional(pool)
        .await?);
    Ok(match row {
        // Released between the two statements: the caller may try again.
        None => Idempotency::InProgress,
        Some((stored, _, _)) if stored != request => Idempotency::Mismatch,
        Some((_, 0, _)) => Idempotency::InProgress,
        Some((_, status, body)) => Idempotency::Answered {
            status: u16::try_from(status).unwrap_or(200),
            body: body.unwrap_or_default(),
        },
    })
}

/// How long a claimed key may wait for its answer before a repeat takes it
/// over: longer than any request may run (its body and database deadlines).
pub const ABANDONED_AFTER_MICROS: i64 = 60 * 1_000_000;

/// Stores the answer to a claimed key.
pub async fn finish_idempotency(
    db: &Db,
    organisation: i64,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), Error> {
    let sql = "UPDATE idempotency_keys SET status = $3, body = $4 \
               WHERE organisation = $1 AND idempotency_key = $2";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(organisation)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Frees a claimed key whose request failed (a repeat runs anew).
pub async fn release_idempotency(db: &Db, organisation: i64, key: &str) -> Result<(), Error> {
    let sql = "DELETE FROM idempotency_keys WHERE organisation = $1 AND idempotency_key = $2";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(organisation)
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// How long an idempotency key is kept (and a repeat answered from it).
pub const IDEMPOTENCY_KEY_LIFETIME_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Retention's part here: idempotency keys older than a day at `now`
/// (µs), and the channels of messages retention has deleted. How many
/// rows went.
pub async fn expire(db: &Db, now: i64) -> Result<u64, Error> {
    let keys = "DELETE FROM idempotency_keys WHERE created_at < $1";
    let channels = "DELETE FROM svix_messages WHERE NOT EXISTS \
                    (SELECT 1 FROM published_events e WHERE e.id = svix_messages.event_id)";
    Ok(on_pool!(db, |pool| {
        let keys = sqlx::query(keys)
            .bind(now - IDEMPOTENCY_KEY_LIFETIME_MICROS)
            .execute(pool)
            .await?
            .rows_affected();
        keys + sqlx::query(channels).execute(pool).await?.rows_affected()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_with_channels_takes_only_messages_that_share_one() {
        let channels = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = Channels(None);
        assert!(all.admit(&[]));
        assert!(all.admit(&channels(&["eu"])));
        let eu = Channels(Some(channels(&["eu", "beta"])));
        assert!(eu.admit(&channels(&["us", "beta"])));
        assert!(!eu.admit(&channels(&["us"])));
        assert!(!eu.admit(&[]));
        assert_eq!(Channels::try_from(None::<String>).unwrap(), all);
        assert!(Channels::try_from(Some("{".to_owned())).is_err());
    }

    #[test]
    fn message_ids_round_trip_to_event_ids() {
        let event = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let message = message_id(event);
        assert_eq!(message, "msg_0f8fad5bd9cb469fa16570867728950e");
        assert_eq!(event_id_of(&message).as_deref(), Some(event));
        assert_eq!(event_id_of("msg_xyz"), None);
    }

    #[test]
    fn numeric_ids_parse_only_their_own_shape() {
        assert_eq!(parse_numeric_id("app_", "app_42"), Some(42));
        assert_eq!(parse_numeric_id("app_", "app_"), None);
        assert_eq!(parse_numeric_id("app_", "app_4x"), None);
        assert_eq!(parse_numeric_id("ep_", "app_4"), None);
        assert_eq!(parse_numeric_id("ep_", "ep_99999999999999999999"), None);
    }

    #[test]
    fn a_uid_never_looks_like_an_id() {
        assert!(is_valid_uid("customer-42.prod_x"));
        assert!(!is_valid_uid("app_42"));
        assert!(!is_valid_uid("ep_7"));
        assert!(!is_valid_uid("msg_0f8fad5bd9cb469fa16570867728950e"));
        assert!(!is_valid_uid(""));
        assert!(!is_valid_uid("with space"));
        assert!(!is_valid_uid(&"a".repeat(257)));
    }

    #[test]
    fn like_patterns_match_their_text_literally() {
        assert_eq!(like_literal("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
