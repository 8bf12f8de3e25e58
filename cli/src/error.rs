//! Everything that can go wrong in `mqctl`, as one enum.
//!
//! Each variant renders as one sentence that names the cluster or node involved and says what to
//! do next, and maps to an exit code ([`CliError::exit_code`]), after the BSD `sysexits.h` where
//! one fits. Commands return [`CliError`]; `main` prints it on stderr and exits.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | ok |
//! | 1 | the operation failed (anything not below) |
//! | 2 | usage: the command line is wrong, or a confirmation was refused |
//! | 3 | partial: some nodes answered, some did not |
//! | 66 | unknown cluster, node, queue or link (`EX_NOINPUT`) |
//! | 69 | node unavailable: it does not answer, or no member of its group serves (`EX_UNAVAILABLE`) |
//! | 75 | timeout: a node did not become ready, stop, or answer in time (`EX_TEMPFAIL`) |
//! | 77 | not authorized: the node refused the admin token (`EX_NOPERM`) |
//! | 130 | interrupted (Ctrl-C) |

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command line is wrong (clap's own errors use it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: some nodes answered and some did not.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code: no such cluster, node, queue or link (`EX_NOINPUT`).
pub const EXIT_NOT_FOUND: u8 = 66;
/// Exit code: a node does not answer, or no member of its group serves (`EX_UNAVAILABLE`).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code: something did not happen in time (`EX_TEMPFAIL`).
pub const EXIT_TIMEOUT: u8 = 75;
/// Exit code: a node refused the admin token (`EX_NOPERM`).
pub const EXIT_NOT_AUTHORIZED: u8 = 77;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit codes with their meaning, for `mqctl --help` and the docs.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   ok
  1   the operation failed
  2   usage error (or a confirmation was refused)
  3   partial: some nodes answered, some did not
  66  unknown cluster, node, queue or link
  69  node unavailable: it does not answer, or no member of its group serves
  75  timeout: a node did not become ready, stop, or answer in time
  77  not authorized: the node refused the admin token
  130 interrupted (Ctrl-C)";

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done or shown.
    Complete,
    /// The output is complete for the nodes that answered; some did not (exit code 3).
    Partial,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Complete => ExitCode::from(EXIT_OK),
            Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        }
    }
}

