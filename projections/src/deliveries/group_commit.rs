//! Group commit: many callers, one transaction.
//!
//! The profile of the publish and delivery paths showed the time going to
//! per-event transactions (SQLite: a WAL append and two thread hand-offs
//! per statement; PostgreSQL: a round trip per statement and a commit per
//! event), not to HTTP or signing. A [`GroupCommit`] queues what callers
//! submit; a few writer tasks each take everything queued (up to
//! `max_batch`), write it in one transaction, and answer every caller. Under
//! light load a batch is one item and nothing waits; under heavy load the
//! queue fills while a transaction commits, so batches grow exactly when
//! they pay (and a writer does not snatch a lone item while another is
//! writing: see [`next_batch`]). A caller's answer still comes after its
//! data is committed.
use super::home::Home;
use crate::Error;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
// Tokio's clock (std's outside tests): the windows below are timed by it,
// and a test can move it by hand.
use tokio::time::Instant;

type Reply<O> = oneshot::Sender<Result<O, Error>>;

/// An item in the queue: what to write, whom to answer (and through which
/// relay, see [`super::home`]), since when, and whether its batch may
/// linger (see [`next_batch`]).
struct Queued<I, O> {
    item: I,
    reply: Reply<O>,
    home: Option<Home>,
    since: Instant,
    may_linger: bool,
}

/// Writes of one batch that lost to a concurrent transaction, before its
/// callers are told.
const MAX_WRITES: usize = 5;

/// How long an item waited for its commit: in the queue, until a writer
/// took it into a batch, and then while the batch was written.
#[derive(Debug, Clone, Copy)]
pub struct Waited {
    pub queued: Duration,
    pub writing: Duration,
}

/// Told, per committed item, how long it waited (the writer's name, the
/// wait): telemetry lives above the storage layer.
pub type WaitObserver = fn(&'static str, Waited);

pub struct GroupCommit<I, O> {
    queue: mpsc::UnboundedSender<Queued<I, O>>,
    /// Told when an item that may not linger is queued (see [`next_batch`]).
    at_once: Arc<Notify>,
    name: &'static str,
    waited: WaitObserver,
}

impl<I, O> Clone for GroupCommit<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            at_once: self.at_once.clone(),
            name: self.name,
            waited: self.waited,
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts `writers` tasks on `runtime` that call `write` with batches
    /// of at most `max_batch` items. `write` answers one output per item,
    /// in order, or fails the whole batch (nothing of it was committed);
    /// see [`write_isolated`] for what happens then. A batch is taken no
    /// sooner than `linger` after its first item was queued (see
    /// [`next_batch`]); zero takes it at once.
    #[allow(clippy::too_many_arguments)]
    pub fn start_on<W, F>(
        runtime: &tokio::runtime::Handle,
        name: &'static str,
        writers: usize,
        max_batch: usize,
        linger: Duration,
        waited: WaitObserver,
        write: W,
    ) -> Self
    where
        W: Fn(Arc<Vec<I>>) -> F + Send + Sync + 'static,
        I: Sync,
        F: Future<Output = Result<Vec<O>, Error>> + Send + 'static,
    {
        let (queue, receiver) = mpsc::unbounded_channel::<Queued<I, O>>();
        let receiver = Arc::new(Mutex::new(receiver));
        let write = Arc::new(write);
        let writing = Arc::new(Writing::default());
        let at_once = Arc::new(Notify::new());
        for _ in 0..writers.max(1) {
            let (receiver, write, writing) = (receiver.clone(), write.clone(), writing.clone());
            let urgent = at_once.clone();
            runtime.spawn(async move {
                while let Some(batch) =
                    next_batch(&receiver, max_batch, linger, &writing, &urgent).await
                {
                    let _writing = writing.begin();
                    let taken = Instant::now();
                    // A caller that gave up waiting (see `submit_within`)
                    // was told its item was not stored: keep it that way.
                    let mut items = Vec::with_capacity(batch.len());
                    let mut replies = Vec::with_capacity(batch.len());
                    for queued in batch {
                        if !queued.reply.is_closed() {
                            items.push(queued.item);
                            replies.push((
                                queued.reply,
                                queued.home,
                                taken.saturating_duration_since(queued.since),
                            ));
                        }
                    }
                    if items.is_empty() {
                        continue;
                    }
                    metrics::histogram!("webhookd_group_commit_batch_size", "writer" => name)
                        .record(items.len() as f64);
                    let results = write_isolated(name, &*write, items).await;
                    let writing = taken.elapsed();
                    let mut homes = Homes::default();
                    for ((reply, home, queued), result) in replies.into_iter().zip(results) {
                        waited(name, Waited { queued, writing });
                        homes.answer(home, reply, result);
                    }
                    homes.send();
                }
            });
        }
        Self {
            queue,
            at_once,
            name,
            waited,
        }
    }

    /// Like [`Self::submit`], but gives up after `deadline` (the database
    /// is away, and batches queue behind one that waits for a connection):
    /// `Unavailable`. An item whose caller gave up before its batch was
    /// taken is not written; one whose batch was being written may still
    /// commit (a publish retried with its idempotency key finds it).
    pub async fn submit_within(&self, item: I, deadline: Duration) -> Result<O, Error> {
        tokio::time::timeout(deadline, self.submit(item))
            .await
            .unwrap_or(Err(Error::Unavailable(
                "the database did not answer in time",
            )))
    }

    /// Queues `item` and waits until the batch holding it is committed.
    pub async fn submit(&self, item: I) -> Result<O, Error> {
        self.queue_and_wait(item, true).await
    }

    /// Like [`Self::submit`], but the batch holding `item` does not linger
    /// (someone waits for this one before anything else can happen).
    pub async fn submit_at_once(&self, item: I) -> Result<O, Error> {
        self.queue_and_wait(item, false).await
    }

    async fn queue_and_wait(&self, item: I, may_linger: bool) -> Result<O, Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                item,
                reply,
                home: Home::here(),
                since: Instant::now(),
                may_linger,
            })
            .map_err(|_| Error::Unavailable("the group commit writer has stopped"))?;
        if !may_linger {
            self.at_once.notify_waiters();
        }
        answer
            .await
            .map_err(|_| Error::Unavailable("the group commit writer has stopped"))?
    }
}

