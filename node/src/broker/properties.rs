//! What a selector reads of a message: its user headers, and the JMS names from the fields
//! the broker keeps (`JMSMessageID` from the id, `JMSTimestamp` from the time the broker
//! accepted it, `JMSDeliveryMode` from `persistent`, `JMSExpiration` from `expires`).
//! `JMSPriority`, `JMSType` (`type`), `JMSCorrelationID` (`correlation-id`) and `JMSXGroupID`
//! read the headers of those names.

use mq_shared::selector::Properties;

use super::message::Message;

impl Properties for Message {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            // The broker's own headers are fields, not user headers.
            "message-id" => Some(&self.id),
            "destination" => Some(self.destination.as_str()),
            _ => self.header(name),
        }
    }

    fn persistent(&self) -> bool {
        self.persistent
    }

    fn timestamp(&self) -> Option<i64> {
        i64::try_from(self.timestamp).ok()
    }

    fn expiration(&self) -> i64 {
        i64::try_from(self.expires).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use mq_shared::destination::Destination;
    use mq_shared::selector::{Selector, SelectorError};

    use super::*;

    #[test]
    fn jms_names_read_the_broker_fields() -> Result<(), SelectorError> {
        let m = Message {
            id: Arc::from("ID:b-1"),
            destination: Destination::queue("q"),
            headers: vec![
                ("type".into(), "order".into()),
                ("correlation-id".into(), "c-7".into()),
                ("priority".into(), "7".into()),
                ("JMSXGroupID".into(), "g".into()),
                ("amount".into(), "250".into()),
            ],
            body: Bytes::new(),
            persistent: true,
            expires: 0,
            timestamp: 1_000,
        };
        for (s, want) in [
            ("JMSMessageID = 'ID:b-1'", true),
            ("JMSType = 'order' AND JMSCorrelationID = 'c-7'", true),
            ("JMSPriority > 5 AND JMSXGroupID = 'g'", true),
            ("JMSDeliveryMode = 'PERSISTENT'", true),
            ("JMSTimestamp = 1000 AND JMSExpiration = 0", true),
            ("amount > 100 AND NOT amount = 250", false),
            ("missing = 1", false),
        ] {
            assert_eq!(Selector::parse(s)?.matches(&m), want, "{s}");
        }
        Ok(())
    }
}
