//! Network namespaces: create, enter from a thread, and remove with everything running inside.

use std::{fs::File, os::fd::AsRawFd, process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use crate::{NS_PREFIX, run};

/// Creates the named namespace (`ip netns add`).
pub(crate) fn add(name: &str) -> Result<()> {
    run(Command::new("ip").args(["netns", "add", name])).map(drop)
}

/// Pids of the processes inside namespace `name`.
fn pids(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in namespace `name` (SIGTERM, then SIGKILL after a grace period) and
/// deletes the namespace. Best effort: used from Drop, must not panic.
pub(crate) fn kill_all_and_delete(name: &str) {
    let mut left = pids(name);
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        for pid in &left {
            // SAFETY: kill(2) on a pid we just listed; a stale pid only yields ESRCH.
            unsafe { libc::kill(*pid, signal) };
        }
        for _ in 0..50 {
            left = pids(name);
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if left.is_empty() {
            break;
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).output();
}

/// Removes namespaces left by lab runs whose process is gone (a test binary that was killed).
pub(crate) fn remove_stale() -> Result<()> {
    let out = run(Command::new("ip").args(["netns", "list"]))?;
    for line in out.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        // hal-<tag>-<pid>-<seq>-<role>
        let parts: Vec<&str> = rest.rsplitn(4, '-').collect();
        let Some(pid) = parts.get(2).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_all_and_delete(name);
        }
    }
    // BPF filesystems of dead labs (`<tmp>/hal-<tag>-<pid>-<seq>/bpf`): their pins keep
    // programs loaded until unmounted.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(point), Some("bpf")) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some(lab) = std::path::Path::new(point)
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(NS_PREFIX))
        else {
            continue;
        };
        let parts: Vec<&str> = lab.rsplitn(3, '-').collect();
        let Some(pid) = parts.get(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            unmount(std::path::Path::new(point));
        }
    }
    Ok(())
}

/// Mounts a BPF filesystem on `dir` (for the agents' pins in a lab).
pub(crate) fn mount_bpffs(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    run(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(dir))?;
    Ok(())
}

/// Lazily unmounts `dir`, ignoring errors (it may be gone already).
pub(crate) fn unmount(dir: &std::path::Path) {
    let _ = Command::new("umount").arg("-l").arg(dir).output();
}

/// Runs `f` on a new thread that has entered network namespace `ns`, and returns its result.
/// Sockets, links and BPF attachments made inside `f` belong to `ns`; file descriptors it
/// returns stay usable from any thread.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::spawn(move || {
        // SAFETY: setns(2) on an open namespace fd; it changes only this thread's namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns({path}): {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread in namespace {ns} panicked"))?
}
