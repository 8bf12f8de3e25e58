//! The incremental decoder: bytes from the stream in, heart-beats and frames out, with the
//! limits checked while bytes arrive.

use bytes::{Buf, BytesMut};

use super::{Command, Frame, FrameError, Item, Limits, Version};

/// Where the decoder is inside the frame at the front of the buffer. Offsets are from the
/// front of the buffer, which always holds the start of the current frame.
#[derive(Debug)]
enum State {
    /// Between frames: expecting heart-beats or a command line.
    Idle,
    /// The command line is read; header lines are being read.
    Headers {
        command: Command,
        headers: Vec<(String, String)>,
        /// Start of the next header line.
        line: usize,
        /// Bytes from `line` already known to hold no LF.
        scanned: usize,
    },
    /// The blank line is read; waiting for the body and its NUL.
    Body {
        command: Command,
        headers: Vec<(String, String)>,
        /// Offset of the first body byte.
        start: usize,
        /// Declared `content-length`, if any.
        length: Option<usize>,
        /// Bytes from `start` already known to hold no NUL (no `content-length` only).
        scanned: usize,
    },
}

/// An incremental STOMP decoder for one connection.
///
/// Feed it a buffer that the caller only appends to between calls (the decoder remembers its
/// progress in it); it removes each item's bytes from the front when it returns the item.
#[derive(Debug)]
pub struct Decoder {
    version: Version,
    limits: Limits,
    state: State,
    /// The `receipt` header of the frame being decoded, once its line is read.
    receipt: Option<String>,
    /// The `receipt` of the frame the last error was about.
    failed_receipt: Option<String>,
}

