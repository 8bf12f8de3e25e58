//! `mqctl link ls NAME`: the recorded links and their state on their FROM brokers.

use mq_shared::ctl::LinkList;

use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::Format;
use crate::status;

/// Runs `link ls`.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, name)?;
    let status = status::gather_status(&cluster).await?;
    let list = LinkList {
        cluster: status.name,
        links: status.links,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&list)?;
    } else {
        ctx.out
            .table(&status::links_table(&list.cluster, &list.links))?;
    }
    Ok(Outcome::Complete)
}
