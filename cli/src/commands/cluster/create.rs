//! `mqctl cluster create NAME`: plan the nodes, ports and links, write the manifest and token,
//! start every process detached, wait until all are ready, create the links, print the status.
//!
//! All or nothing: on any failure (or Ctrl-C) every process it started is stopped and the
//! cluster's folder is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use mq_shared::ctl::{
    ClusterLayout, ClusterManifest, GroupEntry, GroupReplicated, GroupStore, LinkEntry,
    LocalPostgres, LocalZooKeeper, NodeEntry, Topology,
};
use mq_shared::defaults::{NETWORK_TTL, NODE_STOP_TIMEOUT};

use crate::args::cluster::{CreateArgs, HaArg};
use crate::cluster::{Cluster, bare_manifest};
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::home::{now_rfc3339, validate_name, write_new_token};
use crate::lifecycle::{self, Launched};
use crate::links;
use crate::output;
use crate::ports;
use crate::process;
use crate::status;
use crate::topology::{self, LinkSpec, PlannedNode};

/// Members of a `--ha replicated` group without `--replicas` (ActiveMQ's `replicas`).
const REPLICATED_MEMBERS: usize = 3;

/// A process to create, before ports are known.
#[derive(Debug, Clone)]
struct Planned {
    node: PlannedNode,
    transport_port: Option<u16>,
    admin_port: Option<u16>,
    persistent: bool,
}

/// A link to create, by group name.
#[derive(Debug, Clone)]
struct PlannedLink {
    name: Option<String>,
    from: String,
    to: String,
    duplex: bool,
    ttl: u32,
}

/// Runs `cluster create`.
pub async fn run(ctx: &Context, args: CreateArgs) -> Result<Outcome> {
    validate_name("cluster", &args.name)?;
    let dir = ctx.home.cluster_dir(&args.name);
    if dir.exists() {
        return Err(CliError::ClusterExists {
            name: args.name.clone(),
            path: dir,
        });
    }
    let mqnode = process::find_mqnode(args.mqnode.as_deref())?;
    let persistent = args.persistence.is_persistent();
    let (planned, links, topology) = match &args.from {
        Some(file) => {
            let (nodes, links) = plan_from_file(file, persistent)?;
            (nodes, links, Topology::Custom)
        }
        None => {
            let topology = Topology::from(args.topology);
            let (nodes, links) =
                plan_generated(args.nodes, group_size(&args)?, topology, persistent);
            (nodes, links, topology)
        }
    };
    let mut stores = plan_stores(&args, persistent)?;
    let reserved = ctx.home.recorded_ports(&args.name)?;
    let ports = assign_ports(&planned, args.base_port, reserved.clone())?;
    // `--ha jdbc` without `--store`: a PostgreSQL server of the cluster's own, a database per
    // broker, on the next free port.
    let postgres = if args.ha == Some(HaArg::Jdbc) && stores.is_empty() {
        let mut taken = reserved;
        taken.extend(ports.iter().flat_map(|(t, a)| [*t, *a]));
        let mut allocator = ports::Allocator::new(args.base_port, ports::ephemeral_range(), taken);
        let pg = crate::postgres::plan(&dir, allocator.next()?)?;
        stores = (1..=args.nodes)
            .map(|k| GroupStore {
                url: crate::postgres::url(&pg, &format!("node{k}")),
                password_file: Some(pg.password_file.clone()),
            })
            .collect();
        Some(pg)
    } else {
        None
    };
    // `--ha replicated` without `--zookeeper`: a ZooKeeper server of the cluster's own.
    let zookeeper = if args.ha == Some(HaArg::Replicated) && args.zookeeper.is_none() {
        let mut taken = ctx.home.recorded_ports(&args.name)?;
        taken.extend(ports.iter().flat_map(|(t, a)| [*t, *a]));
        if let Some(pg) = &postgres {
            taken.insert(pg.port);
        }
        let mut allocator = ports::Allocator::new(args.base_port, ports::ephemeral_range(), taken);
        Some(crate::zookeeper::plan(&dir, allocator.next()?)?)
    } else {
        None
    };
    let replicated = plan_replicated(&args, &dir, zookeeper.as_ref())?;
    let manifest = build_manifest(
        &ctx.home.cluster_dir(&args.name),
        &args.name,
        topology,
        &mqnode,
        &ctx.home.token_path(&args.name),
        &planned,
        &ports,
        &links,
        args.tls,
        &stores,
        postgres.as_ref(),
        replicated.as_ref(),
        zookeeper,
    )?;

    let clusters = ctx.home.clusters_dir();
    fs::create_dir_all(&clusters).map_err(|e| CliError::io("could not create", &clusters, e))?;
    if let Err(e) = fs::create_dir(&dir) {
        return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::ClusterExists {
                name: args.name.clone(),
                path: dir,
            }
        } else {
            CliError::io("could not create", &dir, e)
        });
    }

    let mut launched: Vec<Launched> = Vec::new();
    let mut cluster = Cluster {
        manifest,
        token: None,
        home: ctx.home.clone(),
    };
    let result = tokio::select! {
        result = bring_up(&mut cluster, &mqnode, args.ready_timeout(), &mut launched) => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted { cleanup: String::new() }),
    };
    match result {
        Ok(status) => {
            status::print_status(&ctx.out, &status)?;
            Ok(Outcome::Complete)
        }
        Err(error) => {
            for launch in &mut launched {
                process::terminate_child(&mut launch.child, NODE_STOP_TIMEOUT).await;
            }
            if let Some(pg) = &cluster.manifest.postgres
                && let Err(e) = crate::postgres::stop(pg)
            {
                output::warn(&e.to_string());
            }
            if let Some(zk) = &cluster.manifest.zookeeper
                && let Err(e) = crate::zookeeper::stop(zk).await
            {
                output::warn(&e.to_string());
            }
            let removed = fs::remove_dir_all(&dir);
            Err(match error {
                CliError::Interrupted { .. } => CliError::Interrupted {
                    cleanup: match removed {
                        Ok(()) => format!(
                            "stopped the {} node(s) started and removed {}",
                            launched.len(),
                            dir.display()
                        ),
                        Err(e) => format!("could not remove {}: {e}", dir.display()),
                    },
                },
                other => other,
            })
        }
    }
}

