//! The local PostgreSQL server of a `--ha jdbc` cluster created without `--store`: the
//! installed package's `initdb`, `pg_ctl` and `createdb` run on `CLUSTER/postgres/`, the server
//! listening on 127.0.0.1 and a port of the cluster's, with one database per broker.
//!
//! ```text
//! CLUSTER/postgres/data        initdb -U mq (scram-sha-256 on TCP, trust on the socket)
//! CLUSTER/postgres/sock        its unix socket (private to the server's user)
//! CLUSTER/postgres/server.log  the server's log
//! CLUSTER/postgres.password    the password of `mq`, passed to the nodes (mode 0600)
//! ```
//!
//! `cluster create` initialises and starts it before the nodes, `cluster start` starts it if it
//! is not running, `cluster stop` and `cluster destroy` stop it after the nodes (fast
//! shutdown). The binaries are the newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql`
//! package), else those on the `PATH`. PostgreSQL refuses to run as root: mqctl run as root runs
//! them as the user `postgres` (the package's), which must be able to enter the cluster
//! folder.

use mq_shared::installed;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mq_shared::ctl::LocalPostgres;

use crate::error::{CliError, Result};

/// The superuser `initdb` creates; the nodes log in as it.
pub const USER: &str = "mq";
/// Seconds `pg_ctl` waits for a start or a stop.
const WAIT_SECS: &str = "60";

/// Where a cluster's server lives, and the password file of its user.
pub fn plan(cluster_dir: &Path, port: u16) -> Result<LocalPostgres> {
    let bin = installed::bin_dir(&["pg_ctl"]).ok_or_else(|| {
        CliError::Usage(
            "--ha jdbc without --store runs a local PostgreSQL, which is not installed \
             (no /usr/lib/postgresql/*/bin/initdb, no initdb on the PATH): apt-get install \
             postgresql, or give --store postgres://USER@HOST:PORT/DB per broker"
                .into(),
        )
    })?;
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    Ok(LocalPostgres {
        dir: s(cluster_dir.join("postgres")),
        bin: s(bin),
        port,
        password_file: s(cluster_dir.join("postgres.password")),
    })
}

/// The URL of database `db` on the server.
pub fn url(pg: &LocalPostgres, db: &str) -> String {
    format!("postgres://{USER}@127.0.0.1:{}/{db}", pg.port)
}

/// The (uid, gid) to run the server as: `None` when mqctl is not root.
fn owner() -> Result<Option<(u32, u32)>> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    match installed::user_ids("postgres") {
        Some((uid, gid)) if uid != 0 => Ok(Some((uid, gid))),
        _ => Err(CliError::Usage(
            "PostgreSQL refuses to run as root and there is no user postgres to run it as: \
             install the postgresql package, run mqctl as another user, or give --store"
                .into(),
        )),
    }
}

fn data(pg: &LocalPostgres) -> PathBuf {
    Path::new(&pg.dir).join("data")
}

fn sock(pg: &LocalPostgres) -> PathBuf {
    Path::new(&pg.dir).join("sock")
}

fn log(pg: &LocalPostgres) -> PathBuf {
    Path::new(&pg.dir).join("server.log")
}

/// Runs one of the server's programs as its owner; `Err` with its output when it fails.
fn run(pg: &LocalPostgres, program: &str, args: &[&str], what: &str) -> Result<()> {
    let mut cmd = Command::new(Path::new(&pg.bin).join(program));
    cmd.args(args)
        .env("LC_ALL", "C")
        .current_dir(&pg.dir)
        .stdin(Stdio::null());
    if let Some((uid, gid)) = owner()? {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::io("could not run", Path::new(&pg.bin).join(program), e))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    let tail = fs::read_to_string(log(pg)).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(CliError::Usage(format!(
        "the cluster's PostgreSQL could not {what} ({program} {}): {text}{}",
        out.status,
        if tail.is_empty() {
            String::new()
        } else {
            format!("; server log: {}", tail.join(" | "))
        }
    )))
}

/// Initialises the server, starts it and creates one database per broker (`dbs`).
pub fn create(pg: &LocalPostgres, dbs: &[String]) -> Result<()> {
    let dir = Path::new(&pg.dir);
    fs::create_dir_all(sock(pg)).map_err(|e| CliError::io("could not create", dir, e))?;
    let password = random_hex(24);
    let pw = Path::new(&pg.password_file);
    write_private(pw, &password)?;
    // initdb reads the password as the server's user: a copy inside its folder, removed after.
    let pw_copy = dir.join("initdb.password");
    write_private(&pw_copy, &password)?;
    let owner = owner()?;
    if let Some((uid, gid)) = owner {
        for p in [dir, &sock(pg), &pw_copy] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .map_err(|e| CliError::io("could not hand to user postgres", p, e))?;
        }
    }
    for p in [dir, &sock(pg)] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700))
            .map_err(|e| CliError::io("could not restrict", p, e))?;
    }
    let data = data(pg).to_string_lossy().into_owned();
    let pwfile = format!("--pwfile={}", pw_copy.display());
    let r = run(
        pg,
        "initdb",
        &[
            "-D",
            &data,
            "-U",
            USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            &pwfile,
        ],
        "be initialised",
    );
    let _ = fs::remove_file(&pw_copy);
    r?;
    start(pg)?;
    let port = pg.port.to_string();
    let sock = sock(pg).to_string_lossy().into_owned();
    for db in dbs {
        run(
            pg,
            "createdb",
            &["-h", &sock, "-p", &port, "-U", USER, db],
            &format!("create database {db}"),
        )?;
    }
    Ok(())
}

/// Whether the server is running (`pg_ctl status`).
pub fn is_running(pg: &LocalPostgres) -> bool {
    let data = data(pg).to_string_lossy().into_owned();
    run(pg, "pg_ctl", &["-D", &data, "status"], "answer").is_ok()
}

/// Starts the server and waits until it accepts connections.
pub fn start(pg: &LocalPostgres) -> Result<()> {
    if is_running(pg) {
        return Ok(());
    }
    let data = data(pg).to_string_lossy().into_owned();
    let log = log(pg).to_string_lossy().into_owned();
    let options = format!(
        "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
        pg.port,
        sock(pg).display()
    );
    if let Some((uid, gid)) = owner()?
        && !Path::new(&log).exists()
    {
        let f = fs::File::create(&log)
            .map_err(|e| CliError::io("could not create", Path::new(&log), e))?;
        drop(f);
        std::os::unix::fs::chown(&log, Some(uid), Some(gid))
            .map_err(|e| CliError::io("could not hand to user postgres", Path::new(&log), e))?;
    }
    run(
        pg,
        "pg_ctl",
        &[
            "-D", &data, "-l", &log, "-w", "-t", WAIT_SECS, "-o", &options, "start",
        ],
        "start",
    )
}

/// Stops the server (fast shutdown: sessions ended, then a checkpoint) if it runs.
pub fn stop(pg: &LocalPostgres) -> Result<()> {
    if !is_running(pg) {
        return Ok(());
    }
    let data = data(pg).to_string_lossy().into_owned();
    run(
        pg,
        "pg_ctl",
        &["-D", &data, "-m", "fast", "-w", "-t", WAIT_SECS, "stop"],
        "stop",
    )
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::io("could not create", path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| CliError::io("could not write", path, e))
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
