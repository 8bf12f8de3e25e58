//! Helpers for the security tests: [`SecurityFile`] writes a node's `--security` file (users
//! with argon2id hashes, groups, authorization entries), [`login`] and [`refused`] drive CONNECT
//! with credentials, [`metric`] reads a Prometheus counter, and [`raw_http`] speaks HTTP/1.1
//! byte for byte (any `Host` and `Origin`, plain or over TLS) where reqwest would fill headers
//! in itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use mq_shared::client::{ClientError, ConnectOptions, StompClient};
use mq_shared::tls::ClientConfig;
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Node, SOON};

/// Hashes made so far, by password: argon2id is slow by design, and tests reuse passwords.
static HASHES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

/// The argon2id PHC string of `password` (made once per password and test process).
pub fn hash(password: &str) -> String {
    let mut cache = HASHES.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(password.to_string())
        .or_insert_with(|| match mq_shared::password::hash(password) {
            Ok(h) => h.to_string(),
            Err(e) => panic!("hashing a test password: {e}"),
        })
        .clone()
}

/// One `[[authorization]]` entry: groups per right, `None` leaves the key out (nobody).
#[derive(Debug, Clone)]
struct Entry {
    destination: String,
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
    admin: Option<Vec<String>>,
}

/// A security file under construction; [`SecurityFile::write_to`] saves it as TOML.
#[derive(Debug, Clone, Default)]
pub struct SecurityFile {
    anonymous: bool,
    bridge_groups: Vec<String>,
    users: Vec<(String, String, Vec<String>)>,
    entries: Vec<Entry>,
}

