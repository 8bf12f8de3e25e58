//! The local ZooKeeper server of a `--ha replicated` cluster created without `--zookeeper`:
//! the installed package's server (Debian `zookeeper`: `/usr/share/java/zookeeper.jar`, run
//! standalone by `java`) on `CLUSTER/zookeeper/`, listening on 127.0.0.1 and a port of the
//! cluster's.
//!
//! ```text
//! CLUSTER/zookeeper/zoo.cfg     standalone, 127.0.0.1 only, no admin server, tick 200 ms
//! CLUSTER/zookeeper/data        its snapshots and transaction log
//! CLUSTER/zookeeper/server.log  its output
//! ```
//!
//! `cluster create` writes the configuration and starts it before the nodes, `cluster start`
//! starts it if it is not running, `cluster stop` and `cluster destroy` stop it after the
//! nodes. Its process is found by its command line (which names its `zoo.cfg`), so a server
//! whose recorded pid was lost is still stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mq_shared::ctl::LocalZooKeeper;
use mq_shared::defaults::{NODE_STOP_TIMEOUT, READY_POLL_INTERVAL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{CliError, Result};
use crate::process;
use crate::sys::{self, Signal};

/// The server's jar from the Debian package (its manifest names the other jars).
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logger binding for its messages, when installed (else slf4j discards them).
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// How long the server may take to answer after its start (a JVM on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one four-letter-word exchange.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a cluster's server lives; fails when the package or a JRE is missing.
pub fn plan(cluster_dir: &Path, port: u16) -> Result<LocalZooKeeper> {
    if !Path::new(ZOOKEEPER_JAR).is_file() {
        return Err(CliError::Usage(format!(
            "--ha replicated without --zookeeper runs a local ZooKeeper, which is not installed \
             ({ZOOKEEPER_JAR} is missing): apt-get install zookeeper default-jre-headless, or \
             give --zookeeper HOST:PORT"
        )));
    }
    if find_java().is_none() {
        return Err(CliError::Usage(
            "--ha replicated without --zookeeper runs a local ZooKeeper, which needs java on \
             the PATH: apt-get install default-jre-headless, or give --zookeeper HOST:PORT"
                .into(),
        ));
    }
    Ok(LocalZooKeeper {
        dir: cluster_dir.join("zookeeper").to_string_lossy().into_owned(),
        port,
        pid: None,
    })
}

/// Its connect string.
pub fn address(zk: &LocalZooKeeper) -> String {
    format!("127.0.0.1:{}", zk.port)
}

fn config(zk: &LocalZooKeeper) -> PathBuf {
    Path::new(&zk.dir).join("zoo.cfg")
}

fn log(zk: &LocalZooKeeper) -> PathBuf {
    Path::new(&zk.dir).join("server.log")
}

fn find_java() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("java"))
            .find(|p| p.is_file())
    })
}

/// The text of its `zoo.cfg`: standalone on 127.0.0.1, sessions from 400 ms (a 200 ms tick,
/// so that a member's 2000 ms session is granted as asked) to a minute.
fn config_text(zk: &LocalZooKeeper) -> String {
    format!(
        "tickTime=200\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
         minSessionTimeout=400\nmaxSessionTimeout=60000\nadmin.enableServer=false\n\
         4lw.commands.whitelist=srvr,ruok\nmaxClientCnxns=0\n",
        Path::new(&zk.dir).join("data").display(),
        zk.port
    )
}

/// Writes its folder and configuration (before its first start).
pub fn create(zk: &LocalZooKeeper) -> Result<()> {
    let data = Path::new(&zk.dir).join("data");
    fs::create_dir_all(&data).map_err(|e| CliError::io("could not create", &data, e))?;
    let cfg = config(zk);
    fs::write(&cfg, config_text(zk)).map_err(|e| CliError::io("could not write", &cfg, e))
}

/// The processes running this server (their command line names its `zoo.cfg`).
fn pids(zk: &LocalZooKeeper) -> Vec<u32> {
    let cfg = config(zk).to_string_lossy().into_owned();
    process::pids_with_arg(&cfg)
}

/// Whether the server runs.
pub fn is_running(zk: &LocalZooKeeper) -> bool {
    !pids(zk).is_empty()
}

