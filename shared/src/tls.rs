//! TLS (rustls, with the `ring` provider) for `ssl://` transports and links: PEM files, the
//! server and client configurations, and [`Stream`], one socket type for plain and TLS
//! connections that [`crate::connection::Connection`] runs over.
//!
//! ```text
//! node transport   TcpListener ─accept─▶ accept(tcp, Some(&acceptor)) ─▶ Stream::Tls ─▶ Connection
//!                  server_config(&TlsFiles { cert, key, ca }, needClientAuth) ─▶ TlsAcceptor
//! bridge / client  connect(addr, Some(&client_config(ca, identity)), host) ─▶ Stream::Tls ─▶ Connection
//! plain tcp://     accept(tcp, None) / connect(addr, None, _) ─▶ Stream::Plain
//! ```
//!
//! - Servers present `cert` (a chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1 PEM). With
//!   `needClientAuth`, clients must present a certificate signed by `ca`.
//! - Clients verify the server against one CA file (`tls-ca`), never the system's roots: a
//!   cluster's certificates come from its own CA, and trusting every public CA would let any
//!   certificate for the name through. The host name (or IP address) dialled must be in the
//!   server certificate's subject alternative names.
//! - A client may present a certificate of its own (a node's bridges present the node's).
//!   Certificates used both ways need both extended key usages (`serverAuth`, `clientAuth`).
//! - Handshakes, accepted or made, are bounded by [`defaults::TLS_HANDSHAKE_TIMEOUT`].
//! - Every error names the file or the peer, and says what is wrong in words (an unknown CA, a
//!   name mismatch, a missing client certificate) rather than rustls' enum names.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, CertificateError, Error as RustlsError, InconsistentKeys, RootCertStore,
};

use crate::defaults;
use crate::uri::HostPort;

pub use tokio_rustls::rustls::{ClientConfig, ServerConfig};
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why TLS could not be set up or a handshake failed. Each message names the file or the peer.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} file {}: {error}", path.display())]
    Read {
        /// `certificate`, `private key` or `CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A file holds no PEM section of the kind wanted.
    #[error("the {what} file {} holds no PEM {wanted} (want a '-----BEGIN {marker}-----' section)", path.display())]
    NoPem {
        /// `certificate`, `private key` or `CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for, in words.
        wanted: &'static str,
        /// The PEM label looked for.
        marker: &'static str,
    },
    /// A file is not well-formed PEM, or its content is not a usable certificate or key.
    #[error("the {what} file {} is not usable: {reason}", path.display())]
    BadFile {
        /// `certificate`, `private key` or `CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error("the private key {} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// `needClientAuth` without a CA to check client certificates against.
    #[error("needClientAuth=true needs a CA file (tls-ca) to verify client certificates against")]
    NoClientCa,
    /// A client configuration without a CA to check servers against.
    #[error("an ssl:// link needs a CA file (tls-ca) to verify the server against")]
    NoCa,
    /// Any other refusal of rustls to build a configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A host that cannot be a TLS server name.
    #[error("'{0}' cannot be checked against a certificate (not a DNS name or IP address)")]
    BadServerName(String),
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// Where to.
        addr: String,
        /// Why.
        error: io::Error,
    },
    /// The handshake failed.
    #[error("TLS handshake with {peer} failed: {reason}")]
    Handshake {
        /// The peer's address (and name, for a client).
        peer: String,
        /// Why, in words.
        reason: String,
    },
    /// The handshake did not finish in time.
    #[error("TLS handshake with {peer} did not finish within {} ms", defaults::TLS_HANDSHAKE_TIMEOUT.as_millis())]
    HandshakeTimeout {
        /// The peer's address.
        peer: String,
    },
}

/// The PEM files of a node's TLS identity and trust: `tls-cert`, `tls-key` and `tls-ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (PEM `CERTIFICATE` sections).
    pub cert: PathBuf,
    /// Private key of the leaf (PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    pub key: PathBuf,
    /// CA certificate(s) that peers' certificates must be signed by.
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The configuration of this node's outgoing `ssl://` links: servers verified against `ca`
    /// (required), this node's certificate presented to servers that ask for one.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let ca = self.ca.as_deref().ok_or(TlsError::NoCa)?;
        client_config(ca, Some((&self.cert, &self.key)))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configuration of an `ssl://` transport: `files.cert` and `files.key` presented; with
/// `need_client_auth`, client certificates required and verified against `files.ca`.
pub fn server_config(
    files: &TlsFiles,
    need_client_auth: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(&files.cert, "certificate")?;
    let key = load_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = if need_client_auth {
        let ca = files.ca.as_deref().ok_or(TlsError::NoClientCa)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| key_error(e, files.cert.as_path(), files.key.as_path()))?;
    Ok(Arc::new(config))
}

/// The configuration of a client of `ssl://` endpoints: servers verified against the CA
/// certificate(s) in `ca`; `identity` (certificate chain and key files), if given, presented to
/// servers that require a client certificate.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(load_roots(ca)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert, "certificate")?, load_key(key)?)
            .map_err(|e| key_error(e, cert, key))?,
    };
    Ok(Arc::new(config))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

