//! The threads the endpoint actors run on. An actix arbiter is one thread;
//! with every actor on the supervisor's, the delivery of all endpoints was
//! bound to one core (the profile: that thread ~90 % of a core, the machine
//! not full). Each endpoint is pinned to one lane, by config id, so its
//! actor, its requests and their connections stay on one thread; each lane
//! has its own HTTP client (a connection's I/O task lives on the runtime
//! that opened it, and a pool shared across lanes hands connections from one
//! thread to the other).
use super::http_client;
use super::settings::DeliverySettings;
use actix::{Arbiter, ArbiterHandle};
use aggregates::values::ConfigId;

pub struct Lane {
    pub arbiter: ArbiterHandle,
    pub client: reqwest::Client,
}

pub struct Lanes {
    lanes: Vec<Lane>,
    /// Stopped when the supervisor is dropped (the end of a test's runtime).
    arbiters: Vec<Arbiter>,
}

impl Lanes {
    /// Starts `settings.delivery_threads` lanes (at least one): call inside
    /// the actix runtime.
    pub fn start(settings: &DeliverySettings) -> Self {
        let arbiters: Vec<Arbiter> = (0..settings.delivery_threads.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let lanes = arbiters
            .iter()
            .map(|arbiter| Lane {
                arbiter: arbiter.handle(),
                client: http_client::build(
                    &settings.url_policy,
                    &settings.resolve_overrides,
                    settings.source_address,
                ),
            })
            .collect();
        Self { lanes, arbiters }
    }

    /// The lane of an endpoint: always the same one.
    pub fn for_endpoint(&self, config_id: ConfigId) -> &Lane {
        &self.lanes[config_id.get().unsigned_abs() as usize % self.lanes.len()]
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}
