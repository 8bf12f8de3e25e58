//! The floor under a receipted producer: one request/response round trip between two
//! processes over loopback TCP, with no broker in between.
//!
//! ```text
//! cargo run --release -p mq-tests --example rtt_probe -- [N] [REQUEST] [REPLY]
//! ```
//!
//! Starts a copy of itself as the echo process (blocking sockets, `TCP_NODELAY`), then sends
//! N (default 20,000) requests of REQUEST bytes (default 1,100: a SEND of a 1 KiB body) and
//! reads a REPLY-byte answer (default 40: a RECEIPT) to each before the next, as a producer
//! that waits for every RECEIPT does. Prints one line, `rtt_us mean MEAN median MEDIAN p90
//! P90`. A receipted 1+1 whose client and broker sleep while they wait (as they do) cannot
//! beat one of these round trips plus one journal sync per message; `scripts/bench.sh` prints
//! that bound beside its figures.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use mq_tests::netns::{Origin, guard};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--echo") {
        let size = |i: usize| -> anyhow::Result<usize> {
            Ok(args.get(i).context("--echo REQUEST REPLY")?.parse()?)
        };
        return echo(size(1)?, size(2)?);
    }
    let n: usize = arg(&args, 0, 20_000)?;
    let request: usize = arg(&args, 1, 1_100)?;
    let reply: usize = arg(&args, 2, 40)?;
    if n == 0 || request == 0 || reply == 0 {
        bail!("N, REQUEST and REPLY must be positive");
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--echo", &request.to_string(), &reply.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the echo process")?;
    let result = measure(&mut child, n, request, reply);
    // The echo process ends when its connection closes; reaped either way.
    let _ = child.kill();
    let _ = child.wait();
    let mut lat = result?;
    lat.sort_unstable_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    println!(
        "rtt_us mean {mean:.1} median {:.1} p90 {:.1}",
        lat[lat.len() / 2],
        lat[lat.len() * 9 / 10]
    );
    Ok(())
}

fn arg(args: &[String], i: usize, default: usize) -> anyhow::Result<usize> {
    args.get(i)
        .map_or(Ok(default), |a| a.parse())
        .with_context(|| format!("argument {} must be a number", i + 1))
}

/// Round trips against the echo process, which prints its port on its first line.
fn measure(
    child: &mut std::process::Child,
    n: usize,
    request: usize,
    reply: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut line = String::new();
    let out = child.stdout.as_mut().context("the echo process's stdout")?;
    let mut byte = [0u8; 1];
    while out.read(&mut byte)? == 1 && byte[0] != b'\n' {
        line.push(char::from(byte[0]));
    }
    let port: u16 = line.trim().parse().context("the echo process's port")?;
    let to = guard(Origin::Root, SocketAddr::from(([127, 0, 0, 1], port)))?;
    let mut s = TcpStream::connect(to)?;
    s.set_nodelay(true)?;
    let msg = vec![b'x'; request];
    let mut buf = vec![0u8; reply];
    // A warm-up tenth, not counted.
    for _ in 0..n / 10 {
        s.write_all(&msg)?;
        s.read_exact(&mut buf)?;
    }
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&msg)?;
        s.read_exact(&mut buf)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(lat)
}

/// The echo side: reads each request of `request` bytes whole and answers it with `reply`
/// bytes, until the connection closes.
fn echo(request: usize, reply: usize) -> anyhow::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    s.set_nodelay(true)?;
    let answer = vec![b'r'; reply];
    let mut buf = vec![0u8; request];
    loop {
        match s.read_exact(&mut buf) {
            Ok(()) => s.write_all(&answer)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
