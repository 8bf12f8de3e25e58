//! `mqctl link add NAME FROM TO [--duplex] [--ttl N]`: create a network connector on FROM's
//! serving node that forwards to TO, and record it in the manifest.

use mq_shared::ctl::{LinkAdded, LinkEntry};

use crate::args::link::LinkAddArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::links;
use crate::output;
use crate::topology;

/// Runs `link add`.
pub async fn run(ctx: &Context, args: LinkAddArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.name)?;
    let from = cluster.broker_of(&args.from)?;
    let to = cluster.broker_of(&args.to)?;
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
    let members = cluster.manifest.members(&to);
    let to_ports: Vec<u16> = members.iter().map(|n| n.transport_port).collect();
    let tls = members.iter().any(|n| n.tls);
    let link = LinkEntry {
        uri: topology::link_uri(&to_ports, args.ttl, args.duplex, tls),
        name,
        from: from.clone(),
        to,
        duplex: args.duplex,
        ttl: args.ttl,
    };
    let applied = links::apply_link(&cluster, &link).await?;
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
    ctx.out.report(&report, |r| {
        let l = &r.link;
        let way = if l.duplex { "and back" } else { "one way" };
        format!(
            "Added link {}: {} forwards to {} ({way}, networkTTL {}) via {}.",
            l.name, l.from, l.to, l.ttl, l.uri
        )
    })?;
    Ok(Outcome::Complete)
}
