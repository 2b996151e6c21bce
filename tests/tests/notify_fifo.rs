//! keepalived's notify FIFOs as a user's reader sees them: `notify_fifo` (a FIFO the user made,
//! read by the test) and `vrrp_notify_fifo` (created by the agent, read by its
//! `vrrp_notify_fifo_script`) both receive keepalived's lines, in order, through a failover and
//! back (`vrrp_notify_priority_changes` on), and STOP at exit; the FIFO the agent created is
//! removed at exit, the user's is not. `notify_master_rx_lower_pri` runs, with no arguments,
//! when the master hears the lower-priority advert of the node it took over from.

use std::{
    ffi::CString,
    fs::File,
    io::{ErrorKind, Read},
    os::unix::{ffi::OsStrExt, fs::MetadataExt, fs::OpenOptionsExt, fs::PermissionsExt},
    path::Path,
    time::Duration,
};

use ha_tests::{Lab, ha_agent_bin, v3_instance, wait_for};

/// How long an agent may take to answer on its status socket (XDP loads on a loaded machine).
const READY: Duration = Duration::from_secs(20);
const VIP: &str = "192.0.2.200";

/// The test's reader: non-blocking, so that a FIFO with no writer yet (or any more) reads as
/// nothing instead of hanging the test.
struct Reader {
    file: File,
    text: String,
}

impl Reader {
    fn open(path: &Path) -> Reader {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap();
        Reader {
            file,
            text: String::new(),
        }
    }

    /// Everything read so far, after reading what waits.
    fn lines(&mut self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.text.push_str(std::str::from_utf8(&buf[..n]).unwrap()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the FIFO: {e}"),
            }
        }
        self.text.lines().map(str::to_owned).collect()
    }

    /// Waits until `line` has been read.
    fn wait_line(&mut self, line: &str, agent: &ha_tests::Daemon) {
        wait_for(
            &format!("the FIFO to say {line:?}"),
            Duration::from_secs(10),
            || Ok(self.lines().iter().any(|l| l == line)),
        )
        .unwrap_or_else(|e| panic!("{e}; read {:?}; log:\n{}", self.text, agent.log()));
    }
}

