//! `mqctl link rm NAME LINK`: delete the connector on its FROM broker and from the manifest.

use mq_shared::ctl::LinkRemoved;
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use crate::args::link::LinkRmArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output;

/// Runs `link rm`.
pub async fn run(ctx: &Context, args: LinkRmArgs) -> Result<Outcome> {
    if let Some(url) = &args.url {
        return super::remote::rm(ctx, url, &args).await;
    }
    let [name, link_name] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "link rm takes NAME LINK (or --url URL LINK)".to_string(),
        ));
    };
    let mut cluster = Cluster::load(&ctx.home, name)?;
    let Some(link) = cluster.manifest.link(link_name).cloned() else {
        return Err(CliError::LinkNotFound {
            cluster: name.clone(),
            link: link_name.clone(),
        });
    };
    // A broker that is not running has no connectors: removing the record is all there is.
    let deleted = match cluster.master_of(&link.from, ADMIN_REQUEST_TIMEOUT).await {
        Ok(client) => client.delete_connector(&link.name).await,
        Err(e) => Err(e),
    };
    let applied = match deleted {
        Ok(applied) => applied,
        Err(CliError::NoMaster { .. } | CliError::Unreachable { .. }) => {
            output::warn(&format!(
                "{} is not running; the link is removed from the manifest only",
                link.from
            ));
            false
        }
        Err(e) => return Err(e),
    };
    cluster.manifest.links.retain(|l| l.name != link.name);
    cluster.save()?;
    let report = LinkRemoved {
        cluster: cluster.name().to_string(),
        link,
        applied,
    };
    ctx.out.report(&report, |r| {
        format!(
            "Removed link {} ({} to {}).",
            r.link.name, r.link.from, r.link.to
        )
    })?;
    Ok(Outcome::Complete)
}
