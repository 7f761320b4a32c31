//! SQLite's hot-path writer: one thread that owns one connection and runs
//! the publish and outcome batches on it, statement after statement, with
//! no hand-off between them.
//!
//! Through sqlx every statement is a round trip to the connection's worker
//! thread (a channel send, a futex wake, the answer back): a publish batch
//! was `BEGIN`, two inserts and `COMMIT` — four round trips — and an
//! outcome batch five. At 1 000 events/s, when every thread sleeps between
//! events, each round trip wakes two threads; the profile showed 44 % of
//! webhookd's CPU in those workers and the kernel's task switches, and a
//! one-row publish commit took ~1.6 ms where SQLite itself needs ~0.16.
//! Here a batch is one hand-off in and one answer out.
//!
//! The group commit's writer tasks run here too, on a current-thread
//! runtime the thread drives between its transactions
//! ([`SqliteThread::runtime`]). On the main runtime they were a relay: a
//! publisher's item woke that runtime's thread, which woke this one with
//! the batch, and the commit's answer went back the same way — one more
//! sleeping thread woken per batch each way, and 7.6 % of webhookd's
//! CPU at one endpoint in that thread (webhookd's CPU per delivery −8 %
//! there without it, −6 % at ten endpoints). A transaction blocks the
//! tasks while it runs; what callers queue meanwhile joins the next batch.
//!
//! The connection is one of the pool's, taken out of it for good
//! ([`sqlx::pool::PoolConnection::detach`]) and locked against its sqlx
//! worker ([`sqlx::sqlite::SqliteConnection::lock_handle`]), so it carries
//! exactly the pool's settings (WAL, `synchronous`, busy timeout, no
//! foreign keys) and sees the same database, an in-memory one included.
//! SQLite has one writer at a time anyway; this thread is the hot path's.
//!
//! The thread also checkpoints the WAL (every [`CHECKPOINT_EVERY`], between
//! its transactions). A checkpoint on another connection — the background
//! one of `database::checkpoint_periodically` — copies the frames but
//! cannot make SQLite start the log over: that happens only when a write
//! transaction begins with every frame copied, and under steady load a
//! write always came in between. The log grew without end (450 MB after
//! 10 s at 1 000 events/s), every commit extending the file (a sync of its
//! size as well as its data). Checkpointed here, the next transaction
//! begins on a fully copied log and starts it over.
use crate::Error;
use sqlx::SqlitePool;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Jobs one transaction takes at most (each of them a group-committed
/// batch already).
const MAX_JOBS: usize = 16;

/// How often the thread checkpoints the WAL (see the module's doc): the
/// log holds at most about this long's writes.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// A write the thread runs inside its transaction and answers after the
/// commit.
trait Job: Send {
    /// Writes; false when the write failed (its changes are rolled back).
    fn write(&mut self, db: &rusqlite::Connection) -> bool;
    /// Tells the caller, once the transaction ended.
    fn answer(self: Box<Self>, commit: Result<(), Arc<Error>>);
}

struct Write<T, W> {
    write: Option<W>,
    written: Option<Result<T, Error>>,
    reply: oneshot::Sender<Result<T, Error>>,
}

impl<T, W> Job for Write<T, W>
where
    T: Send,
    W: FnOnce(&rusqlite::Connection) -> Result<T, Error> + Send,
{
    fn write(&mut self, db: &rusqlite::Connection) -> bool {
        let write = self.write.take().expect("a job is written once");
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| write(db)))
            .unwrap_or(Err(Error::Unavailable("a SQLite write panicked")));
        let ok = written.is_ok();
        self.written = Some(written);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), Arc<Error>>) {
        let answer = match (commit, self.written) {
            (_, Some(Err(error))) => Err(error),
            (Err(error), _) => Err(Error::Shared(error)),
            (Ok(()), Some(written)) => written,
            (Ok(()), None) => Err(Error::Unavailable("a SQLite write was not run")),
        };
        let _ = self.reply.send(answer);
    }
}

pub(super) struct SqliteThread {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
    runtime: tokio::runtime::Handle,
    /// `Some` once the thread has its connection (or could not get it).
    opened: tokio::sync::watch::Receiver<Option<Result<(), Arc<Error>>>>,
}

