//! Fuzz target: arbitrary bytes as the admin API's JSON bodies, and as a STOMP `heart-beat`
//! header value.
//!
//! Checked for every input: no panic reading it as any type of `mq_shared::api` (the request
//! bodies the node reads and the answers the CLI reads); an accepted value serialises to JSON
//! that reads back equal. Beyond the JSON: an accepted network connector body's `uri`, and a
//! move body's destination, go through the parsers the node hands them to, and an accepted
//! message body's headers and body must travel in a STOMP MESSAGE frame (as the node delivers
//! them) that a consumer of any version can decode.
#![no_main]

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mq_shared::api::{
    AddNetworkConnector, ApiError, BrokerInfo, BrowseResponse, ConnectionList, MoveRequest,
    MoveResponse, NetworkConnectorList, PurgeResponse, QueueList, ReadyEvent, SendRequest,
    SendResponse, StatusResponse, TopicList,
};
use mq_shared::destination::Destination;
use mq_shared::frame::{Command, Decoder, Frame, Item, Limits, Version, encode};
use mq_shared::heartbeat;
use mq_shared::uri::NetworkUri;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `data` as `T`; if accepted, checks that its JSON reads back equal and returns it.
fn json<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    match serde_json::from_slice::<T>(data) {
        Ok(value) => {
            let written = serde_json::to_vec(&value).expect("an accepted value serialises");
            let again: T = serde_json::from_slice(&written).expect("written JSON reads back");
            assert_eq!(again, value);
            Some(value)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

/// The message a send request makes, as a consumer receives it, decodes in every version (1.2
/// carries any text exactly; 1.0 and 1.1 cannot carry some characters, but must still decode).
fn check_deliverable(req: &SendRequest) {
    let mut frame = Frame::new(Command::Message)
        .with_header("destination", "/queue/q")
        .with_body(Bytes::from(req.body.clone()));
    for (name, value) in &req.headers {
        // The node drops a user's content-length: it writes its own.
        if name != "content-length" {
            frame.push_header(name.as_str(), value.as_str());
        }
    }
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let mut wire = BytesMut::new();
        encode(&frame, version, &mut wire);
        // Limits the frame meets: this checks the codec, not the configured sizes.
        let mut dec = Decoder::new(Limits {
            max_frame_size: wire.len(),
            max_headers: frame.headers.len() + 1,
            max_header_length: wire.len(),
        });
        dec.set_version(version);
        match dec.decode(&mut wire) {
            Ok(Some(Item::Frame(got))) => {
                if version == Version::V1_2 {
                    let body = got.body.clone();
                    assert_eq!(&body[..], req.body.as_bytes());
                    let mut got = got;
                    got.remove_header("content-length");
                    assert_eq!(got.headers, frame.headers);
                }
            }
            other => panic!("{req:?} delivered over STOMP {version} decodes as {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = json::<SendRequest>(data) {
        check_deliverable(&req);
    }
    if let Some(req) = json::<AddNetworkConnector>(data)
        && let Err(e) = req.uri.parse::<NetworkUri>()
    {
        assert!(!e.to_string().is_empty());
    }
    if let Some(req) = json::<MoveRequest>(data)
        && let Some(to) = &req.to
        && let Err(e) = Destination::parse(to)
    {
        assert!(!e.to_string().is_empty());
    }
    json::<MoveResponse>(data);
    json::<ReadyEvent>(data);
    json::<ApiError>(data);
    json::<BrokerInfo>(data);
    json::<QueueList>(data);
    json::<SendResponse>(data);
    json::<BrowseResponse>(data);
    json::<PurgeResponse>(data);
    json::<TopicList>(data);
    json::<ConnectionList>(data);
    json::<NetworkConnectorList>(data);
    json::<StatusResponse>(data);

    if let Ok(text) = std::str::from_utf8(data)
        && let Some((x, y)) = heartbeat::parse(text)
    {
        assert_eq!(heartbeat::parse(&format!("{x},{y}")), Some((x, y)));
        let _ = heartbeat::agree((x, y), (y, x));
    }
});
