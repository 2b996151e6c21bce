//! HTTP_GET and SSL_GET (check_http.c): for each `url` in turn, keepalived's request
//! (`GET path HTTP/1.0|1.1`, `User-Agent: KeepAliveClient`, `Connection: close` with `1.0C` and
//! `1.1`, `Host` = the virtualhost or the address:port), then the status code (default any 2xx),
//! the MD5 `digest` of the body and the `regex`; every url must pass. SSL_GET speaks TLS first,
//! without verifying the certificate (keepalived without `ca`), SNI only with `enable_sni`.
//!
//! Every read and write waits at most `connect_timeout` (keepalived's); the whole request is
//! bounded too (by `delay_loop`, at least `connect_timeout`), so a server that streams forever
//! fails the check instead of holding it.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::rustls;

use super::{Attempt, Target};
use crate::config::lvs::{HttpCheck, HttpProtocol, UrlCheck};

/// The most of a response's headers read (keepalived's buffer is 4 KiB; real servers send
/// more cookies than that).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most of a body kept for `regex` (the digest covers all of it).
const MAX_REGEX_BYTES: usize = 1024 * 1024;

pub(super) async fn check(target: &Target, http: &HttpCheck, delay_loop: Duration) -> Attempt {
    let start = Instant::now();
    let name = if http.tls { "SSL_GET" } else { "HTTP_GET" };
    if http.urls.is_empty() {
        return match connect(target, http, None).await {
            Ok(_) => Attempt::up(start),
            Err(why) => Attempt::down(format!("{name}: {why}")),
        };
    }
    let bound = delay_loop.max(target.timeout);
    for url in &http.urls {
        match tokio::time::timeout(bound, get(target, http, url)).await {
            Ok(Ok(response)) => {
                if let Err(e) = judge(url, &response) {
                    // The server answered: how long it took is worth showing.
                    return Attempt {
                        latency: Some(start.elapsed()),
                        ..Attempt::down(format!("{name}: {e} {} url({})", target.connect, url.path))
                    };
                }
            }
            Ok(Err(why)) => return Attempt::down(format!("{name}: {why}")),
            Err(_) => {
                return Attempt::down(format!(
                    "{name}: Timeout HTTP read from {} url({}): no complete response within {bound:?}",
                    target.connect, url.path
                ));
            }
        }
    }
    Attempt::up(start)
}

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// keepalived's choice of virtual host: the url's, else the checker's (which the configuration
/// already defaulted to the real server's, then the service's).
fn vhost<'a>(http: &'a HttpCheck, url: Option<&'a UrlCheck>) -> Option<&'a str> {
    url.and_then(|u| u.virtualhost.as_deref())
        .or(http.virtualhost.as_deref())
}

async fn connect(
    target: &Target,
    http: &HttpCheck,
    url: Option<&UrlCheck>,
) -> Result<Pin<Box<dyn Io>>, String> {
    let stream = target.connect_tcp().await?;
    if !http.tls {
        return Ok(Box::pin(stream));
    }
    let server_name = match vhost(http, url) {
        Some(host) if http.sni => {
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
            rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| format!("virtualhost is not a server name for SNI: {e}"))?
        }
        // An IP address as the name: rustls sends no SNI.
        _ => rustls::pki_types::ServerName::IpAddress(target.connect.ip().into()),
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config(http.sni));
    match tokio::time::timeout(target.timeout, connector.connect(server_name, stream)).await {
        Ok(Ok(tls)) => Ok(Box::pin(tls)),
        Ok(Err(e)) => Err(format!("SSL handshake with {} failed: {e}", target.connect)),
        Err(_) => Err(format!(
            "SSL handshake with {} timed out after {:?}",
            target.connect, target.timeout
        )),
    }
}

/// keepalived's request for `url`.
fn request(target: &Target, http: &HttpCheck, url: &UrlCheck) -> String {
    let host = match vhost(http, Some(url)) {
        Some(v) => v.to_owned(),
        None => match target.connect {
            std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        },
    };
    let (minor, close) = match http.http_protocol {
        HttpProtocol::V10 => (0, ""),
        HttpProtocol::V10Close => (0, "Connection: close\r\n"),
        HttpProtocol::V11 => (1, "Connection: close\r\n"),
    };
    format!(
        "GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n",
        url.path
    )
}

