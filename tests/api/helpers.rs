//! Spawning webhookd on a fresh database of either backend, and talking to it.
use crate::fault_proxy::FaultProxy;
use projections::Db;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use webhookd::admin;
use webhookd::delivery::publish::Publisher;
use webhookd::delivery::retry::RetrySchedule;
use webhookd::settings::Settings;
use webhookd::startup::Application;

/// Runs each named `async fn name(backend: Backend)` of the calling module
/// once on SQLite and once on PostgreSQL, as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[actix_web::test]
            async fn $name() {
                super::$name($crate::helpers::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[actix_web::test]
            async fn $name() {
                super::$name($crate::helpers::Backend::Postgres).await
            })*
        }
    };
}

/// The fault harness measures time (takeovers, rate windows at the
/// receiver) and the external clients (the SDK flows, schemathesis, the
/// browser) load both cores for seconds: they take turns, so that a fault
/// test never shares the machine with one of them.
pub static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed afterwards, even when
/// the test panics.
pub struct TestDatabase {
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

/// The PostgreSQL server the suite creates its databases on.
fn postgres_admin_url() -> String {
    std::env::var("WEBHOOKD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn postgres_url_for(name: &str) -> String {
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("webhookd.db").display());
                Self {
                    url,
                    _sqlite_dir: Some(dir),
                    postgres_name: None,
                }
            }
            Backend::Postgres => {
                static COUNTER: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "webhookd_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand::random::<u32>()
                );
                let mut admin = sqlx_connect_admin().await;
                sqlx::Executor::execute(
                    &mut admin,
                    format!(r#"CREATE DATABASE "{name}""#).as_str(),
                )
                .await
                .expect("PostgreSQL must be reachable: start it or set WEBHOOKD_TEST_POSTGRES_URL");
                Self {
                    url: postgres_url_for(&name),
                    _sqlite_dir: None,
                    postgres_name: Some(name),
                }
            }
        }
    }
}

async fn sqlx_connect_admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("PostgreSQL must be reachable: start it or set WEBHOOKD_TEST_POSTGRES_URL")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside any async context we may block on: use a
            // thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let mut admin = sqlx_connect_admin().await;
                    let drop = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = sqlx::Executor::execute(&mut admin, drop.as_str()).await;
                });
            })
            .join();
        }
    }
}

/// A running webhookd with the `default` organisation and its bootstrap key.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    /// The key `serve` printed: organisation `default`, every scope.
    pub key: String,
    pub database: TestDatabase,
    /// The delivery side, for fault injection and counters.
    pub publisher: Publisher,
}

