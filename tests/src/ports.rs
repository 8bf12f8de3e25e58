//! Loopback ports for tests that must name a port before a node binds it (a slave's future
//! transport, a port held busy). Nodes themselves bind port 0 and report what they got.
//!
//! Named ports come from below the kernel's ephemeral range (`ip_local_port_range`, 32768 and
//! up by default): a port taken from that range and released can be given to any outgoing
//! connection of any test before the node that was meant to bind it does (a slave binds its
//! transport only when it takes over, seconds later). Below it, only another test's named
//! port can collide, and one counter per test process hands each port out once.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// First and one past the last port handed out.
const RANGE: (u32, u32) = (10_000, 32_000);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback port that is bound (and so in use) while the returned listener lives.
pub fn busy_port() -> (TcpListener, u16) {
    let span = RANGE.1 - RANGE.0;
    // Test processes that run one after another start at different places.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = RANGE.0 + (start + n) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return (l, port);
        }
    }
    panic!("no free loopback port in {}..{}", RANGE.0, RANGE.1)
}

/// A loopback port nobody listens on right now (bound, then released at once).
pub fn free_port() -> u16 {
    busy_port().1
}
