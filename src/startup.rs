//! Builds the application once, for `main` and for the tests.
use crate::admin::{self, IssuedKey};
use crate::changes::{Change, ChangeBus, ReadCaches};
use crate::cluster::single_node::{self, ServeLock};
use crate::cluster::{self, ClusterNode, NodeSettings, Ownership, Role};
use crate::config_commands::{ConfigChangeNotifier, ConfigCommands};
use crate::database;
use crate::delivery::engine::{DeliveryEngine, EngineParts};
use crate::delivery::operational::{self, ConfigEventNotices, OperationalWebhooks};
use crate::delivery::publish::Publisher;
use crate::delivery::routing::RoutingCache;
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
use projections::cluster::ClusterStore;
use projections::config_reads::ConfigReads;
use projections::deliveries::TaskStore;
use projections::deliveries::{DeliveryStore, StoreHooks, POSTGRES_WRITER_CONNECTIONS};
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
    /// This node's membership (PostgreSQL); `None` on SQLite.
    node: Option<ClusterNode>,
    ownership: Ownership,
    shutdown_grace: std::time::Duration,
    /// SQLite: held while this server runs (see `cluster::single_node`).
    _serve_lock: Option<ServeLock>,
    /// The key `serve` created on an empty database, to be printed once.
    pub bootstrap_key: Option<IssuedKey>,
}

impl Application {
    /// Connects, migrates, brings the read models level with the log,
    /// bootstraps an empty database and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        if settings.metrics {
            crate::telemetry::install();
        }
        let serve_lock = if settings.database_url.starts_with("sqlite:") {
            if settings.role != Role::All {
                anyhow::bail!(
                    "--role {} needs PostgreSQL: on SQLite webhookd is one node that does everything",
                    settings.role.as_str()
                );
            }
            single_node::lock(&settings.database_url)?
        } else {
            None
        };
        let node_id = settings
            .node_id
            .clone()
            .unwrap_or_else(cluster::generated_node_id);
        // Server-side limits end a frozen or cut-off node's transactions
        // before its leases run out (see `database::failover`).
        let limits = database::SessionLimits::for_lease(settings.node_timeout);
        let db = database::connect_as(
            &settings.database_url,
            &format!("webhookd:{node_id}"),
            settings.max_db_connections,
            Some(limits),
            &settings.encryption,
            settings.sqlite_synchronous,
        )
        .await?;
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
        let bootstrap_key = bootstrap_once(&db).await?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let url_policy = settings.url_policy();
        let keys = KeyCache::new(db.clone());
        keys.watch_admin_log();
        let routes = RoutingCache::default();
        let config_reads = ConfigReads::default();
        let caches: ReadCaches = vec![
            Arc::new(routes.clone()),
            Arc::new(config_reads.clone()),
            Arc::new(keys.clone()),
        ];
        let changes = ChangeBus::new(caches);
        let (operational, notices) = OperationalWebhooks::new();
        let commands = ConfigCommands::new(
            &db,
            ConfigChangeNotifier::new(changes.clone()),
            vec![Box::new(ConfigEventNotices(operational.clone()))],
        );
        let mut delivery = settings.delivery.clone();
        delivery.url_policy = url_policy.clone();
        let store = DeliveryStore::new(db.clone(), writer_connections(&db), {
            let changes = changes.clone();
            StoreHooks {
                stats_moved: Arc::new(move |configs| changes.announce(Change::Stats(configs))),
                commit_waited: crate::telemetry::group_commit_waited,
                outcome_linger: settings.delivery.outcome_linger,
            }
        });
        // Bounded: a database that went away since the migrations only
        // leaves the first publishes to connect, as they would have.
        match tokio::time::timeout(WARM_UP_WITHIN, store.warm_up()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the delivery writers could not be readied"),
            Err(_) => {
                tracing::warn!(within = ?WARM_UP_WITHIN, "the delivery writers were not ready in time")
            }
        }
        // On PostgreSQL every node is a cluster member, alone or not: it
        // delivers to the endpoints whose partitions it leases.
        let (ownership, node) = match &db {
            Db::Sqlite(_) => (Ownership::everything(), None),
            Db::Postgres(pool) => {
                let ownership = Ownership::leased();
                // Listening before joining: the join is announced.
                // The bus sends from a connection of its own, kept
                // between rounds (see `ClusterStore::notifying_from`).
                cluster::bus::start(
                    ClusterStore::new(pool.clone()).notifying_from(database::derived_pool(
                        pool,
                        "bus",
                        &[],
                        1,
                    )),
                    node_id.clone(),
                    changes.clone(),
                    ownership.clone(),
                );
                // The heartbeat has connections of its own: publishes that
                // fill the query pool must not starve the renewal of the
                // leases they depend on. Opened here, on the main runtime,
                // so they outlive the HTTP workers' runtimes at shutdown
                // (the leases are freed after the workers stop).
                let heartbeat_pool = database::derived_pool(pool, "heartbeat", &[], 2);
                let node = ClusterNode::join(
                    ClusterStore::new(heartbeat_pool),
                    NodeSettings {
                        id: node_id.clone(),
                        address: format!("{}", listener.local_addr()?),
                        role: settings.role,
                        timeout: settings.node_timeout,
                    },
                    ownership.clone(),
                    changes.clone(),
                )
                .await
                .context("cannot join the cluster")?;
                (ownership, Some(node))
            }
        };
        let engine = DeliveryEngine::new(EngineParts {
            store: store.clone(),
            tasks: TaskStore::new(db.clone()),
            settings: delivery.clone(),
            commands: commands.clone(),
            ownership: ownership.clone(),
            operational,
        });
        // Starting the supervisor resumes every pending delivery (of the
        // endpoints this node owns) in the database.
        let supervisor = SupervisorHandle::start(Arc::new(engine), changes.clone());
        let publisher = Publisher::new(store, supervisor, routes);
        operational::spawn(notices, publisher.clone(), db.clone());
        let endpoints = crate::app::Endpoints::new(
            db.clone(),
            commands.clone(),
            url_policy.clone(),
            delivery.resolve_overrides,
        );
        let state = web::Data::new(AppState {
            db: db.clone(),
            keys,
            config_reads,
            applications: crate::app::Applications::new(db.clone(), endpoints.clone()),
            endpoints,
            commands,
            url_policy,
            deliveries: crate::app::Deliveries::new(publisher.clone(), TaskStore::new(db.clone())),
            tasks: TaskStore::new(db.clone()),
            node: node.clone(),
        });
        let body_deadline = web::Data::new(settings.body_deadline);
        let max_connections = connections::effective_cap(settings.max_connections);
        let counter = ConnectionCounter::new(max_connections);
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if settings.role.delivers() {
            projections::deliveries::retention::spawn(db.clone(), settings.retention);
        }
        crate::delivery::gauges::sample_periodically(
            db.clone(),
            publisher.supervisor().clone(),
            ownership.clone(),
        );
        let metrics_here = settings.metrics_bind.is_none();
        if let Some(address) = &settings.metrics_bind {
            let metrics_server = HttpServer::new(|| {
                App::new().route("/metrics", web::get().to(crate::telemetry::scrape))
            })
            .workers(1)
            .disable_signals()
            .bind(address)
            .with_context(|| format!("cannot listen on {address} (--metrics-bind)"))?
            .run();
            tokio::spawn(metrics_server);
        }
        let role = settings.role;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(body_deadline.clone())
                // Innermost first: the request id and log line wrap everything.
                .wrap(from_fn(refuse_control_characters))
                .wrap(from_fn(enforce_body_deadline))
                .wrap(from_fn(assign_request_id))
                .configure(|cfg| {
                    if metrics_here {
                        cfg.route("/metrics", web::get().to(crate::telemetry::scrape));
                    }
                    if role.serves_api() {
                        http::routes(cfg)
                    } else {
                        http::health::routes(cfg)
                    }
                })
                .default_service(web::to(http::not_found))
        })
        .shutdown_timeout(settings.shutdown_grace.as_secs().max(1))
        // `run_until_stopped` handles the signals: the delivery side must
        // stop beside the HTTP workers, not after them.
        .disable_signals()
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
            node,
            ownership,
            shutdown_grace: settings.shutdown_grace,
            _serve_lock: serve_lock,
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

    /// This node's cluster membership (PostgreSQL).
    pub fn node(&self) -> Option<&ClusterNode> {
        self.node.as_ref()
    }

    /// Serves until `SIGTERM` (or `SIGINT`), then shuts down gracefully:
    /// the listener closes and requests under way finish (up to
    /// `--shutdown-grace`) while, beside them, nothing new is sent, the
    /// attempts under way are recorded (up to the same grace) and the
    /// leases are freed at once, so other nodes take the endpoints over
    /// without waiting out the node timeout. Both before the HTTP workers
    /// stop: database connections opened on their threads die with them.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => return result.map_err(std::io::Error::other)?,
            () = termination() => {}
        }
        tracing::info!("stopping: no new requests; finishing the attempts under way");
        let http = tokio::spawn(handle.stop(true));
        self.ownership.stop();
        match &self.node {
            Some(node) => node.leave(self.shutdown_grace).await,
            None => {
                let all: Vec<usize> = (0..cluster::ownership::PARTITIONS).collect();
                self.ownership.drained(&all, self.shutdown_grace).await;
            }
        }
        let _ = http.await;
        let _ = server.await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on `SIGTERM` or `SIGINT` (never, if they cannot be watched).
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The first-run bootstrap, by one node only: nodes started together on an
/// empty PostgreSQL database take turns (an advisory lock), so exactly one
/// creates the `default` organisation and prints its key.
async fn bootstrap_once(db: &Db) -> anyhow::Result<Option<IssuedKey>> {
    let Db::Postgres(pool) = db else {
        return admin::bootstrap(db).await;
    };
    let mut turn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *turn)
        .await?;
    let bootstrapped = admin::bootstrap(db).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *turn)
        .await?;
    bootstrapped
}

