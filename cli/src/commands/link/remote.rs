//! `mqctl link add|ls|rm --url URL`: network connectors of nodes outside any cluster, straight
//! through their admin APIs (nothing is recorded anywhere).

use mq_shared::api::{AddNetworkConnector, PeerState};
use mq_shared::ctl::{LinkAdded, LinkEntry, LinkList, LinkRemoved, LinkState, LinkStatus};
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;
use mq_shared::uri::HostPort;

use crate::args::cluster::UrlsArgs;
use crate::args::link::{LinkAddArgs, LinkRmArgs};
use crate::client::admin::{AdminClient, ConnectorOutcome};
use crate::commands::Context;
use crate::commands::nodes::{Answer, ask_all};
use crate::commands::queue::url_endpoint;
use crate::error::{CliError, Outcome, Result};
use crate::output;
use crate::topology;

/// What the cluster column says for links of nodes given by URL.
const URLS: &str = "--url";

fn client(url: &str, token_file: Option<&std::path::Path>) -> Result<AdminClient> {
    AdminClient::new(url_endpoint(url, token_file)?, ADMIN_REQUEST_TIMEOUT)
}

/// Every connector of every node, as links from that node.
pub async fn list(_ctx: &Context, urls: &UrlsArgs) -> Result<LinkList> {
    let clients = urls
        .url
        .iter()
        .map(|u| client(u, urls.token_file.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let answers = ask_all(&clients, |c| async move { c.connectors().await }).await;
    let mut links = Vec::new();
    let mut errors = Vec::new();
    for (c, answer) in clients.iter().zip(answers) {
        match answer {
            Answer::Data(Some(list)) => {
                for k in list.connectors {
                    let up = k
                        .peers
                        .iter()
                        .filter(|p| p.state == PeerState::Connected)
                        .count() as u64;
                    let total = k.peers.len() as u64;
                    let to: Vec<String> = k
                        .peers
                        .iter()
                        .map(|p| p.remote_broker.clone().unwrap_or_else(|| p.uri.clone()))
                        .collect();
                    links.push(LinkStatus {
                        name: k.name,
                        from: c.label().to_string(),
                        to: to.join(","),
                        duplex: k.options.get("duplex").is_some_and(|d| d == "true"),
                        ttl: k
                            .options
                            .get("networkTTL")
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0),
                        uri: k.uri,
                        state: if total > 0 && up == total {
                            LinkState::Up
                        } else {
                            LinkState::Down
                        },
                        peers_up: up,
                        peers_total: total,
                    });
                }
            }
            Answer::Data(None) | Answer::Standby => {}
            Answer::Down(e) => errors.push(e),
        }
    }
    if !errors.is_empty() && errors.len() == clients.len() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            CliError::Several(errors)
        });
    }
    for e in &errors {
        output::warn(&e.to_string());
    }
    Ok(LinkList {
        cluster: URLS.to_string(),
        links,
    })
}

/// A connector on the node at `url` to the broker at the STOMP URI given.
pub async fn add(ctx: &Context, url: &str, args: &LinkAddArgs) -> Result<Outcome> {
    let [to] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "with --url, link add takes one TO: the STOMP URI of the broker to forward to, e.g. tcp://10.0.0.6:61613"
                .to_string(),
        ));
    };
    let target: HostPort = to
        .parse::<mq_shared::uri::TransportUri>()
        .map(|t| t.addr)
        .map_err(|e| {
            CliError::Usage(format!("`{to}` is not a STOMP URI (tcp://HOST:PORT): {e}"))
        })?;
    let address = target.to_uri_string();
    let name = args.link_name.clone().unwrap_or_else(|| {
        format!(
            "link-{}-{}",
            target.host.replace([':', '.'], "-"),
            target.port
        )
    });
    let c = client(url, args.token_file.as_deref())?;
    let link = LinkEntry {
        uri: topology::link_uri_to(&[address], args.ttl, args.duplex),
        name,
        from: c.label().to_string(),
        to: to.clone(),
        duplex: args.duplex,
        ttl: args.ttl,
    };
    let applied = c
        .add_connector(&AddNetworkConnector {
            name: Some(link.name.clone()),
            uri: link.uri.clone(),
        })
        .await?;
    if applied == ConnectorOutcome::Unsupported {
        return Err(CliError::Unavailable(format!(
            "{} does not support network connectors",
            c.label()
        )));
    }
    let report = LinkAdded {
        cluster: URLS.to_string(),
        link,
        applied: true,
    };
    ctx.out.report(&report, |r| {
        format!(
            "Added connector {} on {}: forwards to {} via {}.",
            r.link.name, r.link.from, r.link.to, r.link.uri
        )
    })?;
    Ok(Outcome::Complete)
}

/// Deletes connector LINK of the node at `url`.
pub async fn rm(ctx: &Context, url: &str, args: &LinkRmArgs) -> Result<Outcome> {
    let [name] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "with --url, link rm takes one LINK: the connector's name as `link ls --url` shows it"
                .to_string(),
        ));
    };
    let c = client(url, args.token_file.as_deref())?;
    let existing = c
        .connectors()
        .await?
        .and_then(|l| l.connectors.into_iter().find(|k| &k.name == name));
    let Some(connector) = existing else {
        return Err(CliError::ConnectorNotFound {
            node: c.label().to_string(),
            url: url.to_string(),
            link: name.clone(),
        });
    };
    let applied = c.delete_connector(name).await?;
    let report = LinkRemoved {
        cluster: URLS.to_string(),
        link: LinkEntry {
            name: connector.name,
            from: c.label().to_string(),
            to: connector
                .peers
                .iter()
                .map(|p| p.uri.clone())
                .collect::<Vec<_>>()
                .join(","),
            duplex: connector.options.get("duplex").is_some_and(|d| d == "true"),
            ttl: connector
                .options
                .get("networkTTL")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            uri: connector.uri,
        },
        applied,
    };
    ctx.out.report(&report, |r| {
        format!("Removed connector {} from {}.", r.link.name, r.link.from)
    })?;
    Ok(Outcome::Complete)
}
