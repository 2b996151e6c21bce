//! The control side without a lab: the report's JSON and table, metrics, paths, atomic dumps,
//! the control socket's permissions and stale/live handling, the metrics endpoint, sd_notify.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use super::{
    default_socket_path,
    dump::{Dump, DumpPaths, write_atomic},
    metrics,
    report::Report,
    sd_notify,
    socket::{ControlSocket, request_status},
};
use crate::{
    status::{InstanceStatus, Status, TrackerStatus},
    vrrp::instance::State,
};

/// A directory of its own under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ha-agent-control-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn instance(name: &str, vrid: u8, state: State, since: Instant) -> InstanceStatus {
    InstanceStatus {
        name: name.into(),
        interface: "eth0".into(),
        vmac: None,
        vrid,
        version: 3,
        family: 4,
        state,
        state_since: since,
        state_since_wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        configured_priority: 150,
        effective_priority: 130,
        master: Some(("192.0.2.1".parse().unwrap(), 130)),
        vips: vec!["192.0.2.200".parse().unwrap()],
        transitions: 2,
        last_takeover: Some(Duration::from_millis(312)),
        adverts_sent: 40,
        adverts_received: 3,
        fault: false,
        trackers: vec![TrackerStatus {
            kind: "script",
            name: "chk_nginx".into(),
            up: false,
            weight: -20,
            count: None,
        }],
        vip_conflicts: [("192.0.2.200".parse().unwrap(), 3)].into_iter().collect(),
    }
}

fn status(datapath: &'static str) -> (Status, Instant) {
    let now = Instant::now();
    let since = now - Duration::from_secs(75);
    let mut rejected = BTreeMap::new();
    rejected.insert(("eth0".to_owned(), 51, "auth_mismatch"), 2);
    rejected.insert(("eth0".to_owned(), 52, "interval_mismatch"), 5);
    rejected.insert(("eth1".to_owned(), 51, "ttl_not_255"), 7);
    let mut fence_drops = BTreeMap::new();
    if datapath == "xdp" {
        fence_drops.insert("eth0".to_owned(), 9);
    }
    let status = Status {
        datapath,
        started: SystemTime::now() - Duration::from_secs(100),
        config_file: "/etc/keepalived/keepalived.conf".into(),
        instances: vec![
            instance("VI_1", 51, State::Master, since),
            instance("VI_\"2", 52, State::Backup, since),
        ],
        rejected,
        fence_drops,
        foreign: BTreeMap::from([(("eth0".to_owned(), 52), 7)]),
        wakeups: 42,
        claims_dropped: 5,
        events_lost: if datapath == "xdp" {
            [("eth0".to_owned(), 4)].into_iter().collect()
        } else {
            BTreeMap::new()
        },
        virtual_servers: Vec::new(),
    };
    (status, now)
}

