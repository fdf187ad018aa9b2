//! Clients of their own loopback address (127.x.y.z): the gateway tells
//! clients apart by address, so a test that plays several clients, or an
//! attacker beside an honest visitor, gives each an address of its own.
//! Linux routes all of 127.0.0.0/8 to the loopback interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// The loopback address `127.a.b.c`.
pub fn loopback(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

/// A TCP connection to `server` from `source`.
pub async fn connect_from(server: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(server).await
}

/// An HTTP client whose connections come from `source` (no cookies, no
/// redirects followed, a 30 s bound on each request).
pub fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}
