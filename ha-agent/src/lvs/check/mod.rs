//! The health checkers of the real servers (keepalived's `check/check_*.c`), one tokio task per
//! checker: an optional random `warmup`, then a round every `delay_loop`; a round tries up to
//! `retry` + 1 times, `delay_before_retry` apart, and ends with one [`CheckEvent`].
//!
//! Retries follow keepalived per checker ([`WhileDown`]): they confirm a failure before the
//! server leaves; once it is down, TCP_CHECK and SMTP_CHECK still spend them every round, the
//! others make one attempt a round (check_http.c "do not retry if server is already known as
//! dead", the `is_up || !has_run` gates of check_dns/misc/ping/udp.c), PING and UDP every
//! `delay_before_retry` rather than every `delay_loop`.
//!
//! One file per checker: `tcp.rs`, `http.rs` (HTTP_GET, SSL_GET), `misc.rs`, `ping.rs`,
//! `udp.rs`, `dns.rs`, `smtp.rs`, `file.rs` (FILE_CHECK, event driven: no rounds).

mod dns;
mod file;
mod http;
mod misc;
mod ping;
mod smtp;
mod tcp;
mod udp;

use std::hash::{BuildHasher as _, Hasher as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::{CheckEvent, CheckId, Verdict};
use crate::config::Config;
use crate::config::lvs::{CheckKind, Checker};
use crate::track::script::RunAs;

/// keepalived's default `retry` of a checker kind (check_api.c 1; check_misc.c 0;
/// check_dns.c `DNS_DEFAULT_RETRY` 3), for the configuration builder.
pub fn default_retry(kind: &CheckKind) -> u32 {
    match kind {
        CheckKind::Misc(_) => 0,
        CheckKind::Dns(_) => 3,
        _ => 1,
    }
}

/// keepalived's default `delay_before_retry` of a checker kind (check_api.c 1 s; check_http.c
/// 3 s; check_dns.c none, that is `delay_loop`), for the configuration builder.
pub fn default_delay_before_retry(kind: &CheckKind, delay_loop: Duration) -> Duration {
    match kind {
        CheckKind::Http(_) => Duration::from_secs(3),
        CheckKind::Dns(_) => delay_loop,
        _ => Duration::from_secs(1),
    }
}

/// Starts the checker `id` of `config` (`lvs.virtual_servers[id.service].real_servers[id.real]
/// .checkers[id.checker]`) as a task that sends a [`CheckEvent`] after each round on `tx`, until
/// `tx` is closed or the task is aborted. Everything the task needs is copied now: a reload
/// spawns new tasks. Panics if `id` is not in `config` (the manager builds ids from it).
pub fn spawn(id: CheckId, config: &Config, tx: UnboundedSender<CheckEvent>) -> JoinHandle<()> {
    let real = &config.lvs.virtual_servers[id.service].real_servers[id.real];
    let checker = real.checkers[id.checker].clone();
    let context = Context {
        real_weight: real.weight,
        run_as: match &checker.kind {
            CheckKind::Misc(m) => misc::run_as(m, config),
            _ => Ok(None),
        },
        track_file: match &checker.kind {
            CheckKind::File(f) => config.track_file(&f.track_file).map(|t| t.file.clone()),
            _ => None,
        },
    };
    tokio::spawn(run(id, checker, context, tx))
}

/// What a checker needs beyond its own settings.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The real server's configured `weight` (FILE_CHECK's `weight` adjusts it).
    pub real_weight: u32,
    /// MISC_CHECK: the user `misc_path` runs as (None: the agent's own), or why it cannot run.
    pub run_as: Result<Option<RunAs>, String>,
    /// FILE_CHECK: the path of the named `track_file` (None: not found, the checker is down).
    pub track_file: Option<PathBuf>,
}

