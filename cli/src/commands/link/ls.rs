//! `mqctl link ls NAME`: the recorded links and their state on their FROM brokers; with
//! `--url URL...`, every network connector of those nodes.

use mq_shared::ctl::LinkList;

use crate::args::cluster::ClusterOrUrls;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::Format;
use crate::status;

/// Runs `link ls`.
pub async fn run(ctx: &Context, args: ClusterOrUrls) -> Result<Outcome> {
    let list = match &args.name {
        Some(name) => {
            let cluster = Cluster::load(&ctx.home, name)?;
            let status = status::gather_status(&cluster).await?;
            LinkList {
                cluster: status.name,
                links: status.links,
            }
        }
        None => super::remote::list(ctx, &args.urls).await?,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&list)?;
    } else {
        ctx.out
            .table(&status::links_table(&list.cluster, &list.links))?;
    }
    Ok(Outcome::Complete)
}