#[test]
fn json_has_the_documented_schema_and_reads_back() {
    let (status, now) = status("xdp");
    let report = Report::new(&status, now, SystemTime::now());
    let text = serde_json::to_string(&report).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["agent"]["datapath"], "xdp");
    assert_eq!(v["agent"]["pid"], std::process::id());
    assert!((v["agent"]["uptime_seconds"].as_f64().unwrap() - 100.0).abs() < 5.0);
    assert_eq!(v["agent"]["wakeups"], 42);
    assert_eq!(v["agent"]["claims_dropped"], 5);
    assert_eq!(v["events_lost"], serde_json::json!({"eth0": 4}));
    let i = &v["instances"][0];
    assert_eq!(i["name"], "VI_1");
    assert_eq!(i["state"], "MASTER");
    assert_eq!(i["configured_priority"], 150);
    assert_eq!(i["effective_priority"], 130);
    assert_eq!(i["master"]["address"], "192.0.2.1");
    assert_eq!(i["master"]["self"], true);
    assert_eq!(v["instances"][1]["master"]["self"], false);
    assert_eq!(i["vips"][0], "192.0.2.200");
    assert_eq!(i["time_in_state_seconds"], 75.0);
    assert_eq!(i["state_since_unix"], 1_700_000_000.0);
    assert_eq!(i["last_takeover_seconds"], 0.312);
    assert_eq!(i["adverts"]["sent"], 40);
    assert_eq!(i["adverts"]["received"], 3);
    // Only this instance's interface and VRID.
    assert_eq!(
        i["adverts"]["rejected"],
        serde_json::json!({"auth_mismatch": 2})
    );
    assert_eq!(
        i["trackers"][0],
        serde_json::json!({"kind": "script", "name": "chk_nginx", "up": false, "weight": -20})
    );
    assert_eq!(i["vip_conflicts"], serde_json::json!({"192.0.2.200": 3}));
    assert_eq!(v["rejected"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["rejected"][0],
        serde_json::json!({"interface": "eth0", "vrid": 51, "reason": "auth_mismatch", "count": 2})
    );
    assert_eq!(v["fence_drops"], serde_json::json!({"eth0": 9}));
    assert_eq!(
        v["foreign"],
        serde_json::json!([{"interface": "eth0", "vrid": 52, "count": 7}])
    );
    assert_eq!(Report::from_json(&text).unwrap(), report);
    let table = super::report::render_table(&report);
    assert!(
        table.contains("XDP events lost (resynchronised from the peer records):\n  eth0  4"),
        "{table}"
    );
    let stats = super::report::render_stats(&report);
    assert!(stats.contains("XDP events lost on eth0: 4"), "{stats}");
    assert!(
        stats.contains("Address claims dropped unread: 5"),
        "{stats}"
    );
}

#[test]
fn table_shows_each_instance_its_trackers_and_rejects() {
    let (status, now) = status("socket");
    let table = super::report::render_table(&Report::new(&status, now, SystemTime::now()));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("datapath socket"), "{table}");
    assert!(
        table.contains("address claims dropped unread (a flood): 5"),
        "{table}"
    );
    let foreign = lines
        .iter()
        .position(|l| l.starts_with("other speakers' adverts"))
        .unwrap_or_else(|| panic!("no other speakers' section:\n{table}"));
    assert_eq!(
        lines[foreign + 1].split_whitespace().collect::<Vec<_>>(),
        ["eth0", "vrid", "52", "7"],
        "{table}"
    );
    let header = lines
        .iter()
        .position(|l| l.starts_with("INSTANCE"))
        .unwrap();
    let row: Vec<&str> = lines[header + 1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "VI_1",
            "eth0",
            "51",
            "MASTER",
            "150",
            "130",
            "192.0.2.1",
            "(self)",
            "192.0.2.200",
            "1m15s",
            "2",
            "40",
            "3",
            "2"
        ],
        "{table}"
    );
    // Columns line up: STATE starts at the same offset in the header and the rows.
    let col = lines[header].find("STATE").unwrap();
    assert_eq!(&lines[header + 1][col..col + 6], "MASTER");
    assert_eq!(&lines[header + 2][col..col + 6], "BACKUP");
    assert!(table.contains("chk_nginx  DOWN  weight -20"), "{table}");
    assert!(table.contains("vrid 52  interval_mismatch  5"), "{table}");
    assert!(table.contains("address conflicts"), "{table}");
    assert!(table.contains("  VI_1   192.0.2.200  3"), "{table}");
}

#[test]
fn human_durations() {
    use super::report::human_duration;
    assert_eq!(human_duration(0.25), "250ms");
    assert_eq!(human_duration(42.9), "42s");
    assert_eq!(human_duration(192.0), "3m12s");
    assert_eq!(human_duration(5.0 * 3600.0 + 180.0), "5h03m");
    assert_eq!(human_duration(2.0 * 86400.0 + 4.0 * 3600.0), "2d04h");
}

