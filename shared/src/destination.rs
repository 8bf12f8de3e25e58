//! A destination, parsed once where it enters (a STOMP header, an admin request, a store
//! record) and carried parsed from there on.
//!
//! ```text
//! destination = "/queue/" name | "/topic/" name                     name: 1 to 1024 bytes
//!             | "/remote-temp-queue/" id | "/remote-temp-topic/" id  a temporary destination
//! composite   = destination { "," destination }                      SEND only
//! ```
//!
//! `/queue/x` and `/topic/x` are distinct destinations. A name whose `.`-separated segments
//! include `*` or `>` is a wildcard ([`Destination::has_wildcard`]): a subscription to it
//! receives from every matching destination, and nothing may be sent to it. Parsing itself
//! accepts such names (store records written before wildcards existed must still read back);
//! the transport refuses a SEND to one.
//!
//! Temporary destinations (`/temp-queue/NAME`, `/temp-topic/NAME` on the wire) are scoped to
//! the connection that uses them: the transport maps a connection's NAME to a broker-wide id
//! and carries it as `/remote-temp-queue/ID` or `/remote-temp-topic/ID` (ActiveMQ's spelling),
//! which any connection, on any node, may SEND to. They never match a wildcard. Patterns for
//! authorization and network filters are [`crate::uri::DestinationFilter`]s.

use std::fmt;
use std::sync::Arc;

pub use crate::uri::DestinationKind;

/// Longest destination name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// Prefix of a connection's own temporary queue, as a client writes it.
pub const TEMP_QUEUE_PREFIX: &str = "/temp-queue/";
/// Prefix of a connection's own temporary topic, as a client writes it.
pub const TEMP_TOPIC_PREFIX: &str = "/temp-topic/";
/// Prefix of a temporary queue by its broker-wide id.
pub const REMOTE_TEMP_QUEUE_PREFIX: &str = "/remote-temp-queue/";
/// Prefix of a temporary topic by its broker-wide id.
pub const REMOTE_TEMP_TOPIC_PREFIX: &str = "/remote-temp-topic/";

/// Why a string is not a destination; the text is fit for an ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Neither `/queue/` nor `/topic/` (nor a temporary destination's prefix).
    #[error(
        "unsupported destination '{0}': use /queue/NAME, /topic/NAME, /temp-queue/NAME or /temp-topic/NAME"
    )]
    Unsupported(String),
    /// The name is empty or too long.
    #[error("destination '{0}' has an empty or too long name")]
    BadName(String),
    /// A composite destination with an empty part (`/queue/a,,/queue/b`).
    #[error("composite destination '{0}' has an empty part")]
    EmptyPart(String),
}

/// `/queue/NAME`, `/topic/NAME`, or a temporary queue or topic by its id; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    kind: DestinationKind,
    temp: bool,
    /// The whole text, prefix included.
    full: Arc<str>,
}

impl Destination {
    /// Parses `/queue/NAME`, `/topic/NAME`, `/remote-temp-queue/ID` or `/remote-temp-topic/ID`.
    /// A connection's own `/temp-queue/NAME` is not a destination by itself: the transport
    /// maps it first.
    pub fn parse(s: &str) -> Result<Destination, DestinationError> {
        let (kind, temp, name) = if let Some(n) = s.strip_prefix("/queue/") {
            (DestinationKind::Queue, false, n)
        } else if let Some(n) = s.strip_prefix("/topic/") {
            (DestinationKind::Topic, false, n)
        } else if let Some(n) = s.strip_prefix(REMOTE_TEMP_QUEUE_PREFIX) {
            (DestinationKind::Queue, true, n)
        } else if let Some(n) = s.strip_prefix(REMOTE_TEMP_TOPIC_PREFIX) {
            (DestinationKind::Topic, true, n)
        } else {
            return Err(DestinationError::Unsupported(s.to_string()));
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DestinationError::BadName(s.to_string()));
        }
        Ok(Destination {
            kind,
            temp,
            full: Arc::from(s),
        })
    }

    /// The queue `name` (without prefix).
    pub fn queue(name: &str) -> Destination {
        Destination::of(DestinationKind::Queue, name)
    }

    /// The topic `name` (without prefix).
    pub fn topic(name: &str) -> Destination {
        Destination::of(DestinationKind::Topic, name)
    }

    /// A destination of `kind` called `name` (without prefix).
    pub fn of(kind: DestinationKind, name: &str) -> Destination {
        Destination {
            kind,
            temp: false,
            full: Arc::from(format!("{}{name}", kind.prefix())),
        }
    }

    /// The temporary queue or topic with broker-wide id `id`.
    pub fn temporary(kind: DestinationKind, id: &str) -> Destination {
        Destination {
            kind,
            temp: true,
            full: Arc::from(format!("{}{id}", temp_prefix(kind))),
        }
    }

    /// Queue or topic.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// Whether this is a queue (temporary or not).
    pub fn is_queue(&self) -> bool {
        self.kind == DestinationKind::Queue
    }

    /// Whether this is a temporary queue or topic.
    pub fn is_temp(&self) -> bool {
        self.temp
    }

    /// Whether a segment of the name is `*` or `>`: a pattern to subscribe to, not a place to
    /// send to. Temporary destinations are never wildcards.
    pub fn has_wildcard(&self) -> bool {
        !self.temp && self.name().split('.').any(|s| s == "*" || s == ">")
    }

    /// The name without its prefix (a temporary destination's id).
    pub fn name(&self) -> &str {
        let prefix = if self.temp {
            temp_prefix(self.kind)
        } else {
            self.kind.prefix()
        };
        &self.full[prefix.len()..]
    }

    /// The whole text, e.g. `/queue/orders`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