impl SqliteThread {
    /// Starts the thread, which takes a connection out of `pool` for good
    /// (see [`Self::opened`]). Its runtime is there at once: the group
    /// commit's writer tasks are spawned on it ([`Self::runtime`]).
    pub(super) fn spawn(pool: SqlitePool) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|_| Error::Unavailable("cannot start the SQLite writer's runtime"))?;
        let handle = runtime.handle().clone();
        let (jobs, receiver) = mpsc::unbounded_channel::<Box<dyn Job>>();
        let (opened_tx, opened) = tokio::sync::watch::channel(None);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || runtime.block_on(serve(pool, receiver, opened_tx)))
            .map_err(|_| Error::Unavailable("cannot start the SQLite writer thread"))?;
        Ok(Self {
            jobs,
            runtime: handle,
            opened,
        })
    }

    /// [`Self::spawn`], and waits until the thread has its connection.
    #[cfg(test)]
    pub(super) async fn start(pool: &SqlitePool) -> Result<Self, Error> {
        let thread = Self::spawn(pool.clone())?;
        thread.opened().await?;
        Ok(thread)
    }

    /// The thread's own runtime, a current-thread one that runs between
    /// its transactions: the group commit's writer tasks run there, so a
    /// batch goes from its callers to the thread and the answers back
    /// with no runtime between (see the module's doc).
    pub(super) fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.clone()
    }

    /// Waits until the thread has taken its connection: an error if it
    /// could not (the thread tries again at its next job).
    pub(super) async fn opened(&self) -> Result<(), Error> {
        let mut opened = self.opened.clone();
        let outcome = opened
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Unavailable("the SQLite writer thread has stopped"))?
            .clone();
        match outcome {
            Some(Err(error)) => Err(Error::Shared(error)),
            _ => Ok(()),
        }
    }

    /// Runs `write` in a transaction of the thread's connection and
    /// answers what it returned once that transaction is committed.
    /// `write` may share the transaction with other jobs queued meanwhile
    /// (each in a savepoint of its own: one that fails is rolled back
    /// alone), so a publish batch and an outcome batch that meet here
    /// commit — and sync the log — once.
    pub(super) async fn run<T, W>(&self, write: W) -> Result<T, Error>
    where
        T: Send + 'static,
        W: FnOnce(&rusqlite::Connection) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Write {
                write: Some(write),
                written: None,
                reply,
            }))
            .map_err(|_| Error::Unavailable("the SQLite writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the SQLite writer thread has stopped"))?
    }
}

/// The thread's work: take the connection, then run the jobs, until every
/// sender is gone. A connection that could not be taken fails the jobs
/// waiting, and the next job tries again.
async fn serve(
    pool: SqlitePool,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>,
    opened: tokio::sync::watch::Sender<Option<Result<(), Arc<Error>>>>,
) {
    let mut first = None;
    loop {
        let (error, failed) = match open_and_write(&pool, &mut jobs, &opened, first.take()).await {
            Ok(()) => return,
            Err(refused) => refused,
        };
        tracing::warn!(%error, "the SQLite writer cannot take its connection");
        let error = Arc::new(error);
        opened.send_replace(Some(Err(error.clone())));
        if let Some(job) = failed {
            job.answer(Err(error.clone()));
        }
        while let Ok(job) = jobs.try_recv() {
            job.answer(Err(error.clone()));
        }
        match jobs.recv().await {
            Some(job) => first = Some(job),
            None => return,
        }
    }
}

/// Takes a connection out of `pool` and writes `first` and the jobs
/// after it until every sender is gone; the error and `first` back if the
/// connection could not be taken.
async fn open_and_write(
    pool: &SqlitePool,
    jobs: &mut mpsc::UnboundedReceiver<Box<dyn Job>>,
    opened: &tokio::sync::watch::Sender<Option<Result<(), Arc<Error>>>>,
    first: Option<Box<dyn Job>>,
) -> Result<(), (Error, Option<Box<dyn Job>>)> {
    let mut connection = match pool.acquire().await {
        Ok(connection) => connection.detach(),
        Err(error) => return Err((error.into(), first)),
    };
    let mut locked = match connection.lock_handle().await {
        Ok(locked) => locked,
        Err(error) => return Err((error.into(), first)),
    };
    // SAFETY: `locked` keeps sqlx's worker off this handle (it makes no FFI
    // call on it or its statements while the lock is held), and it is held
    // until after `db` is dropped below; `from_handle` does not close the
    // handle, so sqlx still owns and closes it.
    let db = unsafe { rusqlite::Connection::from_handle(locked.as_raw_handle().as_ptr()) };
    let mut db = match db {
        Ok(db) => db,
        Err(error) => return Err((error.into(), first)),
    };
    // The writers' statements and the transaction's own (see `write_all`)
    // stay prepared: rusqlite keeps 16 by default, and a full cache evicts.
    db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    opened.send_replace(Some(Ok(())));
    write_jobs(&mut db, jobs, first).await;
    drop(db);
    drop(locked);
    Ok(())
}