impl TestApp {
    /// The app's PostgreSQL pool; panics on SQLite (for PostgreSQL-only tests).
    pub fn postgres_pool(&self) -> &sqlx::PgPool {
        match &self.db {
            Db::Postgres(pool) => pool,
            Db::Sqlite(_) => panic!("a PostgreSQL app"),
        }
    }

    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, false).await
    }

    pub async fn spawn_dev(backend: Backend) -> Self {
        Self::spawn_with(backend, true).await
    }

    async fn spawn_with(backend: Backend, dev: bool) -> Self {
        Self::spawn_configured(backend, |settings| settings.dev = dev).await
    }

    /// A webhookd in `--dev` mode (receivers on loopback) with a fast retry
    /// schedule, adjusted by `configure`.
    pub async fn spawn_for_delivery(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_configured(backend, |settings| {
            settings.dev = true;
            settings.delivery.retry_schedule = RetrySchedule::parse("100ms,200ms,400ms").unwrap();
            configure(settings);
        })
        .await
    }

    pub async fn spawn_configured(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        // TEST_LOG=debug shows webhookd's log in a failing test's output.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let database = TestDatabase::create(backend).await;
        let url = database.url.clone();
        Self::spawn_on(database, &url, configure).await
    }

    /// A webhookd whose PostgreSQL connections go through a [`FaultProxy`],
    /// so that the test can take the database away (from this server only).
    pub async fn spawn_behind_proxy(configure: impl FnOnce(&mut Settings)) -> (Self, FaultProxy) {
        let database = TestDatabase::create(Backend::Postgres).await;
        let mut url = url::Url::parse(&database.url).expect("database URL");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("host"),
            url.port().unwrap_or(5432)
        );
        let proxy = FaultProxy::start(upstream).await;
        url.set_port(Some(proxy.port)).expect("port");
        let app = Self::spawn_on(database, url.as_str(), |settings| {
            settings.dev = true;
            settings.delivery.retry_schedule = RetrySchedule::parse("100ms,200ms,400ms").unwrap();
            configure(settings);
        })
        .await;
        (app, proxy)
    }

    async fn spawn_on(
        database: TestDatabase,
        url: &str,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings::new(url, "127.0.0.1:0");
        settings.workers = Some(2);
        // Tests run side by side on one PostgreSQL (100 connections).
        settings.max_db_connections = 5;
        configure(&mut settings);
        let (address, db, bootstrap, publisher) = start_server(&settings).await;
        let bootstrap = bootstrap.expect("an empty database gets a bootstrap key");
        Self {
            address,
            client: reqwest::Client::new(),
            db,
            key: bootstrap.token,
            database,
            publisher,
        }
    }

    /// Another webhookd on the same database, as after a restart.
    pub async fn restart(&self) -> String {
        let mut settings = Settings::new(&self.database.url, "127.0.0.1:0");
        settings.max_db_connections = 5;
        let (address, _, bootstrap, _) = start_server(&settings).await;
        assert!(
            bootstrap.is_none(),
            "a used database gets no second bootstrap key"
        );
        address
    }

    /// `POST /api/v1/events`, expecting 202; returns `data`.
    pub async fn publish(&self, event_type: &str, data: Value) -> Value {
        let response = self
            .request(Method::POST, "/api/v1/events")
            .json(&json!({ "type": event_type, "data": data }))
            .send()
            .await
            .expect("request");
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::ACCEPTED, "publish failed: {json}");
        json["data"].clone()
    }

    /// `GET /api/v1/webhooks/{id}`'s `data`.
    pub async fn webhook(&self, id: i64) -> Value {
        let response = self
            .request(Method::GET, &format!("/api/v1/webhooks/{id}"))
            .send()
            .await
            .expect("request");
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["data"].clone()
    }

    /// The deliveries of a config (newest first), with their attempt logs.
    pub async fn deliveries(&self, id: i64) -> Vec<Value> {
        let response = self
            .request(
                Method::GET,
                &format!("/api/v1/webhooks/{id}/deliveries?per_page=100"),
            )
            .send()
            .await
            .expect("request");
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["data"].as_array().cloned().unwrap_or_default()
    }

    /// Polls (every 25 ms, up to `within`) until `condition` holds for the
    /// config's deliveries; returns them.
    pub async fn deliveries_until(
        &self,
        id: i64,
        within: Duration,
        condition: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let deliveries = self.deliveries(id).await;
            if condition(&deliveries) {
                return deliveries;
            }
            assert!(
                Instant::now() < deadline,
                "condition not met in {within:?}: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The status of `GET /health/<which>` (`live` or `ready`; no key).
    pub async fn health(&self, which: &str) -> StatusCode {
        self.client
            .get(self.url(&format!("/health/{which}")))
            .send()
            .await
            .expect("request")
            .status()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request authenticated with the bootstrap key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(&self.key, method, path)
    }

    pub fn request_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    /// `POST /api/v1/webhooks` with `body`, expecting 201; returns `data`.
    pub async fn create_webhook(&self, body: Value) -> Value {
        let response = self
            .request(Method::POST, "/api/v1/webhooks")
            .json(&body)
            .send()
            .await
            .expect("request");
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::CREATED, "create failed: {json}");
        json["data"].clone()
    }

    /// `PATCH /api/v1/webhooks/{id}` with `changes`, expecting 200; returns
    /// `data`.
    pub async fn patch_webhook(&self, id: i64, changes: Value) -> Value {
        let response = self
            .request(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
            .json(&changes)
            .send()
            .await
            .expect("request");
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "patch failed: {json}");
        json["data"].clone()
    }

    /// `DELETE /api/v1/webhooks/{id}`, expecting 204.
    pub async fn delete_webhook(&self, id: i64) {
        let response = self
            .request(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// Creates a v1 webhook for `url` subscribed to `events`, with `extra`
    /// fields added to the body; returns the created config's `data`.
    pub async fn subscribe(&self, url: &str, events: Value, extra: Value) -> Value {
        let mut body = json!({ "url": url, "events": events });
        for (k, v) in extra.as_object().expect("extra fields are an object") {
            body[k] = v.clone();
        }
        self.create_webhook(body).await
    }

    /// An organisation with a key of the given scopes; returns the token.
    pub async fn new_tenant(&self, plan: &str, features: &[&str], scopes: &str) -> (i64, String) {
        let plan = aggregates::values::Plan::parse(plan).expect("plan");
        let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
        let org = admin::create_organisation(&self.db, "tenant", plan, &features)
            .await
            .expect("organisation");
        let scopes = aggregates::values::Scope::parse_list(scopes).expect("scopes");
        let key = admin::create_api_key(&self.db, org, &scopes, None)
            .await
            .expect("key");
        (org, key.token)
    }

    pub async fn add_event_type(&self, name: &str) {
        admin::add_event_type(&self.db, name, "test event")
            .await
            .expect("event type");
    }

    /// How many events the log holds for config `id` (all when `None`).
    pub async fn event_count(&self, id: Option<i64>) -> i64 {
        let sql = "SELECT COUNT(*) FROM events WHERE $1 IS NULL OR aggregate_id = $1";
        let id = id.map(|i| i.to_string());
        projections::on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(pool)
            .await
            .expect("count"))
    }

    /// Polls (every 25 ms, up to `within`) until no delivery is pending:
    /// everything due has been sent and its attempt recorded.
    pub async fn until_nothing_pending(&self, within: Duration) {
        until_nothing_pending(&self.db, within).await;
    }

    /// A count read directly from the database.
    pub async fn count_sql(&self, sql: &str) -> i64 {
        projections::on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count"))
    }

    /// Text values read directly from the database (one column).
    pub async fn strings_sql(&self, sql: &str) -> Vec<String> {
        projections::on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await
            .expect("select"))
    }

    /// Runs a statement directly on the database (to simulate faults).
    pub async fn execute_sql(&self, sql: &str) {
        projections::on_pool!(&self.db, |pool| {
            sqlx::query(sql).execute(pool).await.expect("sql");
        });
    }
}