/// An `mqctl` failure: one sentence for the user and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments are inconsistent in a way clap cannot check.
    #[error("{0}")]
    Usage(String),

    /// Neither `$MQCTL_HOME` nor `$HOME` is set.
    #[error("cannot find mqctl's home: set MQCTL_HOME (or HOME) to a writable directory")]
    NoHome,

    /// No `clusters/NAME/cluster.json`.
    #[error("no cluster named `{name}` in {home}; list clusters with `mqctl cluster ls`")]
    ClusterNotFound {
        /// Cluster name.
        name: String,
        /// The clusters folder searched.
        home: PathBuf,
    },

    /// `cluster create` of a name already taken.
    #[error(
        "a cluster named `{name}` already exists in {path}; choose another name or remove it with `mqctl cluster destroy {name}`"
    )]
    ClusterExists {
        /// Cluster name.
        name: String,
        /// Its folder.
        path: PathBuf,
    },

    /// `NAME/NODE` names a node the manifest does not have.
    #[error(
        "cluster `{cluster}` has no node `{node}` (it has {known}); list them with `mqctl node ls {cluster}`"
    )]
    NodeNotFound {
        /// Cluster name.
        cluster: String,
        /// Node asked for.
        node: String,
        /// Nodes and groups it does have.
        known: String,
    },

    /// `link rm --url` of a connector the node does not have.
    #[error("{node} has no network connector `{link}`; list them with `mqctl link ls --url {url}`")]
    ConnectorNotFound {
        /// The node's label (`HOST:PORT`).
        node: String,
        /// Its admin URL.
        url: String,
        /// Connector asked for.
        link: String,
    },

    /// `link rm` of a link the manifest does not have.
    #[error("cluster `{cluster}` has no link `{link}`; list them with `mqctl link ls {cluster}`")]
    LinkNotFound {
        /// Cluster name.
        cluster: String,
        /// Link asked for.
        link: String,
    },

    /// No `mqnode` executable was found.
    #[error(
        "mqnode not found (looked {searched}); build it with `cargo build -p mqnode` or pass --mqnode PATH"
    )]
    MqnodeNotFound {
        /// Where it was looked for.
        searched: String,
    },

    /// A port a node needs is taken by another process.
    #[error("port {port} (the {role} port of {node}) is already in use; {hint}")]
    PortInUse {
        /// The port.
        port: u16,
        /// `transport` or `admin`.
        role: &'static str,
        /// Node that needs it.
        node: String,
        /// What to do.
        hint: String,
    },

    /// A node exited while `mqctl` waited for it to become ready.
    #[error("{node} exited during start ({status}); last lines of {log}:\n{tail}")]
    NodeExited {
        /// Node name.
        node: String,
        /// Exit status, as text.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },

    /// A node did not become ready in time.
    #[error("{node} was not ready after {secs} s ({waiting}); last lines of {log}:\n{tail}")]
    NodeNotReady {
        /// Node name.
        node: String,
        /// Seconds waited.
        secs: u64,
        /// What was still missing.
        waiting: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },

    /// A node did not exit after SIGTERM within the bounded wait.
    #[error(
        "{node} (pid {pid}) did not exit within {secs} s of SIGTERM; kill it with `mqctl node kill {cluster}/{node}`"
    )]
    StopTimeout {
        /// Cluster name.
        cluster: String,
        /// Node name.
        node: String,
        /// Its pid.
        pid: u32,
        /// Seconds waited.
        secs: u64,
    },

    /// The `mqnode` executable could not be run.
    #[error("could not start {node} with {program}: {source}")]
    Spawn {
        /// Node name.
        node: String,
        /// The executable.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// Sending a signal failed for another reason than "no such process".
    #[error("could not signal {node} (pid {pid}): {source}")]
    Signal {
        /// Node name.
        node: String,
        /// Its pid.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },

    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted, e.g. `could not write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// A JSON file (manifest, `--from` layout) does not parse.
    #[error("{path} is not a valid {what}: {source}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },

    /// A `--from` layout or manifest is inconsistent.
    #[error("{path}: {problem}")]
    BadLayout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A node's admin API did not answer.
    #[error("{node} at {url} did not answer ({reason}); {hint}")]
    Unreachable {
        /// Node label.
        node: String,
        /// Admin URL.
        url: String,
        /// Connection refused, timed out...
        reason: String,
        /// What to do.
        hint: String,
        /// Whether it timed out (rather than refused the connection).
        timed_out: bool,
    },

    /// A node refused the admin token.
    #[error("{node} at {url} refused the admin token (401); {hint}")]
    Unauthorized {
        /// Node label.
        node: String,
        /// Admin URL.
        url: String,
        /// What to do.
        hint: String,
    },

    /// A node answered with an error.
    #[error("{node} refused {what}: {message} ({status} {code}){hint}")]
    Api {
        /// Node label.
        node: String,
        /// The request, e.g. `POST /api/v1/queues/a/messages`.
        what: String,
        /// HTTP status.
        status: u16,
        /// Stable error code from the body, or the status reason.
        code: String,
        /// Message from the body.
        message: String,
        /// What to do, with a leading `; `, or empty.
        hint: String,
    },

    /// A node answered 200 with a body that is not the expected JSON.
    #[error(
        "{node} sent an unexpected answer to {what}: {reason}; is it an mqnode of the same version as mqctl?"
    )]
    BadAnswer {
        /// Node label.
        node: String,
        /// The request.
        what: String,
        /// The decoding error.
        reason: String,
    },

    /// No node of a group is serving (every member down or a slave).
    #[error(
        "no member of {group} in cluster `{cluster}` is serving ({detail}); start one with `mqctl node start {cluster}/{first}` or see `mqctl cluster status {cluster}`"
    )]
    NoMaster {
        /// Cluster name.
        cluster: String,
        /// Group name.
        group: String,
        /// Its first member.
        first: String,
        /// What each member said.
        detail: String,
    },

    /// Every node of a multi-node command failed to answer.
    #[error(
        "no node of cluster `{cluster}` answered; start it with `mqctl cluster start {cluster}`"
    )]
    NoneAnswered {
        /// Cluster name.
        cluster: String,
    },

    /// Ctrl-C while creating or starting; what was started has been stopped.
    #[error("interrupted; {cleanup}")]
    Interrupted {
        /// What was cleaned up.
        cleanup: String,
    },

    /// Several independent failures (one per node), one per line.
    #[error("{}", join_lines(.0))]
    Several(Vec<CliError>),

    /// `mqctl bench` could not run, or found lost or duplicated messages.
    #[error("{0}")]
    Bench(String),

    /// A STOMP operation failed: `failover trigger` could not fail a group over or found lost
    /// messages, or `queue send` over STOMP could not deliver.
    #[error("{0}")]
    Stomp(String),

    /// Something did not happen in time (a failover, a STOMP endpoint that never answered).
    #[error("{0}")]
    Timeout(String),

    /// What the command needs is not running (no slave to take over, a broker down).
    #[error("{0}")]
    Unavailable(String),

    /// stdout was closed by the reader (`mqctl ... | head`): exit quietly with 0.
    #[error("broken pipe")]
    BrokenPipe,
}

fn join_lines(errors: &[CliError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::BrokenPipe => EXIT_OK,
            CliError::ClusterNotFound { .. }
            | CliError::NodeNotFound { .. }
            | CliError::LinkNotFound { .. }
            | CliError::ConnectorNotFound { .. } => EXIT_NOT_FOUND,
            CliError::Api {
                status: 404, code, ..
            } if code == mq_shared::api::codes::NOT_FOUND => EXIT_NOT_FOUND,
            CliError::Api { code, .. } if code == mq_shared::api::codes::UNAVAILABLE => {
                EXIT_UNAVAILABLE
            }
            CliError::Unreachable {
                timed_out: true, ..
            } => EXIT_TIMEOUT,
            CliError::Unreachable { .. }
            | CliError::NoMaster { .. }
            | CliError::NoneAnswered { .. }
            | CliError::Unavailable(_) => EXIT_UNAVAILABLE,
            CliError::NodeNotReady { .. } | CliError::StopTimeout { .. } | CliError::Timeout(_) => {
                EXIT_TIMEOUT
            }
            CliError::Unauthorized { .. } => EXIT_NOT_AUTHORIZED,
            CliError::Interrupted { .. } => EXIT_INTERRUPTED,
            CliError::Several(errors) => {
                let first = errors.first().map_or(EXIT_FAILED, CliError::exit_code);
                if errors.iter().all(|e| e.exit_code() == first) {
                    first
                } else {
                    EXIT_FAILED
                }
            }
            _ => EXIT_FAILED,
        }
    }

    /// Shorthand for a file operation failure.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Turns a failed write to stdout into [`CliError::BrokenPipe`] when the reader went away.
    pub fn stdout(source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::io("could not write to", "stdout", source)
        }
    }
}

/// Result of an `mqctl` operation.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::BrokenPipe.exit_code(), EXIT_OK);
        assert_eq!(
            CliError::NoneAnswered {
                cluster: "c".into()
            }
            .exit_code(),
            EXIT_UNAVAILABLE
        );
        let api = |status: u16, code: &str| CliError::Api {
            node: "n".into(),
            what: "GET x".into(),
            status,
            code: code.into(),
            message: String::new(),
            hint: String::new(),
        };
        assert_eq!(api(404, "not_found").exit_code(), EXIT_NOT_FOUND);
        assert_eq!(api(503, "unavailable").exit_code(), EXIT_UNAVAILABLE);
        assert_eq!(api(409, "conflict").exit_code(), EXIT_FAILED);
        let unreachable = |timed_out| CliError::Unreachable {
            node: "n".into(),
            url: "u".into(),
            reason: "r".into(),
            hint: "h".into(),
            timed_out,
        };
        assert_eq!(unreachable(false).exit_code(), EXIT_UNAVAILABLE);
        assert_eq!(unreachable(true).exit_code(), EXIT_TIMEOUT);
        assert_eq!(
            CliError::Several(vec![unreachable(false), unreachable(false)]).exit_code(),
            EXIT_UNAVAILABLE
        );
        assert_eq!(
            CliError::Several(vec![unreachable(false), CliError::Usage("x".into())]).exit_code(),
            EXIT_FAILED
        );
        assert!(EXIT_CODES_HELP.contains("66") && EXIT_CODES_HELP.contains("77"));
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(matches!(CliError::stdout(pipe), CliError::BrokenPipe));
    }

    #[test]
    fn sentences_name_the_node_and_what_to_do() {
        let e = CliError::PortInUse {
            port: 61702,
            role: "transport",
            node: "node2".into(),
            hint: crate::ports::holder_hint(61702),
        };
        let s = e.to_string();
        assert!(s.contains("61702") && s.contains("node2") && s.contains("ss -ltnp"));
    }
}