/// Token, manifest, processes, readiness, links, status.
async fn bring_up(
    cluster: &mut Cluster,
    mqnode: &Path,
    timeout: std::time::Duration,
    launched: &mut Vec<Launched>,
) -> Result<mq_shared::ctl::ClusterStatus> {
    let token_file = PathBuf::from(&cluster.manifest.token_file);
    write_new_token(&token_file)?;
    // Secure by default: a client user, a bridge user, a security file; certificates with --tls.
    let dir = cluster.home.cluster_dir(&cluster.manifest.name);
    let (security, credentials) = crate::security::create(&dir)?;
    cluster.manifest.security_file = Some(security.to_string_lossy().into_owned());
    cluster.manifest.credentials_file = Some(credentials.to_string_lossy().into_owned());
    let names: Vec<String> = cluster
        .manifest
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    if cluster.manifest.nodes.iter().any(|n| n.tls) {
        let tls = crate::security::create_tls(&dir, &names)?;
        cluster.manifest.tls_dir = Some(tls.to_string_lossy().into_owned());
    }
    cluster.token = cluster.home.token(&cluster.manifest)?;
    cluster.save()?;
    if let Some(pg) = cluster.manifest.postgres.clone() {
        let dbs: Vec<String> = cluster
            .manifest
            .groups
            .iter()
            .map(|g| g.name.clone())
            .collect();
        tokio::task::spawn_blocking(move || crate::postgres::create(&pg, &dbs))
            .await
            .map_err(|e| CliError::Usage(format!("the PostgreSQL setup task failed: {e}")))??;
    }
    if let Some(r) = cluster
        .manifest
        .groups
        .iter()
        .find_map(|g| g.replicated.as_ref())
    {
        write_new_token(Path::new(&r.token_file))?;
    }
    if let Some(mut zk) = cluster.manifest.zookeeper.clone() {
        crate::zookeeper::create(&zk)?;
        let started = crate::zookeeper::start(&mut zk).await;
        cluster.manifest.zookeeper = Some(zk);
        cluster.save()?;
        started?;
    }
    lifecycle::start_processes(cluster, &names, mqnode, timeout, launched).await?;
    let links = cluster.manifest.links.clone();
    links::apply_links(cluster, &links).await?;
    let status = status::gather_status(cluster).await?;
    Ok(status)
}

