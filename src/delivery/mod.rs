//! Delivery: publishing events and getting them, signed, to every endpoint.
//!
//! # The life of one publish, in order
//!
//! 1. `http/v1/events.rs::publish` authenticates the key (`http/auth.rs`,
//!    cached by `http/key_cache.rs`), reads the body under the request
//!    deadline (`http/deadline.rs`, `http/body.rs`) and keeps `data` as raw
//!    JSON (`wire::EventData`).
//! 2. [`publish::Publisher::publish`] checks the event type against the
//!    cached catalog, finds the targets ([`routing::RoutingCache`] over
//!    `DeliveryStore::routing_targets`) and hands a `NewEvent` to the
//!    store (`projections::deliveries`, the storage layer: every SQL
//!    statement of delivery lives there).
//! 3. `DeliveryStore::publish` submits it to the publish `GroupCommit`: a
//!    writer task takes everything queued and writes it in one statement
//!    (the backend's `Writers`: the event and one `pending` delivery row
//!    per target), then answers each caller. The 202 goes out only after
//!    this commit.
//! 4. Still on the writer's thread, before the callers are answered, the
//!    batch's new deliveries go to [`supervisor::SupervisorHandle::enqueue`]
//!    (the hand-over `Publisher::new` gave the store): those of
//!    endpoints this node owns (`cluster::Ownership`) to the
//!    [`supervisor::DeliverySupervisor`] actor, the others announced on the
//!    change bus (`changes.rs`) for the node that owns them
//!    (`cluster/bus.rs`, `LISTEN/NOTIFY`; its supervisor gets them the same
//!    way).
//! 5. The supervisor passes them to the endpoint's
//!    [`endpoint::EndpointActor`] (started on demand, on the endpoint's
//!    lane: `lanes.rs`), the shell of the endpoint's pure state machine
//!    (`endpoint/state.rs`), which holds them (within the endpoint's and
//!    the node's budgets: `budget.rs`) and starts up to the in-flight limit
//!    (effects `Launch`, run by the actor).
//! 6. Each attempt is one Tokio task: [`policy::Attempts::send`] →
//!    [`attempt::send`] signs ([`signing`]), shapes the body ([`wire`]) and
//!    sends through the lane's client ([`http_client`]: SSRF guard, no
//!    redirects) within the config's timeout; the actor hears `Answered`.
//! 7. [`policy::Attempts::settle`] decides what comes next (retry
//!    with [`retry`]'s schedule, done, or switch the endpoint off) and
//!    records the attempt through the outcome `GroupCommit` writer
//!    (the attempt row, the delivery's new status —
//!    fenced by the lease epoch on a cluster — and the config's
//!    statistics), waiting out a database outage in memory
//!    (`recording.rs` keeps others from sending it meanwhile).
//! 8. The actor hears `Settled` with the verdict: done, or the delivery
//!    waits in its retry heap for its next attempt. The outcome batch
//!    announces the statistics change, so the v1 API's cached rows follow.
//!
//! Pending work always lives in the database too: the supervisor's poll
//! (every 500 ms) restarts dead actors and picks up rows nobody holds, so a
//! crash, a lost notification or a restarted node loses nothing.
mod attempt;
mod budget;
mod endpoint;
pub(crate) mod engine;
pub(crate) mod event_schemas;
pub(crate) mod gauges;
pub(crate) mod http_client;
mod lanes;
pub(crate) mod operational;
mod policy;
pub mod publish;
mod recording;
pub(crate) mod recovery;
pub mod retry;
pub(crate) mod routing;
pub mod settings;
pub mod signing;
mod supervisor;
mod task;
pub(crate) mod wire;

pub use settings::DeliverySettings;
pub use supervisor::{DeliverySupervisor, SupervisorHandle};
