//! A TCP proxy on a free local port in front of a server, so a test can
//! make that server unreachable or unresponsive and bring it back.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// A TCP proxy on a free local port in front of `target`, so a test can
/// make a server unreachable (`close`: the port refuses and open connections
/// are cut) or unresponsive (`stall`: bytes stop flowing, connections stay
/// open) and bring it back.
pub struct TcpProxy {
    pub port: u16,
    target: SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    tasks: Option<tokio::task::JoinSet<()>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (stalled, _) = tokio::sync::watch::channel(false);
        let mut proxy = TcpProxy {
            port,
            target,
            stalled,
            tasks: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// Stops listening and cuts every connection: the port is closed.
    pub fn close(&mut self) {
        // Dropping a JoinSet aborts its tasks, which drops their sockets.
        self.tasks = None;
    }

    /// Listens again on the same port.
    pub async fn reopen(&mut self) {
        self.close();
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy's port");
        self.serve(listener);
    }

    /// Holds every byte from now on, on open and new connections alike.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Lets the held bytes and everything after them through.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let stalled = self.stalled.subscribe();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(forward(client_read, server_write, stalled.clone()));
                connections.spawn(forward(server_read, client_write, stalled.clone()));
            }
        });
        self.tasks = Some(tasks);
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            break;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
