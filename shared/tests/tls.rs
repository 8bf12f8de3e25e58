//! TLS over loopback with certificates made at test time (the test harness's
//! [`mq_tests::certs::Pki`]): STOMP frames through `Connection` over `tls::Stream`, and each
//! way a handshake or a file can be refused.

#![cfg(feature = "client")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mq_shared::connection::{ConnError, Connection};
use mq_shared::frame::{Command, Frame, Limits};
use mq_shared::tls::{self, ServerConfig, Stream, TlsAcceptor, TlsError, TlsFiles};
use mq_shared::uri::HostPort;
use mq_tests::certs::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T = ()> = std::result::Result<T, Error>;

/// Bound on anything a test waits for.
const LIMIT: Duration = Duration::from_secs(10);

/// Writes `content` to the file `name` next to the certificates.
fn file(pki: &Pki, name: &str, content: &str) -> Result<PathBuf> {
    let path = pki.dir().join(name);
    std::fs::write(&path, content)?;
    Ok(path)
}

/// A loopback listener and its address.
async fn listener() -> Result<(TcpListener, String)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    Ok((l, addr))
}

/// Accepts one connection and completes the TLS handshake with `config`.
async fn accept_one(
    l: TcpListener,
    config: Arc<ServerConfig>,
) -> std::result::Result<Stream, TlsError> {
    let (tcp, _) = l.accept().await.map_err(|error| TlsError::Connect {
        addr: "listener".into(),
        error,
    })?;
    tls::accept(tcp, Some(&TlsAcceptor::from(config))).await
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    Ok(tokio::time::timeout(LIMIT, f).await?)
}

/// The server's side of a STOMP exchange: CONNECT in, CONNECTED out, SEND in, RECEIPT out.
async fn serve_stomp(stream: Stream) -> Result<Frame> {
    let mut conn = Connection::new(stream, Limits::default());
    let connect = conn.read_frame().await?;
    assert_eq!(connect.command, Command::Connect);
    conn.queue(&Frame::new(Command::Connected).with_header("version", "1.2"));
    conn.flush().await?;
    let send = conn.read_frame().await?;
    let receipt = send.header("receipt").unwrap_or_default().to_string();
    conn.queue(&Frame::new(Command::Receipt).with_header("receipt-id", receipt));
    conn.flush().await?;
    Ok(send)
}

/// The client's side: CONNECT, wait for CONNECTED, SEND a binary body, wait for the RECEIPT.
async fn client_stomp(stream: Stream) -> std::result::Result<Frame, ConnError> {
    let mut conn = Connection::new(stream, Limits::default());
    conn.queue(
        &Frame::new(Command::Connect)
            .with_header("accept-version", "1.2")
            .with_header("host", "localhost"),
    );
    conn.flush().await?;
    let connected = conn.read_frame().await?;
    assert_eq!(connected.command, Command::Connected);
    conn.queue(
        &Frame::new(Command::Send)
            .with_header("destination", "/queue/orders")
            .with_header("receipt", "r1")
            .with_body(Bytes::from_static(b"\x00binary\xffbody")),
    );
    conn.flush().await?;
    conn.read_frame().await
}

#[tokio::test]
async fn stomp_frames_round_trip_over_tls() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(l, tls::server_config(&pki.node_files(), false)?));
    let client = tls::client_config(&pki.ca, None)?;
    let stream = within(tls::connect(&addr, Some(&client), "127.0.0.1")).await??;
    assert!(stream.is_tls() && stream.peer_verified());
    let served = tokio::spawn(async move {
        let stream = server.await??;
        assert!(stream.is_tls() && !stream.peer_verified());
        serve_stomp(stream).await
    });
    let receipt = within(client_stomp(stream)).await??;
    assert_eq!(receipt.command, Command::Receipt);
    assert_eq!(receipt.header("receipt-id"), Some("r1"));
    let send = within(served).await???;
    assert_eq!(send.header("destination"), Some("/queue/orders"));
    assert_eq!(&send.body[..], b"\x00binary\xffbody");
    Ok(())
}

