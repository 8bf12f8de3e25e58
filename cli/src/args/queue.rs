//! `mqctl queue ...`: arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mq_shared::uri::{DestinationFilter, DestinationKind};

/// `mqctl queue VERB`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Every queue on every node in one table, with totals per queue.
    ///
    /// Columns after ActiveMQ's dstat: node, queue, depth, producers, consumers, enqueued,
    /// dequeued, forwarded, in-flight, expired, dead-lettered, bytes, in-memory. All nodes are
    /// asked at once; a node that does not answer shows as a row marked (down) and the exit
    /// code is 3.
    #[command(after_help = "\
Examples:
  mqctl queue stat demo
  mqctl queue stat demo --queue 'orders.>' --watch 2
  mqctl queue stat demo --queue '*.eu'
  mqctl queue stat --url http://127.0.0.1:8161 --url http://127.0.0.1:8162
  mqctl queue stat demo -o json | jq '.queues[] | select(.depth > 0)'")]
    Stat(StatArgs),

    /// Send messages to a queue through a node's admin API, or over STOMP with --stomp tcp://...
    /// or --stomp failover:(...).
    ///
    /// Over STOMP each message asks for a RECEIPT; when the connection drops (the master failed
    /// over), the client reconnects through the failover URI and sends the unconfirmed message
    /// again, so a message may arrive twice but none is lost.
    #[command(
        override_usage = "mqctl queue send NAME[/NODE] QUEUE [OPTIONS]\n       mqctl queue send --url URL [--token-file F] QUEUE [OPTIONS]\n       mqctl queue send --stomp STOMP-URL QUEUE [OPTIONS]",
        after_help = "\
Examples:
  mqctl queue send demo orders --body hello
  mqctl queue send demo/node2 orders --file order.json --header type=order --messages 100
  mqctl queue send --url http://127.0.0.1:8161 orders --body hi --non-persistent
  mqctl queue send --stomp 'failover:(tcp://127.0.0.1:61613,tcp://127.0.0.1:61614)' orders --messages 100"
    )]
    Send(SendArgs),

    /// Show the messages of a queue on one node without consuming them.
    #[command(
        override_usage = "mqctl queue browse NAME[/NODE] QUEUE [OPTIONS]\n       mqctl queue browse --url URL QUEUE [OPTIONS]",
        after_help = "\
Examples:
  mqctl queue browse demo orders --limit 10
  mqctl queue browse demo/node2 orders -o json"
    )]
    Browse(BrowseArgs),

    /// Remove every message of a queue on one node (asks first; --yes when not on a terminal).
    #[command(
        override_usage = "mqctl queue purge NAME[/NODE] QUEUE [--yes]\n       mqctl queue purge --url URL QUEUE [--yes]",
        after_help = "\
Examples:
  mqctl queue purge demo orders
  mqctl queue purge demo/node3 DLQ --yes"
    )]
    Purge(PurgeArgs),

    /// Delete a queue on one node, with its messages (asks first; --yes when not on a
    /// terminal). The node refuses while the queue has consumers.
    #[command(
        override_usage = "mqctl queue delete NAME[/NODE] QUEUE [--yes]\n       mqctl queue delete --url URL QUEUE [--yes]",
        after_help = "\
Examples:
  mqctl queue delete demo orders.old
  mqctl queue delete demo/node2 scratch --yes"
    )]
    Delete(PurgeArgs),
}

/// A node outside any cluster.
#[derive(Debug, Clone, Args)]
pub struct UrlArgs {
    /// Admin URL of a node outside any cluster, e.g. http://127.0.0.1:8161.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding that node's admin token [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<PathBuf>,
}

/// `NAME[/NODE] QUEUE`, or only `QUEUE` with `--url`.
#[derive(Debug, Clone, Args)]
pub struct QueueTarget {
    /// Cluster (first node, or its master) or one node: demo, demo/node2.
    #[arg(value_name = "NAME[/NODE]")]
    pub target: Option<String>,
    /// Queue name (without /queue/).
    #[arg(value_name = "QUEUE")]
    pub queue: Option<String>,
    #[command(flatten)]
    pub url: UrlArgs,
}

