//! Several webhookd nodes on one PostgreSQL database, with PostgreSQL as
//! the only coordination engine. The rules live here; the rows and the
//! channel they are kept in are `projections::cluster`'s.
//!
//! * [`node`]: membership (a heartbeat per node) and endpoint ownership by
//!   partition leases, with fencing.
//! * [`ownership`]: which endpoints this node may send to now, and the
//!   lease each attempt is recorded under.
//! * [`bus`]: changes between nodes, over `LISTEN/NOTIFY`.
//! * [`single_node`]: SQLite stays one node: a second `serve` on the same
//!   file refuses to start.
pub(crate) mod bus;
pub(crate) mod node;
pub mod ownership;
pub(crate) mod single_node;

pub use node::{ClusterNode, NodeSettings};
pub use ownership::{Fence, Ownership};

/// What a node does (`serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Serves the API and delivers.
    #[default]
    All,
    /// Serves the API (publishes, reads); delivers nothing.
    Api,
    /// Delivers; serves only health.
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    pub fn delivers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
}

/// A node id: the host name, the process id and a random suffix, unless
/// `--node-id` names one.
pub fn generated_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}
