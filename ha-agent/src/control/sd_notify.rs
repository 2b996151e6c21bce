//! systemd's readiness protocol (`Type=notify`): one datagram of `KEY=VALUE` lines to the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//!
//! Written by hand: it is a dozen lines, and a crate would add a dependency for them.

use std::{io, os::unix::net::UnixDatagram};

/// Sends `state` (e.g. `READY=1\nSTATUS=…`) to systemd. Without `$NOTIFY_SOCKET` (not started
/// by systemd as `Type=notify`) it does nothing and returns `Ok(false)`.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), &path)?;
    }
    Ok(true)
}

/// A STATUS= line: one line, whatever `text` holds.
pub fn status_line(text: &str) -> String {
    format!("STATUS={}", text.replace('\n', " "))
}