/// Kills the process whose pid the file names, on drop (also on panic), if it still runs the
/// command it was started with (its arguments name the file's directory, the lab's).
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(&self.0).ok();
        let dir = self.0.parent().unwrap().to_string_lossy().into_owned();
        let ours = |pid: i32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir))
        };
        if let Some(pid) = pid
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|&p| ours(p))
        {
            // SAFETY: kill(2) with a pid the script wrote; SIGKILL to a process of this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn executable(lab: &Lab, name: &str, body: &str) -> String {
    let path = lab.write_file(name, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn the_fifos_hear_keepalived_lines_in_order_through_failover_and_back() {
    failover_and_back(false);
}

/// keepalived is the spec: on node 1 with the same configuration, it writes the same lines
/// (and runs the same scripts) as the test above expects of ha-agent.
#[test]
fn keepalived_writes_the_same_lines_through_failover_and_back() {
    failover_and_back(true);
}

/// Node 1 runs the configuration with ha-agent, or with keepalived; node 2 is ha-agent.
fn failover_and_back(keepalived: bool) {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new(if keepalived { "nfifoka1" } else { "nfifo" }, 2).expect("lab");
    let user_fifo = lab.dir.join("notify.fifo");
    let path = CString::new(user_fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) reads the NUL-terminated path, alive across the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let agent_fifo = lab.dir.join("vrrp.fifo");
    let copy = lab.dir.join("copy.txt");
    let lower = lab.dir.join("lower.txt");
    let maint = lab.dir.join("maint");
    // Ignores SIGTERM so that it reads to the end (EOF when the daemon closes the FIFO); its
    // pid (cat's, after exec) lets the guard kill it should the daemon never open the FIFO.
    let reader_pid = lab.dir.join("reader.pid");
    let _reader = KillOnDrop(reader_pid.clone());
    let reader = executable(
        &lab,
        "reader.sh",
        &format!(
            "#!/bin/sh\ntrap '' TERM\necho $$ > {}\nexec cat \"$1\" >> {}\n",
            reader_pid.display(),
            copy.display()
        ),
    );
    let lower_sh = executable(
        &lab,
        "lower.sh",
        &format!("#!/bin/sh\necho \"lower $#\" >> {}\n", lower.display()),
    );
    let conf1 = format!(
        "global_defs {{\n    notify_fifo {}\n    vrrp_notify_fifo {}\n    \
         vrrp_notify_fifo_script {reader}\n    vrrp_notify_priority_changes\n}}\n\
         track_file maint {{\n    file {}\n    weight 60\n    init_file 0 overwrite\n}}\n\
         vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    version 3\n    \
         priority 150\n    advert_int 0.05\n    track_file {{\n        maint\n    }}\n    \
         notify_master_rx_lower_pri {lower_sh}\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n",
        user_fifo.display(),
        agent_fifo.display(),
        maint.display(),
    );
    let mut fifo = Reader::open(&user_fifo);
    let mut a1 = if keepalived {
        lab.keepalived(1, &conf1).unwrap()
    } else {
        let mut a1 = lab.ha_agent(1, &conf1, &[]).unwrap();
        lab.wait_agent_ready(1, &mut a1, READY).unwrap();
        a1
    };
    fifo.wait_line("INSTANCE \"VI_1\" MASTER 150", &a1);
    assert!(agent_fifo.exists(), "the agent did not create its FIFO");
    let mut a2 = lab.ha_agent(2, &v3_instance(100, "0.05"), &[]).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();

    // -1 x 60: node 1's effective priority 90 < 100: node 2 takes over.
    std::fs::write(&maint, "-1\n").unwrap();
    fifo.wait_line("INSTANCE \"VI_1\" BACKUP 90", &a1);
    // Back to 150: node 1 preempts; node 2, stepping down, advertises its 100 once.
    std::fs::write(&maint, "0\n").unwrap();
    fifo.wait_line("INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150", &a1);
    wait_for(
        "notify_master_rx_lower_pri to run",
        Duration::from_secs(10),
        || Ok(lower.exists()),
    )
    .unwrap();
    let ran = std::fs::read_to_string(&lower).unwrap();
    assert_eq!(
        ran.lines().next(),
        Some("lower 0"),
        "it runs with no arguments"
    );

    a1.signal(libc::SIGTERM).unwrap();
    assert!(
        a1.wait_timeout(Duration::from_secs(10)).unwrap().is_some(),
        "the agent did not exit: {}",
        a1.log()
    );
    let got = fifo.lines();
    // keepalived's lines, in order; a master hears a lower priority once per advert of it.
    let states: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|l| !l.contains("MASTER_RX_LOWER_PRI"))
        .collect();
    assert_eq!(
        states,
        [
            "INSTANCE \"VI_1\" BACKUP 150",
            "INSTANCE \"VI_1\" MASTER 150",
            "INSTANCE \"VI_1\" MASTER_PRIORITY 90",
            "INSTANCE \"VI_1\" BACKUP 90",
            "INSTANCE \"VI_1\" BACKUP_PRIORITY 150",
            "INSTANCE \"VI_1\" MASTER 150",
            "INSTANCE \"VI_1\" STOP 150",
        ],
        "log:\n{}",
        a1.log()
    );
    let second_master = got
        .iter()
        .rposition(|l| l == "INSTANCE \"VI_1\" MASTER 150")
        .unwrap();
    assert!(
        got[second_master..]
            .iter()
            .any(|l| l == "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150"),
        "{got:?}"
    );
    // The FIFO script heard the same lines through the agent's own FIFO.
    let want = fifo.text.clone();
    wait_for(
        "the FIFO script to read STOP",
        Duration::from_secs(10),
        || Ok(std::fs::read_to_string(&copy).unwrap_or_default() == want),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: the script read {:?}, the test {want:?}",
            std::fs::read_to_string(&copy).unwrap_or_default()
        )
    });
    assert!(
        !agent_fifo.exists(),
        "the FIFO the agent created outlived it"
    );
    assert!(user_fifo.exists(), "the user's own FIFO was removed");
}

fn instance(name: &str, vrid: u8, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    version 3\n    \
         priority 150\n    advert_int 0.05\n{extra}    virtual_ipaddress {{\n        \
         192.0.2.{vrid}/24\n    }}\n}}\n"
    )
}

