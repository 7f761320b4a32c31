//! The use cases: what a caller can do, whichever way it asks — the v1
//! dialect, the configs (ricloud) dialect, the console, and the dialects
//! to come. Each use case takes typed, already validated input and returns
//! typed results; the HTTP modules only translate requests into these and
//! the results and [`endpoints::EndpointError`]s into their dialect's
//! answers. What every dialect must do the same way lives here once: the
//! address check of a URL, the id, the secret, the command and its
//! metadata.
//!
//! The layer sits above the delivery engine and the command side and below
//! HTTP (`tests/layers.rs`).
pub mod applications;
pub mod deliveries;
pub mod endpoints;

pub use applications::{ApplicationError, ApplicationFields, Applications};
pub use deliveries::{Deliveries, DeliveryError, TestRecord};
pub use endpoints::{Actor, EndpointError, Endpoints, NewEndpoint, Rotation};
