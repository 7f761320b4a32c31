//! Builds the application once, for `main` and for the tests.
use crate::admin::{self, IssuedKey};
use crate::changes::{ChangeBus, ReadCaches};
use crate::config_commands::{ConfigChangeNotifier, ConfigCommands};
use crate::database;
use crate::delivery::policy::DeliveryEngine;
use crate::delivery::publish::Publisher;
use crate::delivery::routing::RoutingCache;
use crate::delivery::store::DeliveryStore;
use crate::delivery::tasks::TaskStore;
use crate::delivery::SupervisorHandle;
use crate::http::connections::{self, ConnectionCounter};
use crate::http::deadline::enforce_body_deadline;
use crate::http::query_guard::refuse_control_characters;
use crate::http::{self, key_cache::KeyCache, request_id::assign_request_id, AppState};
use crate::settings::Settings;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use projections::config_reads::ConfigReads;
use projections::webhook_configs::ConfigProjector;
use projections::Db;
use std::net::TcpListener;
use std::sync::Arc;

/// A client must send its request headers within this (actix answers 408);
/// the body then has `--request-timeout` (see `http::deadline`).
const HEADERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Application {
    server: Server,
    port: u16,
    db: Db,
    publisher: Publisher,
    /// The key `serve` created on an empty database, to be printed once.
    pub bootstrap_key: Option<IssuedKey>,
}

impl Application {
    /// Connects, migrates, brings the read models level with the log,
    /// bootstraps an empty database and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = database::connect(&settings.database_url).await?;
        let repaired = ConfigProjector::new(db.clone())
            .catch_up_all()
            .await
            .context("cannot bring the read models level with the event log")?;
        if repaired > 0 {
            tracing::warn!(
                repaired,
                "read model rows were behind the event log and were caught up"
            );
        }
        let bootstrap_key = admin::bootstrap(&db).await?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let url_policy = settings.url_policy();
        let keys = KeyCache::new(db.clone());
        keys.watch_admin_log();
        let routes = RoutingCache::default();
        let config_reads = ConfigReads::default();
        let changes = ChangeBus::new(ReadCaches {
            routes: routes.clone(),
            reads: config_reads.clone(),
            keys: keys.clone(),
        });
        let commands = ConfigCommands::new(&db, ConfigChangeNotifier::new(changes.clone()));
        let mut delivery = settings.delivery.clone();
        delivery.url_policy = url_policy.clone();
        let store = DeliveryStore::new(db.clone(), changes.clone());
        let engine = DeliveryEngine {
            store: store.clone(),
            tasks: TaskStore::new(db.clone()),
            settings: delivery.clone(),
            commands: commands.clone(),
        };
        // Starting the supervisor resumes every pending delivery in the database.
        let supervisor = SupervisorHandle::start(Arc::new(engine), changes.subscribe());
        let publisher = Publisher::new(store, supervisor, routes);
        let state = web::Data::new(AppState {
            db: db.clone(),
            keys,
            config_reads,
            commands,
            url_policy,
            resolve_overrides: delivery.resolve_overrides,
            publisher: publisher.clone(),
            tasks: TaskStore::new(db.clone()),
        });
        let body_deadline = web::Data::new(settings.body_deadline);
        let max_connections = connections::effective_cap(settings.max_connections);
        let counter = ConnectionCounter::new(max_connections);
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(body_deadline.clone())
                // Innermost first: the request id and log line wrap everything.
                .wrap(from_fn(refuse_control_characters))
                .wrap(from_fn(enforce_body_deadline))
                .wrap(from_fn(assign_request_id))
                .configure(http::routes)
                .default_service(web::to(http::not_found))
        })
        .workers(workers)
        // The cap is per worker in actix; the counter logs the total.
        .max_connections(max_connections.div_ceil(workers))
        .client_request_timeout(HEADERS_TIMEOUT)
        .on_connect(move |connection, extensions| counter.on_connect(connection, extensions))
        .listen(listener)?;
        tracing::debug!(max_connections, workers, "accepting connections");
        Ok(Self {
            server: server.run(),
            port,
            db,
            publisher,
            bootstrap_key,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The delivery side: publishing, and the supervisor (for tests and stats).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
