//! The owner of one client socket: a single task that reads frames, hands them to the
//! [`Session`], and writes everything the client must see (MESSAGE frames from its
//! subscriptions, RECEIPTs, some from store callbacks once a commit is durable, ERRORs and
//! heart-beats).
//!
//! Reading, writing and every timer are branches of one `select!`, over the framed
//! [`Connection`] of `mq_shared`: a client that stops reading never blocks the task. While
//! more than [`HIGH_WATER`] bytes wait for the client, no further deliveries are taken from
//! the subscriptions' channel (they stay within prefetch). `auto`-ack deliveries are settled
//! once their bytes have left.
//!
//! What closes a connection, and what the client sees:
//!
//! | cause | setting | the client sees |
//! | --- | --- | --- |
//! | no CONNECT in time | `connect-timeout-ms` | ERROR `no CONNECT frame within the connect timeout` |
//! | silent while it owes bytes (a started frame, its CONNECT) | `max-inactivity-duration` | ERROR `no data for N ms in the middle of a frame` |
//! | silent past the agreed heart-beat | (negotiated) | the socket closes |
//! | takes no bytes while some wait for it | `write-timeout` | the socket closes; its unacked messages go to other consumers |
//! | the node stops, steps down or loses its lock | `shutdown-grace` | what it is owed (receipts) within the grace, then the socket closes |
//!
//! After an ERROR the connection flushes it, sends FIN and reads away what the client is still
//! sending for a moment, so the ERROR is not lost to a reset.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mq_shared::api::{ConnectionInfo, ConnectionKind};
use mq_shared::connection::{Connection, Timers, sleep_until};
use mq_shared::frame::{Command, Frame, Item, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::TransportSettings;
use super::session::{Close, Out, Outbox, Session, error_frame};
use crate::broker::{AckHandle, Core, Delivery, now_ms};
use crate::security::{AuthError, Principal};

/// How often a SEND held by flow control is tried again without a wake-up.
const FLOW_RECHECK: Duration = Duration::from_millis(100);
/// Bytes waiting for the client above which no more deliveries are encoded.
pub const HIGH_WATER: usize = 1 << 20;
/// Deliveries encoded per wake-up at most, so reads and writes get their turn.
const DELIVERIES_PER_TURN: usize = 256;
/// How long a connection closing after an ERROR keeps trying to deliver it (and reads away
/// what the client still sends), at most; never longer than `write-timeout`.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Bytes a closing connection reads away at most.
const LINGER_BYTES: usize = 4 << 20;

/// Serves one accepted socket until it closes. `permit` counts it against
/// `maximum-connections` until it ends.
pub async fn run<S>(
    stream: S,
    remote: SocketAddr,
    broker: Core,
    settings: Arc<TransportSettings>,
    shutdown: CancellationToken,
    permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _permit = permit;
    let id = broker.register_connection(ConnectionInfo {
        id: 0,
        remote: remote.to_string(),
        kind: ConnectionKind::Client,
        version: String::new(),
        broker: None,
        subscriptions: 0,
        since_ms: now_ms(),
    });
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let (deliver_tx, mut deliver_rx) = mpsc::unbounded_channel::<Delivery>();
    let mut s = Session::new(
        id,
        broker,
        settings.clone(),
        remote.ip().is_loopback(),
        Outbox::new(out_tx),
        deliver_tx,
    );
    let mut conn = Connection::new(stream, settings.limits);
    conn.set_timers(Timers {
        write_timeout: Some(settings.write_timeout),
        ..Timers::default()
    });
    let connect_deadline = Instant::now() + s.connect_timeout();
    // `auto` deliveries written to the buffer: settled once the stream has taken their bytes.
    let mut auto_acks: VecDeque<(u64, AckHandle)> = VecDeque::new();
    let mut closing: Option<Frame> = None;
    let mut eof = false;
    // Set when the node stops: read nothing more, deliver nothing more, and finish what the
    // client is owed (receipts of commits in flight) until this instant at the latest.
    let mut stopping: Option<Instant> = None;
    // A CONNECT whose login is being checked; nothing more is read or decoded meanwhile.
    let mut auth: Option<Authenticating> = None;
    // Wakes a SEND held by producer flow control when space may have freed.
    let usage = s.usage();

    'conn: loop {
        let paused = s.pending.count() >= settings.max_pending_writes
            || s.pending.bytes() >= settings.max_pending_bytes;
        let owes = s.connected().is_none() || conn.has_partial_frame();
        let inactive_at = owes.then(|| conn.last_read() + settings.max_inactivity);
        let connect_at = s.connected().is_none().then_some(connect_deadline);
        let deadline = [conn.next_deadline(), inactive_at, connect_at, stopping]
            .into_iter()
            .flatten()
            .min();
        let room = conn.buffered() < HIGH_WATER && stopping.is_none();
        let held = s.is_held();
        let want_read =
            !paused && !eof && !s.disconnecting && stopping.is_none() && auth.is_none() && !held;
        tokio::select! {
            // Not biased: under a flood of deliveries the socket must still be read (a
            // subscriber's own SENDs and ACKs), so every ready branch gets its turn.
            _ = shutdown.cancelled(), if stopping.is_none() => {
                stopping = Some(Instant::now() + settings.shutdown_grace);
            }
            Some(o) = out_rx.recv() => push_out(&mut conn, o, &mut closing),
            Some(d) = deliver_rx.recv(), if room => {
                write_delivery(&mut s, &mut conn, d, &mut auto_acks);
            }
            alive = demand_changed(&mut s.demand_rx) => {
                if alive {
                    s.send_advisory(false);
                } else {
                    s.demand_rx = None;
                }
            }
            p = conn.drive(want_read), if want_read || conn.buffered() > 0 => {
                let p = match p {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(conn = id, error = %e, "socket closed");
                        break 'conn;
                    }
                };
                if p.wrote > 0 {
                    settle_written(&s, &conn, &mut auto_acks);
                }
                match p.read {
                    None => {}
                    Some(0) => eof = true,
                    Some(_) => {
                        s.out.begin();
                        let step = handle_frames(&mut s, &mut conn, &settings);
                        follow(step, &mut s, &mut auth, &mut closing);
                        end_handling(&s.out, &mut out_rx, &mut conn, &mut closing);
                    }
                }
            }
            (f, principal) = authenticated(&mut auth) => {
                auth = None;
                s.out.begin();
                let step = match s.connect(f, principal) {
                    Ok(()) => {
                        if let Some(v) = s.connected() {
                            start_session(&mut conn, &s, v, &settings);
                        }
                        // Frames pipelined behind the CONNECT (connected now: no other
                        // CONNECT waits for a login).
                        handle_frames(&mut s, &mut conn, &settings)
                    }
                    Err(Close(e)) => Step::Close(e),
                };
                follow(step, &mut s, &mut auth, &mut closing);
                end_handling(&s.out, &mut out_rx, &mut conn, &mut closing);
            }
            _ = s.pending.notify.notified(), if paused || s.disconnecting || stopping.is_some() => {}
            _ = usage.changed(FLOW_RECHECK), if held && stopping.is_none() => {
                // Not reading is this side's choice: the client's silence does not count.
                conn.excuse_silence();
                s.out.begin();
                match s.retry_held() {
                    Ok(true) => {
                        let step = handle_frames(&mut s, &mut conn, &settings);
                        follow(step, &mut s, &mut auth, &mut closing);
                    }
                    Ok(false) => {}
                    Err(Close(f)) => closing = f,
                }
                end_handling(&s.out, &mut out_rx, &mut conn, &mut closing);
            }
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if stopping.is_some_and(|at| now >= at) {
                    tracing::debug!(conn = id, "shutdown grace over; closing");
                    break 'conn;
                } else if connect_at.is_some_and(|at| now >= at) {
                    closing = Some(error_frame(
                        "no CONNECT frame within the connect timeout",
                        None,
                    ));
                } else if inactive_at.is_some_and(|at| now >= at) {
                    let what = if s.connected().is_none() {
                        "before CONNECT"
                    } else {
                        "in the middle of a frame"
                    };
                    closing = Some(error_frame(
                        &format!(
                            "no data for {} ms {what} (max-inactivity-duration)",
                            settings.max_inactivity.as_millis()
                        ),
                        None,
                    ));
                } else if let Err(e) = conn.tick(now) {
                    tracing::debug!(conn = id, error = %e, "closing");
                    break 'conn;
                }
            }
        }

        // Coalesce: take whatever else is ready before the next write.
        while let Ok(o) = out_rx.try_recv() {
            push_out(&mut conn, o, &mut closing);
        }
        for _ in 0..DELIVERIES_PER_TURN {
            if conn.buffered() >= HIGH_WATER || stopping.is_some() {
                break;
            }
            match deliver_rx.try_recv() {
                Ok(d) => write_delivery(&mut s, &mut conn, d, &mut auto_acks),
                Err(_) => break,
            }
        }
        if let Some(f) = closing.take() {
            conn.queue(&f);
            // Best effort within the write deadline: the client may not be reading at all.
            let limit = settings.write_timeout.min(CLOSE_WAIT);
            conn.close_gracefully(limit, LINGER_BYTES).await;
            break 'conn;
        }
        let owed = s.pending.count() > 0 || !out_rx.is_empty();
        if (s.disconnecting || stopping.is_some()) && !owed {
            let limit = match stopping {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => settings.write_timeout,
            };
            let _ = conn.flush_within(limit).await;
            break 'conn;
        }
        if eof {
            break 'conn;
        }
    }
    // Whatever is still queued for this connection goes back to its queues when the session
    // ends (unsubscribing redelivers in-flight messages), so dropping the receivers loses
    // nothing.
    drop(s);
    drop(deliver_rx);
}

