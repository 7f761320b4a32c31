//! Running actor work as Tokio tasks.
//!
//! Futures an actix actor spawns live on the actor's `LocalSet`; when the
//! runtime shuts down they are dropped outside the Tokio context, and a
//! future holding a pooled database connection then panics in its drop
//! (sqlx returns connections with `tokio::spawn`). Work that touches the
//! database or the network therefore runs as a Tokio task, which the
//! runtime drops inside its context; the actor awaits its result.
use std::future::Future;

/// Runs `work` as a Tokio task and waits for it. A panic in `work` is
/// resumed in the caller, so an actor still dies of it (and the supervisor
/// still restarts it).
pub async fn run<F>(work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(output) => output,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("a delivery task was cancelled: {error}"),
    }
}
