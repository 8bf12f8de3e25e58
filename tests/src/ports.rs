//! Loopback ports for tests that must name a port before a node binds it (a slave's future
//! transport, a port held busy). Nodes themselves bind port 0 and report what they got.

use std::net::TcpListener;

/// A loopback port that is bound (and so in use) while the returned listener lives.
pub fn busy_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = l.local_addr().expect("local address").port();
    (l, port)
}

/// A loopback port nobody listens on right now (bound, then released at once).
pub fn free_port() -> u16 {
    busy_port().1
}