async fn write_jobs(
    db: &mut rusqlite::Connection,
    jobs: &mut mpsc::UnboundedReceiver<Box<dyn Job>>,
    mut first: Option<Box<dyn Job>>,
) {
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        let first = match first.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_JOBS {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let commit = write_all(db, &mut batch).map_err(Arc::new);
        for job in batch {
            job.answer(commit.clone());
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            // Passive: waits for no reader; a reader still on old frames
            // only leaves them for the next one.
            if let Err(error) = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "cannot checkpoint the SQLite WAL");
            }
            last_checkpoint = std::time::Instant::now();
        }
        // The writer tasks just answered run now (on this thread), before
        // the next transaction: their callers hear at once, and their
        // next batches join it.
        tokio::task::yield_now().await;
    }
}

/// Statements the writer thread keeps prepared: the publish and outcome
/// writers' (seven) and the transaction's own (six), with room.
const STATEMENT_CACHE: usize = 32;

/// One transaction for `batch`: a lone job's failure rolls it all back, a
/// job among others is written in a savepoint, so its failure rolls back
/// its own changes only.
///
/// The transaction's own statements (`BEGIN IMMEDIATE`, `COMMIT`, the
/// savepoints) are prepared once and kept in the connection's statement
/// cache: rusqlite's `Transaction` parsed them again for every transaction
/// (~1 900 instructions a parse) — at 100 events/s, where a transaction
/// carries one publish or a few outcomes, 6 600 instructions a delivery,
/// 1.7 % of webhookd's (`webhookd-bench latency --instructions`).
fn write_all(db: &mut rusqlite::Connection, batch: &mut [Box<dyn Job>]) -> Result<(), Error> {
    run(db, "BEGIN IMMEDIATE")?;
    let written = match write_in_transaction(db, batch) {
        Ok(true) => run(db, "COMMIT"),
        // A lone job failed: it answers its own error.
        Ok(false) => run(db, "ROLLBACK"),
        Err(error) => Err(error),
    };
    if written.is_err() && !db.is_autocommit() {
        // Whatever failed, nothing of this transaction stays.
        let _ = run(db, "ROLLBACK");
    }
    written
}

/// The jobs of [`write_all`]'s transaction: whether to commit it.
fn write_in_transaction(
    db: &rusqlite::Connection,
    batch: &mut [Box<dyn Job>],
) -> Result<bool, Error> {
    if let [job] = batch {
        return Ok(job.write(db));
    }
    for job in batch.iter_mut() {
        run(db, "SAVEPOINT job")?;
        if job.write(db) {
            run(db, "RELEASE job")?;
        } else {
            run(db, "ROLLBACK TO job")?;
            run(db, "RELEASE job")?;
        }
    }
    Ok(true)
}