impl Default for Context {
    fn default() -> Context {
        Context {
            real_weight: 1,
            run_as: Ok(None),
            track_file: None,
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub verdict: Verdict,
    /// How long the attempt took, when it reached the server.
    pub latency: Option<Duration>,
}

impl Attempt {
    fn up(start: Instant) -> Attempt {
        Attempt {
            verdict: Verdict::Up,
            latency: Some(start.elapsed()),
        }
    }

    fn down(why: impl Into<String>) -> Attempt {
        Attempt {
            verdict: Verdict::Down(why.into()),
            latency: None,
        }
    }
}

/// Runs the checker forever (until `tx` closes).
pub(crate) async fn run(
    id: CheckId,
    checker: Checker,
    context: Context,
    tx: UnboundedSender<CheckEvent>,
) {
    if let CheckKind::File(f) = &checker.kind {
        return file::run(id, f.clone(), context, tx).await;
    }
    if let Some(warmup) = checker.warmup.filter(|w| !w.is_zero()) {
        tokio::time::sleep(random_below(warmup)).await;
    }
    let mut up = true;
    loop {
        let attempt = round(&checker, &context, up).await;
        up = !matches!(attempt.verdict, Verdict::Down(_));
        let event = CheckEvent {
            id,
            verdict: attempt.verdict,
            latency: attempt.latency,
            at: Instant::now(),
        };
        if tx.send(event).is_err() {
            return;
        }
        let pause = if up {
            checker.delay_loop
        } else {
            WhileDown::of(&checker.kind).pause(&checker)
        };
        tokio::time::sleep(pause).await;
    }
}

/// What a checker does while its server is down (keepalived's check_*.c epilogues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhileDown {
    /// TCP, SMTP: every round spends its retries, `delay_loop` apart.
    Retries,
    /// HTTP/SSL (`delay_loop`, or `delay_before_retry` if longer), DNS, MISC: one attempt a
    /// round, `delay_loop` apart.
    Once,
    /// PING, UDP: one attempt every `delay_before_retry`.
    OnceQuickly,
}

impl WhileDown {
    pub(crate) fn of(kind: &CheckKind) -> WhileDown {
        match kind {
            CheckKind::Tcp | CheckKind::Smtp { .. } => WhileDown::Retries,
            CheckKind::Ping | CheckKind::Udp(_) => WhileDown::OnceQuickly,
            CheckKind::Http(_) | CheckKind::Dns(_) | CheckKind::Misc(_) | CheckKind::File(_) => {
                WhileDown::Once
            }
        }
    }

    /// The pause after a round that ended down.
    fn pause(self, checker: &Checker) -> Duration {
        match (self, &checker.kind) {
            (WhileDown::OnceQuickly, _) => checker.delay_before_retry,
            (_, CheckKind::Http(_)) => checker.delay_loop.max(checker.delay_before_retry),
            _ => checker.delay_loop,
        }
    }
}

/// One round: up to `retry` + 1 attempts while the checker is up (or has not run); when it is
/// down, as [`WhileDown`] says; the last attempt's result.
pub(crate) async fn round(checker: &Checker, context: &Context, up: bool) -> Attempt {
    let attempts = if up || WhileDown::of(&checker.kind) == WhileDown::Retries {
        checker.retry.saturating_add(1)
    } else {
        1
    };
    let mut n = 0;
    loop {
        n += 1;
        let attempt = once(checker, context).await;
        let Verdict::Down(why) = &attempt.verdict else {
            return attempt;
        };
        if n >= attempts {
            return Attempt {
                verdict: Verdict::Down(if n > 1 {
                    format!("{why} after {} retries", n - 1)
                } else {
                    why.clone()
                }),
                latency: attempt.latency,
            };
        }
        if checker.log_all_failures {
            tracing::info!(target = %checker.connect, "{why}, retry {n}/{}", attempts - 1);
        }
        tokio::time::sleep(checker.delay_before_retry).await;
    }
}

/// One attempt of the checker.
async fn once(checker: &Checker, context: &Context) -> Attempt {
    let target = Target::of(checker);
    match &checker.kind {
        CheckKind::Tcp => tcp::check(&target).await,
        CheckKind::Http(h) => http::check(&target, h, checker.delay_loop).await,
        CheckKind::Misc(m) => misc::check(m, checker.delay_loop, &context.run_as).await,
        CheckKind::Ping => ping::check(&target).await,
        CheckKind::Udp(u) => udp::check(&target, u).await,
        CheckKind::Dns(d) => dns::check(&target, d).await,
        CheckKind::Smtp { helo_name } => smtp::check(&target, helo_name).await,
        CheckKind::File(_) => Attempt::down("FILE_CHECK has no rounds"),
    }
}

/// Where a network checker connects, and from where.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `connect_ip`/`connect_port` (the real server's by default).
    pub connect: SocketAddr,
    /// `bindto`/`bind_port`.
    pub bind: Option<SocketAddr>,
    /// `bind_if`.
    pub bind_if: Option<String>,
    /// `connect_timeout`: connecting, and each read and write.
    pub timeout: Duration,
}

