//! `lvs_web NAME [--port P]... [--down-file PATH] [--stream-secs N] [--udp PORT]`: the web
//! server of the LVS lab's real servers (`ha_tests::lvs`). It listens on `[::]:P` (IPv4 and
//! IPv6, so also on the VIPs the real server holds on `lo`) and answers HTTP/1.0 and 1.1, one
//! request per connection:
//!
//! - `GET /`: `NAME\n` (the client counts answers per server);
//! - `GET /health`: 200 `ok`, or 503 while the file `--down-file` exists (a health check that
//!   fails, as a stopped application would make it);
//! - `GET /stream`: a long-lived download: `NAME\n`, then a 1 KiB line every 50 ms for
//!   `--stream-secs` seconds (default 10), then `END NAME\n`;
//! - `--udp PORT`: echoes each datagram prefixed with `NAME ` (from the address the kernel
//!   picks: the lab's UDP client does not care which).
//!
//! One thread per connection (std only): the lab's load is a few thousand short connections.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Parser;

/// The real server's web server (see the module documentation).
#[derive(Parser, Debug)]
struct Args {
    /// The name `GET /` answers.
    name: String,
    /// TCP ports to listen on (default 80).
    #[arg(long = "port")]
    ports: Vec<u16>,
    /// `GET /health` answers 503 while this file exists.
    #[arg(long)]
    down_file: Option<PathBuf>,
    /// How long `GET /stream` streams.
    #[arg(long, default_value_t = 10)]
    stream_secs: u64,
    /// Echo UDP datagrams on this port.
    #[arg(long)]
    udp: Option<u16>,
}

/// A line of the stream: 1 KiB with the newline.
const STREAM_LINE: usize = 1024;
/// Pause between two lines of the stream.
const STREAM_PERIOD: Duration = Duration::from_millis(50);

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.ports.is_empty() {
        args.ports.push(80);
    }
    let args = Arc::new(args);
    if let Some(port) = args.udp {
        let socket = UdpSocket::bind(SocketAddr::from(([0u16; 8], port)))
            .with_context(|| format!("binding UDP [::]:{port}"))?;
        let args = Arc::clone(&args);
        std::thread::spawn(move || udp_echo(&socket, &args.name));
    }
    let mut listeners = Vec::new();
    for &port in &args.ports {
        let listener = TcpListener::bind(SocketAddr::from(([0u16; 8], port)))
            .with_context(|| format!("binding TCP [::]:{port}"))?;
        listeners.push(listener);
    }
    // Readiness for the lab: it waits for this line before it sends requests.
    println!("lvs_web {} listening", args.name);
    std::io::stdout().flush()?;
    let mut threads = Vec::new();
    for listener in listeners {
        let args = Arc::clone(&args);
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let args = Arc::clone(&args);
                std::thread::spawn(move || {
                    // A client that goes away mid-answer is not this server's error.
                    let _ = serve(stream, &args);
                });
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn udp_echo(socket: &UdpSocket, name: &str) {
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let mut reply = format!("{name} ").into_bytes();
        reply.extend_from_slice(&buf[..n]);
        let _ = socket.send_to(&reply, from);
    }
}

fn serve(stream: TcpStream, args: &Args) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers, up to the blank line (nothing in them matters here).
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let mut out = stream;
    match (method, path) {
        ("GET" | "HEAD", "/") => respond(&mut out, 200, &format!("{}\n", args.name)),
        ("GET" | "HEAD", "/health") => {
            if args.down_file.as_ref().is_some_and(|f| f.exists()) {
                respond(&mut out, 503, "down\n")
            } else {
                respond(&mut out, 200, "ok\n")
            }
        }
        ("GET", "/stream") => stream_body(&mut out, args),
        _ => respond(&mut out, 404, "not found\n"),
    }
}

fn respond(out: &mut TcpStream, status: u16, body: &str) -> Result<()> {
    let reason = match status {
        200 => "OK",
        503 => "Service Unavailable",
        _ => "Not Found",
    };
    write!(
        out,
        "HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    Ok(())
}

/// `GET /stream`: no Content-Length; the end is the `END` line, then the close.
fn stream_body(out: &mut TcpStream, args: &Args) -> Result<()> {
    write!(
        out,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{}\n",
        args.name
    )?;
    let line = format!("{}\n", "x".repeat(STREAM_LINE - 1));
    let end = Instant::now() + Duration::from_secs(args.stream_secs);
    while Instant::now() < end {
        out.write_all(line.as_bytes())?;
        out.flush()?;
        std::thread::sleep(STREAM_PERIOD);
    }
    writeln!(out, "END {}", args.name)?;
    out.flush()?;
    Ok(())
}
