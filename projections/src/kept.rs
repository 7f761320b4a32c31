//! PostgreSQL connections kept between uses instead of returned to their
//! pool after each. sqlx tests every connection that comes back to a pool
//! with a round trip to the server (a `Sync` and its `ReadyForQuery`, in a
//! task spawned for it; `test_before_acquire(false)` covers only the other
//! end). For the group-commit writers, which took a connection per batch,
//! that was a second exchange for every batch — at 1 000 events/s one per
//! publish, and a sixth of the database's CPU per delivery; for the
//! cluster bus, one per round of notifications. Both keep theirs.
//!
//! A connection is kept only after a use that succeeded: that left it idle
//! and in sync, all the pool's test would have found. After a failure, or
//! when the use was abandoned mid-statement (its future dropped at a
//! deadline), the connection goes back to the pool, whose test decides: a
//! broken one — the old primary after a failover, a session the server
//! ended — is not used again. A kept connection does not age out (the
//! pool's lifetime and idle limits apply only to connections in the pool);
//! one whose server went away silently hangs its next use until the
//! caller's deadline drops it (the publish deadline, for the writers), and
//! then goes back to the pool's test like any abandoned one.
use crate::Error;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::Mutex;

pub(crate) struct KeptConnections {
    pool: PgPool,
    /// At most as many as were in use at once.
    kept: Mutex<Vec<PoolConnection<Postgres>>>,
}

impl KeptConnections {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// A kept connection, else one from the pool.
    pub(crate) async fn take(&self) -> Result<PoolConnection<Postgres>, Error> {
        let kept = self.lock().pop();
        match kept {
            Some(connection) => Ok(connection),
            None => Ok(self.pool.acquire().await?),
        }
    }

    /// Keeps `connection` for the next use if its use `succeeded`; else it
    /// goes back to the pool (and its test).
    pub(crate) fn put_back(&self, connection: PoolConnection<Postgres>, succeeded: bool) {
        if succeeded {
            self.lock().push(connection);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PoolConnection<Postgres>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for KeptConnections {
    /// A pooled connection goes back to its pool in a task of its own, and
    /// sqlx panics when there is no Tokio runtime to spawn it on — as when
    /// the process ends and the owner is dropped after its runtime. Then
    /// the kept connections are closed instead.
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            let kept = self.kept.get_mut().unwrap_or_else(|p| p.into_inner());
            for connection in kept.drain(..) {
                drop(connection.detach());
            }
        }
    }
}
