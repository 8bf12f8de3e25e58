//! Destination filters: ActiveMQ's wildcards (`*`, `>`) over `.`-separated names, with our
//! `/queue/` and `/topic/` prefixes.

use std::fmt;
use std::str::FromStr;

use super::error::UriError;

/// Whether a destination is a queue or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// `/queue/...`: point to point.
    Queue,
    /// `/topic/...`: publish and subscribe.
    Topic,
}

impl DestinationKind {
    /// `/queue/` or `/topic/`.
    pub fn prefix(self) -> &'static str {
        match self {
            DestinationKind::Queue => "/queue/",
            DestinationKind::Topic => "/topic/",
        }
    }

    /// Splits `/queue/NAME` or `/topic/NAME` into kind and name; a bare `NAME` is a queue.
    /// `None` for any other `/...` prefix.
    fn split(destination: &str) -> Option<(DestinationKind, &str)> {
        if let Some(name) = destination.strip_prefix("/queue/") {
            Some((DestinationKind::Queue, name))
        } else if let Some(name) = destination.strip_prefix("/topic/") {
            Some((DestinationKind::Topic, name))
        } else if destination.starts_with('/') {
            None
        } else {
            Some((DestinationKind::Queue, destination))
        }
    }
}

/// A destination pattern with ActiveMQ's wildcards over `.`-separated names: `*` matches exactly
/// one segment, `>` one or more trailing segments (so `ORDERS.>` matches `ORDERS.EU` and
/// `ORDERS.EU.DE` but not `ORDERS`) and may only come last. Wildcards are whole segments; `A*`
/// is a literal name. Written with our prefixes, `/queue/ORDERS.>` or `/topic/*.PRICE`; a bare
/// name without a prefix (`ORDERS.>`) means a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationFilter {
    kind: DestinationKind,
    pattern: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl DestinationFilter {
    /// Parses `/queue/PATTERN`, `/topic/PATTERN` or a bare queue `PATTERN`.
    pub fn parse(s: &str) -> Result<Self, UriError> {
        let text = s.trim();
        let bad = |reason| UriError::BadDestination {
            filter: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (kind, pattern) = DestinationKind::split(text)
            .ok_or_else(|| bad("want /queue/NAME, /topic/NAME or a bare queue NAME"))?;
        if pattern.is_empty() {
            return Err(bad("empty name"));
        }
        let parts: Vec<&str> = pattern.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "" => return Err(bad("empty segment between dots")),
                "*" => Segment::One,
                ">" if i + 1 == parts.len() => Segment::Rest,
                ">" => return Err(bad("'>' may only be the last segment")),
                literal => Segment::Literal(literal.to_string()),
            });
        }
        Ok(DestinationFilter {
            kind,
            pattern: pattern.to_string(),
            segments,
        })
    }

    /// Queue or topic.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// The pattern without its prefix, e.g. `ORDERS.>`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `destination` (`/queue/X`, `/topic/X`, or a bare queue name) matches.
    pub fn matches(&self, destination: &str) -> bool {
        let Some((kind, name)) = DestinationKind::split(destination) else {
            return false;
        };
        if kind != self.kind {
            return false;
        }
        let mut parts = name.split('.');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return parts.next().is_some(),
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl FromStr for DestinationFilter {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        DestinationFilter::parse(s)
    }
}

impl fmt::Display for DestinationFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.prefix(), self.pattern)
    }
}
