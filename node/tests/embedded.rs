//! Brokers embedded in the test process through `mqnode::Broker::builder()`: each on port 0
//! with its own temporary data directory, driven by the STOMP client of `mq_shared::client`.
//! No process is spawned, so these run in milliseconds; the suites of `mq-tests` cover the
//! `mqnode` binary itself.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use mq_shared::api::{PeerState, Role};
use mq_shared::client::{AckMode, ConnectOptions, StompClient};
use mq_shared::frame::Frame;
use mq_tests::{SOON, poll_until_async};
use mqnode::config::ConfigError;
use mqnode::{Broker, NodeError};

/// Starts a persistent broker `name` on `dir`, STOMP and admin API on loopback port 0, with
/// network connectors `networks`.
async fn start(name: &str, dir: &Path, networks: &[String]) -> Result<Broker, NodeError> {
    let mut b = Broker::builder()
        .name(name)
        .persistent(true)
        .data_dir(dir)
        .transport("tcp://127.0.0.1:0")
        .admin("127.0.0.1:0");
    for n in networks {
        b = b.network(n.as_str());
    }
    b.start().await
}

/// `127.0.0.1:PORT` of the broker's (first) STOMP transport.
fn stomp_addr(b: &Broker) -> Result<String> {
    let t = b.transports();
    let first = t.first().context("the broker serves no transport")?;
    Ok(first.trim_start_matches("tcp://").to_owned())
}

/// A client of `b` subscribed to `dest` (auto ack; SUBSCRIBE waits for its receipt).
async fn consumer(b: &Broker, dest: &str) -> Result<StompClient> {
    let mut c = StompClient::connect(&stomp_addr(b)?, ConnectOptions::default()).await?;
    c.subscribe(dest, "s", AckMode::Auto, &[]).await?;
    Ok(c)
}

/// Sends a persistent message to `dest` on `b` and waits for its receipt: once this returns,
/// the message is stored.
async fn send_persistent(b: &Broker, dest: &str, body: &str) -> Result<()> {
    let mut p = StompClient::connect(&stomp_addr(b)?, ConnectOptions::default()).await?;
    p.send(dest, body.to_owned(), &[("persistent", "true")], true)
        .await?;
    p.disconnect().await?;
    Ok(())
}

/// The next frame on `c`, within [`SOON`].
async fn next_frame(c: &mut StompClient) -> Result<Frame> {
    c.recv_timeout(SOON)
        .await?
        .ok_or_else(|| anyhow!("no frame within {SOON:?}"))
}

/// The body of `f` as UTF-8.
fn body(f: &Frame) -> &str {
    std::str::from_utf8(&f.body).unwrap_or("<not UTF-8>")
}

/// Stops `b` and waits until it has (connections closed, store closed, lock released).
async fn stop(b: Broker) -> Result<()> {
    b.stop();
    tokio::time::timeout(SOON, b.wait())
        .await
        .context("the broker did not stop in time")??;
    Ok(())
}

#[tokio::test]
async fn a_built_broker_serves_a_persistent_message_to_a_consumer() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut broker = start("emb", dir.path(), &[]).await?;
    let ready = broker
        .take_events()
        .context("the events are taken once")?
        .try_recv()
        .context("a ready event before start returned")?;
    assert_eq!(ready.role, Role::Master);
    assert_eq!(ready.transports, broker.transports());
    assert!(broker.admin_url().starts_with("http://127.0.0.1:"));
    assert!(broker.take_events().is_none(), "events taken twice");

    send_persistent(&broker, "/queue/embedded", "hello").await?;
    let mut c = consumer(&broker, "/queue/embedded").await?;
    let m = next_frame(&mut c).await?;
    assert_eq!(body(&m), "hello");
    assert_eq!(m.header("persistent"), Some("true"));
    drop(c);
    stop(broker).await
}

#[tokio::test]
async fn a_stopped_broker_restarted_on_its_data_dir_recovers_the_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start("durable", dir.path(), &[]).await?;
    send_persistent(&broker, "/queue/kept", "across the restart").await?;
    stop(broker).await?;

    let broker = start("durable", dir.path(), &[]).await?;
    let mut c = consumer(&broker, "/queue/kept").await?;
    assert_eq!(body(&next_frame(&mut c).await?), "across the restart");
    drop(c);
    stop(broker).await
}

#[tokio::test]
async fn two_linked_brokers_forward_to_a_consumer_on_the_other() -> Result<()> {
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let b = start("emb-b", dir_b.path(), &[]).await?;
    let link = format!(
        "static:(tcp://{})?initialReconnectDelay=100",
        stomp_addr(&b)?
    );
    let a = start("emb-a", dir_a.path(), &[link]).await?;
    let connected = poll_until_async(SOON, async || {
        let list = a.state().network.list();
        list.connectors
            .iter()
            .flat_map(|c| &c.peers)
            .any(|p| p.state == PeerState::Connected)
    })
    .await;
    ensure!(connected, "the bridge from A to B did not come up");

    let mut c = consumer(&b, "/queue/across").await?;
    // The consumer on B is demand on A once it has crossed the bridge.
    let demand = poll_until_async(SOON, async || {
        a.state().serving().is_some_and(|s| {
            s.core
                .queue_stats()
                .iter()
                .any(|q| q.name == "across" && q.consumers > 0)
        })
    })
    .await;
    ensure!(demand, "the consumer on B is no demand on A");
    send_persistent(&a, "/queue/across", "forwarded").await?;
    let m = next_frame(&mut c).await?;
    assert_eq!(body(&m), "forwarded");
    drop(c);
    stop(a).await?;
    stop(b).await
}

#[tokio::test]
async fn the_builder_rejects_a_bad_transport_uri_with_a_typed_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for uri in ["udp://127.0.0.1:0", "tcp://127.0.0.1:99999"] {
        let r = Broker::builder()
            .data_dir(dir.path())
            .transport(uri)
            .admin("127.0.0.1:0")
            .start()
            .await;
        match r {
            Err(NodeError::Config(ConfigError::Invalid { key, .. })) => {
                assert_eq!(key, "transport", "{uri}");
            }
            Err(e) => bail!("{uri}: another error than an invalid transport: {e}"),
            Ok(b) => {
                stop(b).await?;
                bail!("{uri}: accepted");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_builder_refuses_a_non_loopback_admin_address_without_a_token() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let r = Broker::builder()
        .data_dir(dir.path())
        .transport("tcp://127.0.0.1:0")
        .admin("0.0.0.0:0")
        .start()
        .await;
    match r {
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("non-loopback"), "{message}");
            Ok(())
        }
        Ok(b) => {
            stop(b).await?;
            bail!("started with its admin API on every interface and no token")
        }
    }
}