impl Target {
    fn of(checker: &Checker) -> Target {
        Target {
            connect: checker.connect,
            bind: checker.bind,
            bind_if: checker.bind_if.clone(),
            timeout: checker.connect_timeout,
        }
    }

    /// The destination, with `bind_if`'s index as the scope of an IPv6 link-local address.
    fn destination(&self) -> SocketAddr {
        scoped(self.connect, self.bind_if.as_deref())
    }

    /// A socket of `ty`/`protocol` for the destination's family, bound to `bindto`/`bind_port`
    /// and `bind_if`, non-blocking.
    fn socket(
        &self,
        ty: socket2::Type,
        protocol: Option<socket2::Protocol>,
    ) -> std::io::Result<socket2::Socket> {
        let domain = socket2::Domain::for_address(self.connect);
        let socket = socket2::Socket::new(domain, ty.cloexec(), protocol)?;
        socket.set_nonblocking(true)?;
        if let Some(dev) = &self.bind_if {
            socket.bind_device(Some(dev.as_bytes()))?;
        }
        if let Some(bind) = self.bind {
            socket.bind(&scoped(bind, self.bind_if.as_deref()).into())?;
        }
        Ok(socket)
    }

    /// A TCP connection within `connect_timeout`; the error in keepalived's words.
    async fn connect_tcp(&self) -> Result<tokio::net::TcpStream, String> {
        let socket = self
            .socket(socket2::Type::STREAM, Some(socket2::Protocol::TCP))
            .map_err(|e| format!("cannot create a socket to {}: {e}", self.connect))?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        match tokio::time::timeout(self.timeout, socket.connect(self.destination())).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(format!("connection to {} failed: {e}", self.connect)),
            Err(_) => Err(format!(
                "connection to {} timed out after {:?}",
                self.connect, self.timeout
            )),
        }
    }

    /// A UDP socket connected to the destination (so ICMP errors come back as errors).
    fn connect_udp(&self) -> Result<tokio::net::UdpSocket, String> {
        let socket = self
            .socket(socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
            .and_then(|s| {
                s.connect(&self.destination().into())?;
                tokio::net::UdpSocket::from_std(s.into())
            })
            .map_err(|e| format!("UDP connection to {} failed: {e}", self.connect))?;
        Ok(socket)
    }
}

/// `addr` with the index of `bind_if` as its scope when it is an IPv6 link-local address.
fn scoped(addr: SocketAddr, bind_if: Option<&str>) -> SocketAddr {
    match (addr, bind_if) {
        (SocketAddr::V6(mut v6), Some(dev))
            if v6.scope_id() == 0 && v6.ip().is_unicast_link_local() =>
        {
            if let Ok(name) = std::ffi::CString::new(dev) {
                // SAFETY: if_nametoindex reads a valid NUL-terminated string.
                v6.set_scope_id(unsafe { libc::if_nametoindex(name.as_ptr()) });
            }
            SocketAddr::V6(v6)
        }
        _ => addr,
    }
}

/// A random duration in `[0, max)` (warmup; no need for a cryptographic source).
fn random_below(max: Duration) -> Duration {
    let nanos = max.as_nanos().max(1);
    Duration::from_nanos((u128::from(random_u64()) % nanos) as u64)
}

