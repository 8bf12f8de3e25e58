//! The handle on one cluster: its manifest, its admin token and its home, and how commands
//! address its parts. `NAME/NODE` names a process or, for the commands that go to a broker, a
//! master/slave group; [`Cluster::serving`] and [`Cluster::master_of`] find the member that
//! serves a group right now.

use std::path::Path;
use std::time::Duration;

use mq_shared::ctl::{ClusterManifest, MANIFEST_VERSION, NodeEntry, RemoteNode, Topology};

use crate::client::admin::{AdminClient, Endpoint};
use crate::error::{CliError, Result};
use crate::home::{Home, read_token};

/// `uri` (a transport a node reports, e.g. `tcp://0.0.0.0:61613`) with an unspecified host
/// replaced by `host`, the one its admin URL was reached at.
pub fn reachable_uri(uri: &str, host: &str) -> String {
    for any in ["0.0.0.0", "[::]"] {
        if let Some((scheme, rest)) = uri.split_once("://")
            && let Some(port) = rest.strip_prefix(any).and_then(|r| r.strip_prefix(':'))
        {
            return format!("{scheme}://{host}:{port}");
        }
    }
    uri.to_string()
}

/// Bound on the one request that explains why no node given by `--url` answered.
const STAT_TIMEOUT: Duration = mq_shared::defaults::STAT_REQUEST_TIMEOUT;

/// A manifest of no nodes, links or groups, and none of the files `cluster create` adds
/// (security, credentials, TLS, a local PostgreSQL): what the maker of a cluster fills in.
pub fn bare_manifest(name: &str, created: String, token_file: String) -> ClusterManifest {
    ClusterManifest {
        version: MANIFEST_VERSION,
        name: name.to_string(),
        created,
        topology: Topology::None,
        mqnode: None,
        token_file,
        nodes: Vec::new(),
        links: Vec::new(),
        groups: Vec::new(),
        security_file: None,
        credentials_file: None,
        tls_dir: None,
        postgres: None,
        zookeeper: None,
    }
}

/// A loaded cluster: its manifest, its admin token and where it lives.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The manifest as read (or as being built).
    pub manifest: ClusterManifest,
    /// The admin token, if the cluster has one.
    pub token: Option<String>,
    /// Home it was loaded from.
    pub home: Home,
}

impl Cluster {
    /// Loads cluster `name` and its token.
    pub fn load(home: &Home, name: &str) -> Result<Cluster> {
        let manifest = home.load(name)?;
        let token = home.token(&manifest)?;
        Ok(Cluster {
            manifest,
            token,
            home: home.clone(),
        })
    }

