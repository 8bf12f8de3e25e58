//! The few process calls `mqctl` needs that std does not offer: starting a node away from
//! `mqctl`'s terminal, and signalling or probing a process by pid. Signals go through `rustix`,
//! so there is no `unsafe` here or anywhere else in `mqctl`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::io::Errno;
use rustix::process::{self as rp, Pid};

/// Signals `mqctl` sends to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask for a graceful stop.
    Term,
    /// Stop at once (`node kill`).
    Kill,
}

/// Makes the child start in a process group of its own (its pgid is its pid), outside the
/// terminal's foreground group, so that Ctrl-C in `mqctl`'s terminal or the shell hanging up
/// does not reach the node.
pub fn detach(command: &mut Command) {
    command.process_group(0);
}

/// A single process's pid: never 0 or negative, which address process groups.
fn pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .and_then(Pid::from_raw)
}

/// Sends `signal` to `pid`. `Ok(false)` when there is no such process.
pub fn send(pid: u32, signal: Signal) -> io::Result<bool> {
    let Some(pid) = self::pid(pid) else {
        return Ok(false);
    };
    let sig = match signal {
        Signal::Term => rp::Signal::TERM,
        Signal::Kill => rp::Signal::KILL,
    };
    match rp::kill_process(pid, sig) {
        Ok(()) => Ok(true),
        Err(Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`); a zombie counts as existing, and so
/// does one we may not signal.
pub fn exists(pid: u32) -> bool {
    let Some(pid) = self::pid(pid) else {
        return false;
    };
    matches!(rp::test_kill_process(pid), Ok(()) | Err(Errno::PERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_exists_and_group_pids_never_do() {
        assert!(exists(std::process::id()));
        assert!(!exists(0));
        assert!(!exists(u32::MAX), "wraps to -1: every process");
        assert_eq!(send(0, Signal::Term).ok(), Some(false));
        assert_eq!(send(u32::MAX, Signal::Kill).ok(), Some(false));
    }
}
