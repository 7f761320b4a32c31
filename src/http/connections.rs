//! A cap on concurrent client connections, below the process's file
//! descriptor limit: past it, the server stops accepting (new connections
//! wait in the listen backlog) instead of failing `accept` with "too many
//! open files" while the database and the delivery client also need
//! descriptors. Each connection is counted while it lives, and reaching the
//! cap is logged once per episode.
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Descriptors kept for everything but client connections (database pools,
/// outgoing deliveries, files), when the limit forces a lower cap.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The cap in force: the one asked for, lowered to fit the descriptor
/// limit (after raising its soft limit to the hard one, as servers do):
/// at most half the descriptors, and [`RESERVED_DESCRIPTORS`] kept aside.
pub fn effective_cap(asked: usize) -> usize {
    let limit = raise_descriptor_limit();
    let fitting = limit
        .saturating_sub(RESERVED_DESCRIPTORS)
        .min(limit / 2)
        .max(16);
    asked
        .min(usize::try_from(fitting).unwrap_or(usize::MAX))
        .max(1)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the soft limit now in force.
fn raise_descriptor_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write/read only the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Counts the open client connections (see [`Self::on_connect`]).
#[derive(Clone)]
pub struct ConnectionCounter {
    inner: Arc<Counter>,
}

struct Counter {
    open: AtomicUsize,
    cap: usize,
    at_cap: AtomicBool,
}

impl ConnectionCounter {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Counter {
                open: AtomicUsize::new(0),
                cap,
                at_cap: AtomicBool::new(false),
            }),
        }
    }

    /// For `HttpServer::on_connect`: the returned guard lives in the
    /// connection's extensions and is dropped when the connection closes.
    pub fn on_connect(&self, _: &dyn Any, extensions: &mut actix_web::dev::Extensions) {
        let open = self.inner.open.fetch_add(1, Ordering::AcqRel) + 1;
        if open >= self.inner.cap && !self.inner.at_cap.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                open,
                cap = self.inner.cap,
                "connection limit reached: new connections wait until one closes (see --max-connections)"
            );
        }
        extensions.insert(ConnectionGuard(self.inner.clone()));
    }

    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }
}

struct ConnectionGuard(Arc<Counter>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let open = self.0.open.fetch_sub(1, Ordering::AcqRel) - 1;
        // Below 90 % the episode is over; the next time the cap is reached is logged again.
        if open * 10 < self.0.cap * 9 && self.0.at_cap.swap(false, Ordering::AcqRel) {
            tracing::info!(open, cap = self.0.cap, "connections below the limit again");
        }
    }
}