/// Processes per broker: 1, 2 with `--ha file|jdbc`, `--replicas` (3) with `--ha replicated`.
fn group_size(args: &CreateArgs) -> Result<usize> {
    match args.ha {
        None => Ok(1),
        Some(HaArg::Replicated) => Ok(args.replicas.map_or(REPLICATED_MEMBERS, usize::from)),
        Some(_) if args.replicas.is_some() || args.zookeeper.is_some() => Err(CliError::Usage(
            "--replicas and --zookeeper are for --ha replicated groups: give --ha replicated"
                .into(),
        )),
        Some(_) => Ok(2),
    }
}

/// With `--ha replicated`: the ZooKeeper every group elects through (`--zookeeper`, else the
/// cluster's own server), each group under `/mq/CLUSTER/GROUP`, one replication token.
fn plan_replicated(
    args: &CreateArgs,
    dir: &Path,
    zookeeper: Option<&LocalZooKeeper>,
) -> Result<Option<ReplicatedPlan>> {
    if args.ha != Some(HaArg::Replicated) {
        return Ok(None);
    }
    if args.from.is_some() {
        return Err(CliError::Usage(
            "--ha replicated makes its groups itself: leave out --from".into(),
        ));
    }
    if !args.persistence.is_persistent() {
        return Err(CliError::Usage(
            "--ha replicated groups replicate their persistent messages: leave out --non-persistent"
                .into(),
        ));
    }
    let zk_address = match (&args.zookeeper, zookeeper) {
        (Some(a), _) if a.trim().is_empty() => {
            return Err(CliError::Usage(
                "--zookeeper needs HOST:PORT[,HOST:PORT...]".into(),
            ));
        }
        (Some(a), _) => a.trim().to_string(),
        (None, Some(zk)) => crate::zookeeper::address(zk),
        (None, None) => {
            return Err(CliError::Usage(
                "--ha replicated needs a ZooKeeper: give --zookeeper HOST:PORT".into(),
            ));
        }
    };
    Ok(Some(ReplicatedPlan {
        zk_address,
        zk_root: format!("/mq/{}", args.name),
        token_file: dir.join("replication.token").to_string_lossy().into_owned(),
    }))
}

/// What the groups of a `--ha replicated` cluster share.
#[derive(Debug, Clone)]
struct ReplicatedPlan {
    zk_address: String,
    /// Each group's node is `ZK_ROOT/GROUP`.
    zk_root: String,
    token_file: String,
}

/// The database of each broker with `--ha jdbc` (empty otherwise): one `--store` per broker,
/// the password file made absolute.
fn plan_stores(args: &CreateArgs, persistent: bool) -> Result<Vec<GroupStore>> {
    if args.ha != Some(HaArg::Jdbc) {
        if !args.stores.is_empty() {
            return Err(CliError::Usage(
                "--store is for --ha jdbc pairs: give --ha jdbc too".into(),
            ));
        }
        return Ok(Vec::new());
    }
    if !persistent {
        return Err(CliError::Usage(
            "--ha jdbc pairs share their persistent messages in PostgreSQL: leave out --non-persistent".into(),
        ));
    }
    if args.stores.is_empty() {
        // A local server (see `crate::postgres`).
        return Ok(Vec::new());
    }
    if args.stores.len() != args.nodes {
        return Err(CliError::Usage(format!(
            "--ha jdbc needs one --store postgres://USER@HOST:PORT/DB per broker ({} brokers, {} given): \
             each broker needs a database of its own",
            args.nodes,
            args.stores.len()
        )));
    }
    let password_file = match &args.store_password_file {
        Some(f) => Some(
            fs::canonicalize(f)
                .map_err(|e| CliError::io("could not read", f, e))?
                .to_string_lossy()
                .into_owned(),
        ),
        None => None,
    };
    Ok(args
        .stores
        .iter()
        .map(|url| GroupStore {
            url: url.clone(),
            password_file: password_file.clone(),
        })
        .collect())
}

/// `node1..nodeN` (groups of `members` when more than 1) and the topology's links.
fn plan_generated(
    count: usize,
    members: usize,
    topology: Topology,
    persistent: bool,
) -> (Vec<Planned>, Vec<PlannedLink>) {
    let nodes: Vec<Planned> = topology::node_names(count, members)
        .into_iter()
        .map(|node| Planned {
            node,
            transport_port: None,
            admin_port: None,
            persistent,
        })
        .collect();
    let groups: Vec<String> = (1..=count).map(|k| format!("node{k}")).collect();
    let links = topology::topology_links(topology, count)
        .into_iter()
        .map(
            |LinkSpec {
                 from,
                 to,
                 duplex,
                 ttl,
             }| PlannedLink {
                name: None,
                from: groups[from].clone(),
                to: groups[to].clone(),
                duplex,
                ttl,
            },
        )
        .collect();
    (nodes, links)
}

