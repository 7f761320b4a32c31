//! The hot path's two writers — publishes and attempt outcomes, each in
//! group-committed batches (see [`super::group_commit`]) — once per
//! backend, behind one trait chosen when the store starts ([`for_backend`]
//! is the only place that asks which database this is).
//!
//! The two differ where the databases do: PostgreSQL overlaps
//! transactions, so several writers of each kind run at once and a batch
//! is one statement over arrays (`UNNEST`); SQLite has one writer at a
//! time, so both kinds of batch run on one thread of their own, which owns
//! a connection and executes their statements in place (see
//! [`super::sqlite_thread`]). `tests/api/conformance.rs` feeds both the
//! same sequences and compares the rows they leave.
use super::outcome_writer::{self, Outcome};
use super::publish_writer::{self, NewEvent};
use super::sqlite_thread::SqliteThread;
use super::store::{FailureRun, Published};
use crate::kept::KeptConnections;
use crate::{Db, Error};
use std::sync::Arc;

/// PostgreSQL's publish and outcome writers (see [`Writers::concurrency`]).
const POSTGRES_PUBLISH_WRITERS: usize = 4;
const POSTGRES_OUTCOME_WRITERS: usize = 1;

/// Connections PostgreSQL's writers use at most, one each: the size of the
/// writers' own pool.
pub const POSTGRES_WRITER_CONNECTIONS: usize = POSTGRES_PUBLISH_WRITERS + POSTGRES_OUTCOME_WRITERS;

#[async_trait::async_trait]
pub(super) trait Writers: Send + Sync + 'static {
    /// How many publish and outcome writers run at once. Outcome batches
    /// all update the statistics rows of the same configs, so on
    /// PostgreSQL a second writer's batch waits on those row locks for the
    /// first's commit and then re-checks the rows (`EvalPlanQual`: 13 % of
    /// the database's CPU at 1 000 events/s); one writer, whose batches
    /// grow while it commits, did better (fan-out 10 +12 %, the database's
    /// CPU per delivery −10 to −18 %, one endpoint within the noise). On
    /// SQLite the writer thread writes one transaction at a time whatever
    /// this says; two of each keep a batch of each kind waiting at the
    /// thread while it commits the last, so it never idles for a hand-off
    /// (a burst's deliveries at fan-out 10: p50 1.1–1.7 s → 0.5–0.7 s,
    /// throughput unchanged).
    fn concurrency(&self) -> (usize, usize);

    /// Commits the events and their deliveries; one answer per publish.
    async fn publishes(&self, batch: Arc<Vec<NewEvent>>) -> Result<Vec<Published>, Error>;

    /// Commits the attempts and their consequences; one failure run per
    /// outcome.
    async fn outcomes(&self, batch: Arc<Vec<Outcome>>) -> Result<Vec<FailureRun>, Error>;

    /// Readies the writers before the first batch (see
    /// `DeliveryStore::warm_up`); writes nothing.
    async fn warm_up(&self) -> Result<(), Error>;

    /// Where the group commit's writer tasks run: `None` for the caller's
    /// runtime. SQLite's run on its writer thread (see `sqlite_thread`).
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        None
    }
}

/// The writers of `db`'s backend.
pub(super) fn for_backend(db: Db) -> Arc<dyn Writers> {
    match db {
        Db::Postgres(pool) => Arc::new(Postgres {
            kept: KeptConnections::new(pool),
        }),
        Db::Sqlite(pool) => Arc::new(Sqlite {
            thread: SqliteThread::spawn(pool).map_err(Arc::new),
        }),
    }
}

/// PostgreSQL's writers keep their connections between batches (see
/// [`crate::kept`]): returned to their pool after each, every batch was a
/// second exchange with the server.
struct Postgres {
    /// At most one per writer (the writers' pool holds no more).
    kept: KeptConnections,
}

#[async_trait::async_trait]
impl Writers for Postgres {
    fn concurrency(&self) -> (usize, usize) {
        (POSTGRES_PUBLISH_WRITERS, POSTGRES_OUTCOME_WRITERS)
    }

    async fn publishes(&self, batch: Arc<Vec<NewEvent>>) -> Result<Vec<Published>, Error> {
        let mut connection = self.kept.take().await?;
        let written = publish_writer::postgres_on(&mut connection, &batch).await;
        self.kept.put_back(connection, written.is_ok());
        written
    }

    async fn outcomes(&self, batch: Arc<Vec<Outcome>>) -> Result<Vec<FailureRun>, Error> {
        let mut connection = self.kept.take().await?;
        let written = outcome_writer::postgres_on(&mut connection, &batch).await;
        self.kept.put_back(connection, written.is_ok());
        written
    }

    /// Every connection of the writers' pool opened (held together, so
    /// they are distinct) and both statements run empty on each: parsed,
    /// planned and cached there; then kept for the first batches.
    async fn warm_up(&self) -> Result<(), Error> {
        let acquired = (0..POSTGRES_WRITER_CONNECTIONS).map(|_| self.kept.take());
        let mut connections = futures_util::future::try_join_all(acquired).await?;
        for connection in &mut connections {
            publish_writer::postgres_on(connection, &[]).await?;
            outcome_writer::postgres_on(connection, &[]).await?;
        }
        for connection in connections {
            self.kept.put_back(connection, true);
        }
        Ok(())
    }
}

struct Sqlite {
    thread: Result<SqliteThread, Arc<Error>>,
}

impl Sqlite {
    fn thread(&self) -> Result<&SqliteThread, Error> {
        self.thread
            .as_ref()
            .map_err(|error| Error::Shared(error.clone()))
    }
}

#[async_trait::async_trait]
impl Writers for Sqlite {
    fn concurrency(&self) -> (usize, usize) {
        (2, 2)
    }

    async fn publishes(&self, batch: Arc<Vec<NewEvent>>) -> Result<Vec<Published>, Error> {
        self.thread()?
            .run(move |db| publish_writer::sqlite(db, &batch))
            .await
    }

    async fn outcomes(&self, batch: Arc<Vec<Outcome>>) -> Result<Vec<FailureRun>, Error> {
        self.thread()?
            .run(move |db| outcome_writer::sqlite(db, &batch))
            .await
    }

    /// The writer thread has its connection; its statements are
    /// prepared at their first use, in microseconds.
    async fn warm_up(&self) -> Result<(), Error> {
        self.thread()?.opened().await
    }

    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.thread().ok().map(SqliteThread::runtime)
    }
}
