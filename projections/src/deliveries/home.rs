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
//! So each thread gets a relay, started by its first caller: a task on the
//! thread's own runtime that runs what it is sent. A writer groups a
//! batch's answers by the callers' relays and sends each relay its group
//! (one wake-up); the relay completes the oneshots there, and a wake on the
//! task's own thread is a push onto its run queue, no syscall. Callers
//! outside a current-thread runtime (a multi-thread one: any of its workers
//! may poll the caller) are answered directly, as before.
//!
//! A relay belongs to the runtime it was started on, and serves only
//! callers inside that runtime: a thread that drives two runtimes by turns
//! would otherwise wait on a relay that is not being run.
use std::cell::RefCell;
use tokio::runtime::{Handle, Id, RuntimeFlavor};
use tokio::sync::mpsc;

/// Answers for the callers of one thread.
type Answers = Box<dyn FnOnce() + Send>;

/// The relay of a thread's current-thread runtime.
#[derive(Clone)]
pub(super) struct Home(mpsc::UnboundedSender<Answers>);

thread_local! {
    /// This thread's relay and the runtime it runs on.
    static HOME: RefCell<Option<(Id, Home)>> = const { RefCell::new(None) };
}

impl Home {
    /// The relay that answers a caller here: this thread's, started on
    /// first use (again after its runtime shut down, or inside another
    /// runtime); none outside a current-thread runtime.
    pub(super) fn here() -> Option<Home> {
        let runtime = Handle::try_current().ok()?;
        if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        HOME.with(|home| {
            let mut home = home.borrow_mut();
            if let Some(relay) = Home::usable(home.as_ref(), runtime.id()) {
                return Some(relay.clone());
            }
            let (sender, mut relay) = mpsc::unbounded_channel::<Answers>();
            runtime.spawn(async move {
                while let Some(answers) = relay.recv().await {
                    answers();
                }
            });
            let relay = Home(sender);
            *home = Some((runtime.id(), relay.clone()));
            Some(relay)
        })
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
    fn no_relay_without_a_current_thread_runtime() {
        assert!(Home::here().is_none(), "no runtime");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(Home::here().is_none(), "a multi-thread runtime");
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
        let relay = first.block_on(async { Home::here().expect("the first runtime's relay") });
        let own = second.block_on(async { Home::here().expect("the second's own relay") });
        assert!(!own.is(&relay));
        let again = first.block_on(async { Home::here().unwrap() });
        assert!(
            !again.is(&relay),
            "the first's was replaced by the second's"
        );
    }

    #[test]
    fn answers_run_on_the_relay_thread_and_a_dead_relay_is_replaced() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let home = runtime.block_on(async {
            let home = Home::here().expect("a relay");
            assert!(home.is(&Home::here().unwrap()), "one per thread");
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(!home.is(&Home::here().expect("a new relay")));
        });
    }
}
