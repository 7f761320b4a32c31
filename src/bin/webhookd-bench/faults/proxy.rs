//! A TCP proxy between one node and PostgreSQL that can cut the link the
//! way a network partition does: nothing is reset or refused, the bytes
//! simply stop moving (both ways, on open connections and on new ones)
//! until the link heals, when everything that waited goes through.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct PartitionProxy {
    pub port: u16,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl PartitionProxy {
    /// Forwards `127.0.0.1:<port>` to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(false);
        let link = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (link, upstream) = (link.subscribe(), upstream.clone());
                tokio::spawn(async move {
                    let mut healed = link.clone();
                    // A connection opened during the cut waits, as a SYN
                    // into a partition would (until the client gives up).
                    if healed.wait_for(|cut| !*cut).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        _ = pump(client_read, server_write, link.clone()) => {}
                        _ = pump(server_read, client_write, link) => {}
                    }
                });
            }
        });
        Ok(Self { port, cut, accept })
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for PartitionProxy {
    fn drop(&mut self) {
        self.cut.send_replace(false);
        self.accept.abort();
    }
}

/// Copies one direction, holding every chunk while the link is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if link.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if link.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
