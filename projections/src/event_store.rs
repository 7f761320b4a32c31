//! The event log's repository for whichever backend the database is: the
//! cqrs-es repositories of `sqlite-es` and `postgres-es` behind one type,
//! chosen once from the [`Db`], so the command side above has one
//! framework and never asks which database it runs on.
//!
//! Only the plain event store is used (cqrs-es 0.5's snapshot and aggregate
//! stores apply new events twice); `stream_all_events` is there for the
//! trait, not for us (our own reader is [`crate::event_log`]).
use crate::Db;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

/// The backend's cqrs-es event repository.
pub enum EventRepository {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

impl EventRepository {
    pub fn for_backend(db: &Db) -> Self {
        match db {
            Db::Sqlite(pool) => Self::Sqlite(SqliteEventRepository::new(pool.clone())),
            Db::Postgres(pool) => Self::Postgres(PostgresEventRepository::new(pool.clone())),
        }
    }
}

/// Runs `$call` on the backend's repository.
macro_rules! on_backend {
    ($self:expr, |$repository:ident| $call:expr) => {
        match $self {
            EventRepository::Sqlite($repository) => $call,
            EventRepository::Postgres($repository) => $call,
        }
    };
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        on_backend!(self, |repository| repository
            .get_events::<A>(aggregate_id)
            .await)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        on_backend!(self, |repository| repository
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        on_backend!(self, |repository| repository
            .get_snapshot::<A>(aggregate_id)
            .await)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        on_backend!(self, |repository| repository
            .persist::<A>(events, snapshot_update)
            .await)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        on_backend!(self, |repository| repository
            .stream_events::<A>(aggregate_id)
            .await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        on_backend!(self, |repository| repository.stream_all_events::<A>().await)
    }
}
