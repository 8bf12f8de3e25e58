//! Fuzz target: arbitrary bytes through the STOMP decoder, as a connection would feed it.
//!
//! Input layout: an 8-byte header, then the stream.
//!
//! - byte 0, bits 0-1: version 1.0, 1.1, 1.2, or 3: start at 1.2 and switch to the version a
//!   CONNECT or STOMP frame's `accept-version` negotiates (as the server does); bit 2: misuse
//!   mode (the buffer is cut between calls, which the decoder must survive).
//! - bytes 1-3: `max_frame_size`, `max_headers`, `max_header_length`: 0 the default, 1-199 that
//!   many, higher values larger limits up to `usize::MAX`.
//! - bytes 4-7: sizes of the reads the stream arrives in, cycled; 0 means the whole rest.
//!
//! Checked for every input: no panic (overflow checks are on); every call either returns an
//! item and removes its bytes, or waits, or fails (so no loop); no call allocates more than a
//! bound proportional to the bytes it may look at, which the frame size limit caps; reading in
//! any split gives the items and the failure that reading the whole stream at once gives; every
//! frame, encoded again in any version, decodes, and in its own version and in 1.2 to itself
//! (plus the `content-length` the encoder adds); every error renders.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mq_shared::defaults;
use mq_shared::frame::{Command, Decoder, Frame, FrameError, Item, Limits, Version, encode};

/// The system allocator, counting the bytes it hands out.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HEADER: usize = 8;

/// A limit from its selector byte.
fn limit(sel: u8, default: usize) -> usize {
    match sel {
        0 => default,
        1..=199 => usize::from(sel),
        200..=239 => usize::from(sel - 199) * 1024,
        // The top of the range: configuration accepts any positive number.
        _ => usize::MAX - usize::from(255 - sel),
    }
}

/// What one run over the stream produced: the items, and whether it ended in an error.
#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Item>,
    failed: bool,
}

/// How the bytes reach the decoder.
struct Feed<'a> {
    sizes: &'a [u8],
    misuse: bool,
}

fn run(stream: &[u8], feed: &Feed<'_>, mode: u8, limits: Limits) -> Outcome {
    let mut dec = Decoder::new(limits);
    let negotiate = mode == 3;
    dec.set_version(match mode {
        0 => Version::V1_0,
        1 => Version::V1_1,
        _ => Version::V1_2,
    });
    let mut buf = BytesMut::with_capacity(stream.len());
    let mut items = Vec::new();
    let mut rest = stream;
    let mut read = 0usize;
    while !rest.is_empty() {
        let size = match feed.sizes[read % feed.sizes.len()] {
            0 => rest.len(),
            n => usize::from(n).min(rest.len()),
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        read += 1;
        buf.extend_from_slice(chunk);
        if feed.misuse && read.is_multiple_of(4) {
            // A caller that replaced its buffer: the decoder must not slice past the end.
            let keep = buf.len() / 2;
            buf.truncate(keep);
        }
        loop {
            let before = buf.len();
            let version = dec.version();
            let result = decode_bounded(&mut dec, &mut buf, limits);
            match result {
                Ok(None) => break,
                Ok(Some(item)) => {
                    assert!(
                        buf.len() < before,
                        "an item was returned but no bytes consumed"
                    );
                    if let Item::Frame(frame) = &item {
                        if !feed.misuse {
                            check_round_trip(frame, version);
                        }
                        if negotiate
                            && matches!(frame.command, Command::Connect | Command::Stomp)
                            && let Some(v) = Version::negotiate(frame.header("accept-version"))
                        {
                            dec.set_version(v);
                        }
                    }
                    items.push(item);
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return Outcome {
                        items,
                        failed: true,
                    };
                }
            }
        }
    }
    Outcome {
        items,
        failed: false,
    }
}

/// One decode call, failing the run if it allocates beyond what the buffered bytes it may
/// read justify: a frame's bytes past `max_frame_size` must fail it, not be parsed.
fn decode_bounded(
    dec: &mut Decoder,
    buf: &mut BytesMut,
    limits: Limits,
) -> Result<Option<Item>, FrameError> {
    // Headers cost two strings and a vector slot (48 bytes) each, for at least three bytes of
    // input ("a:" and its LF); the vector doubles. 64 bytes per input byte covers it.
    let readable = buf.len().min(limits.max_frame_size.saturating_add(1));
    let bound = readable.saturating_mul(64).saturating_add(4096);
    let start = ALLOCATED.load(Ordering::Relaxed);
    let result = dec.decode(buf);
    let used = ALLOCATED.load(Ordering::Relaxed) - start;
    assert!(
        used <= bound,
        "one decode call allocated {used} bytes with {} buffered and limits {limits:?}",
        buf.len()
    );
    result
}

/// The frame as it decodes after `encode`: with the `content-length` the encoder adds.
fn as_encoded(frame: &Frame) -> Frame {
    let mut expected = frame.clone();
    if !frame.body.is_empty()
        && matches!(
            frame.command,
            Command::Send | Command::Message | Command::Error
        )
        && frame.header("content-length").is_none()
    {
        expected.push_header("content-length", frame.body.len().to_string());
    }
    expected
}

/// The frame encoded in `version` and decoded again, with limits the encoded frame meets
/// exactly (escaping may make it longer than the frame it was decoded from).
fn re_decode(frame: &Frame, version: Version) -> Frame {
    let mut wire = BytesMut::new();
    encode(frame, version, &mut wire);
    let limits = Limits {
        max_frame_size: wire.len() - 1,
        max_headers: as_encoded(frame).headers.len(),
        max_header_length: wire.len(),
    };
    let mut dec = Decoder::new(limits);
    dec.set_version(version);
    let text = String::from_utf8_lossy(&wire).into_owned();
    let again = match dec.decode(&mut wire) {
        Ok(Some(Item::Frame(again))) => again,
        other => panic!("{frame:?} encoded in {version} as {text:?} decodes as {other:?}"),
    };
    assert!(
        wire.is_empty(),
        "bytes left after the re-encoded frame {text:?}"
    );
    again
}

/// A frame read in `read` must encode, in every version, to a frame that decodes: the node
/// delivers what one client sent to consumers of any version. In the version it was read in,
/// and in 1.2 (which can escape everything), it must come back unchanged.
fn check_round_trip(frame: &Frame, read: Version) {
    let expected = as_encoded(frame);
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let again = re_decode(frame, version);
        if version == read || version == Version::V1_2 {
            assert_eq!(again, expected, "read in {read}, encoded in {version}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (header, stream) = data.split_at(HEADER);
    let mode = header[0] & 3;
    let limits = Limits {
        max_frame_size: limit(header[1], defaults::MAX_FRAME_SIZE),
        max_headers: limit(header[2], defaults::MAX_HEADERS),
        max_header_length: limit(header[3], defaults::MAX_HEADER_LENGTH),
    };
    let split = Feed {
        sizes: &header[4..8],
        misuse: header[0] & 4 != 0,
    };
    let chunked = run(stream, &split, mode, limits);
    if !split.misuse {
        let whole = Feed {
            sizes: &[0],
            misuse: false,
        };
        assert_eq!(
            run(stream, &whole, mode, limits),
            chunked,
            "reading in pieces {:?} differs from reading at once",
            &header[4..8]
        );
    }
});
