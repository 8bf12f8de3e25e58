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
    if let Some(url) = &args.url {
        return super::remote::add(ctx, url, &args).await;
    }
    let [name, from, to] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "link add takes NAME FROM TO (or --url URL TO-STOMP-URI)".to_string(),
        ));
    };
    let mut cluster = Cluster::load(&ctx.home, name)?;
    let from = cluster.broker_of(from)?;
    let to = cluster.broker_of(to)?;
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
    // Each member's STOMP address: 127.0.0.1 for the nodes mqctl runs, a remote node's own.
    let to_addresses: Vec<String> = cluster
        .manifest
        .members(&to)
        .iter()
        .map(|n| n.transport_uri())
        .collect();
    if to_addresses.iter().any(String::is_empty) {
        return Err(CliError::Usage(format!(
            "`{to}` reported no STOMP transport when it was adopted (a slave?); adopt its master"
        )));
    }
    let link = LinkEntry {
        uri: topology::link_uri_to(&to_addresses, args.ttl, args.duplex),
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
