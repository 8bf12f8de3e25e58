//! Reads that go to many nodes at once: `NAME` (every node of a cluster), `NAME/NODE` (one node
//! or the members of a group) or `--url URL...` (nodes outside any cluster), each asked with a
//! short timeout. A slave (which serves no broker data) is skipped; a node that does not answer
//! is reported down. `queue stat`, `topic ls` and `connection ls` share this.

use std::future::Future;
use std::path::Path;

use mq_shared::api;
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;
use tokio::task::JoinSet;

use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};

/// What one node answered.
pub enum Answer<T> {
    /// Its data.
    Data(T),
    /// A slave or a node shutting down: nothing to show, not down either.
    Standby,
    /// It did not answer, or refused.
    Down(CliError),
}

/// The nodes to ask, in display order, and the cluster name if any.
pub fn sources(
    ctx: &Context,
    name: Option<&str>,
    urls: &[String],
    token_file: Option<&Path>,
) -> Result<(Vec<AdminClient>, Option<String>)> {
    if let Some(target) = name {
        let (name, node) = crate::args::split_target(target);
        let cluster = Cluster::load(&ctx.home, &name)?;
        let nodes: Vec<_> = match &node {
            None => cluster.manifest.nodes.iter().collect(),
            Some(node) => {
                cluster.check_node(node)?;
                cluster
                    .manifest
                    .nodes
                    .iter()
                    .filter(|n| n.name == *node || n.group == *node)
                    .collect()
            }
        };
        let clients = nodes
            .into_iter()
            .map(|n| cluster.client(n, STAT_REQUEST_TIMEOUT))
            .collect::<Result<_>>()?;
        return Ok((clients, Some(name)));
    }
    let clients = urls
        .iter()
        .map(|url| {
            let endpoint = super::queue::url_endpoint(url, token_file)?;
            AdminClient::new(endpoint, STAT_REQUEST_TIMEOUT)
        })
        .collect::<Result<_>>()?;
    Ok((clients, None))
}

/// Asks every client at once with `ask`; answers in client order.
pub async fn ask_all<T, F, Fut>(clients: &[AdminClient], ask: F) -> Vec<Answer<T>>
where
    T: Send + 'static,
    F: Fn(AdminClient) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for (i, client) in clients.iter().cloned().enumerate() {
        let asked = ask(client);
        tasks.spawn(async move {
            let answer = match asked.await {
                Ok(data) => Answer::Data(data),
                Err(CliError::Api { code, .. }) if code == api::codes::UNAVAILABLE => {
                    Answer::Standby
                }
                Err(e) => Answer::Down(e),
            };
            (i, answer)
        });
    }
    let mut answers: Vec<Option<Answer<T>>> = clients.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, answer)) = joined {
            answers[i] = Some(answer);
        }
    }
    answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| {
                Answer::Down(CliError::Unavailable("the request task failed".to_string()))
            })
        })
        .collect()
}

/// Complete when every node answered; partial when some did not; an error when none did.
pub fn outcome(
    down: usize,
    asked: usize,
    cluster: Option<&str>,
    mut errors: Vec<CliError>,
) -> Result<Outcome> {
    if down == 0 {
        Ok(Outcome::Complete)
    } else if down < asked {
        Ok(Outcome::Partial)
    } else {
        Err(match cluster {
            Some(cluster) => CliError::NoneAnswered {
                cluster: cluster.to_string(),
            },
            None if errors.len() == 1 => errors.remove(0),
            None => CliError::Several(errors),
        })
    }
}
