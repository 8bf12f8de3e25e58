//! Links between brokers as network connectors on their FROM broker's serving member.

use mq_shared::api::AddNetworkConnector;
use mq_shared::ctl::LinkEntry;
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use crate::client::admin::ConnectorOutcome;
use crate::cluster::Cluster;
use crate::error::Result;
use crate::output;

/// Creates `link` on its FROM broker's serving member. `Ok(false)` when that node does not
/// support network connectors (404).
pub async fn apply_link(cluster: &Cluster, link: &LinkEntry) -> Result<bool> {
    let client = cluster.master_of(&link.from, ADMIN_REQUEST_TIMEOUT).await?;
    // The manifest keeps the URI without the bridge user's password; it is added here.
    let request = AddNetworkConnector {
        name: Some(link.name.clone()),
        uri: crate::security::link_uri_with_login(&cluster.manifest, &link.uri)?,
    };
    Ok(client.add_connector(&request).await? != ConnectorOutcome::Unsupported)
}

/// Creates `links` on their FROM brokers. A node without network connector support (404) is
/// not an error: the links stay recorded, with one warning. Returns whether the node supports
/// them.
pub async fn apply_links(cluster: &Cluster, links: &[LinkEntry]) -> Result<bool> {
    let mut supported = true;
    for link in links {
        if !apply_link(cluster, link).await? {
            supported = false;
            break;
        }
    }
    if !supported {
        output::warn("links recorded; this mqnode does not support network connectors");
    }
    Ok(supported)
}