#[test]
fn metrics_text_has_one_state_set_and_escapes_labels() {
    let (status, now) = status("xdp");
    let text = metrics::render(
        &Report::new(&status, now, SystemTime::now()),
        metrics::Format::Prometheus,
    );
    let l1 = r#"instance="VI_1",interface="eth0",vrid="51",family="ipv4""#;
    let l2 = r#"instance="VI_\"2",interface="eth0",vrid="52",family="ipv4""#;
    for line in [
        format!(r#"ha_agent_instance_state{{{l1},state="MASTER"}} 1"#),
        format!(r#"ha_agent_instance_state{{{l1},state="BACKUP"}} 0"#),
        format!(r#"ha_agent_instance_state{{{l2},state="BACKUP"}} 1"#),
        format!("ha_agent_instance_effective_priority{{{l1}}} 130"),
        format!("ha_agent_instance_configured_priority{{{l1}}} 150"),
        format!("ha_agent_instance_transitions_total{{{l1}}} 2"),
        format!("ha_agent_instance_adverts_sent_total{{{l1}}} 40"),
        format!("ha_agent_instance_last_takeover_seconds{{{l1}}} 0.312"),
        r#"ha_agent_adverts_rejected_total{interface="eth0",vrid="51",reason="auth_mismatch"} 2"#
            .into(),
        r#"ha_agent_fence_drops_total{interface="eth0"} 9"#.into(),
        r#"ha_agent_adverts_foreign_total{interface="eth0",vrid="52"} 7"#.into(),
        "ha_agent_wakeups_total 42".into(),
        "ha_agent_claims_dropped_total 5".into(),
        r#"ha_agent_xdp_events_lost_total{interface="eth0"} 4"#.into(),
        format!(r#"ha_agent_vip_conflicts_total{{{l1},vip="192.0.2.200"}} 3"#),
        "# TYPE ha_agent_vip_conflicts_total counter".into(),
        "# TYPE ha_agent_instance_transitions_total counter".into(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    let states = text
        .lines()
        .filter(|l| l.starts_with("ha_agent_instance_state{") && l.ends_with(" 1"))
        .count();
    assert_eq!(states, 2, "one current state per instance");
    let (status, now) = self::status("socket");
    let text = metrics::render(
        &Report::new(&status, now, SystemTime::now()),
        metrics::Format::Prometheus,
    );
    assert!(
        !text.contains("fence_drops"),
        "no fence on the socket datapath"
    );
}

#[test]
fn socket_paths_differ_per_config_file_and_agree_between_run_and_status() {
    let dir = TempDir::new("paths");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        std::fs::write(dir.0.join(sub).join("keepalived.conf"), "").unwrap();
    }
    let a = default_socket_path(&dir.0.join("a/keepalived.conf"));
    let b = default_socket_path(&dir.0.join("b/keepalived.conf"));
    assert_ne!(a, b);
    assert_eq!(a.parent(), Some(Path::new(super::RUN_DIR)));
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("keepalived-") && name.ends_with(".sock"),
        "{name}"
    );
    // The same file by another name (a `..` detour) is the same agent.
    assert_eq!(
        default_socket_path(&dir.0.join("b/../a/keepalived.conf")),
        a
    );
    assert_eq!(
        DumpPaths::for_socket(Path::new("/run/ha-agent/x-1.sock")),
        DumpPaths {
            data: "/run/ha-agent/x-1.data".into(),
            stats: "/run/ha-agent/x-1.stats".into(),
            json: "/run/ha-agent/x-1.json".into(),
        }
    );
    assert_eq!(
        DumpPaths::for_socket(Path::new("/tmp/ctl")).data,
        PathBuf::from("/tmp/ctl.data")
    );
}

#[test]
fn dumps_are_written_whole_and_owner_only() {
    let dir = TempDir::new("dumps");
    let paths = DumpPaths::for_socket(&dir.0.join("agent.sock"));
    let (status, now) = status("socket");
    let report = Report::new(&status, now, SystemTime::now());
    std::fs::write(&paths.data, "old").unwrap();
    paths.write(Dump::Data, &report).unwrap();
    paths.write(Dump::Stats, &report).unwrap();
    let data = std::fs::read_to_string(&paths.data).unwrap();
    assert!(
        data.contains("VRRP Instance = VI_1") && data.contains("State = MASTER"),
        "{data}"
    );
    let stats = std::fs::read_to_string(&paths.stats).unwrap();
    assert!(stats.contains("auth_mismatch: 2"), "{stats}");
    let json = std::fs::read_to_string(&paths.json).unwrap();
    assert_eq!(Report::from_json(&json).unwrap(), report);
    // A time that serde_json's default (not round-trip) float parser read back 1 ULP off.
    let mut exact = report.clone();
    exact.agent.started_unix = 1795315807.3506315;
    let text = serde_json::to_string(&exact).unwrap();
    assert_eq!(Report::from_json(&text).unwrap(), exact);
    for p in [&paths.data, &paths.stats, &paths.json] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "no temporary files left: {names:?}");
    // A name from the configuration that would clear the screen of whoever `cat`s the dump.
    let mut hostile = report.clone();
    hostile.instances[0].name = "VI_\x1b[2J".into();
    paths.write(Dump::Data, &hostile).unwrap();
    let data = std::fs::read_to_string(&paths.data).unwrap();
    assert!(
        !data.contains('\x1b') && data.contains("VI_\\x1b[2J"),
        "{data}"
    );
    assert!(write_atomic(&dir.0.join("missing/x"), b"x").is_err());
}

fn local_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn control_socket_is_owner_only_answers_status_and_is_removed() {
    let dir = TempDir::new("socket");
    let path = dir.0.join("sub/agent.sock");
    // A stale socket: bound, then its listener gone.
    std::fs::create_dir_all(dir.0.join("sub")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(
        request_status(&path)
            .unwrap_err()
            .to_string()
            .contains("stale")
    );

    let (status, _) = status("socket");
    let (_tx, rx) = tokio::sync::watch::channel(status);
    let local = tokio::task::LocalSet::new();
    local.block_on(&local_runtime(), async {
        let socket = ControlSocket::bind(&path, None).expect("a stale socket is replaced");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (file, task) = socket.serve(rx).unwrap();

        let err = ControlSocket::bind(&path, None)
            .err()
            .expect("a live socket is refused");
        assert!(err.to_string().contains("another ha-agent"), "{err}");

        let p = path.clone();
        let reply = tokio::task::spawn_blocking(move || request_status(&p))
            .await
            .unwrap()
            .unwrap();
        let report = Report::from_json(&reply).unwrap();
        assert_eq!(report.instances[0].state, "MASTER");
        let table = tokio::task::spawn_blocking({
            let p = path.clone();
            move || super::status(&p, false)
        })
        .await
        .unwrap()
        .unwrap();
        assert!(table.contains("VI_1"), "{table}");

        // Anything but `status` gets an error object.
        let p = path.clone();
        let other = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.write_all(b"reboot\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        assert!(other.starts_with(r#"{"error":"#), "{other}");

        task.abort();
        drop(file);
    });
    assert!(!path.exists(), "the socket file is removed");
    let missing = request_status(&path).unwrap_err().to_string();
    assert!(missing.contains("no control socket"), "{missing}");

    // Not a socket: refused and left alone.
    std::fs::write(&path, "precious").unwrap();
    let err = ControlSocket::bind(&path, None).err().unwrap();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

/// `--control-socket-group`: the socket 0660 and its directory 0750, both of the group and
/// open to no one else; a directory another agent opened to another group, and an unknown
/// group, stop the bind with a message naming the option. Needs root (chown).
#[test]
fn control_socket_group_opens_socket_and_directory_to_that_group_only() {
    use super::socket::SocketGroup;
    let nogroup = SocketGroup::lookup("nogroup").expect("Debian's nogroup exists");
    let dir = TempDir::new("group");
    let path = dir.0.join("run/agent.sock");
    let socket = ControlSocket::bind(&path, Some(&nogroup)).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, nogroup.gid));
    let run = std::fs::metadata(dir.0.join("run")).unwrap();
    assert_eq!(run.permissions().mode() & 0o7777, 0o750);
    assert_eq!((run.uid(), run.gid()), (0, nogroup.gid));
    drop(socket);

    // Another agent in the same directory with the same group: nothing changes.
    let second = dir.0.join("run/second.sock");
    drop(ControlSocket::bind(&second, Some(&nogroup)).unwrap());
    let run = std::fs::metadata(dir.0.join("run")).unwrap();
    assert_eq!(run.permissions().mode() & 0o7777, 0o750);

    // A third with another group is refused, the directory left to the first group.
    let other = SocketGroup {
        name: "other".into(),
        gid: nogroup.gid - 1,
    };
    let err = ControlSocket::bind(&dir.0.join("run/third.sock"), Some(&other))
        .err()
        .expect("another group's directory is refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("--control-socket-group other") && text.contains("share one group"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(dir.0.join("run")).unwrap().gid(),
        nogroup.gid
    );

    // Without the option the socket stays owner-only, in a directory made owner-only.
    let private = dir.0.join("private/agent.sock");
    drop(ControlSocket::bind(&private, None).unwrap());
    let p = std::fs::metadata(dir.0.join("private")).unwrap();
    assert_eq!(p.permissions().mode() & 0o7777, 0o700);

    let err = SocketGroup::lookup("ha-agent-no-such-group").unwrap_err();
    assert!(
        err.to_string()
            .contains("--control-socket-group ha-agent-no-such-group: no such group"),
        "{err}"
    );
}

fn http_get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Serves the metrics of a socket-datapath status on a free loopback port while `client` runs
/// against it; the server task is stopped and its LocalSet dropped before this returns the port.
fn with_metrics_server<F: std::future::Future<Output = ()>>(
    client: impl FnOnce(std::net::SocketAddr) -> F,
) -> std::net::SocketAddr {
    let (status, _) = status("socket");
    let (_tx, rx) = tokio::sync::watch::channel(status);
    let listener = metrics::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&local_runtime(), async {
        let task = metrics::serve(listener, rx).unwrap();
        client(addr).await;
        task.abort();
    });
    drop(local);
    addr
}

#[test]
fn metrics_endpoint_serves_get_metrics_only() {
    let addr = with_metrics_server(|addr| async move {
        let get = |req: &'static str| tokio::task::spawn_blocking(move || http_get(addr, req));
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.contains("ha_agent_instance_state{"), "{body}");
        let nf = get("GET /other HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
        let post = get("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    });
    // The listener is closed with its task: a connect is refused rather than
    // queued behind a listener nobody accepts on. (Re-binding the port proved
    // flaky: a parallel test's client may take it as its ephemeral port.)
    let refused = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the listener is gone once the task is: {refused}"
    );
}

/// More than MAX_CONNECTIONS idle connections: the extra one is closed at once and counted,
/// and a scrape works again once the idle ones go.
#[test]
fn metrics_connections_are_capped() {
    with_metrics_server(|addr| async move {
        let idle: Vec<tokio::net::TcpStream> = {
            let mut v = Vec::new();
            for _ in 0..metrics::MAX_CONNECTIONS {
                v.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            }
            v
        };
        // Let the server accept them all (each holds a slot while it waits for a request).
        let extra = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0u8; 16];
            // EOF (or a reset) at once, not a wait for the 5 s request timeout.
            let started = std::time::Instant::now();
            let n = s.read(&mut buf);
            (n.map_err(|e| e.kind()), started.elapsed())
        })
        .await
        .unwrap();
        assert!(
            matches!(extra.0, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
            "{extra:?}"
        );
        assert!(extra.1 < Duration::from_secs(2), "{extra:?}");
        drop(idle);
        let body = scrape_when_served(addr).await;
        // The extra connection, and scrapes tried before the idle ones' slots were free.
        let refused = body
            .lines()
            .find_map(|l| l.strip_prefix("ha_agent_metrics_connections_refused_total "))
            .and_then(|n| n.parse::<u64>().ok());
        assert!(refused.is_some_and(|n| n >= 1), "{body}");
    });
}

/// GET /metrics until a scrape is served (the idle connections' slots free as the server reads
/// their EOF).
async fn scrape_when_served(addr: std::net::SocketAddr) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.starts_with("HTTP/1.1 200").then_some(out)
        })
        .await
        .unwrap();
        if let Some(body) = got {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "no scrape served");
        tokio::task::yield_now().await;
    }
}

