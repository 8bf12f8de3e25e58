//! Signed multicast advertisements: with `multicast://...?secret=S`, each datagram carries an
//! HMAC-SHA256 of its text and a timestamp, and a node ignores any datagram that is unsigned,
//! wrongly signed or too old. Pure: the caller passes the clock.
//!
//! ```text
//! datagram = advert ";ts=" MILLIS ";sig=" HEX
//! advert   = ActiveMQ's text, e.g. default.ActiveMQ-4.alive.%broker1%ssl://127.0.0.1:61614
//! MILLIS   = sender's wall clock, ms since the Unix epoch (decimal)
//! HEX      = 64 lowercase hex digits: HMAC-SHA256(key = S, message = advert ";ts=" MILLIS)
//!
//! default.ActiveMQ-4.alive.%b1%tcp://127.0.0.1:61613;ts=1767225600000;sig=5f0c…e9
//! ```
//!
//! The timestamp bounds replays: a recorded datagram is refused once it is more than
//! [`MULTICAST_SIGNATURE_MAX_AGE`] away from the receiver's clock (either way), so nodes sharing
//! a secret need clocks that agree within that. Within it a replay repeats what the sender
//! said anyway (alive adverts go out every 500 ms). The suffix goes after ActiveMQ's text, so a
//! node without a secret reads a signed advert's service as a malformed URI and ignores it.

use std::time::Duration;

use hmac::{KeyInit, Mac};
pub use mq_shared::defaults::MULTICAST_SIGNATURE_MAX_AGE;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const TS: &str = ";ts=";
const SIG: &str = ";sig=";

/// Why a datagram was not accepted as a signed advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    /// Not UTF-8 text.
    #[error("not a text datagram")]
    NotText,
    /// No `;ts=...;sig=...` suffix.
    #[error("unsigned advertisement")]
    Unsigned,
    /// The signature does not match: another secret, or altered text.
    #[error("wrongly signed advertisement")]
    BadSignature,
    /// Signed too long ago, or too far in the future.
    #[error("advertisement signed {ms} ms away from this node's clock")]
    Stale {
        /// Distance from the receiver's clock.
        ms: u64,
    },
}

fn mac(secret: &str, signed: &str) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(signed.as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The datagram for `advert` (ActiveMQ's text) signed with `secret` at `now_ms`.
pub fn sign(secret: &str, advert: &str, now_ms: u64) -> String {
    let signed = format!("{advert}{TS}{now_ms}");
    let tag = hex(&mac(secret, &signed).finalize().into_bytes());
    format!("{signed}{SIG}{tag}")
}

/// The advertisement text of `datagram` if it is signed with `secret` (constant-time compare)
/// within [`MULTICAST_SIGNATURE_MAX_AGE`] of `now_ms`.
pub fn verify<'a>(secret: &str, datagram: &'a [u8], now_ms: u64) -> Result<&'a str, AdvertError> {
    let text = std::str::from_utf8(datagram).map_err(|_| AdvertError::NotText)?;
    let (signed, hex) = text.rsplit_once(SIG).ok_or(AdvertError::Unsigned)?;
    let (advert, ts) = signed.rsplit_once(TS).ok_or(AdvertError::Unsigned)?;
    let tag = decode_hex(hex).ok_or(AdvertError::BadSignature)?;
    mac(secret, signed)
        .verify_slice(&tag)
        .map_err(|_| AdvertError::BadSignature)?;
    // Checked after the signature: the timestamp is trusted only once it is known to be the
    // sender's.
    let ts: u64 = ts.parse().map_err(|_| AdvertError::BadSignature)?;
    let ms = now_ms.abs_diff(ts);
    if Duration::from_millis(ms) > MULTICAST_SIGNATURE_MAX_AGE {
        return Err(AdvertError::Stale { ms });
    }
    Ok(advert)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AD: &str = "default.ActiveMQ-4.alive.%b1%ssl://127.0.0.1:61614";
    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn a_signed_advert_verifies_and_gives_back_activemqs_text() {
        let d = sign("s3cret", AD, NOW);
        assert!(d.starts_with(&format!("{AD};ts={NOW};sig=")), "{d}");
        assert_eq!(d.len(), AD.len() + ";ts=".len() + 13 + ";sig=".len() + 64);
        assert_eq!(verify("s3cret", d.as_bytes(), NOW), Ok(AD));
        assert_eq!(verify("s3cret", d.as_bytes(), NOW + 59_000), Ok(AD));
        assert_eq!(verify("s3cret", d.as_bytes(), NOW - 59_000), Ok(AD));
        // The same text and time sign the same way (HMAC is deterministic).
        assert_eq!(sign("s3cret", AD, NOW), d);
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // The well-known vector: HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog").
        let tag = mac("key", "The quick brown fox jumps over the lazy dog")
            .finalize()
            .into_bytes();
        assert_eq!(
            hex(&tag),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // What is signed is the advert with its timestamp.
        let d = sign("key", "ad", 7);
        let want = hex(&mac("key", "ad;ts=7").finalize().into_bytes());
        assert_eq!(d, format!("ad;ts=7;sig={want}"));
    }

    #[test]
    fn unsigned_wrong_and_altered_adverts_are_refused() {
        let d = sign("s3cret", AD, NOW);
        assert_eq!(
            verify("s3cret", AD.as_bytes(), NOW),
            Err(AdvertError::Unsigned)
        );
        assert_eq!(
            verify("other", d.as_bytes(), NOW),
            Err(AdvertError::BadSignature)
        );
        let altered = d.replace("61614", "61615");
        assert_eq!(
            verify("s3cret", altered.as_bytes(), NOW),
            Err(AdvertError::BadSignature)
        );
        let dead = d.replace(".alive.", ".dead.");
        assert_eq!(
            verify("s3cret", dead.as_bytes(), NOW),
            Err(AdvertError::BadSignature)
        );
        let later = d.replace(&format!("ts={NOW}"), &format!("ts={}", NOW + 1));
        assert_eq!(
            verify("s3cret", later.as_bytes(), NOW),
            Err(AdvertError::BadSignature)
        );
        let short = &d[..d.len() - 2];
        assert_eq!(
            verify("s3cret", short.as_bytes(), NOW),
            Err(AdvertError::BadSignature)
        );
        let upper = format!("{}{}", &d[..d.len() - 64], d[d.len() - 64..].to_uppercase());
        assert_eq!(verify("s3cret", upper.as_bytes(), NOW), Ok(AD));
        assert_eq!(
            verify("s3cret", b"\xff\xfe", NOW),
            Err(AdvertError::NotText)
        );
        assert_eq!(verify("s3cret", b";sig=", NOW), Err(AdvertError::Unsigned));
    }

    #[test]
    fn old_and_future_adverts_are_refused() {
        let d = sign("s3cret", AD, NOW);
        assert_eq!(
            verify("s3cret", d.as_bytes(), NOW + 60_001),
            Err(AdvertError::Stale { ms: 60_001 })
        );
        assert_eq!(
            verify("s3cret", d.as_bytes(), NOW - 120_000),
            Err(AdvertError::Stale { ms: 120_000 })
        );
    }

    #[test]
    fn text_with_the_markers_inside_still_verifies() {
        let odd = "g.ActiveMQ-4.alive.%b;ts=1;sig=x%tcp://h:1";
        let d = sign("k", odd, NOW);
        assert_eq!(verify("k", d.as_bytes(), NOW), Ok(odd));
    }
}