/// Reads and checks a `--from` layout.
fn plan_from_file(file: &Path, persistent: bool) -> Result<(Vec<Planned>, Vec<PlannedLink>)> {
    let text = fs::read_to_string(file).map_err(|e| CliError::io("could not read", file, e))?;
    let layout: ClusterLayout =
        serde_json::from_str(&text).map_err(|source| CliError::BadFile {
            path: file.to_path_buf(),
            what: "cluster layout",
            source,
        })?;
    plan_layout(&layout, persistent).map_err(|problem| CliError::BadLayout {
        path: file.to_path_buf(),
        problem,
    })
}

/// Checks a layout: valid unique names, groups that do not shadow processes, links between
/// existing groups.
fn plan_layout(
    layout: &ClusterLayout,
    persistent: bool,
) -> std::result::Result<(Vec<Planned>, Vec<PlannedLink>), String> {
    if layout.nodes.is_empty() {
        return Err("the layout has no nodes".to_string());
    }
    let mut names = BTreeSet::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for n in &layout.nodes {
        let group = n.group.clone().unwrap_or_else(|| n.name.clone());
        for (kind, name) in [("node", &n.name), ("group", &group)] {
            validate_name(kind, name).map_err(|e| e.to_string())?;
        }
        if !names.insert(n.name.clone()) {
            return Err(format!("node `{}` appears twice", n.name));
        }
        groups
            .entry(group.clone())
            .or_default()
            .push(n.name.clone());
        nodes.push(Planned {
            node: PlannedNode {
                name: n.name.clone(),
                group,
            },
            transport_port: n.transport_port,
            admin_port: n.admin_port,
            persistent: n.persistent.unwrap_or(persistent),
        });
    }
    for (group, members) in &groups {
        if names.contains(group) && members.as_slice() != [group.clone()] {
            return Err(format!(
                "group `{group}` has the name of a node outside it; rename one of them"
            ));
        }
    }
    // A link may name a group, or a node standing for its group.
    let group_of = |name: &str| -> Option<String> {
        if groups.contains_key(name) {
            return Some(name.to_string());
        }
        nodes
            .iter()
            .find(|p| p.node.name == name)
            .map(|p| p.node.group.clone())
    };
    let mut links = Vec::new();
    let mut link_names = BTreeSet::new();
    for l in &layout.links {
        let from =
            group_of(&l.from).ok_or_else(|| format!("link from unknown node `{}`", l.from))?;
        let to = group_of(&l.to).ok_or_else(|| format!("link to unknown node `{}`", l.to))?;
        if from == to {
            return Err(format!("link from `{from}` to itself"));
        }
        if let Some(name) = &l.name {
            validate_name("link", name).map_err(|e| e.to_string())?;
            if !link_names.insert(name.clone()) {
                return Err(format!("link `{name}` appears twice"));
            }
        }
        links.push(PlannedLink {
            name: l.name.clone(),
            from,
            to,
            duplex: l.duplex,
            ttl: l.ttl.unwrap_or(NETWORK_TTL).max(1),
        });
    }
    Ok((nodes, links))
}