    /// A cluster of the nodes at `urls`, outside any manifest, for the commands that take
    /// `--url` (each node asked with the token in `token_file`): each URL is a node named
    /// `HOST:PORT`, its own broker, or, with `group`, all members of one master/slave group.
    pub fn from_urls(
        home: &Home,
        urls: &[String],
        token_file: Option<&Path>,
        group: Option<&str>,
    ) -> Result<Cluster> {
        let token = token_file.map(read_token).transpose()?;
        let nodes = urls
            .iter()
            .map(|url| {
                let endpoint = crate::commands::queue::url_endpoint(url, None)?;
                Ok(NodeEntry {
                    group: group.map_or_else(|| endpoint.label.clone(), str::to_string),
                    name: endpoint.label,
                    data_dir: String::new(),
                    log: String::new(),
                    transport_port: 0,
                    admin_port: 0,
                    pid: None,
                    persistent: true,
                    tls: false,
                    remote: Some(RemoteNode {
                        admin: endpoint.url,
                        token_file: None,
                        transport: String::new(),
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let token_file = token_file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "--token-file".to_string());
        Ok(Cluster {
            manifest: ClusterManifest {
                nodes,
                ..bare_manifest("--url", String::new(), token_file)
            },
            token,
            home: home.clone(),
        })
    }

    /// For nodes given by `--url`, when none answered: what the first one says (a refused
    /// token, a connection refused), rather than "no node of cluster --url answered".
    pub async fn why_none_answered(&self, e: CliError) -> CliError {
        if !matches!(e, CliError::NoneAnswered { .. }) {
            return e;
        }
        let urls: Vec<String> = self.manifest.nodes.iter().map(|n| n.admin_url()).collect();
        let first = self
            .manifest
            .nodes
            .first()
            .map(|n| self.client(n, STAT_TIMEOUT));
        if let Some(Ok(client)) = first
            && let Err(why) = client.broker().await
        {
            return why;
        }
        CliError::Unavailable(format!(
            "none of the nodes given by --url answered ({}); check the URLs and that mqnode runs there",
            urls.join(", ")
        ))
    }

    /// Refuses to start, stop or signal `node` when mqctl does not run it.
    pub fn check_local(&self, node: &NodeEntry, what: &str) -> Result<()> {
        match &node.remote {
            Some(remote) => Err(CliError::Usage(format!(
                "cannot {what} {}/{}: it is a remote node (adopted from {}), which mqctl does not run; {what} it where it runs",
                self.name(),
                node.name,
                remote.admin
            ))),
            None => Ok(()),
        }
    }

    /// Writes the manifest back.
    pub fn save(&self) -> Result<()> {
        self.home.save(&self.manifest)
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// How to reach `node`'s admin API, and what to tell the user when that fails.
    pub fn endpoint(&self, node: &NodeEntry) -> Endpoint {
        let c = self.name();
        if let Some(remote) = &node.remote {
            // A remote node's own token file, else the cluster's token; one that cannot be
            // read now shows as a refused token, naming the file.
            let token = match &remote.token_file {
                Some(file) => read_token(Path::new(file)).ok(),
                None => self.token.clone(),
            };
            let file = remote
                .token_file
                .clone()
                .unwrap_or_else(|| self.manifest.token_file.clone());
            return Endpoint {
                label: node.name.clone(),
                url: node.admin_url(),
                token,
                unreachable_hint: format!(
                    "it is a remote node (adopted into {c}); check that it runs at {}",
                    remote.admin
                ),
                auth_hint: format!(
                    "its token is read from {file}; adopt it again with the right --token-file"
                ),
            };
        }
        Endpoint {
            label: node.name.clone(),
            url: node.admin_url(),
            token: self.token.clone(),
            unreachable_hint: format!(
                "is it running? see `mqctl cluster status {c}`, start it with `mqctl node start {c}/{}`",
                node.name
            ),
            auth_hint: format!(
                "it was started with another token than {}; restart it with `mqctl node restart {c}/{}`",
                self.manifest.token_file, node.name
            ),
        }
    }

    /// An admin client for `node` with the given timeout.
    pub fn client(&self, node: &NodeEntry, timeout: Duration) -> Result<AdminClient> {
        AdminClient::new(self.endpoint(node), timeout)
    }

    /// The process or group named `name`: `Err(NodeNotFound)` if neither.
    pub fn check_node(&self, name: &str) -> Result<()> {
        if self.manifest.node(name).is_some() || self.manifest.group(name).is_some() {
            Ok(())
        } else {
            Err(self.node_not_found(name))
        }
    }

    /// The error for an unknown node name.
    pub fn node_not_found(&self, name: &str) -> CliError {
        let mut known: Vec<&str> = self
            .manifest
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        for g in &self.manifest.groups {
            if g.members.len() > 1 {
                known.push(g.name.as_str());
            }
        }
        CliError::NodeNotFound {
            cluster: self.name().to_string(),
            node: name.to_string(),
            known: known.join(", "),
        }
    }

    /// The broker (group) `name` stands for: a group, or a process of one.
    pub fn broker_of(&self, name: &str) -> Result<String> {
        if self.manifest.group(name).is_some() {
            return Ok(name.to_string());
        }
        match self.manifest.node(name) {
            Some(node) => Ok(node.group.clone()),
            None => Err(self.node_not_found(name)),
        }
    }

    /// The process `name` (a process, not a group).
    pub fn process(&self, name: &str) -> Result<&NodeEntry> {
        match self.manifest.node(name) {
            Some(node) => Ok(node),
            None => match self.manifest.group(name) {
                Some(group) if group.members.len() > 1 => Err(CliError::Usage(format!(
                    "`{name}` is a master/slave group of cluster `{}`; name one of its processes ({})",
                    self.name(),
                    group.members.join(", ")
                ))),
                _ => Err(self.node_not_found(name)),
            },
        }
    }

    /// Group names in manifest order.
    pub fn group_names(&self) -> Vec<String> {
        if self.manifest.groups.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for n in &self.manifest.nodes {
                if !names.contains(&n.group) {
                    names.push(n.group.clone());
                }
            }
            return names;
        }
        self.manifest
            .groups
            .iter()
            .map(|g| g.name.clone())
            .collect()
    }

    /// The STOMP URI of `target` (a process, a group, or with `None` the first group):
    /// `tcp://...` for one process, `failover:(tcp://A,tcp://B)?randomize=false` over the
    /// members of a group of several, so that a client reaches whichever serves.
    pub fn stomp_uri(&self, target: Option<&str>) -> Result<String> {
        let members: Vec<&NodeEntry> = match target {
            Some(name) => match self.manifest.node(name) {
                Some(node) => vec![node],
                None if self.manifest.group(name).is_some() => self.manifest.members(name),
                None => return Err(self.node_not_found(name)),
            },
            None => {
                let first = self.group_names().into_iter().next().ok_or_else(|| {
                    CliError::Usage(format!("cluster `{}` has no nodes", self.name()))
                })?;
                self.manifest.members(&first)
            }
        };
        let uris: Vec<String> = members.iter().map(|n| n.transport_uri()).collect();
        Ok(match uris.as_slice() {
            [one] => one.clone(),
            many => format!("failover:({})?randomize=false", many.join(",")),
        })
    }

    /// The admin client of the node that serves `target`: a process by name, the current master
    /// of a group, or (with `None`) the first group's master.
    pub async fn serving(&self, target: Option<&str>, timeout: Duration) -> Result<AdminClient> {
        let group = match target {
            Some(name) => match self.manifest.node(name) {
                // A process named explicitly is used as is, even a slave: the user asked for it.
                Some(node) => return self.client(node, timeout),
                None if self.manifest.group(name).is_some() => name.to_string(),
                None => return Err(self.node_not_found(name)),
            },
            None => self.group_names().into_iter().next().ok_or_else(|| {
                CliError::Usage(format!("cluster `{}` has no nodes", self.name()))
            })?,
        };
        self.master_of(&group, timeout).await
    }

    /// The member of `group` whose `/readyz` answers 200 (for a group of one, that node).
    pub async fn master_of(&self, group: &str, timeout: Duration) -> Result<AdminClient> {
        let members = self.manifest.members(group);
        if let [only] = members.as_slice() {
            return self.client(only, timeout);
        }
        let first = members.first().map(|n| n.name.clone()).unwrap_or_default();
        let mut details = Vec::new();
        for node in members {
            let client = self.client(node, timeout)?;
            match client.readyz().await {
                Ok(true) => return Ok(client),
                Ok(false) => details.push(format!("{} is a slave", node.name)),
                Err(_) => details.push(format!("{} did not answer", node.name)),
            }
        }
        Err(CliError::NoMaster {
            cluster: self.name().to_string(),
            group: group.to_string(),
            first,
            detail: details.join(", "),
        })
    }
}
