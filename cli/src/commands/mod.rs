//! One module per noun, one file per verb. Each command takes its parsed arguments and the
//! [`Context`], prints its result, and returns how it ended.

pub mod bench;
pub mod cluster;
pub mod console;
pub mod dlq;
pub mod docs;
pub mod failover;
pub mod link;
pub mod node;
pub mod nodes;
pub mod queue;
pub mod scheduled;
pub mod sub;
pub mod topic;

use crate::args::{Cli, Command};
use crate::error::{Outcome, Result};
use crate::home::Home;
use crate::output::Output;

/// What every command needs: where clusters live and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    /// mqctl's home.
    pub home: Home,
    /// Output format and destination.
    pub out: Output,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let ctx = Context {
        home: Home::locate()?,
        out: Output::new(crate::output::Options {
            format: cli.output,
            columns: cli.columns,
            limit: cli.limit,
        }),
    };
    match cli.command {
        Command::Cluster(command) => cluster::run(&ctx, command).await,
        Command::Node(command) => node::run(&ctx, command).await,
        Command::Link(command) => link::run(&ctx, command).await,
        Command::Queue(command) => queue::run(&ctx, command).await,
        Command::Topic(command) => topic::run_topic(&ctx, command).await,
        Command::Sub(command) => sub::run(&ctx, command).await,
        Command::Connection(command) => topic::run_connection(&ctx, command).await,
        Command::Failover(command) => failover::run(&ctx, command).await,
        Command::Dlq(command) => dlq::run(&ctx, command).await,
        Command::Scheduled(command) => scheduled::run(&ctx, command).await,
        Command::Bench(args) => bench::run(&ctx, args).await,
        Command::Console(args) => console::run(&ctx, args).await,
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man(args) => docs::man(&ctx, args.dir.as_deref()),
        Command::Security(crate::args::SecurityCommand::HashPassword) => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).map_err(|e| {
                crate::error::CliError::Usage(format!("cannot read the password from stdin: {e}"))
            })?;
            println!("{}", crate::security::hash_password(&input)?);
            Ok(Outcome::Complete)
        }
    }
}
