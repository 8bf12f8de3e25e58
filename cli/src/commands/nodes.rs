//! Reads that go to many nodes at once: `NAME` (every node of a cluster), `NAME/NODE` (one node
//! or the members of a group) or `--url URL...` (nodes outside any cluster), each asked with a
//! short timeout. A slave (which serves no broker data) is skipped; a node that does not answer
//! is reported down: a warning on stderr (not while `queue stat --watch` redraws), a `(down)`
//! row in the table, exit code 3 (69 when none answered). `queue stat`, `topic ls`,
//! `connection ls`, `sub ls` and `scheduled ls` share this.

use std::future::Future;

use mq_shared::api;
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::args::topic::{NodeUrls, NodesArgs};
use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format, Table};

/// Marker in the second column of a node that did not answer.
pub const DOWN: &str = "(down)";

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
    urls: &NodeUrls,
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
        .url
        .iter()
        .map(|url| {
            let endpoint = super::queue::url_endpoint(url, urls.token_file.as_deref())?;
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

/// Splits answers, in client order: the label and data of each node that answered, the labels
/// of those that did not and why. A standby node is in neither.
pub fn partition<T>(
    clients: &[AdminClient],
    answers: Vec<Answer<T>>,
) -> (Vec<(String, T)>, Vec<String>, Vec<CliError>) {
    let mut data = Vec::new();
    let mut down = Vec::new();
    let mut errors = Vec::new();
    for (client, answer) in clients.iter().zip(answers) {
        match answer {
            Answer::Data(d) => data.push((client.label().to_string(), d)),
            Answer::Standby => {}
            Answer::Down(e) => {
                down.push(client.label().to_string());
                errors.push(e);
            }
        }
    }
    (data, down, errors)
}

/// What [`gather`] read.
pub struct Gathered<T> {
    /// The label and data of each node that answered, in the order asked.
    pub data: Vec<(String, T)>,
    /// The nodes that did not answer.
    pub down: Vec<String>,
    /// How the read ends.
    pub tally: Tally,
}

/// How many nodes a read asked, and why those that did not answer failed.
pub struct Tally {
    asked: usize,
    cluster: Option<String>,
    errors: Vec<CliError>,
}

impl Tally {
    /// The read's [`outcome`].
    pub fn outcome(self) -> Result<Outcome> {
        outcome(
            self.errors.len(),
            self.asked,
            self.cluster.as_deref(),
            self.errors,
        )
    }
}

/// Asks every node `args` names with `ask`, all at once, and warns on stderr of each that did
/// not answer.
pub async fn gather<T, F, Fut>(ctx: &Context, args: &NodesArgs, ask: F) -> Result<Gathered<T>>
where
    T: Send + 'static,
    F: Fn(AdminClient) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let (clients, cluster) = sources(ctx, args.name.as_deref(), &args.urls)?;
    let answers = ask_all(&clients, ask).await;
    let (data, down, errors) = partition(&clients, answers);
    for e in &errors {
        output::warn(&e.to_string());
    }
    Ok(Gathered {
        data,
        down,
        tally: Tally {
            asked: clients.len(),
            cluster,
            errors,
        },
    })
}

/// Prints a read's report: as JSON with `-o json`, else as the table `draw` makes of it with a
/// `(down)` row for each node of `down` at the end.
pub fn print<R: Serialize>(
    ctx: &Context,
    report: &R,
    down: &[String],
    draw: impl FnOnce(&R) -> Table,
) -> Result<()> {
    if ctx.out.format() == Format::Json {
        return ctx.out.json(report);
    }
    let mut table = draw(report);
    push_down(&mut table, down);
    ctx.out.table(&table)
}

/// One `(down)` row per node that did not answer.
pub fn push_down(table: &mut Table, down: &[String]) {
    for node in down {
        let mut cells = vec![node.clone(), DOWN.to_string()];
        cells.extend(std::iter::repeat_n(
            "-".to_string(),
            table.header.len().saturating_sub(2),
        ));
        table.push(cells);
    }
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
