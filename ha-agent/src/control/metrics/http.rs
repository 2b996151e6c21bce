//! The `/metrics` endpoint: hyper's HTTP/1.1 server, one request per connection, bounded in
//! connections, request size and time.

use std::{cell::Cell, convert::Infallible, net::SocketAddr, rc::Rc, time::Duration};

use anyhow::{Context, Result};
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    header::{ACCEPT, ALLOW, CONTENT_TYPE},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tracing::{debug, warn};

use super::{Format, Metrics};
use crate::status::Status;

/// Connections served at once; a scraper needs one.
pub const MAX_CONNECTIONS: usize = 32;
/// A request head (request line and headers) must arrive within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed this long after it was accepted, whatever it is doing (sending its
/// head, reading the answer).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read (hyper's smallest read buffer); a longer one is answered 431.
pub const MAX_REQUEST_HEAD: usize = 8192;

/// Binds `addr` now (so a busy port stops the start, before anything is touched on the host).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics-listen {addr}: binding"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `/metrics` of the published status from a task on the current `LocalSet`.
pub fn serve(
    listener: std::net::TcpListener,
    status: watch::Receiver<Status>,
) -> Result<tokio::task::JoinHandle<()>> {
    serve_metrics(listener, Rc::new(Metrics::of_status(status)))
}

/// Serves `/metrics` of `metrics` from a task on the current `LocalSet`.
pub(super) fn serve_metrics(
    listener: std::net::TcpListener,
    metrics: Rc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::from_std(listener)?;
    let open = Rc::new(Cell::new(0usize));
    Ok(tokio::task::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if open.get() >= MAX_CONNECTIONS {
                        // Closed at once: the descriptor is not held for a slow client.
                        drop(stream);
                        let refused = metrics.refuse();
                        if refused.is_power_of_two() {
                            warn!(
                                "metrics: {MAX_CONNECTIONS} connections already open: closed one \
                                 from {peer} ({refused} so far)"
                            );
                        }
                        continue;
                    }
                    let slot = Slot::take(&open);
                    let metrics = metrics.clone();
                    tokio::task::spawn_local(async move {
                        let _slot = slot;
                        connection(stream, peer, metrics).await;
                    });
                }
                Err(e) => {
                    warn!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// One connection's place under [`MAX_CONNECTIONS`], given back when its task ends or is
/// aborted.
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(open: &Rc<Cell<usize>>) -> Slot {
        open.set(open.get() + 1);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Serves one request on `stream`, then closes it; gives up at [`CONNECTION_TIMEOUT`].
async fn connection(stream: TcpStream, peer: SocketAddr, metrics: Rc<Metrics>) {
    let service = service_fn(move |request| {
        let response = answer(&request, &metrics);
        async move { Ok::<_, Infallible>(response) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(false)
        // `Content-Type:` as the hand-written responder wrote it, for scripts that grep for it.
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, served).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("metrics: a request from {peer}: {e}"),
        Err(_) => {
            debug!("metrics: {peer} was not done within {CONNECTION_TIMEOUT:?}: connection closed")
        }
    }
}

/// The answer to `request`: the exposition for `GET`/`HEAD /metrics` (in the format its
/// `Accept` asks for), 404 for another path, 405 for another method.
fn answer(request: &Request<Incoming>, metrics: &Metrics) -> Response<String> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let accept = request
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            (
                StatusCode::OK,
                format.content_type(),
                metrics.encode(format),
            )
        }
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_owned(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response = response.header(ALLOW, "GET, HEAD");
    }
    response
        .body(body)
        .expect("a response from a status, static headers and a String")
}