fn list(groups: &[&str]) -> Vec<String> {
    groups.iter().map(|g| g.to_string()).collect()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl SecurityFile {
    /// An empty file: no anonymous access, no users, no entries.
    pub fn new() -> SecurityFile {
        SecurityFile::default()
    }

    /// `anonymous = ...`.
    pub fn anonymous(mut self, allowed: bool) -> SecurityFile {
        self.anonymous = allowed;
        self
    }

    /// `bridge-groups = [...]`.
    pub fn bridge_groups(mut self, groups: &[&str]) -> SecurityFile {
        self.bridge_groups = list(groups);
        self
    }

    /// A `[[users]]` entry with the hash of `password`.
    pub fn user(mut self, name: &str, password: &str, groups: &[&str]) -> SecurityFile {
        self.users
            .push((name.to_string(), hash(password), list(groups)));
        self
    }

    /// An `[[authorization]]` entry; an empty slice leaves that right out (nobody has it).
    pub fn entry(
        mut self,
        destination: &str,
        read: &[&str],
        write: &[&str],
        admin: &[&str],
    ) -> SecurityFile {
        let grant = |g: &[&str]| (!g.is_empty()).then(|| list(g));
        self.entries.push(Entry {
            destination: destination.to_string(),
            read: grant(read),
            write: grant(write),
            admin: grant(admin),
        });
        self
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut t = format!("anonymous = {}\n", self.anonymous);
        if !self.bridge_groups.is_empty() {
            let _ = writeln!(t, "bridge-groups = {}", toml_list(&self.bridge_groups));
        }
        for (name, hash, groups) in &self.users {
            let _ = write!(
                t,
                "\n[[users]]\nname = {name:?}\npassword = {hash:?}\ngroups = {}\n",
                toml_list(groups)
            );
        }
        for e in &self.entries {
            let _ = write!(
                t,
                "\n[[authorization]]\ndestination = {:?}\n",
                e.destination
            );
            for (key, groups) in [("read", &e.read), ("write", &e.write), ("admin", &e.admin)] {
                if let Some(g) = groups {
                    let _ = writeln!(t, "{key} = {}", toml_list(g));
                }
            }
        }
        t
    }

    /// Writes the file to `path`.
    pub fn write_to(&self, path: &Path) {
        std::fs::write(path, self.to_toml())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// A security file in a temporary directory of its own, kept while this lives.
pub struct SecurityDir {
    _dir: TempDir,
    /// The file.
    pub path: PathBuf,
}

impl SecurityDir {
    /// Writes `file` as `security.toml` in a fresh temporary directory.
    pub fn new(file: &SecurityFile) -> SecurityDir {
        let dir = tempfile::Builder::new()
            .prefix("mq-sec-")
            .tempdir()
            .expect("a temporary directory for the security file");
        let path = dir.path().join("security.toml");
        file.write_to(&path);
        SecurityDir { _dir: dir, path }
    }

    /// `["--security", PATH]`.
    pub fn args(&self) -> [String; 2] {
        ["--security".into(), self.path.display().to_string()]
    }

    /// Replaces the file's content with `text` (a reload picks it up).
    pub fn replace(&self, text: &str) {
        std::fs::write(&self.path, text)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
    }
}

/// Connect options with `login` and `passcode`.
pub fn login(user: &str, password: &str) -> ConnectOptions {
    ConnectOptions {
        login: Some(user.to_string()),
        passcode: Some(password.to_string()),
        ..ConnectOptions::default()
    }
}

/// [`login`] over TLS with `tls`.
pub fn login_tls(user: &str, password: &str, tls: Arc<ClientConfig>) -> ConnectOptions {
    ConnectOptions {
        tls: Some(tls),
        ..login(user, password)
    }
}

/// Connects with `opts`, expecting the node to refuse; returns the error.
pub async fn refused(addr: &str, opts: ConnectOptions) -> ClientError {
    match StompClient::connect(addr, opts).await {
        Ok(c) => panic!(
            "CONNECT to {addr} should have been refused, got {:?}",
            c.connected()
        ),
        Err(e) => e,
    }
}

/// The `message` of an ERROR the node answered with; panics on any other failure.
pub fn server_message(e: &ClientError) -> &str {
    match e {
        ClientError::Server { message, .. } => message,
        other => panic!("expected an ERROR frame from the node, got: {other}"),
    }
}

/// The value of the counter or gauge `name` (without labels) in the node's `/metrics`.
pub async fn metric(node: &Node, name: &str) -> u64 {
    let r = node.admin().get("/metrics").await;
    assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
    let value = r.body.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    match value {
        Some(v) => v as u64,
        None => panic!("/metrics has no sample {name}:\n{}", r.body),
    }
}

/// An HTTP answer read byte for byte: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// Status code.
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// Body text (de-chunked).
    pub body: String,
}

/// Sends `request` (a complete HTTP/1.1 request; `Connection: close` is the caller's) on
/// `stream` and reads the answer to the end, within [`SOON`].
pub async fn raw_http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> RawReply {
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let mut bytes = Vec::new();
        // A TLS peer may end without close_notify; what arrived before counts.
        if let Err(e) = stream.read_to_end(&mut bytes).await
            && bytes.is_empty()
        {
            return Err(e);
        }
        Ok::<_, std::io::Error>(bytes)
    };
    let bytes = match tokio::time::timeout(SOON, exchange).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => panic!("HTTP exchange failed: {e}"),
        Err(_) => panic!("no complete HTTP answer within {SOON:?}"),
    };
    parse_reply(&String::from_utf8_lossy(&bytes))
}

fn parse_reply(text: &str) -> RawReply {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        panic!("not an HTTP answer: {text:?}");
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    RawReply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A `METHOD path` request to `host_header` with the given extra header lines and body, closing
/// the connection after the answer.
pub fn request_text(
    method: &str,
    path: &str,
    host_header: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n");
    for (k, v) in extra {
        let _ = write!(r, "{k}: {v}\r\n");
    }
    let _ = write!(r, "Content-Length: {}\r\n\r\n{body}", body.len());
    r
}

/// A plain HTTP request to the node's admin listener (see [`request_text`]).
pub async fn admin_raw(
    node: &Node,
    method: &str,
    path: &str,
    host_header: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> RawReply {
    let addr = node.admin_url().trim_start_matches("http://").to_string();
    let tcp = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => panic!("connecting to the admin API at {addr}: {e}"),
    };
    raw_http(tcp, &request_text(method, path, host_header, extra, body)).await
}