/// Runs one of the transaction's own statements from the cache.
fn run(db: &rusqlite::Connection, sql: &str) -> Result<(), Error> {
    db.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs queued while the thread is busy share its next transaction:
    /// the one that fails is rolled back alone, the others commit, and a
    /// job that panics fails its own caller without stopping the thread.
    #[tokio::test]
    async fn jobs_that_meet_share_a_transaction_and_fail_alone() {
        let (_pool, thread) = with_a_table().await;
        // Keeps the thread busy until the jobs below are queued (`run`
        // queues its job when first polled).
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let mut busy = std::pin::pin!(thread.run(move |_| Ok(wait.recv().is_ok())));
        assert!(futures_util::poll!(&mut busy).is_pending());
        let insert = |x: &'static str, then: fn() -> Result<(), Error>| {
            thread.run(move |db| {
                db.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                then()
            })
        };
        let mut kept = std::pin::pin!(insert("kept", || Ok(())));
        let mut failed = std::pin::pin!(insert("failed", || Err(Error::Corrupt("fails".into()))));
        let mut panicked = std::pin::pin!(insert("panicked", || panic!("this job panics")));
        let mut also_kept = std::pin::pin!(insert("also kept", || Ok(())));
        assert!(futures_util::poll!(&mut kept).is_pending());
        assert!(futures_util::poll!(&mut failed).is_pending());
        assert!(futures_util::poll!(&mut panicked).is_pending());
        assert!(futures_util::poll!(&mut also_kept).is_pending());
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        kept.await.unwrap();
        also_kept.await.unwrap();
        assert!(matches!(failed.await, Err(Error::Corrupt(_))));
        assert!(matches!(panicked.await, Err(Error::Unavailable(_))));
        let rows = rows_of(&thread).await;
        assert_eq!(rows, ["also kept", "kept"]);
    }

    /// A thread on an in-memory database holding the test table `t` (the
    /// pool keeps the database).
    async fn with_a_table() -> (SqlitePool, SqliteThread) {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let thread = SqliteThread::start(&pool).await.unwrap();
        thread
            .run(|db| Ok(db.execute_batch("CREATE TABLE t (x TEXT NOT NULL)")?))
            .await
            .unwrap();
        (pool, thread)
    }

    /// The test table's rows, in order.
    async fn rows_of(thread: &SqliteThread) -> Vec<String> {
        thread
            .run(|db| {
                let mut rows = db.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = rows
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap()
    }

    /// A lone job that fails leaves nothing behind and no transaction open:
    /// the next job's write commits (its statements, the transaction's own
    /// included, come from the connection's cache both times).
    #[tokio::test]
    async fn a_lone_job_that_fails_is_rolled_back_and_the_next_commits() {
        let (_pool, thread) = with_a_table().await;
        let failed = thread
            .run(|db| {
                db.execute("INSERT INTO t (x) VALUES ('failed')", [])?;
                Err::<(), _>(Error::Corrupt("fails".into()))
            })
            .await;
        assert!(matches!(failed, Err(Error::Corrupt(_))));
        for x in ["first", "second"] {
            thread
                .run(move |db| Ok(db.execute("INSERT INTO t (x) VALUES (?1)", [x])?))
                .await
                .unwrap();
        }
        let rows = rows_of(&thread).await;
        assert_eq!(rows, ["first", "second"]);
    }

    /// A connection the thread cannot take (here: its pool is closed)
    /// fails whoever waits for it and every job, each try — none of them
    /// is left waiting.
    #[tokio::test]
    async fn a_connection_it_cannot_take_fails_the_jobs_instead_of_holding_them() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        pool.close().await;
        let thread = SqliteThread::spawn(pool).unwrap();
        let within = std::time::Duration::from_secs(10);
        let opened = tokio::time::timeout(within, thread.opened()).await;
        assert!(matches!(opened, Ok(Err(_))), "{opened:?}");
        for _ in 0..3 {
            let ran = tokio::time::timeout(within, thread.run(|_| Ok(()))).await;
            assert!(matches!(ran, Ok(Err(_))), "{ran:?}");
        }
    }

    /// Under steady writes the log starts over again and again instead of
    /// growing: SQLite's automatic checkpoint is off (as in webhookd), so
    /// without the thread's own checkpoints every transaction would append
    /// to it for as long as the writes go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_under_steady_writes() {
        let dir = std::env::temp_dir().join(format!(
            "webhookd-wal-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .pragma("wal_autocheckpoint", "0");
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap();
        let thread = SqliteThread::start(&pool).await.unwrap();
        thread
            .run(|db| Ok(db.execute_batch("CREATE TABLE t (x BLOB NOT NULL)")?))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut transactions = 0_u64;
        while started.elapsed() < CHECKPOINT_EVERY * 30 {
            thread
                .run(|db| Ok(db.execute("INSERT INTO t (x) VALUES (zeroblob(3000))", [])?))
                .await
                .unwrap();
            transactions += 1;
        }
        let log = std::fs::metadata(dir.join("w.db-wal")).unwrap().len();
        // Every transaction appends three 4 KiB pages (a new leaf, for a
        // 3 000-byte row fills one; its parent; page 1, whose database
        // size changed: 3.04 frames each, measured with autocheckpoint
        // off): without restarts the log would be at least this. With them
        // it holds what a few checkpoint intervals wrote (on a slow VM a
        // restart is missed now and then: 11.6 MB after 5 567
        // transactions in 2 s, 17 % of what was appended).
        let appended = transactions * 3 * 4096;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            log * 3 < appended,
            "the log is {log} bytes after {transactions} transactions ({appended} bytes appended)"
        );
    }
}