impl Decoder {
    /// A decoder with the given limits, reading with 1.2 rules until [`Decoder::set_version`].
    /// (CONNECT and STOMP frames are never escaped, so the version does not matter for them.)
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            version: Version::V1_2,
            limits,
            state: State::Idle,
            receipt: None,
            failed_receipt: None,
        }
    }

    /// Reads later frames with the escaping rules of `v` (once negotiated).
    pub fn set_version(&mut self, v: Version) {
        self.version = v;
    }

    /// The version whose rules the decoder applies.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The next heart-beat or frame from the front of `buf`.
    ///
    /// `Ok(None)` means the bytes so far are a valid beginning: read more and call again. On
    /// `Ok(Some(_))` the item's bytes are removed from `buf`. After an error the stream is
    /// unusable; the decoder resets, but the connection should be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FrameError> {
        let result = self.step(buf);
        if result.is_err() {
            self.state = State::Idle;
            self.failed_receipt = self.receipt.take();
        }
        result
    }

    /// The `receipt` header of the frame the last error was about, when its header lines had
    /// been read that far (an oversized SEND that asked for a receipt): the ERROR answering it
    /// carries `receipt-id`.
    pub fn failed_receipt(&self) -> Option<&str> {
        self.failed_receipt.as_deref()
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FrameError> {
        // A caller that replaced the buffer instead of appending to it starts a new frame
        // rather than slicing past the end.
        let known = match &self.state {
            State::Idle => 0,
            State::Headers { line, scanned, .. } => line + scanned,
            State::Body { start, scanned, .. } => start + scanned,
        };
        if known > buf.len() {
            self.state = State::Idle;
        }
        loop {
            match std::mem::replace(&mut self.state, State::Idle) {
                State::Idle => {
                    // NUL bytes between frames are tolerated, as ActiveMQ and RabbitMQ do
                    // (some clients end a frame with an extra NUL, or send "\n\0").
                    let nuls = buf.iter().take_while(|&&b| b == 0).count();
                    if nuls > 0 {
                        buf.advance(nuls);
                        continue;
                    }
                    self.receipt = None;
                    let Some((command, line)) = self.command_line(buf)? else {
                        return Ok(None);
                    };
                    let Some(command) = command else {
                        // An EOL alone: a heart-beat.
                        buf.advance(line);
                        return Ok(Some(Item::HeartBeat));
                    };
                    self.state = State::Headers {
                        command,
                        headers: Vec::new(),
                        line,
                        scanned: 0,
                    };
                }
                State::Headers {
                    command,
                    mut headers,
                    mut line,
                    mut scanned,
                } => loop {
                    let rest = &buf[line..];
                    let Some(lf) = find(&rest[scanned..], b'\n').map(|i| i + scanned) else {
                        // A CR just before the LF to come does not count against the limit
                        // (subtracted, not added to the limit, which may be usize::MAX).
                        if rest.len().saturating_sub(1) > self.limits.max_header_length {
                            return Err(FrameError::HeaderTooLong {
                                limit: self.limits.max_header_length,
                            });
                        }
                        self.check_size(buf.len())?;
                        self.state = State::Headers {
                            command,
                            headers,
                            line,
                            scanned: rest.len(),
                        };
                        return Ok(None);
                    };
                    // A line past the size limit is not parsed: the frame is too large already.
                    self.check_size(line + lf + 1)?;
                    let text = strip_cr(&rest[..lf]);
                    if text.len() > self.limits.max_header_length {
                        return Err(FrameError::HeaderTooLong {
                            limit: self.limits.max_header_length,
                        });
                    }
                    if text.is_empty() {
                        let start = line + lf + 1;
                        let length = content_length(&headers)?;
                        if let Some(n) = length {
                            // The NUL's offset must be a number, as well as within the limit
                            // (which may be usize::MAX): the body state adds them unchecked.
                            let end = start.checked_add(n).ok_or(FrameError::FrameTooLarge {
                                limit: self.limits.max_frame_size,
                            })?;
                            self.check_size(end)?;
                        }
                        self.state = State::Body {
                            command,
                            headers,
                            start,
                            length,
                            scanned: 0,
                        };
                        break;
                    }
                    if headers.len() >= self.limits.max_headers {
                        return Err(FrameError::TooManyHeaders {
                            limit: self.limits.max_headers,
                        });
                    }
                    let h = self.header(command, text)?;
                    if self.receipt.is_none() && h.0 == "receipt" {
                        self.receipt = Some(h.1.clone());
                    }
                    headers.push(h);
                    line += lf + 1;
                    scanned = 0;
                },
                State::Body {
                    command,
                    headers,
                    start,
                    length,
                    scanned,
                } => {
                    let end = match length {
                        Some(n) => {
                            let end = start + n;
                            if buf.len() <= end {
                                self.state = State::Body {
                                    command,
                                    headers,
                                    start,
                                    length,
                                    scanned,
                                };
                                return Ok(None);
                            }
                            if buf[end] != 0 {
                                return Err(FrameError::MissingNul);
                            }
                            end
                        }
                        None => match find(&buf[start + scanned..], 0) {
                            Some(i) => {
                                let end = start + scanned + i;
                                self.check_size(end)?;
                                end
                            }
                            None => {
                                self.check_size(buf.len())?;
                                self.state = State::Body {
                                    command,
                                    headers,
                                    start,
                                    length,
                                    scanned: buf.len() - start,
                                };
                                return Ok(None);
                            }
                        },
                    };
                    self.receipt = None;
                    let mut frame_bytes = buf.split_to(end + 1);
                    frame_bytes.advance(start);
                    frame_bytes.truncate(end - start);
                    return Ok(Some(Item::Frame(Frame {
                        command,
                        headers,
                        body: frame_bytes.freeze(),
                    })));
                }
            }
        }
    }

    /// Reads the command line at the front of `buf`: `Ok(None)` if incomplete, else the
    /// command (`None` for an empty line, a heart-beat) and the length of the line with its EOL.
    #[allow(clippy::type_complexity)]
    fn command_line(&self, buf: &[u8]) -> Result<Option<(Option<Command>, usize)>, FrameError> {
        // The longest command is 11 bytes; never look further than that plus CRLF.
        let window = &buf[..buf.len().min(16)];
        match find(window, b'\n') {
            Some(lf) => {
                let text = strip_cr(&window[..lf]);
                if text.is_empty() {
                    return Ok(Some((None, lf + 1)));
                }
                match Command::parse(text) {
                    Some(c) => Ok(Some((Some(c), lf + 1))),
                    None => Err(unknown(text)),
                }
            }
            None => {
                let text = match window.split_last() {
                    Some((b'\r', head)) => head,
                    _ => window,
                };
                if window.len() > 13 || !Command::is_prefix(text) || text.contains(&b'\r') {
                    Err(unknown(window))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Parses one header line (EOL stripped).
    fn header(&self, command: Command, line: &[u8]) -> Result<(String, String), FrameError> {
        let Some(colon) = find(line, b':') else {
            return Err(FrameError::MalformedHeader(lossy(line)));
        };
        if colon == 0 {
            return Err(FrameError::MalformedHeader(lossy(line)));
        }
        let name = std::str::from_utf8(&line[..colon]).map_err(|_| FrameError::InvalidUtf8)?;
        let value = std::str::from_utf8(&line[colon + 1..]).map_err(|_| FrameError::InvalidUtf8)?;
        if command.is_unescaped() || self.version == Version::V1_0 {
            Ok((name.to_owned(), value.to_owned()))
        } else {
            Ok((
                unescape(name, self.version)?,
                unescape(value, self.version)?,
            ))
        }
    }

    /// Fails if a frame whose NUL is at or beyond `end` would exceed the size limit.
    fn check_size(&self, end: usize) -> Result<(), FrameError> {
        if end > self.limits.max_frame_size {
            Err(FrameError::FrameTooLarge {
                limit: self.limits.max_frame_size,
            })
        } else {
            Ok(())
        }
    }
}

/// Undoes header escaping (1.1 or 1.2 rules).
fn unescape(s: &str, version: Version) -> Result<String, FrameError> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some('r') if version >= Version::V1_2 => out.push('\r'),
            Some(other) => return Err(FrameError::InvalidEscape(format!("\\{other}"))),
            None => return Err(FrameError::InvalidEscape("\\".to_owned())),
        }
    }
    Ok(out)
}

/// The first `content-length` header as a byte count, if present.
fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, FrameError> {
    match headers.iter().find(|(n, _)| n == "content-length") {
        None => Ok(None),
        Some((_, v)) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| FrameError::BadContentLength(v.clone())),
    }
}

fn find(haystack: &[u8], needle: u8) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    match line.split_last() {
        Some((b'\r', head)) => head,
        _ => line,
    }
}

/// Bytes shown in an error message: lossy UTF-8, at most 64 bytes.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned()
}

fn unknown(b: &[u8]) -> FrameError {
    FrameError::UnknownCommand(lossy(b))
}