/// `(transport, admin)` for each planned process: given in the layout, else handed out from
/// `base` upward (see [`ports`]). A port given explicitly must be free, not recorded by another
/// cluster of the home (`reserved`), and given once.
fn assign_ports(
    planned: &[Planned],
    base: u16,
    reserved: BTreeSet<u16>,
) -> Result<Vec<(u16, u16)>> {
    let others = reserved.clone();
    let mut allocator = ports::Allocator::new(base, ports::ephemeral_range(), reserved);
    let mut seen: BTreeMap<u16, String> = BTreeMap::new();
    for p in planned {
        for (port, role) in [(p.transport_port, "transport"), (p.admin_port, "admin")] {
            let Some(port) = port else { continue };
            if port == 0 {
                return Err(CliError::Usage(format!(
                    "the {role} port of {} is 0; give a real port or leave it out",
                    p.node.name
                )));
            }
            if let Some(other) = seen.insert(port, format!("{role} port of {}", p.node.name)) {
                return Err(CliError::Usage(format!(
                    "port {port} is both the {other} and the {role} port of {}",
                    p.node.name
                )));
            }
            if others.contains(&port) {
                return Err(CliError::Usage(format!(
                    "port {port} (the {role} port of {}) is recorded by another cluster of this home; choose another port",
                    p.node.name
                )));
            }
            if !ports::port_is_free(port) {
                return Err(CliError::PortInUse {
                    port,
                    role,
                    node: p.node.name.clone(),
                    hint: ports::holder_hint(port),
                });
            }
            if allocator.is_ephemeral(port) {
                output::warn(&format!(
                    "port {port} (the {role} port of {}) is in the kernel's ephemeral range; another program may take it while the node is stopped",
                    p.node.name
                ));
            }
            allocator.reserve(port);
        }
    }
    planned
        .iter()
        .map(|p| {
            let transport = match p.transport_port {
                Some(port) => port,
                None => allocator.next()?,
            };
            let admin = match p.admin_port {
                Some(port) => port,
                None => allocator.next()?,
            };
            Ok((transport, admin))
        })
        .collect()
}

