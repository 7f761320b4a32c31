//! A TCP proxy in front of the test's PostgreSQL, for database outages that
//! only one test sees: `cut` closes every connection through it and refuses
//! new ones (what webhookd sees of a stopped server), `restore` lets
//! connections through again. Stopping the real server would fail every
//! other test running beside this one.
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct FaultProxy {
    pub port: u16,
    /// `true` while the database is "down".
    down: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl FaultProxy {
    /// Forwards `127.0.0.1:<port>` to `upstream` (host:port).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let (down, _) = watch::channel(false);
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (down_for_accept, tasks_for_accept) = (down.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *down_for_accept.borrow() {
                    // Refused: closed at once, as a stopped server's port would be.
                    let _ = client.shutdown().await;
                    continue;
                }
                let mut cut = down_for_accept.subscribe();
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
                tasks_for_accept.lock().unwrap().push(task);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, down, tasks }
    }

    /// The database goes away: open connections drop, new ones are refused.
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    /// The database is back.
    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