#[tokio::test]
async fn a_host_name_in_the_certificate_verifies_and_endpoints_pick_their_scheme() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let port: u16 = addr.rsplit_once(':').map_or("0", |(_, p)| p).parse()?;
    let server = tokio::spawn(accept_one(l, tls::server_config(&pki.node_files(), false)?));
    let client = tls::client_config(&pki.ca, None)?;
    // localhost resolves to loopback and is in the certificate as a DNS name.
    let endpoint = HostPort::tls("localhost", port);
    let stream = within(tls::connect_endpoint(&endpoint, Some(&client))).await??;
    assert!(stream.is_tls());
    let _ = server.await??;
    // An ssl:// endpoint without a TLS configuration is refused before connecting.
    let e = tls::connect_endpoint(&endpoint, None).await;
    assert!(matches!(e, Err(TlsError::NoCa)), "{e:?}");
    // A tcp:// endpoint connects in plain.
    let (l, addr) = listener().await?;
    let port: u16 = addr.rsplit_once(':').map_or("0", |(_, p)| p).parse()?;
    let plain = within(tls::connect_endpoint(
        &HostPort::new("127.0.0.1", port),
        Some(&client),
    ))
    .await??;
    assert!(!plain.is_tls());
    drop(l);
    Ok(())
}

#[tokio::test]
async fn plain_bytes_to_a_tls_transport_get_no_connected() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(l, tls::server_config(&pki.node_files(), false)?));
    let mut raw = TcpStream::connect(&addr).await?;
    raw.write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await?;
    let accepted = within(server).await??;
    let Err(e) = accepted else {
        panic!("a plain client must not pass the TLS handshake");
    };
    assert!(matches!(e, TlsError::Handshake { .. }), "{e:?}");
    assert!(e.to_string().contains("does not speak TLS"), "{e}");
    // Whatever the server answered (a TLS alert, or nothing), it is not a STOMP frame.
    let mut answer = Vec::new();
    let _ = within(raw.read_to_end(&mut answer)).await?;
    assert!(!String::from_utf8_lossy(&answer).contains("CONNECTED"));
    Ok(())
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(
        l,
        tls::server_config(&pki.rogue_files(), false)?,
    ));
    let client = tls::client_config(&pki.ca, None)?;
    let e = within(tls::connect(&addr, Some(&client), "localhost")).await?;
    let Err(e) = e else {
        panic!("the client must refuse a certificate its CA did not sign");
    };
    let text = e.to_string();
    assert!(text.contains("not signed by the trusted CA"), "{text}");
    assert!(text.contains(&addr), "{text}");
    // The server sees the client's refusal.
    assert!(within(server).await??.is_err());
    Ok(())
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let _server = tokio::spawn(accept_one(l, tls::server_config(&pki.node_files(), false)?));
    let client = tls::client_config(&pki.ca, None)?;
    let e = within(tls::connect(&addr, Some(&client), "broker.example")).await?;
    let text = e.map(|_| ()).map_err(|e| e.to_string());
    assert!(
        text.as_ref()
            .is_err_and(|t| t.contains("not valid for the name")),
        "{text:?}"
    );
    Ok(())
}

