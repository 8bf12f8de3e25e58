//! `mqctl link add NAME FROM TO [--duplex] [--ttl N]`: create a network connector on FROM's
//! serving node that forwards to TO, and record it in the manifest.

use mq_shared::api::AddNetworkConnector;
use mq_shared::ctl::{LinkAdded, LinkEntry};
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use crate::args::link::LinkAddArgs;
use crate::client::admin::ConnectorOutcome;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format};
use crate::topology;

/// Runs `link add`.
pub async fn run(ctx: &Context, args: LinkAddArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.name)?;
    let from = group_of(&cluster, &args.from)?;
    let to = group_of(&cluster, &args.to)?;
    if from == to {
        return Err(CliError::Usage(format!(
            "a link goes from one broker to another; `{from}` and `{to}` are the same broker"
        )));
    }
    let taken: Vec<&str> = cluster
        .manifest
        .links
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let name = topology::link_name(&from, &to, &taken);
    let to_ports: Vec<u16> = cluster
        .manifest
        .members(&to)
        .iter()
        .map(|n| n.transport_port)
        .collect();
    let link = LinkEntry {
        uri: topology::link_uri(&to_ports, args.ttl, args.duplex),
        name,
        from: from.clone(),
        to,
        duplex: args.duplex,
        ttl: args.ttl,
    };
    let client = cluster.master_of(&from, ADMIN_REQUEST_TIMEOUT).await?;
    let outcome = client
        .add_connector(&AddNetworkConnector {
            name: Some(link.name.clone()),
            uri: link.uri.clone(),
        })
        .await?;
    let applied = outcome != ConnectorOutcome::Unsupported;
    if !applied {
        output::warn("link recorded; this mqnode does not support network connectors");
    }
    cluster.manifest.links.push(link.clone());
    cluster.save()?;
    let report = LinkAdded {
        cluster: cluster.name().to_string(),
        link,
        applied,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let l = &report.link;
        let way = if l.duplex { "and back" } else { "one way" };
        ctx.out.sentence(&format!(
            "Added link {}: {} forwards to {} ({way}, networkTTL {}) via {}.",
            l.name, l.from, l.to, l.ttl, l.uri
        ))?;
    }
    Ok(Outcome::Complete)
}

/// The broker (group) a name stands for: a group, or a process of one.
pub(super) fn group_of(cluster: &Cluster, name: &str) -> Result<String> {
    if cluster.manifest.group(name).is_some() {
        return Ok(name.to_string());
    }
    match cluster.manifest.node(name) {
        Some(node) => Ok(node.group.clone()),
        None => Err(cluster.node_not_found(name)),
    }
}