/// One url: request, response, verdict.
/// One url's response; an error says what failed before there was one.
async fn get(target: &Target, http: &HttpCheck, url: &UrlCheck) -> Result<Response, String> {
    let mut io = connect(target, http, Some(url)).await?;
    let to = target.connect;
    let timeout = target.timeout;
    let req = request(target, http, url);
    match tokio::time::timeout(timeout, io.write_all(req.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("Cannot send get request to {to}: {e}")),
        Err(_) => return Err(format!("Timeout WEB write to {to}")),
    }
    read_response(&mut io, timeout)
        .await
        .map_err(|e| format!("{e} {to} url({})", url.path))
}

/// What was read of a response.
#[derive(Debug, Default)]
struct Response {
    status: Option<u16>,
    /// The body's MD5 (up to Content-Length, as keepalived).
    digest: [u8; 16],
    /// The body's start, for `regex`.
    body: Vec<u8>,
}

/// Reads until the server closes, or the Content-Length is complete; each read waits at most
/// `timeout`.
async fn read_response(io: &mut Pin<Box<dyn Io>>, timeout: Duration) -> Result<Response, String> {
    let mut head = Vec::new();
    let mut md5 = Md5::new();
    let mut body = Vec::new();
    let mut header_end = None;
    let mut content_len: Option<usize> = None;
    let mut body_len = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if content_len.is_some_and(|l| body_len >= l) {
            break;
        }
        let n = match tokio::time::timeout(timeout, io.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            // A TLS peer that closes without close_notify: the data read so far is the answer.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(format!("Read error ({e}) from")),
            Err(_) => return Err("Timeout HTTP read from".into()),
        };
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if header_end.is_none() {
            head.extend_from_slice(data);
            match find(&head, b"\r\n\r\n") {
                Some(at) => {
                    header_end = Some(at + 4);
                    content_len = content_length(&head[..at]);
                    data = &[];
                    let rest = head.split_off(at + 4);
                    feed(&rest, content_len, &mut body_len, &mut md5, &mut body);
                }
                None if head.len() > MAX_HEADER_BYTES => {
                    return Err(format!(
                        "HTTP header longer than {MAX_HEADER_BYTES} bytes from"
                    ));
                }
                None => continue,
            }
        }
        feed(data, content_len, &mut body_len, &mut md5, &mut body);
    }
    if head.is_empty() {
        return Err("Read, no data received from".into());
    }
    Ok(Response {
        status: status_code(&head),
        digest: md5.finalize().into(),
        body,
    })
}