/// 64 random bits from std's per-process random hash keys.
pub(crate) fn random_u64() -> u64 {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A checker with keepalived's defaults and short timers, for the checkers' tests.

    use super::*;
    use crate::config::Source;

    pub fn checker(kind: CheckKind, connect: SocketAddr) -> Checker {
        Checker {
            at: Source {
                file: PathBuf::from("test.conf"),
                line: 1,
                col: 1,
            },
            kind,
            connect,
            bind: None,
            bind_if: None,
            connect_timeout: Duration::from_millis(300),
            retry: 0,
            delay_before_retry: Duration::from_millis(50),
            delay_loop: Duration::from_secs(2),
            warmup: None,
            alpha: false,
            log_all_failures: false,
        }
    }

    /// One round of `checker` as if it were up.
    pub async fn round(checker: &Checker) -> Attempt {
        super::round(checker, &Context::default(), true).await
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::mpsc;

    use super::testing::checker;
    use super::*;
    use crate::config::lvs::{LbAlgo, LbKind, Protocol, RealServer, VirtualServer};

    /// A configuration with one service, one real server and `checker`.
    fn config(checker: Checker) -> Config {
        let text = "global_defs {\n}\n";
        let mut config = crate::config::parse_str(text, std::path::Path::new("t.conf"))
            .unwrap()
            .config;
        let at = checker.at.clone();
        let base =
            VirtualServer::with_defaults(at.clone(), (Ipv4Addr::new(192, 0, 2, 10), 80).into());
        config.lvs.virtual_servers.push(VirtualServer {
            protocol: Protocol::Tcp,
            delay_loop: checker.delay_loop,
            algo: LbAlgo::Rr,
            real_servers: vec![RealServer {
                at,
                addr: checker.connect,
                weight: 1,
                kind: LbKind::Dr,
                inhibit_on_failure: false,
                notify_up: None,
                notify_down: None,
                alpha: false,
                virtualhost: None,
                checkers: vec![checker],
            }],
            ..base
        });
        config
    }

    /// A TCP port that accepts while `open`, and counts connections.
    async fn port() -> (
        SocketAddr,
        Arc<AtomicUsize>,
        tokio::sync::watch::Sender<bool>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let (open, mut is_open) = tokio::sync::watch::channel(true);
        let c = count.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if let Some(l) = &listener {
                    tokio::select! {
                        r = l.accept() => { r.unwrap(); c.fetch_add(1, Ordering::SeqCst); }
                        _ = is_open.changed() => {}
                    }
                } else if is_open.changed().await.is_err() {
                    return;
                }
                if !*is_open.borrow() {
                    listener = None;
                } else if listener.is_none() {
                    listener = Some(tokio::net::TcpListener::bind(addr).await.unwrap());
                }
            }
        });
        (addr, count, open)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<CheckEvent>) -> CheckEvent {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("an event within 3 s")
            .expect("the checker runs")
    }

    #[tokio::test]
    async fn a_round_every_delay_loop_with_retries_until_the_channel_closes() {
        let (addr, connections, open) = port().await;
        let mut c = checker(CheckKind::Tcp, addr);
        c.delay_loop = Duration::from_millis(150);
        c.retry = 2;
        c.delay_before_retry = Duration::from_millis(20);
        c.warmup = Some(Duration::from_millis(100));
        let id = CheckId {
            service: 0,
            real: 0,
            checker: 0,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = spawn(id, &config(c), tx);
        let first = next(&mut rx).await;
        assert_eq!((first.id, &first.verdict), (id, &Verdict::Up));
        assert!(first.latency.is_some());
        let second = next(&mut rx).await;
        assert_eq!(second.verdict, Verdict::Up);
        // delay_loop between rounds (less a little for timer granularity).
        assert!(second.at - first.at >= Duration::from_millis(140));
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        // Closed: the first failing round retries (3 attempts), the next, already down, tries once.
        open.send(false).unwrap();
        let down = loop {
            let e = next(&mut rx).await;
            if let Verdict::Down(why) = e.verdict {
                break why;
            }
        };
        assert!(down.ends_with("after 2 retries"), "{down}");
        // TCP_CHECK spends its retries while down too (check_tcp.c `tcp_epilog`).
        let again = next(&mut rx).await;
        assert!(
            matches!(&again.verdict, Verdict::Down(w) if w.ends_with("after 2 retries")),
            "{again:?}"
        );
        // Reopened: up at the next round.
        open.send(true).unwrap();
        let up = loop {
            let e = next(&mut rx).await;
            if e.verdict == Verdict::Up {
                break e;
            }
        };
        assert!(up.latency.is_some());
        // The manager drops its receiver: the task ends.
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the checker stops once nobody listens")
            .unwrap();
    }

    fn id() -> CheckId {
        CheckId {
            service: 0,
            real: 0,
            checker: 0,
        }
    }

    #[tokio::test]
    async fn http_spends_no_retries_on_a_server_already_down() {
        // Answers every request 500, counting connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.0 500 Oops\r\n\r\n").await;
            }
        });
        let mut c = checker(
            CheckKind::Http(crate::config::lvs::HttpCheck {
                tls: false,
                sni: false,
                http_protocol: crate::config::lvs::HttpProtocol::V10,
                virtualhost: None,
                urls: vec![crate::config::lvs::UrlCheck {
                    path: "/".into(),
                    digest: None,
                    status_codes: vec![],
                    virtualhost: None,
                    regex: None,
                }],
            }),
            addr,
        );
        c.retry = 2;
        c.delay_before_retry = Duration::from_millis(20);
        c.delay_loop = Duration::from_millis(100);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = spawn(id(), &config(c), tx);
        let first = next(&mut rx).await;
        assert!(
            matches!(&first.verdict, Verdict::Down(w) if w.contains("after 2 retries")),
            "{first:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 3);
        let second = next(&mut rx).await;
        assert!(
            matches!(&second.verdict, Verdict::Down(w) if !w.contains("retries")),
            "{second:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 4);
        task.abort();
        server.abort();
    }

    #[tokio::test]
    async fn udp_while_down_tries_every_delay_before_retry() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut c = checker(
            CheckKind::Udp(crate::config::lvs::UdpCheck {
                payload: b"ping".to_vec(),
                require_reply: Some(vec![]),
                min_reply_length: 0,
                max_reply_length: 255,
            }),
            silent.local_addr().unwrap(),
        );
        c.connect_timeout = Duration::from_millis(50);
        c.delay_before_retry = Duration::from_millis(50);
        c.delay_loop = Duration::from_secs(60);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = spawn(id(), &config(c), tx);
        let first = next(&mut rx).await;
        let second = next(&mut rx).await;
        assert!(matches!(second.verdict, Verdict::Down(_)));
        // Not delay_loop (60 s): one connect_timeout plus one delay_before_retry.
        assert!(second.at - first.at < Duration::from_secs(2));
        task.abort();
    }

    #[test]
    fn keepalived_s_defaults_per_kind() {
        let misc = CheckKind::Misc(crate::config::lvs::MiscCheck {
            command: vec!["true".into()],
            timeout: None,
            dynamic: false,
            user: None,
        });
        let dns = CheckKind::Dns(crate::config::lvs::DnsCheck {
            qtype: 6,
            name: ".".into(),
        });
        let loop_ = Duration::from_secs(7);
        assert_eq!(
            (
                default_retry(&CheckKind::Tcp),
                default_delay_before_retry(&CheckKind::Tcp, loop_)
            ),
            (1, Duration::from_secs(1))
        );
        assert_eq!(
            (
                default_retry(&misc),
                default_delay_before_retry(&misc, loop_)
            ),
            (0, Duration::from_secs(1))
        );
        assert_eq!(
            (default_retry(&dns), default_delay_before_retry(&dns, loop_)),
            (3, loop_)
        );
    }
}
