//! Reading a configuration file from disk: regular files only, and bounded in size, for the
//! main file and for each include alike.

use std::path::Path;

/// The largest configuration file (the main one or an included one) that is read: far above
/// any real keepalived.conf, and a bound on what a mistaken path can make the reader swallow.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a configuration file: a regular file of at most [`MAX_FILE_BYTES`]. Anything else
/// (`/dev/zero`, `/dev/stdin` on a pipe or terminal, a FIFO, a socket, a directory) is refused
/// at once rather than read forever or waited on: the file is opened non-blocking (a FIFO
/// without a writer does not block the open), its type is checked on the open descriptor, and
/// at most one byte more than the limit is read.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "of an unknown kind"
        };
        return Err(format!(
            "{what}, not a regular file (a configuration is read from regular files only)"
        ));
    }
    let too_big = || {
        format!(
            "larger than {} MiB, the most a configuration file may be",
            MAX_FILE_BYTES / (1024 * 1024)
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        // It grew while being read.
        return Err(too_big());
    }
    Ok(bytes)
}
