//! Multicast discovery (ActiveMQ's `MulticastDiscoveryAgent`): nodes advertise their transport
//! connectors on a UDP multicast group, and a `multicast://` network connector bridges to every
//! node it hears.
//!
//! Datagrams are ActiveMQ's text format, so the group can be shared with it for inspection:
//!
//! ```text
//! default.ActiveMQ-4.alive.%broker1%tcp://127.0.0.1:61613     every 500 ms while serving
//! default.ActiveMQ-4.dead.%broker1%tcp://127.0.0.1:61613      once when it stops serving
//! ```
//!
//! `multicast://default` is group `default` on 239.255.2.3:6155. Sockets send with TTL 1 and
//! loop-back on, so nodes on one host (or in one network namespace) find each other. A node
//! that misses [`MULTICAST_MISS_BEFORE_DEATH`] advertisements in a row (or says `dead`) is
//! forgotten and its bridge stopped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_shared::defaults::{MULTICAST_KEEPALIVE_MS, MULTICAST_MISS_BEFORE_DEATH};
use mq_shared::uri::{DiscoveryUri, TransportUri};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bridge::{self, BridgeConfig, PeerStatus, Target};
use crate::broker::Core;

/// Type suffix of ActiveMQ's advertisements.
const TYPE_SUFFIX: &str = "ActiveMQ-4.";
/// How long to wait before trying again to open the group socket after a failure.
const SOCKET_RETRY: Duration = Duration::from_secs(2);

/// One advertisement heard on the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Group name.
    pub group: String,
    /// Alive (`true`) or stopping.
    pub alive: bool,
    /// Broker name.
    pub broker: String,
    /// Transport connector URI, e.g. `tcp://127.0.0.1:61613`.
    pub service: String,
}

impl Advert {
    /// The datagram text.
    pub fn encode(&self) -> String {
        format!(
            "{}.{TYPE_SUFFIX}{}.%{}%{}",
            self.group,
            if self.alive { "alive" } else { "dead" },
            self.broker,
            self.service
        )
    }

    /// Parses a datagram; `None` if it is not an advertisement.
    pub fn decode(b: &[u8]) -> Option<Advert> {
        let s = std::str::from_utf8(b).ok()?;
        let (head, rest) = s.split_once('%')?;
        let (broker, service) = rest.split_once('%')?;
        let (group, state) = head.split_once(&format!(".{TYPE_SUFFIX}"))?;
        let alive = match state {
            "alive." => true,
            "dead." => false,
            _ => return None,
        };
        if broker.is_empty() || service.is_empty() {
            return None;
        }
        Some(Advert {
            group: group.to_string(),
            alive,
            broker: broker.to_string(),
            service: service.to_string(),
        })
    }
}

fn group_v4(d: &DiscoveryUri) -> Option<SocketAddrV4> {
    match d.group_addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// A socket that sends to the group (TTL 1, loop-back on).
fn sender_socket() -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
    UdpSocket::from_std(s.into())
}

/// A socket that receives the group's datagrams; several may share the port on one host.
fn listener_socket(group: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_multicast_loop_v4(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(group).into())?;
    s.join_multicast_v4(group.ip(), &Ipv4Addr::UNSPECIFIED)?;
    UdpSocket::from_std(s.into())
}

/// Advertises `services` of broker `broker` on `group` every 500 ms until `cancel` fires,
/// then says `dead` once.
pub async fn advertise(
    group: DiscoveryUri,
    broker: String,
    services: Vec<String>,
    cancel: CancellationToken,
) {
    let Some(addr) = group_v4(&group) else {
        tracing::error!(group = %group.redacted(), "multicast discovery needs an IPv4 group");
        return;
    };
    let sock = loop {
        match sender_socket() {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(group = %group.redacted(), error = %e, "cannot open the discovery socket; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(SOCKET_RETRY) => {}
                }
            }
        }
    };
    tracing::info!(group = %group.redacted(), ?services, "advertising transport connectors");
    // With a group secret every datagram is signed (and stamped, so it cannot be replayed
    // later); receivers with the secret ignore unsigned or wrongly signed ones.
    let adverts = |alive| -> Vec<String> {
        services
            .iter()
            .map(|s| {
                let text = Advert {
                    group: group.group.clone(),
                    alive,
                    broker: broker.clone(),
                    service: s.clone(),
                }
                .encode();
                match &group.secret {
                    Some(secret) => {
                        crate::security::advert::sign(secret, &text, crate::broker::now_ms())
                    }
                    None => text,
                }
            })
            .collect()
    };
    let mut tick = tokio::time::interval(Duration::from_millis(MULTICAST_KEEPALIVE_MS));
    let mut warned = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                // Signed adverts carry the time: sign them afresh each round.
                for a in &adverts(true) {
                    if let Err(e) = sock.send_to(a.as_bytes(), addr).await
                        && !warned
                    {
                        tracing::warn!(group = %group.redacted(), error = %e, "cannot send a discovery advertisement");
                        warned = true;
                    }
                }
            }
        }
    }
    for a in adverts(false) {
        let _ = sock.send_to(a.as_bytes(), addr).await;
    }
}