#[tokio::test]
async fn need_client_auth_refuses_a_client_without_a_certificate() -> Result {
    let pki = Pki::new();
    let config = tls::server_config(&pki.node_files(), true)?;
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(l, config.clone()));
    let anonymous = tls::client_config(&pki.ca, None)?;
    // With TLS 1.3 the client may finish its side before the server checks; either way no
    // STOMP frame gets through.
    let refused = match within(tls::connect(&addr, Some(&anonymous), "127.0.0.1")).await? {
        Err(e) => e.to_string(),
        Ok(stream) => match within(client_stomp(stream)).await? {
            Err(e) => e.to_string(),
            Ok(f) => panic!("got {f:?} without a client certificate"),
        },
    };
    assert!(!refused.is_empty());
    let e = within(server).await??.map(|_| ());
    let text = e.map_err(|e| e.to_string());
    assert!(
        text.as_ref()
            .is_err_and(|t| t.contains("presented no certificate")),
        "{text:?}"
    );

    // With one signed by the CA, the same transport serves it.
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(l, config));
    let identified = tls::client_config(
        &pki.ca,
        Some((pki.client_cert.as_path(), pki.client_key.as_path())),
    )?;
    let stream = within(tls::connect(&addr, Some(&identified), "127.0.0.1")).await??;
    let served = tokio::spawn(async move {
        let stream = server.await??;
        assert!(stream.peer_verified());
        serve_stomp(stream).await
    });
    let receipt = within(client_stomp(stream)).await??;
    assert_eq!(receipt.command, Command::Receipt);
    within(served).await???;
    Ok(())
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() -> Result {
    let pki = Pki::new();
    let (l, addr) = listener().await?;
    let server = tokio::spawn(accept_one(l, tls::server_config(&pki.node_files(), true)?));
    // The rogue certificate is signed by another CA.
    let client = tls::client_config(
        &pki.ca,
        Some((pki.rogue_cert.as_path(), pki.rogue_key.as_path())),
    )?;
    if let Ok(stream) = within(tls::connect(&addr, Some(&client), "127.0.0.1")).await? {
        assert!(within(client_stomp(stream)).await?.is_err());
    }
    let e = within(server).await??.map(|_| ());
    assert!(e.is_err_and(|e| e.to_string().contains("certificate")));
    Ok(())
}

#[test]
fn bad_files_are_clear_errors() -> Result {
    let pki = Pki::new();
    let missing = pki.dir().join("nope.crt");
    let with = |cert: &Path, key: &Path, ca: Option<&Path>| TlsFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        ca: ca.map(Path::to_path_buf),
    };
    let err = |files: &TlsFiles, need: bool| match tls::server_config(files, need) {
        Ok(_) => panic!("{files:?} should be refused"),
        Err(e) => e,
    };

    let e = err(&with(&missing, &pki.node_key, None), false);
    assert!(
        matches!(
            e,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("nope.crt"), "{e}");

    let text = file(&pki, "notes.txt", "just some text\n")?;
    let e = err(&with(&text, &pki.node_key, None), false);
    assert!(matches!(e, TlsError::NoPem { .. }), "{e:?}");
    assert!(e.to_string().contains("notes.txt") && e.to_string().contains("BEGIN CERTIFICATE"));
    let e = err(&with(&pki.node_cert, &text, None), false);
    assert!(e.to_string().contains("holds no PEM private key"), "{e}");
    // A certificate where the key should be is no key either.
    let e = err(&with(&pki.node_cert, &pki.node_cert, None), false);
    assert!(
        matches!(
            e,
            TlsError::NoPem {
                wanted: "private key",
                ..
            }
        ),
        "{e:?}"
    );

    let broken = file(&pki, "broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n")?;
    let e = err(&with(&broken, &pki.node_key, None), false);
    assert!(matches!(e, TlsError::BadFile { .. }), "{e:?}");

    let e = err(&with(&pki.node_cert, &pki.client_key, None), false);
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    assert!(
        e.to_string().contains("does not match the certificate"),
        "{e}"
    );

    let e = err(&with(&pki.node_cert, &pki.node_key, None), true);
    assert!(matches!(e, TlsError::NoClientCa), "{e:?}");

    let e = err(&with(&pki.node_cert, &pki.node_key, Some(&text)), true);
    assert!(matches!(e, TlsError::NoPem { what: "CA", .. }), "{e:?}");

    let e = tls::client_config(&missing, None).map(|_| ());
    assert!(e.is_err_and(|e| matches!(e, TlsError::Read { what: "CA", .. })));
    let files = with(&pki.node_cert, &pki.node_key, None);
    assert!(matches!(files.client_config(), Err(TlsError::NoCa)));
    assert!(pki.node_files().client_config().is_ok());
    Ok(())
}
