//! One rtnetlink connection (`NETLINK_ROUTE`) for requests: VIPs, routes, link queries.
//!
//! The connection's I/O runs as a tokio task spawned by [`Netlink::new`]; dropping the
//! [`Netlink`] aborts it. It must be created inside a tokio runtime, and in the network namespace
//! it is meant to act on (the socket is bound to the namespace of the thread that creates it).

use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::Handle;
use tokio::task::JoinHandle;

/// Opening the rtnetlink socket failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("`socket(AF_NETLINK, NETLINK_ROUTE)` failed")]
    Socket(#[source] std::io::Error),
}

/// A request connection to the kernel's routing netlink.
pub struct Netlink {
    handle: Handle,
    task: JoinHandle<()>,
    // Kept so the connection never sees a closed channel (it would stop on one).
    _unsolicited: UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
}

impl Netlink {
    /// Opens the socket and spawns its I/O task on the current tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let (connection, handle, unsolicited) =
            rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(connection);
        Ok(Self {
            handle,
            task,
            _unsolicited: unsolicited,
        })
    }

    /// The rtnetlink handle, for requests this module does not wrap.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The errno of a netlink NACK (positive, e.g. `libc::EEXIST`), if `err` is one.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// `err` as an `io::Error` when it carries an errno, so messages read "File exists (os error 17)".
pub(crate) fn to_io(err: rtnetlink::Error) -> std::io::Error {
    match errno(&err) {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::other(err),
    }
}
