//! Destinations as one connection names them: its own temporary destinations, composite
//! SEND destinations, and what may be sent to or subscribed to.
//!
//! | the client writes       | the broker uses                                 |
//! | ----------------------- | ----------------------------------------------- |
//! | `/queue/A`, `/topic/A`  | that destination                                |
//! | `/queue/A.*`, `.../A.>` | a wildcard pattern (SUBSCRIBE only)             |
//! | `/temp-queue/N`         | this connection's temporary queue N, created at first use: `/remote-temp-queue/ID` |
//! | `/temp-topic/N`         | likewise, `/remote-temp-topic/ID`               |
//! | `/remote-temp-queue/ID` | that temporary queue (SEND by anyone; SUBSCRIBE by its owner) |
//! | `/queue/A,/topic/B`     | each part (SEND only)                           |
//! | `/queue/mq.durable/...` | refused: the queues of durable subscriptions    |
//!
//! On the way out the mapping is undone for the owner only: a MESSAGE from its own temporary
//! destination names it `/temp-queue/N` in `destination` and `reply-to`; everyone else sees
//! the id, which they can SEND to (ActiveMQ's STOMP mapping).

use std::collections::HashMap;

use mq_shared::destination::{Destination, MAX_NAME_LEN, composite_parts, own_temp};

use crate::broker::{Core, durable};

/// The temporary destinations one connection created, by the name it gave them.
#[derive(Default)]
pub struct Names {
    own: HashMap<String, Destination>,
    by_dest: HashMap<Destination, String>,
}

impl Names {
    /// The destination `text` names for connection `conn`: its own temporary destination
    /// (created at first use) for `/temp-queue/N` and `/temp-topic/N`, else the parsed text.
    pub fn resolve(&mut self, text: &str, core: &Core, conn: u64) -> Result<Destination, String> {
        let Some((kind, name)) = own_temp(text) else {
            let d = Destination::parse(text).map_err(|e| e.to_string())?;
            if d.is_queue() && !d.is_temp() && durable::is_internal(d.name()) {
                return Err(format!(
                    "{d} is reserved: the queues named {}* hold durable subscriptions (subscribe to the topic with client-id and {})",
                    durable::INTERNAL_PREFIX,
                    mq_shared::headers::SUBSCRIPTION_NAME
                ));
            }
            return Ok(d);
        };
        if let Some(d) = self.own.get(text) {
            return Ok(d.clone());
        }
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(format!(
                "destination '{text}' has an empty or too long name"
            ));
        }
        if name.split('.').any(|s| s == "*" || s == ">") {
            return Err(format!(
                "temporary destination '{text}' cannot be a wildcard pattern"
            ));
        }
        let d = core.create_temp(kind, conn);
        self.own.insert(text.to_string(), d.clone());
        self.by_dest.insert(d.clone(), text.to_string());
        Ok(d)
    }

    /// The destinations of a SEND's `destination` header: each part of a composite one,
    /// resolved. A wildcard part is an error.
    pub fn resolve_send(
        &mut self,
        text: &str,
        core: &Core,
        conn: u64,
    ) -> Result<Vec<Destination>, String> {
        let mut out = Vec::new();
        for part in composite_parts(text).map_err(|e| e.to_string())? {
            let d = self.resolve(part, core, conn)?;
            if d.has_wildcard() {
                return Err(format!(
                    "cannot SEND to {d}: a wildcard destination is for SUBSCRIBE only"
                ));
            }
            if !out.contains(&d) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The name this connection gave `dest`, if it is one of its temporary destinations.
    pub fn own_name(&self, dest: &Destination) -> Option<&str> {
        self.by_dest.get(dest).map(String::as_str)
    }

    /// The name this connection knows destination text `text` by: its own temporary
    /// destination's `/temp-queue/N`, else `None` (the text stands as it is).
    pub fn own_name_of(&self, text: &str) -> Option<&str> {
        if self.by_dest.is_empty() {
            return None;
        }
        Destination::parse(text)
            .ok()
            .and_then(|d| self.own_name(&d))
    }

    /// Whether the connection created any temporary destination.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty()
    }
}