/// A CONNECT's login check in progress.
type Authenticating = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Frame, Result<Principal, AuthError>)> + Send>,
>;

/// Resolves when the login check finishes; never without one.
async fn authenticated(a: &mut Option<Authenticating>) -> (Frame, Result<Principal, AuthError>) {
    match a {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// What handling the buffered frames came to.
enum Step {
    /// Every whole frame was handled.
    Ok,
    /// A CONNECT waits for its login check (frames behind it stay buffered).
    Authenticate(Frame),
    /// The connection ends: `Some` with an ERROR to send first, `None` for a DISCONNECT.
    Close(Option<Frame>),
}

/// Does what handling the buffered frames came to: starts a CONNECT's login check, or ends
/// the connection (with an ERROR to send first in `closing`, or as a DISCONNECT).
fn follow(
    step: Step,
    s: &mut Session,
    auth: &mut Option<Authenticating>,
    closing: &mut Option<Frame>,
) {
    match step {
        Step::Ok => {}
        Step::Authenticate(f) => *auth = Some(Box::pin(s.authenticate(f))),
        Step::Close(f) => {
            *closing = f;
            if closing.is_none() {
                s.disconnecting = true;
            }
        }
    }
}

/// Handles every whole frame buffered, up to a CONNECT that needs its login checked.
fn handle_frames<S>(
    s: &mut Session,
    conn: &mut Connection<S>,
    _settings: &TransportSettings,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match conn.decode() {
            Ok(None) => return Step::Ok,
            Ok(Some(Item::HeartBeat)) => {}
            Ok(Some(Item::Frame(f))) => {
                if s.connected().is_none() && matches!(f.command, Command::Connect | Command::Stomp)
                {
                    return Step::Authenticate(f);
                }
                if let Err(Close(e)) = s.handle(f) {
                    return Step::Close(e);
                }
                if s.is_held() {
                    // Frames behind a held SEND wait for it.
                    return Step::Ok;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "bad frame");
                return Step::Close(Some(error_frame(
                    &format!("malformed frame: {e}"),
                    conn.failed_receipt(),
                )));
            }
        }
    }
}

/// Applies what CONNECT agreed: the escaping rules of the version and the heart-beat timers
/// (with the write deadline, which holds from the first byte on).
fn start_session<S>(conn: &mut Connection<S>, s: &Session, v: Version, settings: &TransportSettings)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    conn.set_version(v);
    let mut t = s.timers.unwrap_or_default();
    t.write_timeout = Some(settings.write_timeout);
    conn.set_timers(t);
}