async fn start_server(
    settings: &Settings,
) -> (String, Db, Option<webhookd::admin::IssuedKey>, Publisher) {
    let app = Application::build(settings).await.expect("webhookd starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    let bootstrap = app.bootstrap_key.clone();
    let publisher = app.publisher().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    (address, db, bootstrap, publisher)
}

pub async fn status_and_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, json)
}

/// A valid create body; tests override what they are about.
pub fn webhook_body(url: &str) -> Value {
    json!({ "url": url, "events": ["webhook_config.test"] })
}

/// What the Python side of the tests needs. Flask 2.0 (what ricloud's pins
/// resolve to) needs Werkzeug 2.0.
const PYTHON_REQUIREMENTS: &[&str] = &[
    "standardwebhooks==1.1.0",
    "ricloud==3.2.0",
    "flask",
    "werkzeug==2.0.3",
    "svix==2.9.1",
];

/// A Python with the verifiers and clients the tests use, in a virtualenv
/// under `target/` made on first use (and remade when the requirements change).
pub fn test_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("test-venv", PYTHON_REQUIREMENTS))
        .clone()
}

/// What the API contract test needs: schemathesis, apart from the pinned
/// Werkzeug of the other venv.
const SCHEMATHESIS_REQUIREMENTS: &[&str] = &["schemathesis==4.32.5"];

const BROWSER_REQUIREMENTS: &[&str] = &["playwright==1.49.1"];

/// The Python of the browser tests' virtualenv (Playwright, which drives
/// Debian's Chromium; made on first use).
pub fn browser_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("browser-venv", BROWSER_REQUIREMENTS))
        .clone()
}

/// The `schemathesis` program of its own virtualenv (made on first use).
pub fn schemathesis() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("contract-venv", SCHEMATHESIS_REQUIREMENTS))
        .with_file_name("schemathesis")
}

/// The `python` of `target/<name>` with `requirements` installed.
fn python_venv(name: &str, requirements: &[&str]) -> std::path::PathBuf {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let venv = target.join(name);
    let python = venv.join("bin/python");
    let marker = venv.join("installed-requirements");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let run = |program: &std::path::Path, args: &[&str]| {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(status.success(), "{} {args:?} failed", program.display());
    };
    run(
        std::path::Path::new("python3"),
        &["-m", "venv", venv.to_str().unwrap()],
    );
    let mut pip = vec![
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ];
    pip.extend_from_slice(requirements);
    run(&python, &pip);
    std::fs::write(&marker, &wanted).unwrap();
    python
}

/// Path of a file under `tests/receivers/`.
pub fn receiver_script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/receivers")
        .join(name)
}

/// Opens a raw connection and sends `head` (and nothing more).
pub fn raw_connection(app: &TestApp, head: &str) -> std::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.write_all(head.as_bytes()).expect("send");
    stream
}

/// Reads until the server closes the connection (or `within` passes);
/// returns what came and whether it closed.
pub fn read_until_closed(stream: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// Polls `db` (every 25 ms, up to `within`) until no delivery is pending:
/// everything due has been sent and its attempt recorded. Panics with the
/// count still pending when `within` passes first.
pub async fn until_nothing_pending(db: &Db, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let pending: i64 = projections::on_pool!(db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'"
        )
        .fetch_one(pool)
        .await
        .expect("count pending deliveries"));
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries still pending"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
