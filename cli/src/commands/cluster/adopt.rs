//! `mqctl cluster adopt NAME --url URL [--token-file F] [--name NODE]`: records a node that
//! mqctl does not run (another host, or one started by hand) in a cluster's manifest, creating
//! the cluster without local nodes when it does not exist.
//!
//! The node is asked first (`GET /api/v1/broker`), so a wrong URL or token is refused before
//! anything is written; its broker name is the node's name by default, and the STOMP transport
//! it reports (its host made reachable: `0.0.0.0` becomes the URL's host) is what links to it
//! use.

use std::fs;
use std::path::Path;

use mq_shared::ctl::{AdoptedNode, GroupEntry, NodeEntry, RemoteNode};
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use crate::args::cluster::AdoptArgs;
use crate::client::admin::AdminClient;
use crate::cluster::{Cluster, bare_manifest, reachable_uri};
use crate::commands::Context;
use crate::commands::queue::url_endpoint;
use crate::error::{CliError, Outcome, Result};
use crate::home::{now_rfc3339, validate_name, write_new_token};

/// Runs `cluster adopt`.
pub async fn run(ctx: &Context, args: AdoptArgs) -> Result<Outcome> {
    validate_name("cluster", &args.cluster)?;
    let existing = match Cluster::load(&ctx.home, &args.cluster) {
        Ok(c) => Some(c),
        Err(CliError::ClusterNotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    // The node's own token file, else the cluster's token.
    let token_file = args.token_file.as_deref().map(absolute).transpose()?;
    let mut endpoint = url_endpoint(&args.url, token_file.as_deref())?;
    if token_file.is_none() {
        endpoint.token = existing.as_ref().and_then(|c| c.token.clone());
    }
    let client = AdminClient::new(endpoint.clone(), ADMIN_REQUEST_TIMEOUT)?;
    let info = client.broker().await?;
    let name = args.name.clone().unwrap_or_else(|| info.name.clone());
    validate_name("node", &name)?;
    if let Some(c) = &existing
        && (c.manifest.node(&name).is_some() || c.manifest.group(&name).is_some())
    {
        return Err(CliError::Usage(format!(
            "cluster `{}` has a node named `{name}` already; give this one another with --name",
            args.cluster
        )));
    }
    let transport = info
        .transports
        .iter()
        .find(|t| t.starts_with("tcp://") || t.starts_with("ssl://"))
        .map(|t| reachable_uri(t, client.host()))
        .unwrap_or_default();
    let created = existing.is_none();
    let mut cluster = match existing {
        Some(c) => c,
        None => create_empty(ctx, &args.cluster)?,
    };
    cluster.manifest.nodes.push(NodeEntry {
        name: name.clone(),
        group: name.clone(),
        data_dir: String::new(),
        log: String::new(),
        // Its ports are on its own host: none is taken here.
        transport_port: 0,
        admin_port: 0,
        pid: None,
        persistent: info.persistent,
        tls: transport.starts_with("ssl://"),
        remote: Some(RemoteNode {
            admin: endpoint.url.clone(),
            token_file: token_file.as_ref().map(|p| p.display().to_string()),
            transport: transport.clone(),
        }),
    });
    cluster.manifest.groups.push(GroupEntry {
        name: name.clone(),
        members: vec![name.clone()],
        store: None,
        replicated: None,
    });
    cluster.save()?;
    let report = AdoptedNode {
        cluster: args.cluster.clone(),
        node: name,
        broker: info.name,
        role: info.role,
        admin: endpoint.url,
        transport,
        token_file: token_file.map(|p| p.display().to_string()),
        created,
    };
    ctx.out.report(&report, |r| {
        format!(
            "Adopted {} ({}, {}) into cluster {}{} as {}: admin {}, STOMP {}. mqctl does not start or stop it.",
            r.broker,
            r.role,
            if r.transport.is_empty() { "no transport" } else { "serving" },
            r.cluster,
            if r.created { " (created)" } else { "" },
            r.node,
            r.admin,
            if r.transport.is_empty() { "-" } else { &r.transport },
        )
    })?;
    Ok(Outcome::Complete)
}

/// A cluster with no local node: its folder, token and manifest.
fn create_empty(ctx: &Context, name: &str) -> Result<Cluster> {
    let dir = ctx.home.cluster_dir(name);
    fs::create_dir_all(&dir).map_err(|e| CliError::io("could not create", &dir, e))?;
    let token_path = ctx.home.token_path(name);
    write_new_token(&token_path)?;
    // Its nodes' security is their own: STOMP commands take --login/--passcode.
    let manifest = bare_manifest(name, now_rfc3339(), token_path.display().to_string());
    let token = ctx.home.token(&manifest)?;
    Ok(Cluster {
        manifest,
        token,
        home: ctx.home.clone(),
    })
}

/// `path` made absolute against the current directory (the manifest outlives the shell).
fn absolute(path: &Path) -> Result<std::path::PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| CliError::io("could not resolve", path, e))
}
