//! The few system calls `mqctl` needs that std does not wrap: starting a node in its own session
//! and signalling a process by pid. This is the only module allowed `unsafe`; each block is one
//! libc call with its safety argument beside it.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Signals `mqctl` sends to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask for a graceful stop.
    Term,
    /// Stop at once (`node kill`).
    Kill,
}

/// Makes the child start a new session (`setsid`), detached from `mqctl`'s terminal, so that
/// Ctrl-C or closing the terminal does not reach the node.
pub fn detach(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2), which
    // is async-signal-safe, allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to `pid`. `Ok(false)` when there is no such process.
pub fn send(pid: u32, signal: Signal) -> io::Result<bool> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Ok(false);
    };
    if pid <= 0 {
        // 0 and negative pids address process groups: never.
        return Ok(false);
    }
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`); a zombie counts as existing.
pub fn exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
