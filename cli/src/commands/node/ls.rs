//! `mqctl node ls NAME`: the processes of a cluster as the manifest records them, and whether
//! each is running.

use mq_shared::ctl::{NodeList, NodeListEntry};

use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::home::validate_name;
use crate::output::{self, Format, Table};
use crate::process;

/// Runs `node ls`.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    validate_name("cluster", name)?;
    let manifest = ctx.home.load(name)?;
    let list = NodeList {
        cluster: manifest.name.clone(),
        nodes: manifest
            .nodes
            .iter()
            .map(|n| NodeListEntry {
                name: n.name.clone(),
                group: n.group.clone(),
                pid: n.pid,
                running: process::running_pid(n).is_some(),
                transport: n.transport_uri(),
                admin: n.admin_url(),
                data_dir: n.data_dir.clone(),
                log: n.log.clone(),
            })
            .collect(),
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&list)?;
        return Ok(Outcome::Complete);
    }
    let mut table = Table::new(
        vec![
            "node",
            "group",
            "pid",
            "running",
            "transport",
            "admin",
            "data",
            "log",
        ],
        format!("Cluster {name} has no nodes."),
    )
    .numeric([2])
    .defaults(["node", "pid", "running", "transport", "admin"]);
    for n in &list.nodes {
        table.push(vec![
            n.name.clone(),
            n.group.clone(),
            output::opt(n.pid),
            output::yes_no(n.running),
            n.transport.clone(),
            n.admin.clone(),
            n.data_dir.clone(),
            n.log.clone(),
        ]);
    }
    ctx.out.table(&table)?;
    Ok(Outcome::Complete)
}