/// Starts the server detached unless it runs, records its pid in `zk` and waits until it
/// answers as a standalone server.
pub async fn start(zk: &mut LocalZooKeeper) -> Result<()> {
    if let Some(pid) = pids(zk).first() {
        zk.pid = Some(*pid);
        return wait_serving(zk, None).await;
    }
    let java = find_java().ok_or_else(|| {
        CliError::Usage("the cluster's ZooKeeper needs java on the PATH".to_string())
    })?;
    let log_path = log(zk);
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| CliError::io("could not open", &log_path, e))?;
    let err = out
        .try_clone()
        .map_err(|e| CliError::io("could not open", &log_path, e))?;
    let mut classpath = ZOOKEEPER_JAR.to_string();
    if Path::new(SLF4J_SIMPLE_JAR).is_file() {
        classpath = format!("{classpath}:{SLF4J_SIMPLE_JAR}");
    }
    let mut cmd = Command::new(&java);
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-Djava.net.preferIPv4Stack=true",
        "-Dzookeeper.admin.enableServer=false",
        "-cp",
        &classpath,
        "org.apache.zookeeper.server.ZooKeeperServerMain",
    ])
    .arg(config(zk))
    .current_dir(&zk.dir)
    .stdin(Stdio::null())
    .stdout(Stdio::from(out))
    .stderr(Stdio::from(err));
    sys::detach(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| CliError::io("could not run", &java, e))?;
    zk.pid = Some(child.id());
    wait_serving(zk, Some(child)).await
}

/// Waits until the server answers `srvr` as standalone; fails when it exits or times out.
async fn wait_serving(zk: &LocalZooKeeper, mut child: Option<std::process::Child>) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if probe(zk.port)
            .await
            .is_some_and(|a| a.contains("Mode: standalone"))
        {
            return Ok(());
        }
        let exited = match &mut child {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => !is_running(zk),
        };
        if exited || Instant::now() >= deadline {
            let why = if exited {
                "exited"
            } else {
                "did not answer in time"
            };
            let _ = stop(zk).await;
            return Err(CliError::Usage(format!(
                "the cluster's ZooKeeper on 127.0.0.1:{} {why}; its log {}: {}",
                zk.port,
                log(zk).display(),
                process::log_tail(&log(zk))
            )));
        }
        tokio::time::sleep(READY_POLL_INTERVAL.max(Duration::from_millis(50))).await;
    }
}

/// Its answer to `srvr`, if it answers.
async fn probe(port: u16) -> Option<String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"srvr").await?;
        let mut text = String::new();
        s.read_to_string(&mut text).await?;
        Ok::<_, std::io::Error>(text)
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .ok()
        .and_then(|r| r.ok())
}

/// Stops the server if it runs: SIGTERM, then SIGKILL after the bounded wait. Returns the
/// pids that ran.
pub async fn stop(zk: &LocalZooKeeper) -> Result<Vec<u32>> {
    let found = pids(zk);
    for pid in &found {
        let _ = sys::send(*pid, Signal::Term);
    }
    let deadline = Instant::now() + NODE_STOP_TIMEOUT;
    while is_running(zk) && Instant::now() < deadline {
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    for pid in pids(zk) {
        let _ = sys::send(pid, Signal::Kill);
    }
    let deadline = Instant::now() + NODE_STOP_TIMEOUT;
    while is_running(zk) && Instant::now() < deadline {
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    if is_running(zk) {
        return Err(CliError::Usage(format!(
            "the cluster's ZooKeeper (pid {:?}) did not exit after SIGKILL",
            pids(zk)
        )));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_on_loopback_only_without_admin_server() {
        let zk = LocalZooKeeper {
            dir: "/h/clusters/c/zookeeper".into(),
            port: 21810,
            pid: None,
        };
        let text = config_text(&zk);
        assert!(text.contains("clientPortAddress=127.0.0.1\n"));
        assert!(text.contains("clientPort=21810\n"));
        assert!(text.contains("admin.enableServer=false\n"));
        assert!(text.contains("dataDir=/h/clusters/c/zookeeper/data\n"));
        assert_eq!(address(&zk), "127.0.0.1:21810");
        assert_eq!(config(&zk), Path::new("/h/clusters/c/zookeeper/zoo.cfg"));
    }
}