/// A node heard on the group, and its bridge.
struct Found {
    last_seen: Instant,
    cancel: CancellationToken,
    status: Arc<PeerStatus>,
}

/// Runs a `multicast://` network connector: a bridge to every node heard on the group (this
/// node excepted), stopped when that node goes quiet.
pub async fn run_connector(
    core: Core,
    cfg: Arc<BridgeConfig>,
    group: DiscoveryUri,
    peers: Arc<Mutex<Vec<Arc<PeerStatus>>>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let Some(addr) = group_v4(&group) else {
        tracing::error!(group = %group.redacted(), "multicast discovery needs an IPv4 group");
        return;
    };
    let sock = loop {
        match listener_socket(addr) {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(group = %group.redacted(), error = %e, "cannot join the discovery group; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(SOCKET_RETRY) => {}
                }
            }
        }
    };
    tracing::info!(connector = %cfg.connector, group = %group.redacted(), "listening for brokers");
    let death =
        Duration::from_millis(MULTICAST_KEEPALIVE_MS * u64::from(MULTICAST_MISS_BEFORE_DEATH));
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_millis(MULTICAST_KEEPALIVE_MS));
    let mut buf = vec![0u8; 4096];
    let forget = |found: &mut HashMap<String, Found>, service: &str, why: &str| {
        if let Some(f) = found.remove(service) {
            tracing::info!(%service, why, "discovered broker forgotten");
            f.cancel.cancel();
            peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|p| !Arc::ptr_eq(p, &f.status));
        }
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sweep.tick() => {
                let now = Instant::now();
                let stale: Vec<String> = found
                    .iter()
                    .filter(|(_, f)| now.duration_since(f.last_seen) > death)
                    .map(|(k, _)| k.clone())
                    .collect();
                for s in stale {
                    forget(&mut found, &s, "stopped advertising");
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let text = match &group.secret {
                    None => std::str::from_utf8(&buf[..n]).ok(),
                    Some(secret) => {
                        match crate::security::advert::verify(secret, &buf[..n], crate::broker::now_ms()) {
                            Ok(t) => Some(t),
                            Err(e) => {
                                tracing::debug!(%from, error = %e, "ignoring an advertisement that is not signed with the group's secret");
                                None
                            }
                        }
                    }
                };
                let Some(a) = text.and_then(|t| Advert::decode(t.as_bytes())) else { continue };
                if a.group != group.group || a.broker == *cfg.local {
                    continue;
                }
                if !a.alive {
                    forget(&mut found, &a.service, "said it is stopping");
                    continue;
                }
                if let Some(f) = found.get_mut(&a.service) {
                    f.last_seen = Instant::now();
                    continue;
                }
                let Ok(t) = a.service.parse::<TransportUri>() else {
                    tracing::debug!(service = %a.service, "ignoring an advertisement with a bad URI");
                    continue;
                };
                tracing::info!(broker = %a.broker, service = %a.service, "discovered broker");
                let status = Arc::new(PeerStatus::new(&a.service));
                peers.lock().unwrap_or_else(|e| e.into_inner()).push(status.clone());
                let stop = cancel.child_token();
                let target = Target {
                    uri: a.service.clone(),
                    endpoints: vec![t.addr.clone()],
                };
                bridge::spawn(&tracker, core.clone(), cfg.clone(), target, status.clone(), stop.clone());
                found.insert(a.service, Found { last_seen: Instant::now(), cancel: stop, status });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_text_is_activemqs() {
        let a = Advert {
            group: "default".into(),
            alive: true,
            broker: "b1".into(),
            service: "tcp://127.0.0.1:61613".into(),
        };
        let s = a.encode();
        assert_eq!(s, "default.ActiveMQ-4.alive.%b1%tcp://127.0.0.1:61613");
        assert_eq!(Advert::decode(s.as_bytes()), Some(a));
        assert!(Advert::decode(b"default.ActiveMQ-4.dead.%b1%tcp://h:1").is_some_and(|a| !a.alive));
        assert!(Advert::decode(b"garbage").is_none());
        assert!(Advert::decode(b"default.ActiveMQ-4.alive.%%").is_none());
    }
}