/// A batch's answers by the callers' threads: each relay gets its own in
/// one message; a caller without one is answered at once.
struct Homes<O> {
    groups: Vec<(Home, Vec<Answer<O>>)>,
}

type Answer<O> = (Reply<O>, Result<O, Error>);

impl<O> Default for Homes<O> {
    fn default() -> Self {
        Self { groups: Vec::new() }
    }
}

impl<O: Send + 'static> Homes<O> {
    fn answer(&mut self, home: Option<Home>, reply: Reply<O>, result: Result<O, Error>) {
        let Some(home) = home else {
            let _ = reply.send(result);
            return;
        };
        // A handful of threads: a scan beats a map.
        match self.groups.iter_mut().find(|(h, _)| h.is(&home)) {
            Some((_, answers)) => answers.push((reply, result)),
            None => self.groups.push((home, vec![(reply, result)])),
        }
    }

    fn send(self) {
        for (home, answers) in self.groups {
            home.send(Box::new(move || {
                #[cfg(test)]
                tests::RELAYED.with(|relayed| relayed.set(relayed.get() + answers.len()));
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
            }));
        }
    }
}

/// Writes `items` as one batch and answers each item. A batch that lost a
/// conflict with a concurrent transaction is written again. A batch that
/// failed because of one item's data (see [`Error::is_bad_input`]: say a
/// NUL byte PostgreSQL cannot store) is split in halves, each written on
/// its own, until the bad items stand alone: they fail, the rest commit,
/// and no caller sees another caller's error. A database that is down is
/// not split for: every half would fail the same way.
fn write_isolated<'a, I, O, W, F>(
    name: &'static str,
    write: &'a W,
    items: Vec<I>,
) -> BoxFuture<'a, Vec<Result<O, Error>>>
where
    I: Send + Sync + 'static,
    O: Send + 'static,
    W: Fn(Arc<Vec<I>>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Vec<O>, Error>> + Send + 'static,
{
    Box::pin(async move {
        let size = items.len();
        let items = Arc::new(items);
        let mut result = guarded(write(items.clone())).await;
        for _ in 1..MAX_WRITES {
            match &result {
                Err(error) if error.is_transient() => {
                    tracing::debug!(batch = name, size, %error, "writing a batch again");
                    result = guarded(write(items.clone())).await;
                }
                _ => break,
            }
        }
        match result {
            Ok(outputs) => {
                debug_assert_eq!(outputs.len(), size);
                outputs.into_iter().map(Ok).collect()
            }
            Err(error) if error.is_bad_input() && size > 1 => {
                // The write's future is done, so this is the only handle.
                match Arc::try_unwrap(items) {
                    Ok(mut first) => {
                        tracing::debug!(batch = name, size, %error, "isolating a bad row");
                        let second = first.split_off(size / 2);
                        let mut results = write_isolated(name, write, first).await;
                        results.extend(write_isolated(name, write, second).await);
                        results
                    }
                    Err(_) => fail_all(name, size, error),
                }
            }
            Err(error) if error.is_bad_input() => {
                tracing::warn!(batch = name, %error, "a row was refused by the database");
                vec![Err(error)]
            }
            Err(error) => fail_all(name, size, error),
        }
    })
}

fn fail_all<O>(name: &'static str, size: usize, error: Error) -> Vec<Result<O, Error>> {
    tracing::error!(batch = name, size, %error, "a group commit failed");
    let shared = Arc::new(error);
    (0..size)
        .map(|_| Err(Error::Shared(shared.clone())))
        .collect()
}

/// A panic while writing fails that batch only: the writer lives on, or
/// every later caller would find it gone.
async fn guarded<O>(write: impl Future<Output = Result<O, Error>>) -> Result<O, Error> {
    AssertUnwindSafe(write)
        .catch_unwind()
        .await
        .unwrap_or(Err(Error::Unavailable("a group commit write panicked")))
}

/// How many of a group commit's writers are writing a batch now, and a
/// signal each time one of them is done.
#[derive(Default)]
struct Writing {
    count: AtomicUsize,
    done: Notify,
}

impl Writing {
    fn begin(&self) -> WritingGuard<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        WritingGuard(self)
    }
}