fn temp_prefix(kind: DestinationKind) -> &'static str {
    match kind {
        DestinationKind::Queue => REMOTE_TEMP_QUEUE_PREFIX,
        DestinationKind::Topic => REMOTE_TEMP_TOPIC_PREFIX,
    }
}

/// A connection's own temporary destination as a client writes it, `/temp-queue/NAME` or
/// `/temp-topic/NAME`: its kind and NAME.
pub fn own_temp(s: &str) -> Option<(DestinationKind, &str)> {
    if let Some(n) = s.strip_prefix(TEMP_QUEUE_PREFIX) {
        Some((DestinationKind::Queue, n))
    } else {
        s.strip_prefix(TEMP_TOPIC_PREFIX)
            .map(|n| (DestinationKind::Topic, n))
    }
}

/// The parts of a composite destination (`/queue/a,/topic/b`), each trimmed; one part for a
/// plain destination. An empty part is an error.
pub fn composite_parts(s: &str) -> Result<Vec<&str>, DestinationError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() > 1 && parts.iter().any(|p| p.is_empty()) {
        return Err(DestinationError::EmptyPart(s.to_string()));
    }
    Ok(parts)
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for Destination {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Destination, DestinationError> {
        Destination::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let d = Destination::parse("/queue/a.b").ok();
        assert_eq!(d.as_ref().map(Destination::name), Some("a.b"));
        assert_eq!(d.as_ref().map(Destination::is_queue), Some(true));
        assert_eq!(Destination::topic("t").to_string(), "/topic/t");
        assert_ne!(Destination::topic("x"), Destination::queue("x"));
        assert!(matches!(
            Destination::parse("/foo/x"),
            Err(DestinationError::Unsupported(_))
        ));
        assert!(matches!(
            Destination::parse("/queue/"),
            Err(DestinationError::BadName(_))
        ));
        let long = format!("/topic/{}", "x".repeat(MAX_NAME_LEN + 1));
        assert!(Destination::parse(&long).is_err());
        // A connection's own temporary destination is mapped by the transport first.
        assert!(Destination::parse("/temp-queue/x").is_err());
    }

    #[test]
    fn temporary_destinations_are_their_own_kind() -> Result<(), DestinationError> {
        let t = Destination::parse("/remote-temp-queue/ID:b-1:1")?;
        assert!(t.is_temp() && t.is_queue());
        assert_eq!(t.name(), "ID:b-1:1");
        assert_eq!(
            t,
            Destination::temporary(DestinationKind::Queue, "ID:b-1:1")
        );
        assert_ne!(t, Destination::queue("ID:b-1:1"));
        let t = Destination::parse("/remote-temp-topic/x.>")?;
        assert!(t.is_temp() && !t.is_queue() && !t.has_wildcard());
        assert_eq!(
            own_temp("/temp-topic/r"),
            Some((DestinationKind::Topic, "r"))
        );
        assert_eq!(own_temp("/queue/r"), None);
        Ok(())
    }

    #[test]
    fn wildcards_and_composites() -> Result<(), DestinationError> {
        for (s, wild) in [
            ("/queue/a.*", true),
            ("/topic/a.>", true),
            ("/topic/*", true),
            ("/queue/a*.b", false),
            ("/queue/a.b>", false),
        ] {
            assert_eq!(Destination::parse(s)?.has_wildcard(), wild, "{s}");
        }
        assert_eq!(composite_parts("/queue/a")?, vec!["/queue/a"]);
        assert_eq!(
            composite_parts("/queue/a, /topic/b")?,
            vec!["/queue/a", "/topic/b"]
        );
        assert!(composite_parts("/queue/a,").is_err());
        Ok(())
    }
}
