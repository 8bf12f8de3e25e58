//! A destination, parsed once where it enters (a STOMP header, an admin request, a store
//! record) and carried parsed from there on.
//!
//! ```text
//! destination = "/queue/" name | "/topic/" name        name: 1 to 1024 bytes
//! ```
//!
//! `/queue/x` and `/topic/x` are distinct destinations. Patterns with wildcards are
//! [`crate::uri::DestinationFilter`]s, not destinations.

use std::fmt;
use std::sync::Arc;

pub use crate::uri::DestinationKind;

/// Longest destination name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// Why a string is not a destination; the text is fit for an ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Neither `/queue/` nor `/topic/`.
    #[error("unsupported destination '{0}': use /queue/NAME or /topic/NAME")]
    Unsupported(String),
    /// The name is empty or too long.
    #[error("destination '{0}' has an empty or too long name")]
    BadName(String),
}

/// `/queue/NAME` or `/topic/NAME`; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    kind: DestinationKind,
    /// The whole text, prefix included.
    full: Arc<str>,
}

impl Destination {
    /// Parses `/queue/NAME` or `/topic/NAME`.
    pub fn parse(s: &str) -> Result<Destination, DestinationError> {
        let (kind, name) = if let Some(n) = s.strip_prefix("/queue/") {
            (DestinationKind::Queue, n)
        } else if let Some(n) = s.strip_prefix("/topic/") {
            (DestinationKind::Topic, n)
        } else {
            return Err(DestinationError::Unsupported(s.to_string()));
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DestinationError::BadName(s.to_string()));
        }
        Ok(Destination {
            kind,
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
            full: Arc::from(format!("{}{name}", kind.prefix())),
        }
    }

    /// Queue or topic.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// Whether this is a queue.
    pub fn is_queue(&self) -> bool {
        self.kind == DestinationKind::Queue
    }

    /// The name without its prefix.
    pub fn name(&self) -> &str {
        &self.full[self.kind.prefix().len()..]
    }

    /// The whole text, e.g. `/queue/orders`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
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
    }
}