#[test]
fn sd_notify_sends_one_datagram_to_a_path_or_abstract_socket() {
    let dir = TempDir::new("notify");
    let path = dir.0.join("notify");
    let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(
        sd_notify::status_line("VI_\x1b[2J MASTER"),
        "STATUS=VI_\\x1b[2J MASTER"
    );
    let state = format!("READY=1\n{}", sd_notify::status_line("VI_1 MASTER\nx"));
    sd_notify::notify_to(path.as_os_str(), &state).unwrap();
    let mut buf = [0u8; 256];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=VI_1 MASTER x");

    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("ha-agent-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abs = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
    abs.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sd_notify::notify_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
    let n = abs.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[test]
fn the_data_dump_and_json_name_the_use_vmac_interface() {
    let (mut status, now) = status("xdp");
    status.instances[0].vmac = Some("vrrp.51".into());
    let report = Report::new(&status, now, SystemTime::now());
    let data = super::report::render_data(&report);
    assert!(
        data.contains("Interface = eth0 (VIPs on use_vmac vrrp.51)"),
        "{data}"
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"vmac\":\"vrrp.51\""), "{json}");
    let back = Report::from_json(&json).unwrap();
    assert_eq!(back.instances[0].vmac.as_deref(), Some("vrrp.51"));
    assert_eq!(back.instances[1].vmac, None);
}

fn lvs_status() -> Vec<crate::status::VirtualServerStatus> {
    use crate::status::{CheckerStatus, RealServerStatus, VirtualServerStatus};
    let real = |addr: &str, health: &str, weight: u32| RealServerStatus {
        address: addr.parse().unwrap(),
        kind: "DR".into(),
        health: health.into(),
        weight,
        configured_weight: 1,
        checkers: vec![CheckerStatus {
            kind: "HTTP_GET".into(),
            up: health == "up",
            last: Some(
                if health == "up" {
                    "up"
                } else {
                    "HTTP status 503"
                }
                .into(),
            ),
            latency_seconds: Some(0.002),
            failures: 3,
        }],
        packets: 10,
        bytes: 1500,
        new_flows: 2,
    };
    vec![VirtualServerStatus {
        address: "10.0.0.100:80".parse().unwrap(),
        protocol: "TCP".into(),
        algo: "wrr".into(),
        kind: "DR".into(),
        quorum_up: true,
        sorry_active: false,
        sorry_server: Some("10.0.0.99:80".parse().unwrap()),
        suspended: false,
        packets: 20,
        bytes: 3000,
        new_flows: 4,
        reals: vec![
            real("10.0.0.11:80", "up", 1),
            real("10.0.0.12:80", "down", 0),
        ],
    }]
}

/// Virtual servers: in the JSON (and back), as `ipvsadm -Ln` in the table, and as
/// `ha_agent_lvs_*` series labelled as ipvsadm names services.
#[test]
fn virtual_servers_show_in_json_table_and_metrics() {
    let (mut status, now) = status("xdp");
    status.virtual_servers = lvs_status();
    let report = Report::new(&status, now, SystemTime::now());
    let json = serde_json::to_string(&report).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["virtual_servers"][0]["address"], "10.0.0.100:80");
    assert_eq!(v["virtual_servers"][0]["reals"][1]["health"], "down");
    assert_eq!(Report::from_json(&json).unwrap(), report);
    let table = super::report::render_table(&report);
    assert!(table.contains("Prot LocalAddress:Port"), "{table}");
    let line = table
        .lines()
        .find(|l| l.contains("-> 10.0.0.12:80"))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[2..5], ["Route", "0", "down"], "{line}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TCP  10.0.0.100:80") && l.contains("wrr"))
    );
    let text = metrics::render(&report, metrics::Format::Prometheus);
    for line in [
        r#"ha_agent_lvs_quorum_up{service="TCP 10.0.0.100:80"} 1"#,
        r#"ha_agent_lvs_real_up{service="TCP 10.0.0.100:80",real="10.0.0.12:80"} 0"#,
        r#"ha_agent_lvs_real_weight{service="TCP 10.0.0.100:80",real="10.0.0.11:80"} 1"#,
        r#"ha_agent_lvs_real_packets_total{service="TCP 10.0.0.100:80",real="10.0.0.11:80"} 10"#,
        r#"ha_agent_lvs_checker_failures_total{service="TCP 10.0.0.100:80",real="10.0.0.12:80",checker="HTTP_GET",index="0"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}
