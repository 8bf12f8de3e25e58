//! `mqctl queue stat|send|browse|purge|delete`.

mod browse;
mod remove;
mod send;
mod stat;

use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use self::remove::Removal;
use super::Context;
use crate::args::queue::{Address, QueueCommand, QueueTarget};
use crate::client::admin::{AdminClient, Endpoint};
use crate::cluster::Cluster;
use crate::error::{CliError, Outcome, Result};
use crate::home::read_token;

/// Runs one `queue` verb.
pub async fn run(ctx: &Context, command: QueueCommand) -> Result<Outcome> {
    match command {
        QueueCommand::Stat(args) => stat::run(ctx, args).await,
        QueueCommand::Send(args) => send::run(ctx, args).await,
        QueueCommand::Browse(args) => browse::run(ctx, args).await,
        QueueCommand::Purge(args) => remove::run(ctx, args, Removal::Purge).await,
        QueueCommand::Delete(args) => remove::run(ctx, args, Removal::Delete).await,
    }
}

/// The admin client for `NAME[/NODE]` or `--url`, and the queue name.
pub(crate) async fn resolve(ctx: &Context, at: &QueueTarget) -> Result<(AdminClient, String)> {
    let (address, queue) = at.resolve().map_err(CliError::Usage)?;
    if queue.is_empty() {
        return Err(CliError::Usage("the queue name is empty".to_string()));
    }
    let queue = queue
        .strip_prefix("/queue/")
        .map(str::to_string)
        .unwrap_or(queue);
    let client = match address {
        Address::Cluster { name, node } => {
            let cluster = Cluster::load(&ctx.home, &name)?;
            cluster
                .serving(node.as_deref(), ADMIN_REQUEST_TIMEOUT)
                .await?
        }
        Address::Url { url, token_file } => AdminClient::new(
            url_endpoint(&url, token_file.as_deref())?,
            ADMIN_REQUEST_TIMEOUT,
        )?,
    };
    Ok((client, queue))
}

/// The endpoint of a node given by `--url`, labelled `HOST:PORT`.
pub(crate) fn url_endpoint(url: &str, token_file: Option<&std::path::Path>) -> Result<Endpoint> {
    let token = token_file.map(read_token).transpose()?;
    let url = url.trim_end_matches('/').to_string();
    let label = url
        .strip_prefix("http://")
        .unwrap_or(&url)
        .split('/')
        .next()
        .unwrap_or(&url)
        .to_string();
    Ok(Endpoint {
        label,
        url: url.clone(),
        token,
        unreachable_hint: "check the URL and that mqnode runs there".to_string(),
        auth_hint: "pass the node's admin token file with --token-file".to_string(),
    })
}