/// Ends the task's handling of input ([`Outbox::end`]): what the channel held from before is
/// written first, then the frames made meanwhile, in the order they were made.
fn end_handling<S>(
    out: &Outbox,
    out_rx: &mut mpsc::UnboundedReceiver<Out>,
    conn: &mut Connection<S>,
    closing: &mut Option<Frame>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    out.end(|frames| {
        while let Ok(o) = out_rx.try_recv() {
            push_out(conn, o, closing);
        }
        for o in frames {
            push_out(conn, o, closing);
        }
    });
}

fn push_out<S>(conn: &mut Connection<S>, o: Out, closing: &mut Option<Frame>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match o {
        Out::Frame(f) => conn.queue(&f),
        Out::Fatal(f) => *closing = Some(f),
    }
}

fn write_delivery<S>(
    s: &mut Session,
    conn: &mut Connection<S>,
    d: Delivery,
    auto_acks: &mut VecDeque<(u64, AckHandle)>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some((f, auto)) = s.delivery_frame(d) {
        conn.queue(&f);
        if let Some(h) = auto {
            auto_acks.push_back((conn.queued_total(), h));
        }
    }
}

/// Settles the `auto` deliveries whose bytes the stream has taken.
fn settle_written<S>(s: &Session, conn: &Connection<S>, auto_acks: &mut VecDeque<(u64, AckHandle)>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let written = conn.written_total();
    let n = auto_acks
        .iter()
        .take_while(|(end, _)| *end <= written)
        .count();
    if n > 0 {
        s.auto_ack(auto_acks.drain(..n).map(|(_, h)| h));
    }
}

/// Resolves when demand changed (true) or can no longer change (false); never without a
/// receiver.
async fn demand_changed(rx: &mut Option<watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
