//! The store URL, `--store postgres://USER@HOST:PORT/DB`.
//!
//! ```text
//! postgres://USER@HOST[:PORT]/DATABASE        (postgresql:// is an alias)
//!            │    │     │      └ required, one path segment
//!            │    │     └ 1..=65535, 5432 when left out
//!            │    └ a name, an IPv4 address or [an IPv6 address]
//!            └ required; no ":PASSWORD" (the password comes from --store-password-file)
//! ```
//!
//! `%XX` escapes are decoded in the user and the database. No query (`?...`) or fragment is
//! accepted: an option that would be silently ignored is refused instead. Errors never echo
//! the text between `//` and `@`, where a password typed by mistake would be.

use std::fmt;
use std::str::FromStr;

/// PostgreSQL's default port.
pub const DEFAULT_PORT: u16 = 5432;

/// A parsed `postgres://USER@HOST:PORT/DB` URL. It holds no password, so it is safe to log and
/// to show in the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// The user to log in as.
    pub user: String,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The database holding the store's tables.
    pub database: String,
}

/// Why a store URL was refused; each is a sentence naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    /// A scheme other than `postgres://` or `postgresql://`.
    #[error("the store URL must start with postgres:// (postgres://USER@HOST:PORT/DB), not {0}://")]
    Scheme(String),
    /// No `SCHEME://` at all.
    #[error("the store URL must start with postgres:// (postgres://USER@HOST:PORT/DB)")]
    NoScheme,
    /// No `USER@` before the host.
    #[error("the store URL names no user: write postgres://USER@HOST:PORT/DB")]
    NoUser,
    /// `USER:PASSWORD@`: passwords do not belong in URLs, which end up in logs and process lists.
    #[error(
        "the store URL must not contain a password (USER:PASSWORD@): put the password in the \
         file named by --store-password-file"
    )]
    PasswordInUrl,
    /// Nothing between `@` and the port or path.
    #[error("the store URL names no host: write postgres://USER@HOST:PORT/DB")]
    NoHost,
    /// A `[` without its `]`, or text after it other than `:PORT`.
    #[error("the store URL has a malformed IPv6 host {0:?}: write [ADDRESS]:PORT")]
    BadIpv6(String),
    /// The port is not a number in 1..=65535.
    #[error("the store URL has an invalid port {0:?}: it must be a number from 1 to 65535")]
    BadPort(String),
    /// No `/DB`, or an empty one.
    #[error("the store URL names no database: write postgres://USER@HOST:PORT/DB")]
    NoDatabase,
    /// `/a/b`: a database is one path segment (a '/' in its name is written %2F).
    #[error("the store URL's database {0:?} contains a '/': a database is one name")]
    BadDatabase(String),
    /// `?...` or `#...`.
    #[error(
        "the store URL has options ({0:?}), which are not supported: write postgres://USER@HOST:PORT/DB"
    )]
    Options(String),
    /// A `%` not followed by two hex digits, or an escape that is not UTF-8.
    #[error("the store URL has an invalid %-escape in {0}")]
    BadEscape(&'static str),
}

impl FromStr for PgUrl {
    type Err = PgUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = match s.split_once("://") {
            Some(("postgres" | "postgresql", rest)) => rest,
            // Only the scheme is echoed: the rest may hold a password.
            Some((scheme, _)) => return Err(PgUrlError::Scheme(scheme.to_string())),
            None => return Err(PgUrlError::NoScheme),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // The user ends at the authority's last '@' (a '@' in a user name is written %40).
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or(PgUrlError::NoUser)?;
        if userinfo.contains(':') {
            return Err(PgUrlError::PasswordInUrl);
        }
        for part in [hostport, path] {
            if let Some(i) = part.find(['?', '#']) {
                return Err(PgUrlError::Options(part[i..].to_string()));
            }
        }
        let user = decode(userinfo, "the user")?;
        if user.is_empty() {
            return Err(PgUrlError::NoUser);
        }
        let (host, port) = split_host_port(hostport)?;
        if path.is_empty() {
            return Err(PgUrlError::NoDatabase);
        }
        if path.contains('/') {
            return Err(PgUrlError::BadDatabase(path.to_string()));
        }
        let database = decode(path, "the database")?;
        Ok(PgUrl {
            user,
            host,
            port,
            database,
        })
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(authority: &str) -> Result<(String, u16), PgUrlError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| PgUrlError::BadIpv6(authority.to_string()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| PgUrlError::BadIpv6(authority.to_string()))?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(PgUrlError::NoHost);
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(PgUrlError::BadPort(p.to_string())),
        },
    };
    Ok((host.to_string(), port))
}

