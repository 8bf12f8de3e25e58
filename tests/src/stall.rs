//! Clients that stop reading (slow consumers): [`stalled_subscriber`] connects with a receive
//! buffer of a few KiB, subscribes and never reads again, so whatever the node sends it piles
//! up in the node (its socket buffer, then its own write buffer) until a limit acts.

use std::time::Instant;

use mq_shared::frame::{Command as StompCommand, Frame};

use crate::RawConn;

/// `SO_RCVBUF` of a stalled client: the kernel rounds it up to its minimum of a few KiB.
pub const STALLED_RECV_BUFFER: u32 = 4096;

/// A subscriber that stopped reading: the connection and when its SUBSCRIBE was written (no
/// limit that counts from the client's last byte can act before then).
pub struct Stalled {
    /// The connection; the test does not read it until it checks that the node closed it.
    pub conn: RawConn,
    /// When SUBSCRIBE was written.
    pub subscribed_at: Instant,
}

/// Connects with a receive buffer of [`STALLED_RECV_BUFFER`] and `heart_beat` (`"cx,cy"`,
/// STOMP 1.2), sends SUBSCRIBE to `dest` with `headers` (`ack`, `activemq.prefetchSize`, ...)
/// and no receipt, and reads nothing more. Whether the subscription took is for the caller to
/// see (the admin API's consumer and subscriber counts).
pub async fn stalled_subscriber(
    addr: &str,
    dest: &str,
    heart_beat: &str,
    headers: &[(&str, &str)],
) -> Stalled {
    let (mut conn, _) = RawConn::open_with_recv_buffer(addr, STALLED_RECV_BUFFER)
        .await
        .handshake(Some("1.2"), heart_beat)
        .await;
    let mut f = Frame::new(StompCommand::Subscribe)
        .with_header("destination", dest)
        .with_header("id", "stalled");
    for (k, v) in headers {
        f.push_header(*k, *v);
    }
    let subscribed_at = Instant::now();
    conn.send_frame(&f).await;
    Stalled {
        conn,
        subscribed_at,
    }
}