/// The manifest of a new cluster in `dir`.
#[allow(clippy::too_many_arguments)]
fn build_manifest(
    dir: &Path,
    name: &str,
    topology: Topology,
    mqnode: &Path,
    token_file: &Path,
    planned: &[Planned],
    ports: &[(u16, u16)],
    links: &[PlannedLink],
    tls: bool,
    stores: &[GroupStore],
    postgres: Option<&LocalPostgres>,
    replicated: Option<&ReplicatedPlan>,
    zookeeper: Option<LocalZooKeeper>,
) -> Result<ClusterManifest> {
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    // A JDBC pair shares its database, and a replicated group nothing: each member has a data
    // dir of its own.
    let own_data = !stores.is_empty() || replicated.is_some();
    let nodes: Vec<NodeEntry> = planned
        .iter()
        .zip(ports)
        .map(|(p, (transport, admin))| NodeEntry {
            name: p.node.name.clone(),
            group: p.node.group.clone(),
            data_dir: path(
                dir.join(if own_data {
                    &p.node.name
                } else {
                    &p.node.group
                })
                .join("data"),
            ),
            log: path(dir.join(&p.node.name).join("node.log")),
            transport_port: *transport,
            admin_port: *admin,
            pid: None,
            persistent: p.persistent,
            tls,
            remote: None,
        })
        .collect();
    let mut groups: Vec<GroupEntry> = Vec::new();
    for n in &nodes {
        match groups.iter_mut().find(|g| g.name == n.group) {
            Some(g) => g.members.push(n.name.clone()),
            None => groups.push(GroupEntry {
                name: n.group.clone(),
                members: vec![n.name.clone()],
                store: stores.get(groups.len()).cloned(),
                replicated: replicated.map(|r| GroupReplicated {
                    zk_address: r.zk_address.clone(),
                    zk_path: format!("{}/{}", r.zk_root, n.group),
                    token_file: r.token_file.clone(),
                }),
            }),
        }
    }
    let mut entries: Vec<LinkEntry> = Vec::new();
    for l in links {
        let to_ports: Vec<u16> = nodes
            .iter()
            .filter(|n| n.group == l.to)
            .map(|n| n.transport_port)
            .collect();
        let taken: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let name = l
            .name
            .clone()
            .unwrap_or_else(|| topology::link_name(&l.from, &l.to, &taken));
        if taken.contains(&name.as_str()) {
            return Err(CliError::Usage(format!("link `{name}` appears twice")));
        }
        entries.push(LinkEntry {
            uri: topology::link_uri(&to_ports, l.ttl, l.duplex, tls),
            name,
            from: l.from.clone(),
            to: l.to.clone(),
            duplex: l.duplex,
            ttl: l.ttl,
        });
    }
    Ok(ClusterManifest {
        topology,
        mqnode: Some(path(mqnode.to_path_buf())),
        nodes,
        links: entries,
        groups,
        postgres: postgres.cloned(),
        zookeeper,
        ..bare_manifest(name, now_rfc3339(), path(token_file.to_path_buf()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::ctl::{LayoutLink, LayoutNode};

    fn layout_node(name: &str, group: Option<&str>) -> LayoutNode {
        LayoutNode {
            name: name.into(),
            group: group.map(String::from),
            transport_port: None,
            admin_port: None,
            persistent: None,
        }
    }

    fn layout_link(from: &str, to: &str) -> LayoutLink {
        LayoutLink {
            name: None,
            from: from.into(),
            to: to.into(),
            duplex: false,
            ttl: None,
        }
    }

    #[test]
    fn generated_manifest_for_an_ha_line() {
        let (planned, links) = plan_generated(2, 2, Topology::Line, true);
        let ports: Vec<(u16, u16)> = (0..planned.len() as u16)
            .map(|i| (61700 + 2 * i, 61701 + 2 * i))
            .collect();
        let m = build_manifest(
            Path::new("/h/clusters/c"),
            "c",
            Topology::Line,
            Path::new("/bin/mqnode"),
            Path::new("/h/clusters/c/admin.token"),
            &planned,
            &ports,
            &links,
            false,
            &[],
            None,
            None,
            None,
        )
        .expect("manifest");
        assert_eq!(m.nodes.len(), 4);
        assert_eq!(m.nodes[1].name, "node1b");
        assert_eq!(m.nodes[1].data_dir, "/h/clusters/c/node1/data");
        assert_eq!(m.nodes[1].log, "/h/clusters/c/node1b/node.log");
        assert_eq!(
            (m.nodes[1].transport_port, m.nodes[1].admin_port),
            (61702, 61703)
        );
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.groups[1].members, ["node2a", "node2b"]);
        assert_eq!(m.links.len(), 1);
        assert_eq!(m.links[0].name, "node1-node2");
        assert_eq!(
            m.links[0].uri,
            "static:(masterslave:(tcp://127.0.0.1:61704,tcp://127.0.0.1:61706))?networkTTL=1&duplex=true"
        );
        // The manifest survives a round trip through JSON unchanged.
        let json = serde_json::to_string_pretty(&m).expect("serialise");
        let back: ClusterManifest = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, m);
    }

    #[test]
    fn layouts_are_checked() {
        let ok = ClusterLayout {
            nodes: vec![
                layout_node("a", None),
                layout_node("b1", Some("b")),
                layout_node("b2", Some("b")),
            ],
            links: vec![layout_link("a", "b"), layout_link("b2", "a")],
        };
        let (nodes, links) = plan_layout(&ok, false).expect("valid");
        assert_eq!(nodes.len(), 3);
        assert!(!nodes[0].persistent);
        assert_eq!(links[1].from, "b", "a node stands for its group");
        assert_eq!(links[0].ttl, 1);

        let empty = ClusterLayout::default();
        assert!(plan_layout(&empty, true).is_err());
        let twice = ClusterLayout {
            nodes: vec![layout_node("a", None), layout_node("a", None)],
            links: vec![],
        };
        assert!(plan_layout(&twice, true).is_err());
        let unknown = ClusterLayout {
            nodes: vec![layout_node("a", None)],
            links: vec![layout_link("a", "zz")],
        };
        assert!(plan_layout(&unknown, true).is_err());
        let self_link = ClusterLayout {
            nodes: vec![layout_node("a", None)],
            links: vec![layout_link("a", "a")],
        };
        assert!(plan_layout(&self_link, true).is_err());
        let shadow = ClusterLayout {
            nodes: vec![layout_node("a", None), layout_node("b", Some("a"))],
            links: vec![],
        };
        assert!(plan_layout(&shadow, true).is_err());
    }

    #[test]
    fn ports_in_use_are_named() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let taken = listener.local_addr().expect("addr").port();
        let planned = vec![Planned {
            node: PlannedNode {
                name: "node1".into(),
                group: "node1".into(),
            },
            transport_port: Some(taken),
            admin_port: None,
            persistent: true,
        }];
        match assign_ports(&planned, 61700, BTreeSet::new()) {
            Err(CliError::PortInUse {
                port, role, node, ..
            }) => {
                assert_eq!((port, role, node.as_str()), (taken, "transport", "node1"));
            }
            other => panic!("expected PortInUse, got {other:?}"),
        }
    }

    #[test]
    fn explicit_ports_of_other_clusters_are_refused() {
        let planned = vec![Planned {
            node: PlannedNode {
                name: "node1".into(),
                group: "node1".into(),
            },
            transport_port: Some(20001),
            admin_port: None,
            persistent: true,
        }];
        let reserved: BTreeSet<u16> = [20001].into_iter().collect();
        assert!(matches!(
            assign_ports(&planned, 61700, reserved),
            Err(CliError::Usage(_))
        ));
    }
}