/// One batch being written; dropped once its callers are answered.
struct WritingGuard<'a>(&'a Writing);

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.done.notify_waiters();
    }
}

/// How long a batch may wait for another writer's to be written (see
/// [`next_batch`]): about one commit of a loaded database on these
/// machines; a longer commit (a stall) lets the next batch start beside it.
const BEHIND_A_WRITER: Duration = Duration::from_millis(2);

/// Waits for one item, then takes whatever else is queued, up to `max`.
///
/// Two kinds of waiting make a batch bigger, both ended by an item that
/// may not linger (someone waits for it before anything else can happen):
///
/// * With a `linger`, what arrives until `linger` after the first item was
///   queued joins it: at low load one transaction then carries several
///   items instead of one each. Under load the first item has waited that
///   long already (it queued while the last batch was written), so nothing
///   waits more: the window shrinks as the load grows. The writer sleeps
///   through the window and reads what queued when it ends, so the items
///   that join do not wake it one by one (each had cost a wake-up of the
///   writer's thread: at low load, one per attempt recorded); only an item
///   that may not linger ends the window early (`at_once`).
/// * While another writer is writing, the batch waits until one is done
///   (at most [`BEHIND_A_WRITER`] after its first item was queued) and
///   takes what queued meanwhile. An idle writer used to take whatever was
///   there at once, one item as often as not: under load 30–40 % of the
///   publish batches were single events, each a transaction and a commit
///   of its own (PostgreSQL, one endpoint: the database's CPU per delivery
///   −15 to −20 % with the wait). At low load no other writer is busy and
///   nothing waits.
///
/// `None` once every sender is gone.
async fn next_batch<I, O>(
    receiver: &Mutex<mpsc::UnboundedReceiver<Queued<I, O>>>,
    max: usize,
    linger: Duration,
    writing: &Writing,
    at_once: &Notify,
) -> Option<Vec<Queued<I, O>>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let until = first.since + linger;
    let behind_until = first.since + BEHIND_A_WRITER;
    let mut lingers = first.may_linger;
    let mut batch = vec![first];
    loop {
        // Made before the queue is read: an item that may not linger, queued
        // after the read, still ends the window below (a `Notified` sees
        // every `notify_waiters` from its creation on; nothing to register,
        // no lock taken).
        let urgent = at_once.notified();
        tokio::pin!(urgent);
        while batch.len() < max {
            match receiver.try_recv() {
                Ok(queued) => {
                    lingers &= queued.may_linger;
                    batch.push(queued);
                }
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if !lingers || batch.len() >= max {
            return Some(batch);
        }
        if now < until {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut urgent => {}
            }
            continue;
        }
        if now >= behind_until {
            return Some(batch);
        }
        // Registered before the count is read, so a writer finishing in
        // between is not missed.
        let done = writing.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if writing.count.load(Ordering::Acquire) == 0 {
            return Some(batch);
        }
        let _ = tokio::time::timeout_at(behind_until, done).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::PgPool;

    thread_local! {
        /// Answers a relay completed on this thread.
        pub(super) static RELAYED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A group commit of `writers` writers (batches of up to 256) on the
    /// test's runtime.
    fn started<I, O, W, F>(writers: usize, linger: Duration, write: W) -> GroupCommit<I, O>
    where
        I: Send + Sync + 'static,
        O: Send + 'static,
        W: Fn(Arc<Vec<I>>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<O>, Error>> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::current();
        GroupCommit::start_on(&runtime, "test", writers, 256, linger, |_, _| {}, write)
    }

    /// Every batch written, in order.
    type Batches = Arc<std::sync::Mutex<Vec<Vec<u32>>>>;

    /// Starts a group commit of two writers whose writes wait for
    /// `release`, recording each batch.
    fn held_writers(
        release: &tokio::sync::watch::Sender<bool>,
    ) -> (GroupCommit<u32, u32>, Batches) {
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (seen, released) = (batches.clone(), release.subscribe());
        let commit = started(2, Duration::ZERO, move |batch: Arc<Vec<u32>>| {
            seen.lock().unwrap().push(batch.to_vec());
            let (answers, mut released) = (batch.to_vec(), released.clone());
            async move {
                let _ = released.wait_for(|released| *released).await;
                Ok(answers)
            }
        });
        (commit, batches)
    }

    /// One writer with `linger` that records each batch and answers at once.
    fn one_recording_writer(linger: Duration) -> (GroupCommit<u32, u32>, Batches) {
        let batches = Batches::default();
        let seen = batches.clone();
        let commit = started(1, linger, move |batch: Arc<Vec<u32>>| {
            seen.lock().unwrap().push(batch.to_vec());
            let answers = batch.to_vec();
            async move { Ok(answers) }
        });
        (commit, batches)
    }

    /// Lets every task on this one-thread runtime run until it waits.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// While one writer writes, the other does not take a lone item: it
    /// waits for the first to be done and takes what queued meanwhile.
    /// (The clock is paused: the wait's time limit cannot end it here.)
    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_behind_a_writer_that_is_writing() {
        let (release, _) = tokio::sync::watch::channel(false);
        let (commit, batches) = held_writers(&release);
        let submit = |item| {
            let commit = commit.clone();
            tokio::spawn(async move { commit.submit(item).await })
        };
        let one = submit(1);
        settle().await;
        let two = submit(2);
        settle().await;
        let three = submit(3);
        settle().await;
        release.send_replace(true);
        for (answer, item) in [(one, 1), (two, 2), (three, 3)] {
            assert_eq!(answer.await.unwrap().expect("committed"), item);
        }
        assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 3]]);
    }

    /// An item that may not linger does not wait behind a writer either.
    #[tokio::test(start_paused = true)]
    async fn an_item_that_may_not_linger_does_not_wait_behind_a_writer() {
        let (release, _) = tokio::sync::watch::channel(false);
        let (commit, batches) = held_writers(&release);
        let one = tokio::spawn({
            let commit = commit.clone();
            async move { commit.submit(1).await }
        });
        settle().await;
        let two = tokio::spawn({
            let commit = commit.clone();
            async move { commit.submit_at_once(2).await }
        });
        settle().await;
        assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2]]);
        release.send_replace(true);
        assert_eq!(one.await.unwrap().expect("committed"), 1);
        assert_eq!(two.await.unwrap().expect("committed"), 2);
    }

    /// An item that may linger waits for company (its batch is taken with
    /// the next item, not alone); one that may not ends the wait at once.
    #[tokio::test]
    async fn a_batch_lingers_until_an_item_that_may_not_arrives() {
        let (commit, batches) = one_recording_writer(Duration::from_secs(30));
        let started = Instant::now();
        let lingering = commit.submit(1);
        tokio::pin!(lingering);
        // Polled once, it queues its item and waits for the answer; the
        // writer (on this one-thread runtime) takes it while we yield, so
        // the second item comes while the first lingers.
        assert!(futures_util::poll!(&mut lingering).is_pending());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let (first, at_once) = tokio::join!(lingering, commit.submit_at_once(2));
        let (first, at_once) = (first.expect("committed"), at_once.expect("committed"));
        assert_eq!((first, at_once), (1, 2));
        assert_eq!(*batches.lock().unwrap(), vec![vec![1, 2]], "one batch");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second item ended the linger: {:?}",
            started.elapsed()
        );
    }

    /// What queues while a batch lingers joins it when the window ends
    /// (the writer sleeps through the window and reads the queue then); an
    /// item queued after the window is the next batch's. (The clock is
    /// paused: only `advance` moves it.)
    #[tokio::test(start_paused = true)]
    async fn what_queues_during_the_window_is_taken_when_it_ends() {
        let (commit, batches) = one_recording_writer(Duration::from_millis(10));
        let submit = |item| {
            let commit = commit.clone();
            tokio::spawn(async move { commit.submit(item).await })
        };
        let first = [submit(1)];
        settle().await;
        tokio::time::advance(Duration::from_millis(4)).await;
        let joining = [submit(2), submit(3)];
        settle().await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "taken before the window ended"
        );
        tokio::time::advance(Duration::from_millis(7)).await;
        settle().await;
        let late = [submit(4)];
        for answer in first.into_iter().chain(joining).chain(late) {
            answer.await.unwrap().expect("committed");
        }
        assert_eq!(*batches.lock().unwrap(), vec![vec![1, 2, 3], vec![4]]);
    }

    /// A real PostgreSQL refuses a NUL byte in text (SQLSTATE 22021) and
    /// fails the whole statement, as it did for a publish batch holding a
    /// hostile idempotency key: only the items holding one fail.
    #[tokio::test]
    async fn a_row_the_database_refuses_fails_only_its_own_caller() {
        let url = std::env::var("WEBHOOKD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let pool = PgPool::connect(&url)
            .await
            .expect("PostgreSQL is reachable");
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = writes.clone();
        let commit = started(1, Duration::ZERO, move |batch: Arc<Vec<String>>| {
            let (pool, counter) = (pool.clone(), counter.clone());
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // One statement for the batch, as the real writers do.
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT x FROM UNNEST($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
                )
                .bind(&*batch)
                .fetch_all(&pool)
                .await?;
                Ok(rows)
            }
        });
        let items: Vec<String> = (0..200)
            .map(|i| {
                if i % 50 == 7 {
                    format!("bad\0{i}")
                } else {
                    format!("good {i}")
                }
            })
            .collect();
        let answers =
            futures_util::future::join_all(items.iter().map(|item| commit.submit(item.clone())))
                .await;
        for (item, answer) in items.iter().zip(answers) {
            match answer {
                Ok(written) => assert_eq!(&written, item),
                Err(error) => {
                    assert!(item.starts_with("bad"), "{item}: {error}");
                    assert!(error.is_bad_input(), "{error}");
                }
            }
        }
        let failed = items.iter().filter(|i| i.starts_with("bad")).count();
        assert_eq!(failed, 4);
        // Halving found them without writing every item alone.
        assert!(writes.load(std::sync::atomic::Ordering::Relaxed) < 100);
    }

    /// Callers on three threads — two on current-thread runtimes (relayed)
    /// and one on a multi-thread runtime (answered directly) — each get
    /// their own answer, however the batches mix them; the relayed ones are
    /// answered on their own thread.
    #[test]
    fn answers_reach_each_caller_through_its_thread_relay() {
        let writer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let commit: GroupCommit<u32, (u32, std::thread::ThreadId)> = GroupCommit::start_on(
            writer.handle(),
            "test",
            2,
            256,
            Duration::from_millis(2),
            |_, _| {},
            |batch: Arc<Vec<u32>>| {
                let written = std::thread::current().id();
                let answers = batch.iter().map(|&i| (i * 10, written)).collect();
                async move { Ok(answers) }
            },
        );
        let callers: Vec<_> = (0..3u32)
            .map(|thread| {
                let commit = commit.clone();
                std::thread::spawn(move || {
                    let relayed = thread > 0;
                    let runtime = if relayed {
                        tokio::runtime::Builder::new_current_thread()
                    } else {
                        let mut direct = tokio::runtime::Builder::new_multi_thread();
                        direct.worker_threads(1);
                        direct
                    }
                    .enable_all()
                    .build()
                    .unwrap();
                    runtime.block_on(async move {
                        let here = std::thread::current().id();
                        let items: Vec<u32> = (0..100).map(|i| thread * 1000 + i).collect();
                        let answers = futures_util::future::join_all(items.iter().map(|&i| {
                            let commit = commit.clone();
                            // Each on a task of its own, as publishes and
                            // attempts are: the relay wakes them here.
                            tokio::spawn(async move {
                                let answer = commit.submit(i).await;
                                (answer, std::thread::current().id())
                            })
                        }))
                        .await;
                        for (i, joined) in items.iter().zip(answers) {
                            let (answer, woken_on) = joined.unwrap();
                            let (value, written_on) = answer.unwrap();
                            assert_eq!(value, i * 10, "caller {i} got another's answer");
                            assert_ne!(written_on, woken_on, "written on the writer's thread");
                            if relayed {
                                assert_eq!(woken_on, here, "answered on the caller's thread");
                            }
                        }
                        // Every answer of a current-thread caller came
                        // through its relay, on its thread.
                        let expected = if relayed { 100 } else { 0 };
                        assert_eq!(RELAYED.with(|r| r.get()), expected);
                    })
                })
            })
            .collect();
        for caller in callers {
            caller.join().expect("every caller got its own answer");
        }
    }
}