/// A reload that removes two instances: the one with `notify_deleted SCRIPT` reports DELETED
/// and runs its script (no arguments), the one without reports FAULT, as keepalived; with
/// `fifo_write_vrrp_states_on_reload` the kept instance's state is written again. The lines
/// written before any reader opened the FIFO wait for it; the FIFO the agent creates belongs
/// to the user `notify_fifo` names. At exit, `notify_stop` runs.
#[test]
fn a_reload_reports_deleted_instances_and_rewrites_the_kept_states() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("nfifodel", 1).expect("lab");
    let fifo_path = lab.dir.join("notify.fifo");
    let (deleted, stopped) = (lab.dir.join("deleted.txt"), lab.dir.join("stopped.txt"));
    let deleted_sh = executable(
        &lab,
        "deleted.sh",
        &format!("#!/bin/sh\necho \"deleted $#\" >> {}\n", deleted.display()),
    );
    let stop_sh = executable(
        &lab,
        "stop.sh",
        &format!("#!/bin/sh\necho stopped >> {}\n", stopped.display()),
    );
    let global = format!(
        "global_defs {{\n    notify_fifo {} nobody\n    fifo_write_vrrp_states_on_reload\n}}\n",
        fifo_path.display()
    );
    let keep = instance("KEEP", 61, &format!("    notify_stop {stop_sh}\n"));
    let first = format!(
        "{global}{keep}{}{}",
        instance("GONE", 62, &format!("    notify_deleted {deleted_sh}\n")),
        instance("OLD", 63, ""),
    );
    let mut agent = lab.ha_agent(1, &first, &[]).unwrap();
    lab.wait_agent_ready(1, &mut agent, READY).unwrap();
    // Opened only now: what was written before waits in the pipe (the agent holds it O_RDWR).
    let mut fifo = Reader::open(&fifo_path);
    // `notify_fifo PATH USER`: the FIFO it creates is the user's (keepalived chowns it).
    let nobody = ha_tests::run(std::process::Command::new("id").args(["-u", "nobody"])).unwrap();
    let meta = std::fs::metadata(&fifo_path).unwrap();
    assert_eq!(meta.uid().to_string(), nobody.trim(), "owner of the FIFO");
    for name in ["KEEP", "GONE", "OLD"] {
        fifo.wait_line(&format!("INSTANCE \"{name}\" MASTER 150"), &agent);
    }
    let before = fifo.lines().len();

    std::fs::write(lab.dir.join("ha-agent-n1.conf"), format!("{global}{keep}")).unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload done", Duration::from_secs(10))
        .unwrap();
    fifo.wait_line("INSTANCE \"KEEP\" MASTER 150", &agent);
    wait_for("the reload's lines", Duration::from_secs(10), || {
        Ok(fifo.lines().len() >= before + 3)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", fifo.text));
    assert_eq!(
        fifo.lines()[before..],
        [
            "INSTANCE \"GONE\" DELETED 150",
            "INSTANCE \"OLD\" FAULT 150",
            "INSTANCE \"KEEP\" MASTER 150",
        ],
        "log:\n{}",
        agent.log()
    );
    wait_for("the notify_deleted script", Duration::from_secs(10), || {
        Ok(std::fs::read_to_string(&deleted).is_ok_and(|s| s == "deleted 0\n"))
    })
    .unwrap();

    agent.signal(libc::SIGTERM).unwrap();
    assert!(
        agent
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .is_some()
    );
    assert_eq!(fifo.lines().last().unwrap(), "INSTANCE \"KEEP\" STOP 150");
    wait_for("notify_stop", Duration::from_secs(10), || {
        Ok(stopped.exists())
    })
    .unwrap();
    assert!(
        !fifo_path.exists(),
        "the FIFO the agent created outlived it"
    );
}

/// keepalived is the spec: the same sync group configuration, run by keepalived and then by
/// ha-agent on node 1, writes the same lines to the FIFO (the group's BACKUP before its
/// members' at start, the members' MASTER then the group's, STOP for each, then the group's).
#[test]
fn a_sync_group_writes_the_lines_keepalived_writes() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("nfifoka", 1).expect("lab");
    let member = |name: &str, vrid: u8, priority: u8| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    \
             version 3\n    priority {priority}\n    advert_int 0.05\n    virtual_ipaddress {{\n        \
             192.0.2.{vrid}/24\n    }}\n}}\n"
        )
    };
    let run = |who: &str| -> Vec<String> {
        let path = lab.dir.join(format!("{who}.fifo"));
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo(3) reads the NUL-terminated path, alive across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let conf = format!(
            "global_defs {{\n    vrrp_notify_fifo {}\n}}\n\
             vrrp_sync_group G {{\n    group {{\n        A\n        B\n    }}\n}}\n{}{}",
            path.display(),
            member("A", 71, 200),
            member("B", 72, 150),
        );
        let mut fifo = Reader::open(&path);
        let mut daemon = if who == "keepalived" {
            lab.keepalived(1, &conf).unwrap()
        } else {
            let mut a = lab.ha_agent(1, &conf, &[]).unwrap();
            lab.wait_agent_ready(1, &mut a, READY).unwrap();
            a
        };
        fifo.wait_line("GROUP \"G\" MASTER 0", &daemon);
        daemon.signal(libc::SIGTERM).unwrap();
        assert!(
            daemon
                .wait_timeout(Duration::from_secs(10))
                .unwrap()
                .is_some(),
            "{who} did not exit"
        );
        fifo.wait_line("GROUP \"G\" STOP 0", &daemon);
        fifo.lines()
    };
    let keepalived = run("keepalived");
    assert_eq!(
        keepalived.first().map(String::as_str),
        Some("GROUP \"G\" BACKUP 0"),
        "{keepalived:?}"
    );
    assert_eq!(run("ha-agent"), keepalived);
}