/// Where a queue command goes, once the positionals are sorted out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A cluster, and maybe one node or group of it.
    Cluster {
        /// Cluster name.
        name: String,
        /// Node or group.
        node: Option<String>,
    },
    /// A node outside any cluster.
    Url {
        /// Admin URL.
        url: String,
        /// Its token file.
        token_file: Option<PathBuf>,
    },
}

/// Whether `url` is a STOMP client URI rather than an admin URL.
pub fn is_stomp_uri(url: &str) -> bool {
    ["tcp://", "stomp://", "failover:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

impl QueueTarget {
    /// Sorts out `NAME[/NODE] QUEUE` versus `--url URL QUEUE`.
    pub fn resolve(&self) -> Result<(Address, String), String> {
        match (&self.url.url, &self.target, &self.queue) {
            (Some(url), Some(_), None) if is_stomp_uri(url) => Err(format!(
                "`{url}` is a STOMP URL; --url takes a node's admin URL (http://HOST:PORT), --stomp a STOMP URL (only `queue send` and `bench` speak STOMP)"
            )),
            (Some(url), Some(queue), None) => Ok((
                Address::Url {
                    url: url.clone(),
                    token_file: self.url.token_file.clone(),
                },
                queue.clone(),
            )),
            (Some(_), Some(_), Some(_)) => {
                Err("with --url give only the QUEUE, not a cluster name".to_string())
            }
            (Some(_), None, _) | (None, Some(_), None) | (None, None, _) => {
                Err("missing QUEUE: give NAME[/NODE] QUEUE, or --url URL QUEUE".to_string())
            }
            (None, Some(target), Some(queue)) => {
                let (name, node) = super::split_target(target);
                Ok((Address::Cluster { name, node }, queue.clone()))
            }
        }
    }
}

/// `mqctl queue stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// Cluster (all its nodes) or one node of it: demo, demo/node2.
    #[arg(
        value_name = "NAME",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub name: Option<String>,
    #[command(flatten)]
    pub urls: super::topic::NodeUrls,
    /// Only queues matching this pattern, in ActiveMQ's wildcards over `.`-separated names: `*`
    /// is one element, `>` the rest (one element or more): orders.>, *.eu. A name without
    /// wildcards matches exactly.
    #[arg(long, value_name = "PATTERN", value_parser = parse_queue_filter)]
    pub queue: Option<DestinationFilter>,
    /// Redraw every SECS seconds until Ctrl-C.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch: Option<u64>,
}

/// `mqctl queue send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub at: QueueTarget,
    /// Message body (UTF-8 text); one of --body and --file is needed (--body '' for an
    /// empty one).
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub body: Option<String>,
    /// Read the body from a file (UTF-8 text).
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// How many messages to send (the same body each time).
    #[arg(long, value_name = "N", default_value_t = 1, alias = "count",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// A user header; repeat for several.
    #[arg(long = "header", value_name = "K=V", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    #[command(flatten)]
    pub persistence: super::Persistence,
    /// Send over STOMP instead of the admin API: tcp://HOST:PORT (tried once), or
    /// failover:(tcp://A,tcp://B) to follow the master of a group.
    #[arg(long, value_name = "STOMP-URL", conflicts_with = "url")]
    pub stomp: Option<String>,
    /// With --stomp: CONNECT `login` [default: none].
    #[arg(long, value_name = "USER")]
    pub login: Option<String>,
    /// With --stomp: CONNECT `passcode` [default: none].
    #[arg(long, value_name = "SECRET")]
    pub passcode: Option<String>,
    /// With --stomp: PEM CA certificate to verify an ssl:// broker against.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

impl SendArgs {
    /// The STOMP URI and queue when sending over STOMP: `--stomp URL QUEUE`, or the older
    /// `--url tcp://...` spelling.
    pub fn stomp_target(&self) -> Option<Result<(String, String), String>> {
        let uri = match (&self.stomp, &self.at.url.url) {
            (Some(uri), _) => uri.clone(),
            (None, Some(url)) if is_stomp_uri(url) => url.clone(),
            _ => return None,
        };
        Some(match (&self.at.target, &self.at.queue) {
            (Some(queue), None) => Ok((uri, queue.clone())),
            (Some(_), Some(_)) => {
                Err("with --stomp give only the QUEUE, not a cluster name".to_string())
            }
            (None, _) => Err("missing QUEUE: give --stomp URL QUEUE".to_string()),
        })
    }
}

/// `mqctl queue browse` (`--limit N`, global, is how many messages to fetch and show; 100 by
/// default).
#[derive(Debug, Args)]
pub struct BrowseArgs {
    #[command(flatten)]
    pub at: QueueTarget,
}

/// `mqctl queue purge` and `queue delete`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub at: QueueTarget,
    /// Do it without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// clap parser for `--queue`: a queue pattern (bare, or with `/queue/`) whose wildcards are
/// whole elements. `b*` or `orders.>x` would be literal names there, which a queue is never
/// meant to be called: refused with the syntax rather than silently matching nothing.
pub fn parse_queue_filter(s: &str) -> Result<DestinationFilter, String> {
    let filter = DestinationFilter::parse(s).map_err(|e| e.to_string())?;
    if filter.kind() != DestinationKind::Queue {
        return Err(format!(
            "`{s}` is a topic pattern; queue stat shows queues (drop the /topic/)"
        ));
    }
    if let Some(part) = filter
        .pattern()
        .split('.')
        .find(|part| part.len() > 1 && part.contains(['*', '>']))
    {
        return Err(format!(
            "`{part}` mixes a wildcard into a name; wildcards are whole elements between dots: `*` one element, `>` the rest (e.g. `orders.>`, `*.eu`)"
        ));
    }
    Ok(filter)
}

/// clap parser for `K=V`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: Option<&str>, t: Option<&str>, q: Option<&str>) -> QueueTarget {
        QueueTarget {
            target: t.map(String::from),
            queue: q.map(String::from),
            url: UrlArgs {
                url: url.map(String::from),
                token_file: None,
            },
        }
    }

    #[test]
    fn positionals_sort_out() {
        assert_eq!(
            target(None, Some("demo/node2"), Some("q")).resolve(),
            Ok((
                Address::Cluster {
                    name: "demo".into(),
                    node: Some("node2".into())
                },
                "q".into()
            ))
        );
        assert_eq!(
            target(Some("http://h:1"), Some("q"), None).resolve(),
            Ok((
                Address::Url {
                    url: "http://h:1".into(),
                    token_file: None
                },
                "q".into()
            ))
        );
        assert!(target(None, Some("demo"), None).resolve().is_err());
        assert!(
            target(Some("http://h:1"), Some("demo"), Some("q"))
                .resolve()
                .is_err()
        );
        assert!(target(Some("http://h:1"), None, None).resolve().is_err());
    }

    #[test]
    fn queue_patterns_are_activemq_wildcards() {
        let matches =
            |pattern: &str, name: &str| parse_queue_filter(pattern).is_ok_and(|f| f.matches(name));
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders.eu"));
        assert!(!matches("demo", "demo2"));
        assert!(matches("orders.>", "orders.eu"));
        assert!(matches("orders.>", "orders.eu.de"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("*.x", "a.x"));
        assert!(!matches("*.x", "a.b.x"));
        assert!(matches("orders.*", "orders.eu"));
        assert!(!matches("orders.*", "orders.eu.de"));
        assert!(matches("/queue/orders.>", "orders.eu"));
        assert!(matches(">", "DLQ"));
        for refused in [
            "b*",
            "orders.eu*",
            "orders.>x",
            "a.>.b",
            "a..b",
            "/topic/x",
            "",
        ] {
            assert!(parse_queue_filter(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_header("a="), Ok(("a".into(), String::new())));
        assert!(parse_header("=b").is_err());
        assert!(parse_header("ab").is_err());
    }
}
