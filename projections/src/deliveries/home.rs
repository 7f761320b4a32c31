//! A writer's answers carried home: one wake-up per thread, not per caller.
//!
//! A caller of a [`super::group_commit::GroupCommit`] waits on a oneshot
//! that the writer's task, on another thread, completes. When the caller's
//! runtime is a current-thread one (every actix arbiter and HTTP worker
//! is), each such cross-thread wake is a write to that runtime's eventfd:
//! `strace` of a PostgreSQL run to one endpoint counted two per delivery on
//! the writers' thread, one for each publish answered and one for each
//! attempt recorded — as many syscalls as the delivery's own HTTP. Answers
//! batch well, wake-ups did not.
//!
//! A thread that opts in ([`answer_here`]) gets a relay: a task on its own
//! runtime that runs what it is sent. A writer groups a batch's answers by
//! the callers' relays and sends each relay its group (one wake-up); the
//! relay completes the oneshots there, and a wake on the task's own thread
//! is a push onto its run queue, no syscall. Callers on other threads are
//! answered directly, as before.
//!
//! A relay belongs to the runtime it was started on, and is used only by
//! callers inside that runtime (a thread that drives two runtimes by turns
//! would otherwise wait on a relay that is not being run). Opt-in rather
//! than automatic: the threads that opt in are the hot path's, each running
//! one runtime for its whole life.
use std::cell::RefCell;
use tokio::runtime::{Handle, Id, RuntimeFlavor};
use tokio::sync::mpsc;

/// Answers for the callers of one thread.
type Answers = Box<dyn FnOnce() + Send>;

/// The relay of a thread that opted in.
#[derive(Clone)]
pub(super) struct Home(mpsc::UnboundedSender<Answers>);

thread_local! {
    /// This thread's relay and the runtime it runs on.
    static HOME: RefCell<Option<(Id, Home)>> = const { RefCell::new(None) };
}

/// Group-commit answers to callers on this thread come through one relay
/// task on this thread's runtime (see the module's docs). Call it from a
/// thread that runs one current-thread runtime for its whole life, inside
/// that runtime; idempotent and cheap, so a hot path may call it each time.
/// Elsewhere (no runtime, a multi-thread one) it does nothing.
pub fn answer_here() {
    let Ok(runtime) = Handle::try_current() else {
        return;
    };
    if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return;
    }
    HOME.with(|home| {
        let mut home = home.borrow_mut();
        if Home::usable(home.as_ref(), runtime.id()).is_some() {
            return;
        }
        let (sender, mut relay) = mpsc::unbounded_channel::<Answers>();
        runtime.spawn(async move {
            while let Some(answers) = relay.recv().await {
                answers();
            }
        });
        *home = Some((runtime.id(), Home(sender)));
    });
}

impl Home {
    /// This thread's relay, if it opted in, the caller runs on the relay's
    /// runtime, and that runtime still runs.
    pub(super) fn of_this_thread() -> Option<Home> {
        let runtime = Handle::try_current().ok()?.id();
        HOME.with(|home| Home::usable(home.borrow().as_ref(), runtime).cloned())
    }

    fn usable(relay: Option<&(Id, Home)>, runtime: Id) -> Option<&Home> {
        relay
            .filter(|(on, home)| *on == runtime && !home.0.is_closed())
            .map(|(_, home)| home)
    }

    pub(super) fn is(&self, other: &Home) -> bool {
        self.0.same_channel(&other.0)
    }

    /// Runs `answers` on this relay's thread; on the caller's if the relay
    /// is gone (its runtime shut down: its callers went with it).
    pub(super) fn send(&self, answers: Answers) {
        if let Err(mpsc::error::SendError(answers)) = self.0.send(answers) {
            answers();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_without_a_current_thread_runtime_has_no_relay() {
        answer_here();
        assert!(Home::of_this_thread().is_none(), "no runtime");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            answer_here();
            assert!(Home::of_this_thread().is_none(), "a multi-thread runtime");
        });
    }

    /// A thread that drives two runtimes by turns: inside the second, the
    /// first's relay (alive, but not being run) is not used.
    #[test]
    fn a_relay_serves_only_its_own_runtime() {
        let first = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let second = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let relay = first.block_on(async {
            answer_here();
            Home::of_this_thread().expect("the first runtime's relay")
        });
        second.block_on(async {
            assert!(Home::of_this_thread().is_none(), "not the second's");
            answer_here();
            let own = Home::of_this_thread().expect("the second's own relay");
            assert!(!own.is(&relay));
        });
    }

    #[test]
    fn answers_run_on_the_relay_thread_and_a_dead_relay_is_replaced() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let home = runtime.block_on(async {
            answer_here();
            let home = Home::of_this_thread().expect("a relay");
            answer_here();
            assert!(home.is(&Home::of_this_thread().unwrap()), "one per thread");
            let here = std::thread::current().id();
            let (sent, ran_on) = tokio::sync::oneshot::channel();
            let sender = home.clone();
            std::thread::spawn(move || {
                sender.send(Box::new(move || {
                    let _ = sent.send(std::thread::current().id());
                }))
            })
            .join()
            .unwrap();
            assert_eq!(ran_on.await.unwrap(), here);
            home
        });
        drop(runtime);
        // The relay died with its runtime: answers run where they are sent.
        let (sent, mut ran) = tokio::sync::oneshot::channel();
        home.send(Box::new(move || {
            let _ = sent.send(());
        }));
        assert!(ran.try_recv().is_ok());
        assert!(
            Home::of_this_thread().is_none(),
            "a closed relay is not used"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            answer_here();
            assert!(!home.is(&Home::of_this_thread().expect("a new relay")));
        });
    }
}