fn bad_pem(path: &Path, what: &'static str, e: pem::Error) -> TlsError {
    TlsError::BadFile {
        what,
        path: path.to_path_buf(),
        reason: format!("bad PEM: {e}"),
    }
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, what, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what,
            path: path.to_path_buf(),
            wanted: "certificate",
            marker: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "private key";
    let bytes = read(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPem {
            what: WHAT,
            path: path.to_path_buf(),
            wanted: "private key",
            marker: "PRIVATE KEY",
        },
        e => bad_pem(path, WHAT, e),
    })
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, "CA")? {
        roots.add(cert).map_err(|e| TlsError::BadFile {
            what: "CA",
            path: path.to_path_buf(),
            reason: format!("not a CA certificate: {}", describe(&e)),
        })?;
    }
    Ok(Arc::new(roots))
}

fn config_error(e: RustlsError) -> TlsError {
    TlsError::Config(describe(&e))
}

/// A rustls refusal of a certificate and key, told as a mismatch when it is one.
fn key_error(e: RustlsError, cert: &Path, key: &Path) -> TlsError {
    match e {
        RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        e => TlsError::BadFile {
            what: "private key",
            path: key.to_path_buf(),
            reason: describe(&e),
        },
    }
}

/// A rustls error in words.
fn describe(e: &RustlsError) -> String {
    match e {
        RustlsError::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the peer's certificate is not signed by the trusted CA (tls-ca)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the peer's certificate is not valid for the name or address dialled".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the peer's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the peer's certificate is not valid yet".into()
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the peer's certificate is not for this use (check its extended key usage)".into()
            }
            other => format!("the peer's certificate was refused: {other}"),
        },
        RustlsError::NoCertificatesPresented => {
            "the client presented no certificate (the transport has needClientAuth=true)".into()
        }
        RustlsError::AlertReceived(alert) => format!("the peer refused the handshake ({alert:?})"),
        RustlsError::InvalidMessage(_) | RustlsError::InappropriateMessage { .. } => {
            "the peer does not speak TLS (a plain tcp:// client or server?)".into()
        }
        other => other.to_string(),
    }
}

/// An I/O error of a handshake in words: the rustls error inside, if any.
fn describe_io(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RustlsError>())
    {
        Some(tls) => describe(tls),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the handshake".into()
        }
        None => e.to_string(),
    }
}

/// Connects to `addr` (`host:port`); with `tls`, completes a TLS handshake verifying the server
/// as `server_name` (a DNS name or an IP address). Bounded by
/// [`defaults::TLS_HANDSHAKE_TIMEOUT`] once the TCP connection is up.
pub async fn connect(
    addr: &str,
    tls: Option<&Arc<ClientConfig>>,
    server_name: &str,
) -> Result<Stream, TlsError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| TlsError::Connect {
            addr: addr.to_string(),
            error,
        })?;
    let Some(config) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| TlsError::BadServerName(server_name.to_string()))?;
    let peer = format!("{server_name} ({addr})");
    let handshake = TlsConnector::from(config.clone()).connect(name, tcp);
    match tokio::time::timeout(defaults::TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream.into()))),
        Ok(Err(e)) => Err(TlsError::Handshake {
            peer,
            reason: describe_io(&e),
        }),
        Err(_) => Err(TlsError::HandshakeTimeout { peer }),
    }
}

/// Connects to an endpoint as its scheme says: `ssl://` with `tls` (an error without it),
/// `tcp://` in plain, verifying the server as the endpoint's host.
pub async fn connect_endpoint(
    endpoint: &HostPort,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Stream, TlsError> {
    let addr = endpoint.to_addr_string();
    if !endpoint.secure {
        return connect(&addr, None, &endpoint.host).await;
    }
    let config = tls.ok_or(TlsError::NoCa)?;
    connect(&addr, Some(config), &endpoint.host).await
}

/// Completes the server side of an accepted connection: a TLS handshake with `acceptor`, or
/// nothing for a plain transport. Bounded by [`defaults::TLS_HANDSHAKE_TIMEOUT`]; a client that
/// does not speak TLS fails here, before any STOMP frame is read.
pub async fn accept(tcp: TcpStream, acceptor: Option<&TlsAcceptor>) -> Result<Stream, TlsError> {
    let Some(acceptor) = acceptor else {
        return Ok(Stream::Plain(tcp));
    };
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "a client".to_string(), |a| a.to_string());
    match tokio::time::timeout(defaults::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream.into()))),
        Ok(Err(e)) => Err(TlsError::Handshake {
            peer,
            reason: describe_io(&e),
        }),
        Err(_) => Err(TlsError::HandshakeTimeout { peer }),
    }
}

/// A connected socket, plain or TLS, for [`crate::connection::Connection`].
pub enum Stream {
    /// `tcp://`.
    Plain(TcpStream),
    /// `ssl://`, either side.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath (for `set_nodelay`, addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Whether the peer presented a certificate that was verified (servers with
    /// `needClientAuth`; always for a client talking to a TLS server).
    pub fn peer_verified(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty()),
        }
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_tls() { "Tls" } else { "Plain" };
        f.debug_tuple(kind).field(self.tcp()).finish()
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Stream {
        Stream::Plain(tcp)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
