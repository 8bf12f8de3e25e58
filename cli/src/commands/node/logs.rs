//! `mqctl node logs NAME/NODE [--lines N] [--follow]`: the node's log file (its stdout and
//! stderr, appended over every start), last lines first, then followed as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::args::node::LogsArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output;

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Runs `node logs`.
pub async fn run(ctx: &Context, args: LogsArgs) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    cluster.check_local(&node, "read the log of")?;
    let path = Path::new(&node.log).to_path_buf();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.follow => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            output::note(&format!(
                "{} has no log yet ({} does not exist): it was never started.",
                node.name,
                path.display()
            ));
            return Ok(Outcome::Complete);
        }
        Err(e) => return Err(CliError::io("could not read", &path, e)),
    };
    output::write_stdout(&last_lines(&String::from_utf8_lossy(&bytes), args.lines))?;
    if !args.follow {
        return Ok(Outcome::Complete);
    }
    let mut offset = bytes.len() as u64;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::io("could not watch for", "SIGTERM", e))?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = &mut interrupt => return Ok(Outcome::Complete),
            _ = term.recv() => return Ok(Outcome::Complete),
        }
        offset = print_new(&path, offset)?;
    }
}

/// Prints what was appended to `path` since `offset`; a log that shrank (rotated, truncated)
/// is printed from its start. Returns the new offset.
fn print_new(path: &Path, offset: u64) -> Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CliError::io("could not read", path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| CliError::io("could not read", path, e))?
        .len();
    let from = if len < offset { 0 } else { offset };
    if len == from {
        return Ok(from);
    }
    file.seek(SeekFrom::Start(from))
        .map_err(|e| CliError::io("could not read", path, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| CliError::io("could not read", path, e))?;
    output::write_stdout(&String::from_utf8_lossy(&bytes))?;
    Ok(from + bytes.len() as u64)
}

/// The last `n` lines of `text` (all of it for 0), each ending in a newline.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = if n == 0 {
        0
    } else {
        lines.len().saturating_sub(n)
    };
    lines[start..].iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 0), "a\nb\nc\n");
        assert_eq!(last_lines("a\n", 5), "a\n");
        assert_eq!(last_lines("", 5), "");
    }
}
