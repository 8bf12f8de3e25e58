//! What the kernel reports about a process the harness started: resident memory
//! (`/proc/PID/status` `VmRSS`), CPU time (`/proc/PID/stat` `utime` + `stime`) and open file
//! descriptors (`/proc/PID/fd`), for tests that bound a node's memory, check that it does not
//! spin, or watch it run out of descriptors.

use std::time::Duration;

/// Resident set size of process `pid` in bytes; panics if `/proc` cannot tell.
#[track_caller]
pub fn rss_bytes(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmRSS line in {path}:\n{status}"))
}

/// CPU time (user and system) process `pid` has used so far; panics if `/proc` cannot tell.
#[track_caller]
pub fn cpu_time(pid: u32) -> Duration {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    // "PID (comm) state ppid ...": the command may hold spaces and parentheses, so fields are
    // counted from the last ')'. utime and stime are fields 14 and 15 of the line.
    let ticks = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect::<Vec<_>>())
        .and_then(|f| Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
        .unwrap_or_else(|| panic!("no utime/stime in {path}: {stat}"));
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Number of file descriptors process `pid` has open now (0 if `/proc` cannot tell).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Mebibytes, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