/// Adds `data` to the body: to the digest up to the Content-Length, to the regex buffer up to
/// its cap.
fn feed(
    data: &[u8],
    content_len: Option<usize>,
    body_len: &mut usize,
    md5: &mut Md5,
    body: &mut Vec<u8>,
) {
    let take = match content_len {
        Some(l) => data.len().min(l.saturating_sub(*body_len)),
        None => data.len(),
    };
    md5.update(&data[..take]);
    let room = MAX_REGEX_BYTES.saturating_sub(body.len());
    body.extend_from_slice(&data[..take.min(room)]);
    *body_len += take;
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x NNN …` -> NNN.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(head);
    text.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// keepalived's `http_handle_response`: status, then digest, then regex.
fn judge(url: &UrlCheck, r: &Response) -> Result<(), String> {
    let ok = match r.status {
        Some(code) if url.status_codes.is_empty() => (200..=299).contains(&code),
        Some(code) => url.status_codes.contains(&code),
        None => false,
    };
    if !ok {
        let got = r
            .status
            .map_or_else(|| "none".to_owned(), |c| c.to_string());
        return Err(format!("HTTP status code error ({got}) to"));
    }
    if let Some(want) = &url.digest {
        let got: String = r.digest.iter().map(|b| format!("{b:02x}")).collect();
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("MD5 digest error (got {got}) to"));
        }
    }
    if let Some((pattern, no_match)) = &url.regex {
        let re = regex::bytes::Regex::new(pattern).map_err(|e| format!("regex: {e}; for"))?;
        if re.is_match(&r.body) == *no_match {
            return Err("Regex match failed for".into());
        }
    }
    Ok(())
}

/// The TLS client configuration: no certificate verification (keepalived without `ca`).
fn tls_config(sni: bool) -> Arc<rustls::ClientConfig> {
    static CONFIGS: OnceLock<[Arc<rustls::ClientConfig>; 2]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        let make = |sni: bool| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth();
            config.enable_sni = sni;
            Arc::new(config)
        };
        [make(false), make(true)]
    });
    configs[usize::from(sni)].clone()
}

/// Accepts any certificate: a health check asks whether the server answers, not who it is.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::lvs::CheckKind;
    use crate::lvs::Verdict;
    use crate::lvs::check::testing::{checker, round};

    /// How the test server answers one connection.
    #[derive(Clone)]
    enum Answer {
        /// Status line and body, then close.
        Full(u16, &'static str),
        /// Accepts and reads the request, never answers.
        Silent,
        /// Headers without Content-Length, then a byte every 50 ms forever.
        Stream,
    }

    /// What the server saw.
    #[derive(Default)]
    struct Seen {
        requests: Mutex<Vec<String>>,
        sni: Mutex<Vec<Option<String>>>,
        connections: AtomicUsize,
    }

    /// An HTTP (TLS with `tls`) server answering connection n with `answers(n)`.
    async fn server(
        tls: Option<tokio_rustls::TlsAcceptor>,
        answers: impl Fn(usize) -> Answer + Send + Sync + 'static,
    ) -> (SocketAddr, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let answers = Arc::new(answers);
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let n = s.connections.fetch_add(1, Ordering::SeqCst);
                let (s, answers, tls) = (s.clone(), answers.clone(), tls.clone());
                tokio::spawn(async move {
                    let mut io: Pin<Box<dyn Io>> = match tls {
                        Some(acceptor) => {
                            let Ok(t) = acceptor.accept(stream).await else {
                                return;
                            };
                            s.sni
                                .lock()
                                .unwrap()
                                .push(t.get_ref().1.server_name().map(str::to_owned));
                            Box::pin(t)
                        }
                        None => Box::pin(stream),
                    };
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while find(&req, b"\r\n\r\n").is_none() {
                        match io.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => req.extend_from_slice(&buf[..k]),
                        }
                    }
                    s.requests
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&req).into_owned());
                    match answers(n) {
                        Answer::Full(code, body) => {
                            let r = format!(
                                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = io.write_all(r.as_bytes()).await;
                            let _ = io.shutdown().await;
                        }
                        Answer::Silent => std::future::pending().await,
                        Answer::Stream => {
                            let _ = io.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
                            while io.write_all(b"x").await.is_ok() {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    fn url(path: &str) -> UrlCheck {
        UrlCheck {
            path: path.into(),
            digest: None,
            status_codes: vec![],
            virtualhost: None,
            regex: None,
        }
    }

    fn http(urls: Vec<UrlCheck>) -> HttpCheck {
        HttpCheck {
            tls: false,
            sni: false,
            http_protocol: HttpProtocol::V10,
            virtualhost: None,
            urls,
        }
    }

    async fn verdict(addr: SocketAddr, h: HttpCheck) -> Verdict {
        round(&checker(CheckKind::Http(h), addr)).await.verdict
    }

    #[tokio::test]
    async fn the_request_is_keepalived_s() {
        let (addr, seen) = server(None, |_| Answer::Full(200, "ok")).await;
        assert_eq!(verdict(addr, http(vec![url("/health")])).await, Verdict::Up);
        let mut h = http(vec![url("/a")]);
        h.http_protocol = HttpProtocol::V11;
        h.virtualhost = Some("www.example.test".into());
        assert_eq!(verdict(addr, h).await, Verdict::Up);
        let requests = seen.requests.lock().unwrap().clone();
        assert_eq!(
            requests[0],
            format!("GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {addr}\r\n\r\n")
        );
        assert_eq!(
            requests[1],
            "GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.test\r\n\r\n"
        );
    }

    #[test]
    fn an_ipv6_address_is_bracketed_in_host() {
        let target = Target {
            connect: "[2001:db8::7]:8080".parse().unwrap(),
            bind: None,
            bind_if: None,
            timeout: Duration::from_secs(1),
        };
        let mut h = http(vec![url("/")]);
        h.http_protocol = HttpProtocol::V10Close;
        assert_eq!(
            request(&target, &h, &h.urls[0]),
            "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [2001:db8::7]:8080\r\n\r\n"
        );
        // The url's virtualhost wins over the checker's.
        h.virtualhost = Some("checker.example".into());
        let mut u = url("/x");
        u.virtualhost = Some("url.example".into());
        assert!(request(&target, &h, &u).contains("Host: url.example\r\n"));
    }

    #[tokio::test]
    async fn status_codes_default_to_2xx_or_are_the_configured_set() {
        let (ok, _) = server(None, |_| Answer::Full(204, "")).await;
        let (unavailable, _) = server(None, |_| Answer::Full(503, "down")).await;
        assert_eq!(verdict(ok, http(vec![url("/")])).await, Verdict::Up);
        let a = round(&checker(CheckKind::Http(http(vec![url("/")])), unavailable)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("HTTP status code error (503)")),
            "{a:?}"
        );
        // It answered: the latency is known.
        assert!(a.latency.is_some());
        let mut u = url("/");
        u.status_codes = vec![200, 503];
        assert_eq!(verdict(unavailable, http(vec![u])).await, Verdict::Up);
    }

    #[tokio::test]
    async fn digest_and_regex_judge_the_body() {
        let (addr, _) = server(None, |_| Answer::Full(200, "hello world")).await;
        let mut good = url("/");
        good.digest = Some("5EB63BBBE01EEED093CB22BB8F5ACDC3".into());
        assert_eq!(verdict(addr, http(vec![good])).await, Verdict::Up);
        let mut bad = url("/");
        bad.digest = Some("00000000000000000000000000000000".into());
        let v = verdict(addr, http(vec![bad])).await;
        assert!(
            matches!(&v, Verdict::Down(w) if w.contains("MD5 digest error")),
            "{v:?}"
        );
        let mut re = url("/");
        re.regex = Some(("wor.d".into(), false));
        assert_eq!(verdict(addr, http(vec![re.clone()])).await, Verdict::Up);
        re.regex = Some(("wor.d".into(), true));
        let v = verdict(addr, http(vec![re])).await;
        assert!(
            matches!(&v, Verdict::Down(w) if w.contains("Regex match failed")),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn every_url_must_pass() {
        // Connections alternate: the second url of each attempt gets 500.
        let (addr, _) = server(None, |n| {
            Answer::Full(if n % 2 == 0 { 200 } else { 500 }, "")
        })
        .await;
        let v = verdict(addr, http(vec![url("/one"), url("/two")])).await;
        assert!(
            matches!(&v, Verdict::Down(w) if w.contains("url(/two)")),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_fails_once_is_up_with_one_retry() {
        let (addr, seen) = server(None, |n| Answer::Full(if n == 0 { 500 } else { 200 }, "")).await;
        let mut c = checker(CheckKind::Http(http(vec![url("/")])), addr);
        c.retry = 1;
        assert_eq!(round(&c).await.verdict, Verdict::Up);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_silent_server_is_down_after_connect_timeout_each_try() {
        let (addr, seen) = server(None, |_| Answer::Silent).await;
        let mut c = checker(CheckKind::Http(http(vec![url("/")])), addr);
        c.retry = 2;
        c.connect_timeout = Duration::from_millis(200);
        c.delay_before_retry = Duration::from_millis(100);
        let start = Instant::now();
        let a = round(&c).await;
        let took = start.elapsed();
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("Timeout HTTP read") && w.ends_with("after 2 retries")),
            "{a:?}"
        );
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
        // 3 × connect_timeout + 2 × delay_before_retry = 800 ms; generous bound above.
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_server_streaming_forever_does_not_hold_the_checker() {
        let (addr, _) = server(None, |_| Answer::Stream).await;
        let mut c = checker(CheckKind::Http(http(vec![url("/")])), addr);
        c.delay_loop = Duration::from_millis(500);
        let start = Instant::now();
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("no complete response")),
            "{a:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    fn acceptor() -> tokio_rustls::TlsAcceptor {
        let cert = rcgen::generate_simple_self_signed(vec!["www.example.test".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test]
    async fn ssl_get_accepts_a_self_signed_certificate_and_sends_sni_when_enabled() {
        let (addr, seen) = server(Some(acceptor()), |_| Answer::Full(200, "secure")).await;
        let mut h = http(vec![url("/")]);
        h.tls = true;
        h.virtualhost = Some("www.example.test".into());
        assert_eq!(verdict(addr, h.clone()).await, Verdict::Up);
        h.sni = true;
        let mut u = url("/");
        u.digest = Some(
            Md5::digest(b"secure")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        h.urls = vec![u];
        assert_eq!(verdict(addr, h).await, Verdict::Up);
        assert_eq!(
            *seen.sni.lock().unwrap(),
            vec![None, Some("www.example.test".to_owned())]
        );
        // Plain HTTP to a TLS port fails.
        let v = verdict(addr, http(vec![url("/")])).await;
        assert!(matches!(v, Verdict::Down(_)), "{v:?}");
    }
}