/// Decodes `%XX` escapes.
fn decode(s: &str, what: &'static str) -> Result<String, PgUrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(PgUrlError::BadEscape(what))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| PgUrlError::BadEscape(what))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgUrlError::BadEscape(what))
}

/// Escapes what [`PgUrl::from_str`] would read as syntax.
fn encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for c in s.chars() {
        match c {
            '%' | '@' | ':' | '/' | '?' | '#' | '[' | ']' => write!(f, "%{:02X}", c as u32)?,
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(f, "%{b:02X}")?;
                }
            }
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres://")?;
        encode(&self.user, f)?;
        if self.host.contains(':') {
            write!(f, "@[{}]:{}/", self.host, self.port)?;
        } else {
            write!(f, "@{}:{}/", self.host, self.port)?;
        }
        encode(&self.database, f)
    }
}

impl PgUrl {
    /// `HOST:PORT` (IPv6 in brackets), for messages about reaching the server.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(user: &str, host: &str, port: u16, db: &str) -> PgUrl {
        PgUrl {
            user: user.into(),
            host: host.into(),
            port,
            database: db.into(),
        }
    }

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            (
                "postgres://mq@127.0.0.1:5433/broker",
                url("mq", "127.0.0.1", 5433, "broker"),
            ),
            (
                "postgresql://mq@db.example/broker",
                url("mq", "db.example", 5432, "broker"),
            ),
            ("postgres://mq@[::1]:6000/b", url("mq", "::1", 6000, "b")),
            ("postgres://mq@[::1]/b", url("mq", "::1", 5432, "b")),
            ("postgres://a%40b@h:1/my%20db", url("a@b", "h", 1, "my db")),
            ("postgres://mq@h:1/a%2Fb", url("mq", "h", 1, "a/b")),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<PgUrl>(), Ok(want.clone()), "{text}");
            // Display gives a URL that parses back to the same value.
            assert_eq!(want.to_string().parse::<PgUrl>(), Ok(want), "{text}");
        }
        assert_eq!(
            url("mq", "::1", 6000, "b").to_string(),
            "postgres://mq@[::1]:6000/b"
        );
        assert_eq!(url("mq", "::1", 6000, "b").address(), "[::1]:6000");
    }

    #[test]
    fn refuses_malformed_urls_with_the_part_at_fault() {
        use PgUrlError as E;
        let cases = [
            ("mysql://mq@h/db", E::Scheme("mysql".into())),
            ("mq:secret@127.0.0.1:5432/db", E::NoScheme),
            ("postgres://h:5432/db", E::NoUser),
            ("postgres://@h:5432/db", E::NoUser),
            ("postgres://mq:secret@h:5432/db", E::PasswordInUrl),
            ("postgres://mq@:5432/db", E::NoHost),
            ("postgres://mq@[::1:5432/db", E::BadIpv6("[::1:5432".into())),
            ("postgres://mq@[::1]5432/db", E::BadIpv6("[::1]5432".into())),
            ("postgres://mq@h:0/db", E::BadPort("0".into())),
            ("postgres://mq@h:99999/db", E::BadPort("99999".into())),
            ("postgres://mq@h:+5/db", E::BadPort("+5".into())),
            ("postgres://mq@h:/db", E::BadPort(String::new())),
            ("postgres://mq@h:5432", E::NoDatabase),
            ("postgres://mq@h:5432/", E::NoDatabase),
            ("postgres://mq@h/a/b", E::BadDatabase("a/b".into())),
            ("postgres://h/db@x", E::NoUser),
            (
                "postgres://mq@h/db?sslmode=require",
                E::Options("?sslmode=require".into()),
            ),
            ("postgres://mq@h/db#x", E::Options("#x".into())),
            ("postgres://m%4@h/db", E::BadEscape("the user")),
            ("postgres://mq@h/%ff", E::BadEscape("the database")),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<PgUrl>(), Err(want), "{text}");
        }
    }

    #[test]
    fn errors_never_echo_a_password() {
        for text in [
            "postgres://mq:hunter2@h/db",
            "postgres://mq:hunter2@h:0/db",
            "postgres://mq:hunter2@h/db?x=1",
            "mq:hunter2@h/db",
            "mysql://mq:hunter2@h/db",
        ] {
            let e = text.parse::<PgUrl>().expect_err(text).to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
