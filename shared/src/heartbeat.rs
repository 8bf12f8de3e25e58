//! STOMP 1.1+ heart-beating: the `heart-beat` header and what two sides agree on. Pure.
//!
//! Each side sends `heart-beat: cx,cy` ("I can send every cx ms, I want to hear from you every
//! cy ms"; 0 means never). A side sends beats every `max(its cx, the other's cy)` when both are
//! non-zero, and expects the other's beats every `max(its cy, the other's cx)` when both are
//! non-zero. The server, the client library and the network bridges all negotiate here.

use std::time::Duration;

/// A `heart-beat` header value: (ms between our beats, ms between beats we want); 0 = none.
pub type HeartBeat = (u64, u64);

/// Parses a `heart-beat` value `"cx,cy"` (spaces around the numbers allowed).
pub fn parse(value: &str) -> Option<HeartBeat> {
    let (x, y) = value.split_once(',')?;
    Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// What was agreed: how often this side must write something, and how often it must hear
/// from the other side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreed {
    /// Send an EOL when nothing was written for this long.
    pub send: Option<Duration>,
    /// The peer promised to write at least this often.
    pub recv: Option<Duration>,
}

/// The intervals this side keeps, given what it sent (`mine`) and what the peer sent (`theirs`).
pub fn agree(mine: HeartBeat, theirs: HeartBeat) -> Agreed {
    let (my_send, my_want) = mine;
    let (their_send, their_want) = theirs;
    Agreed {
        send: (my_send > 0 && their_want > 0)
            .then(|| Duration::from_millis(my_send.max(their_want))),
        recv: (my_want > 0 && their_send > 0)
            .then(|| Duration::from_millis(my_want.max(their_send))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_agree() {
        assert_eq!(parse(" 100 , 200"), Some((100, 200)));
        assert_eq!(parse("100"), None);
        assert_eq!(parse("a,1"), None);
        let a = agree((1000, 500), (2000, 3000));
        assert_eq!(a.send, Some(Duration::from_millis(3000)));
        assert_eq!(a.recv, Some(Duration::from_millis(2000)));
        assert_eq!(agree((0, 500), (2000, 3000)).send, None);
        assert_eq!(agree((1000, 500), (0, 3000)).recv, None);
    }
}