/// The advisory lock key of the bootstrap ("webhookd" in ASCII, truncated).
const BOOTSTRAP_LOCK: i64 = 0x7765_6268_6f6f_6b64;

/// How long a start waits for [`DeliveryStore::warm_up`].
const WARM_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The connections the group-commit writers use. On PostgreSQL they are
/// their own pool, keeping one generic plan per statement (re-planning
/// every batch was most of the database's CPU at low load) with
/// `enable_seqscan = off`: a plan made while the tables are small (a fresh
/// database) still takes the indexes as they grow. They inherit the
/// serving sessions' settings (`database::SessionLimits`), `jit = off`
/// among them, which these need most: with sequential scans "disabled" a
/// statement that has no index path (the duplicate publish's count of its
/// first event's deliveries, for events from before migration 0018) is
/// costed past `jit_above_cost` and was compiled on every execution —
/// ~0.2 s per duplicate, one after the other, until a batch of duplicates
/// passed the publish deadline (503s in
/// `hot_path::concurrent_publishes_of_one_id…`).
fn writer_connections(db: &Db) -> Db {
    match db {
        Db::Sqlite(_) => db.clone(),
        Db::Postgres(pool) => Db::Postgres(database::derived_pool(
            pool,
            "writers",
            &[
                ("plan_cache_mode", "force_generic_plan"),
                ("enable_seqscan", "off"),
            ],
            POSTGRES_WRITER_CONNECTIONS as u32,
        )),
    }
}
