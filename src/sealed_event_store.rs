//! The config aggregate's event repository with secrets sealed at rest:
//! it seals the secret in each event before the backend's repository
//! stores it, opens them in what it loads (see `projections::vault`), and
//! destroys a config's data key once its `Deleted` event is stored
//! (crypto-shredding: the secrets in its log can no longer be opened).
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use projections::Db;
use serde_json::Value;

pub struct SealedEventRepository<R> {
    inner: R,
    db: Db,
}

impl<R> SealedEventRepository<R> {
    pub fn new(inner: R, db: Db) -> Self {
        Self { inner, db }
    }

    async fn open(&self, events: &mut [SerializedEvent]) -> Result<(), PersistenceError> {
        let vault = projections::vault::of(&self.db);
        for event in events {
            vault
                .open_event(&self.db, &event.aggregate_id, &mut event.payload)
                .await
                .map_err(persistence_error)?;
        }
        Ok(())
    }
}

/// Keeps a database outage an outage (the command side answers 503 for
/// it): the `sqlx::Error` itself is what it looks for.
fn persistence_error(error: projections::Error) -> PersistenceError {
    match error {
        projections::Error::Database(error) if projections::db::is_unavailable(&error) => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        projections::Error::Database(error) => PersistenceError::UnknownError(Box::new(error)),
        other => PersistenceError::DeserializationError(Box::new(other)),
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for SealedEventRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = self.inner.get_events::<A>(aggregate_id).await?;
        self.open(&mut events).await?;
        Ok(events)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = self
            .inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        self.open(&mut events).await?;
        Ok(events)
    }

    /// Snapshots are not used (see docs/src/architecture/how-it-is-built.md: the plain event store only).
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let vault = projections::vault::of(&self.db);
        let mut sealed = events.to_vec();
        for event in &mut sealed {
            vault
                .seal_event(&self.db, &event.aggregate_id, &mut event.payload)
                .await
                .map_err(persistence_error)?;
        }
        self.inner.persist::<A>(&sealed, snapshot_update).await?;
        for deleted in events.iter().filter(|e| e.event_type == "Deleted") {
            if let Err(error) = vault.shred(&self.db, &deleted.aggregate_id).await {
                // The config is deleted but its key stays in `config_keys`
                // (the error is logged; deleting the row by hand completes
                // the shredding).
                tracing::error!(aggregate_id = %deleted.aggregate_id, %error, "cannot destroy a deleted config's data key");
            }
        }
        Ok(())
    }

    /// Not used by webhookd (it reads the log itself: `projections::event_log`,
    /// which opens secrets); events come out sealed.
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    /// As [`Self::stream_events`].
    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
