//! systemd's readiness protocol (`Type=notify`): one datagram of `KEY=VALUE` lines to the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//!
//! Written by hand: it is a dozen lines, and a crate would add a dependency for them.

use std::{io, os::unix::net::UnixDatagram};

/// Sends `state` (e.g. `READY=1\nSTATUS=…`) to systemd. Without `$NOTIFY_SOCKET` (not started
/// by systemd as `Type=notify`) it does nothing and returns `Ok(false)`.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => notify_to(&socket, state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notify socket `socket` (a path, or `@name` for an abstract socket).
pub fn notify_to(socket: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    if let Some(name) = socket.as_encoded_bytes().strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sender.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sender.send_to(state.as_bytes(), socket)?;
    }
    Ok(())
}

/// A STATUS= line: one line, whatever `text` holds, with what a terminal would act on escaped
/// (`systemctl status` shows it; instance names come from the configuration).
pub fn status_line(text: &str) -> String {
    format!("STATUS={}", crate::config::escape(&text.replace('\n', " ")))
}
