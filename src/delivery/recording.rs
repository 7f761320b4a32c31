//! The deliveries of this process whose attempt was answered and is being
//! recorded. Their rows still say `pending` until the record lands — which
//! can take a while when the database is away (the outcome waits in
//! memory, see `policy`). An actor that reads pending rows meanwhile (a new
//! actor after the old one stopped, say when a lease ran out during the
//! outage and came back) must not send them again: it skips these.
use foldhash::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Recording {
    ids: Arc<Mutex<HashSet<i64>>>,
}

impl Recording {
    /// Delivery `id` is being recorded until the guard drops.
    pub fn start(&self, id: i64) -> RecordingGuard {
        self.lock().insert(id);
        RecordingGuard {
            recording: self.clone(),
            id,
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        self.lock().contains(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct RecordingGuard {
    recording: Recording,
    id: i64,
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        self.recording.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::Recording;

    #[test]
    fn an_id_counts_while_its_guard_lives() {
        let recording = Recording::default();
        let guard = recording.start(7);
        assert!(recording.contains(7) && !recording.contains(8));
        drop(guard);
        assert!(!recording.contains(7));
    }
}
