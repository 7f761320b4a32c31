//! SQLite is for one node: `serve` takes an exclusive lock on a file beside
//! the database (`<database>.serve.lock`) and holds it while it lives, so a
//! second `serve` on the same file refuses to start instead of delivering
//! every event twice. The lock is the kernel's (`fcntl`), so it is gone the
//! moment the process is, however it ended. The operator's CLI commands
//! take no lock: they may run beside the server.
use anyhow::{bail, Context};
use std::fs::File;
use std::path::PathBuf;

/// Held while the server runs; dropping it releases the lock.
pub struct ServeLock {
    _file: File,
}

/// The lock file of a `sqlite://PATH` URL (`None` for an in-memory database).
fn lock_path(database_url: &str) -> Option<PathBuf> {
    let path = database_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.contains(":memory:"))
        .then(|| PathBuf::from(format!("{path}.serve.lock")))
}

pub fn lock(database_url: &str) -> anyhow::Result<Option<ServeLock>> {
    let Some(path) = lock_path(database_url) else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    if !try_lock(&file) {
        bail!(
            "another `webhookd serve` is running on this SQLite database ({database_url}; \
             it holds {}); SQLite is single-node: stop it first, or use PostgreSQL to run several nodes",
            path.display()
        );
    }
    Ok(Some(ServeLock { _file: file }))
}

/// A POSIX record lock on the whole file: held per process (a second lock
/// from the same process succeeds, as the tests' restarts need), released
/// when the process ends.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl(F_SETLK) reads the flock struct we pass and nothing else.
    unsafe {
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as _;
        lock.l_whence = libc::SEEK_SET as _;
        libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::lock_path;

    #[test]
    fn the_lock_sits_beside_the_database() {
        assert_eq!(
            lock_path("sqlite://data/webhookd.db").unwrap().to_str(),
            Some("data/webhookd.db.serve.lock")
        );
        assert_eq!(
            lock_path("sqlite:///tmp/w.db?mode=rwc").unwrap().to_str(),
            Some("/tmp/w.db.serve.lock")
        );
        assert!(lock_path("sqlite::memory:").is_none());
    }
}
