//! keepalived.conf reader: a corpus of good configurations with their parsed values, a corpus of
//! broken ones with the exact `file:line:col` of each error, and arbitrary input that must never
//! panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ha_agent::config::{self, ConfigError, Family, Loaded, State, Tracker, Version, Warning};
use proptest::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/config")
        .join(rel)
}

fn load_ok(rel: &str) -> Loaded {
    match config::load(&fixture(rel)) {
        Ok(l) => l,
        Err(e) => panic!("{rel} should load, got:\n{e}"),
    }
}

fn load_err(rel: &str) -> ConfigError {
    match config::load(&fixture(rel)) {
        Ok(l) => panic!("{rel} should be rejected, got {:#?}", l.config),
        Err(e) => e,
    }
}

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    config::parse_str(text, Path::new("/nonexistent/keepalived.conf"))
}

fn parse_ok(text: &str) -> Loaded {
    parse(text).unwrap_or_else(|e| panic!("should parse, got:\n{e}"))
}

/// Asserts an error at `file:line:col` (file given relative to the fixtures) whose message
/// contains `fragment`, and that Display renders it as `file:line:col: message`.
fn assert_error(err: &ConfigError, rel: &str, line: u32, col: u32, fragment: &str) {
    let file = fixture(rel);
    let found = err
        .errors
        .iter()
        .find(|e| e.file == file && e.line == line && e.col == col && e.message.contains(fragment));
    assert!(
        found.is_some(),
        "no error at {rel}:{line}:{col} containing {fragment:?}; errors:\n{err}"
    );
    let rendered = format!("{}:{line}:{col}: ", file.display());
    assert!(
        err.to_string()
            .lines()
            .any(|l| l.starts_with(&rendered) && l.contains(fragment)),
        "Display lacks {rendered}…{fragment}:\n{err}"
    );
}

fn has_warning(warnings: &[Warning], line: u32, fragment: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.line == line && w.message.contains(fragment))
}

fn assert_warning(warnings: &[Warning], line: u32, fragment: &str) {
    assert!(
        has_warning(warnings, line, fragment),
        "no warning at line {line} containing {fragment:?}; warnings:\n{}",
        warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn tracker(name: &str, weight: i32, reverse: bool) -> Tracker {
    Tracker {
        name: name.into(),
        weight,
        reverse,
    }
}

// ---------------------------------------------------------------------------------------------
// Good configurations
// ---------------------------------------------------------------------------------------------

#[test]
fn classic_master() {
    let Loaded {
        config, warnings, ..
    } = load_ok("good/master.conf");
    assert_eq!(config.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert!(config.global.vrrp_skip_check_adv_addr);
    assert_eq!(config.global.vrrp_garp_interval, Duration::ZERO);
    assert_eq!(
        config.global.email.notification_email,
        ["acassen@firewall.loc", "failover@firewall.loc"]
    );
    // Email keys are parsed and reported as not used, each at its line.
    assert_warning(&warnings, 4, "notification_email: parsed but not used");
    assert_warning(&warnings, 10, "smtp_connect_timeout: parsed but not used");

    let s = config.script("chk_haproxy").unwrap();
    assert_eq!(s.command, ["/usr/bin/killall", "-0", "haproxy"]);
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(
        s.timeout,
        Duration::from_secs(2),
        "timeout 0 means the interval"
    );
    assert_eq!((s.weight, s.rise, s.fall), (2, 1, 1));

    let i = config.instance("VI_1").unwrap();
    assert_eq!(i.state, State::Master);
    assert_eq!(i.interface.as_deref(), Some("eth0"));
    assert_eq!((i.vrid, i.priority, i.version), (51, 150, Version::V2));
    assert_eq!(i.family, Family::Ipv4);
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.authentication.as_ref().unwrap().pass, b"1111");
    assert_eq!(i.mcast_group, Some(v4("224.0.0.18")));
    assert_eq!(i.garp_master_delay, Duration::from_secs(5));
    assert_eq!(i.garp_master_repeat, 5);
    assert!(i.accept);
    assert!(
        i.skip_check_adv_addr,
        "inherited from vrrp_skip_check_adv_addr"
    );

    let vips = &i.virtual_ipaddress;
    assert_eq!(vips.len(), 3);
    assert_eq!(
        (vips[0].addr, vips[0].prefix_len),
        (v4("192.168.200.16"), 32)
    );
    assert_eq!(vips[1].dev.as_deref(), Some("eth0"));
    assert_eq!(vips[1].label.as_deref(), Some("eth0:vip"));
    assert_eq!(vips[2].broadcast, Some("192.168.200.255".parse().unwrap()));
    assert_eq!(vips[2].scope, Some(0));
    assert_eq!(i.track_scripts, [tracker("chk_haproxy", 2, false)]);

    let master = i.notify.master.as_ref().unwrap();
    assert_eq!(master.command, ["/etc/keepalived/notify.sh", "master"]);
    let notify = i.notify.notify.as_ref().unwrap();
    assert_eq!(notify.command, ["/etc/keepalived/notify.sh"]);
    assert_eq!(notify.user.as_ref().unwrap().user, "root");

    let text = config::summary(&config);
    assert!(text.contains("vrrp_instance VI_1"), "{text}");
    assert!(
        text.contains(
            "interface eth0, VRID 51, IPv4, VRRPv2, priority 150, advert_int 1s, state MASTER"
        ),
        "{text}"
    );
    assert!(
        text.contains("VIP 192.168.200.17/24 dev eth0 label eth0:vip"),
        "{text}"
    );
    assert!(text.contains("track_script chk_haproxy weight 2"), "{text}");
}

#[test]
fn classic_backup_defaults() {
    let Loaded {
        config, warnings, ..
    } = load_ok("good/backup.conf");
    let i = config.instance("VI_1").unwrap();
    assert_eq!(i.state, State::Backup);
    assert_eq!(i.priority, 100, "keepalived's VRRP_PRIO_DFL");
    assert!(!i.preempt);
    assert_eq!(i.garp_master_delay, Duration::from_secs(10));
    assert_eq!(i.garp_master_repeat, 3);
    assert_eq!(i.garp_master_refresh, Duration::ZERO);
    assert_eq!(i.garp_master_refresh_repeat, 1);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn dual_master() {
    let config = load_ok("good/dual_master.conf").config;
    assert_eq!(config.instances.len(), 2);
    let a = config.instance("VI_A").unwrap();
    let b = config.instance("VI_B").unwrap();
    assert_eq!((a.vrid, a.priority, a.state), (61, 200, State::Master));
    assert_eq!((b.vrid, b.priority, b.state), (62, 100, State::Backup));
    assert_eq!(a.virtual_ipaddress[0].prefix_len, 24);
}

#[test]
fn unicast() {
    let config = load_ok("good/unicast.conf").config;
    let i = config.instance("VI_U").unwrap();
    assert!(i.is_unicast());
    assert_eq!(i.mcast_group, None);
    assert_eq!(i.src_ip, Some(v4("10.1.0.1")));
    assert_eq!(i.unicast_peers.len(), 2);
    assert_eq!(
        (
            i.unicast_peers[1].addr,
            i.unicast_peers[1].min_ttl,
            i.unicast_peers[1].max_ttl
        ),
        (v4("10.1.0.3"), 250, 255)
    );
    assert!(i.check_unicast_src, "a TTL range turns source checking on");
    assert_eq!(i.unicast_ttl, None, "unset: 255 on the wire");
    assert_eq!(i.state, State::Backup, "no state and priority 120: BACKUP");
    assert_eq!(i.advert_int, Duration::from_secs(2));
    // Excluded VIPs may be of the other family.
    assert_eq!(i.virtual_ipaddress_excluded[0].addr, v6("2001:db8::100"));
    assert_eq!(i.virtual_routes.len(), 2);
    assert_eq!(
        (i.virtual_routes[0].dst, i.virtual_routes[0].dst_len),
        (v4("10.2.0.0"), 16)
    );
    assert_eq!(i.virtual_routes[0].via, Some(v4("10.1.0.254")));
    assert_eq!(i.virtual_routes[0].dev.as_deref(), Some("ens3"));
    assert_eq!(
        (i.virtual_routes[1].dst, i.virtual_routes[1].dst_len),
        (v4("0.0.0.0"), 0)
    );
    assert_eq!(i.virtual_routes[1].table, 100);
    assert_eq!(i.virtual_routes[1].metric, Some(10));
    let text = config::summary(&config);
    assert!(
        text.contains("unicast from 10.1.0.1 to 10.1.0.2, 10.1.0.3 (TTL 250-255)"),
        "{text}"
    );
}

#[test]
fn ipv6_defaults_to_v3_with_centisecond_adverts() {
    let Loaded {
        config, warnings, ..
    } = load_ok("good/ipv6.conf");
    let i = config.instance("VI_6").unwrap();
    assert_eq!(i.family, Family::Ipv6);
    assert_eq!(i.version, Version::V3, "IPv6 instances are VRRPv3");
    assert_eq!(i.advert_int, Duration::from_millis(500));
    assert_eq!(i.mcast_group, Some(v6("ff02::12")));
    assert_eq!(i.virtual_ipaddress[0].addr, v6("fe80::7"));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn sync_group() {
    let Loaded {
        config, warnings, ..
    } = load_ok("good/sync_group.conf");
    let g = &config.sync_groups[0];
    assert_eq!(g.name, "VG_1");
    assert_eq!(g.members, ["VI_EXT", "VI_INT"]);
    assert_eq!(
        g.notify.master.as_ref().unwrap().command,
        ["/usr/local/bin/failover.sh", "master"]
    );
    assert_eq!(config.sync_group_of("VI_INT").unwrap().name, "VG_1");
    // A member of a sync group without sync_group_tracking_weight loses tracker weights.
    let ext = config.instance("VI_EXT").unwrap();
    assert_eq!(ext.track_interfaces, [tracker("eth2", 0, false)]);
    assert_warning(&warnings, 20, "weight of track_interface eth2 ignored");
}

#[test]
fn scripts_defined_after_use_and_track_files() {
    let Loaded { config, .. } = load_ok("good/scripts.conf");
    assert_eq!(config.global.vrrp_version, Version::V3);
    assert_eq!(
        config.global.script_user.as_ref().unwrap().user,
        "keepalived_script"
    );
    assert!(config.global.enable_script_security);

    let app = config.script("chk_app").unwrap();
    assert_eq!(
        app.command,
        ["/usr/local/bin/check", "app server", "--fast"]
    );
    assert_eq!(app.interval, Duration::from_millis(1500));
    assert_eq!(app.timeout, Duration::from_secs(3));
    assert_eq!((app.rise, app.fall), (2, 3));
    let user = app.user.as_ref().unwrap();
    assert_eq!(
        (user.user.as_str(), user.group.as_deref()),
        ("nobody", Some("nogroup"))
    );
    let db = config.script("chk_db").unwrap();
    assert_eq!(
        (db.weight, db.weight_reverse, db.init_fail),
        (15, true, true)
    );

    let tf = config.track_file("maint").unwrap();
    assert_eq!(tf.file, Path::new("/var/run/keepalived/maint"));
    assert_eq!(tf.weight, -10);
    let init = tf.init_file.unwrap();
    assert_eq!((init.value, init.overwrite), (0, true));

    let i = config.instance("VI_S").unwrap();
    assert_eq!(i.version, Version::V3, "from global vrrp_version");
    assert_eq!(i.advert_int, Duration::from_millis(250));
    // Reference weights override the script's; without one, the script's own applies.
    assert_eq!(
        i.track_scripts,
        [tracker("chk_app", -30, false), tracker("chk_db", 15, true)]
    );
    assert_eq!(i.track_files, [tracker("maint", -10, false)]);
    assert_eq!(
        i.track_interfaces,
        [tracker("eth1", 0, false), tracker("eth2", 10, true)]
    );
}

#[test]
fn includes_with_globs_braces_and_relative_paths() {
    let options = config::ReadOptions {
        allow_unsupported: true,
        ..Default::default()
    };
    let Loaded {
        config, warnings, ..
    } = config::load_with(&fixture("includes/keepalived.conf"), &options).unwrap();
    assert_eq!(config.global.router_id.as_deref(), Some("inc"));
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_WEB", "VI_DB"], "glob matches in sorted order");
    // VI_WEB's track_script names a script from a file included later.
    assert_eq!(
        config.instance("VI_WEB").unwrap().track_scripts[0].name,
        "chk_web"
    );
    // conf.d/20-db.conf includes ../shared/group.conf relative to its own directory.
    assert_eq!(config.sync_groups[0].members, ["VI_WEB", "VI_DB"]);
    // The LVS service in shared/extra.conf (on VI_WEB's VIP) has a keyword ha-agent refuses,
    // reported at its file and line; --allow-unsupported skips it with one warning there.
    assert_error(
        &load_err("includes/keepalived.conf"),
        "includes/shared/extra.conf",
        7,
        9,
        "uthreshold: not supported by ha-agent",
    );
    let vs: Vec<&Warning> = warnings
        .iter()
        .filter(|w| w.message.contains("uthreshold"))
        .collect();
    assert_eq!(vs.len(), 1, "{warnings:?}");
    assert_eq!(vs[0].file, fixture("includes/shared/extra.conf"));
    assert_eq!((vs[0].line, vs[0].col), (7, 9));
    assert!(vs[0].message.contains("not supported"));
    assert_eq!(
        config.lvs.virtual_servers[0].at.file,
        fixture("includes/shared/extra.conf")
    );
    // Instance sources name the included file.
    assert_eq!(
        config.instance("VI_DB").unwrap().source.file,
        fixture("includes/conf.d/20-db.conf")
    );
}

/// keepalived's configuration language: `@ID` lines chosen by the configuration id, `$NAME=`
/// definitions (multi-line, used in an included file too), `~SEQ` and `~SEQx`, with every
/// position still in the file's text.
#[test]
fn conditional_lines_definitions_and_sequences() {
    let read = |id: &str| {
        let options = config::ReadOptions {
            config_id: Some(id.to_string()),
            ..Default::default()
        };
        config::load_with(&fixture("good/language.conf"), &options)
            .unwrap_or_else(|e| panic!("-i {id}: {e}"))
    };
    let node1 = read("node1");
    assert!(node1.warnings.is_empty(), "{:?}", node1.warnings);
    let c = &node1.config;
    assert_eq!(c.global.router_id.as_deref(), Some("first"));
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "VI_2", "VI_3", "VI_X"]);
    for (n, i) in c.instances.iter().take(3).enumerate() {
        let n = n as u8 + 1;
        assert_eq!((i.vrid, i.priority), (n, 150), "{}", i.name);
        assert_eq!(i.interface.as_deref(), Some("eth0"));
        let vips: Vec<IpAddr> = i.virtual_ipaddress.iter().map(|v| v.addr).collect();
        assert_eq!(
            vips,
            [v4(&format!("10.0.{n}.1")), v4(&format!("10.0.{n}.2"))],
            "{}",
            i.name
        );
        // Lines made from the multi-line definition are at its use: `$INSTANCE`, line 21.
        assert_eq!((i.source.line, i.source.col), (21, 12), "{}", i.name);
    }
    let x = c.instance("VI_X").unwrap();
    assert_eq!(x.priority, 150);
    assert_eq!(
        x.virtual_ipaddress
            .iter()
            .map(|v| v.addr)
            .collect::<Vec<_>>(),
        [v6("fe80::a"), v6("fe80::b"), v6("fe80::c"), v6("fe80::d")]
    );
    assert_eq!(x.source.file, fixture("good/language.d/extra.conf"));

    let other = read("node2").config;
    assert_eq!(other.global.router_id.as_deref(), Some("other"));
    assert!(other.instances.iter().all(|i| i.priority == 100));
}

/// As keepalived (lib/parser.c check_glob_file), an include skips an executable file with a
/// warning.
#[test]
fn include_skips_executable_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("ha-agent-include-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("keepalived.conf");
    std::fs::write(&main, "include *.inc\n").unwrap();
    std::fs::write(dir.join("a.inc"), "global_defs {\n router_id a\n}\n").unwrap();
    let exec = dir.join("b.inc");
    std::fs::write(&exec, "global_defs {\n router_id b\n}\n").unwrap();
    std::fs::set_permissions(&exec, std::fs::Permissions::from_mode(0o755)).unwrap();
    let loaded = config::load(&main);
    std::fs::remove_dir_all(&dir).unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(loaded.config.global.router_id.as_deref(), Some("a"));
    assert_warning(
        &loaded.warnings,
        1,
        "b.inc is not a regular non-executable file - skipping",
    );
}

/// keepalived accepts the same VIP twice: a warning, and the address once.
#[test]
fn duplicate_vip_is_added_once_with_a_warning() {
    let l = parse_ok(
        "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1/24\n  10.0.0.2\n  10.0.0.1/24\n }\n virtual_ipaddress_excluded {\n  10.0.0.2\n  10.0.0.3\n  10.0.0.3\n }\n}\n",
    );
    let i = &l.config.instances[0];
    let vips: Vec<IpAddr> = i.virtual_ipaddress.iter().map(|v| v.addr).collect();
    assert_eq!(vips, [v4("10.0.0.1"), v4("10.0.0.2")]);
    let evips: Vec<IpAddr> = i
        .virtual_ipaddress_excluded
        .iter()
        .map(|v| v.addr)
        .collect();
    assert_eq!(evips, [v4("10.0.0.3")]);
    assert_warning(
        &l.warnings,
        7,
        "virtual_ipaddress: 10.0.0.1 is already listed at line 5: added once",
    );
    assert_warning(
        &l.warnings,
        10,
        "virtual_ipaddress_excluded: 10.0.0.2 is already listed at line 6",
    );
    assert_warning(
        &l.warnings,
        12,
        "virtual_ipaddress_excluded: 10.0.0.3 is already listed at line 11",
    );
}

/// `${_PWD}` is the directory of the file being read, `${_INSTANCE}` the configuration id.
#[test]
fn predefined_definitions() {
    let dir = std::env::temp_dir().join(format!("ha-agent-pwd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let main = dir.join("keepalived.conf");
    std::fs::write(&main, "include sub/*.conf\n").unwrap();
    std::fs::write(
        dir.join("sub/a.conf"),
        "global_defs {\n router_id ${_INSTANCE}:${_PWD}\n}\n",
    )
    .unwrap();
    let options = config::ReadOptions {
        config_id: Some("n7".into()),
        ..Default::default()
    };
    let loaded = config::load_with(&main, &options);
    let sub = std::fs::canonicalize(dir.join("sub")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        loaded.unwrap().config.global.router_id,
        Some(format!("n7:{}", sub.display()))
    );
}

#[test]
fn include_matching_nothing_is_a_warning() {
    let loaded = parse_ok("include /nonexistent/dir/*.conf\n");
    assert_warning(&loaded.warnings, 1, "no configuration file matches");
}

// ---------------------------------------------------------------------------------------------
// keepalived's defaults and fix-ups
// ---------------------------------------------------------------------------------------------

const MIN: &str = "interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n";

fn instance(body: &str) -> String {
    format!("vrrp_instance VI {{\n {MIN} {body}\n}}\n")
}

#[test]
fn priority_and_state_derive_from_each_other() {
    let c = parse_ok(&instance("")).config;
    let i = &c.instances[0];
    assert_eq!(
        (i.state, i.priority, i.version),
        (State::Backup, 100, Version::V2)
    );
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert!(i.preempt && i.accept && !i.strict_mode);
    // vrrp_complete_instance: state MASTER without priority is the address owner.
    let c = parse_ok(&instance("state MASTER")).config;
    assert_eq!(c.instances[0].priority, 255);
    let c = parse_ok(&instance("priority 255")).config;
    assert_eq!(c.instances[0].state, State::Master);
}

#[test]
fn priority_255_with_state_backup_warns() {
    let l = parse_ok(&instance("priority 255\n state BACKUP"));
    assert_eq!(l.config.instances[0].state, State::Backup);
    assert_warning(&l.warnings, 6, "state BACKUP with priority 255");
}

#[test]
fn auth_pass_longer_than_8_is_truncated() {
    let l = parse_ok(&instance(
        "authentication {\n auth_type PASS\n auth_pass 0123456789\n }",
    ));
    let auth = l.config.instances[0].authentication.as_ref().unwrap();
    assert_eq!(auth.pass, b"01234567");
    let w = l
        .warnings
        .iter()
        .find(|w| w.message.contains("auth_pass"))
        .unwrap();
    assert_eq!((w.line, w.col), (7, 12));
    assert!(w.message.contains("truncated to \"01234567\""));
}

#[test]
fn authentication_is_ignored_with_v3() {
    let l = parse_ok(&instance(
        "version 3\n authentication {\n auth_type PASS\n auth_pass x\n }",
    ));
    assert!(l.config.instances[0].authentication.is_none());
    assert_warning(
        &l.warnings,
        7,
        "VRRP version 3 does not support authentication",
    );
}

#[test]
fn mixed_families_drop_the_odd_vip_with_a_warning() {
    let l = parse_ok(
        "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n 2001:db8::1\n 10.0.0.2\n }\n}\n",
    );
    let i = &l.config.instances[0];
    let addrs: Vec<IpAddr> = i.virtual_ipaddress.iter().map(|v| v.addr).collect();
    assert_eq!(addrs, [v4("10.0.0.1"), v4("10.0.0.2")]);
    assert!(i.virtual_ipaddress_excluded.is_empty());
    assert_warning(
        &l.warnings,
        6,
        "2001:db8::1 is IPv6 but the instance is IPv4",
    );
}

/// A warning at exactly `line:col` containing `fragment`.
fn assert_warning_at(warnings: &[Warning], line: u32, col: u32, fragment: &str) {
    assert!(
        warnings
            .iter()
            .any(|w| w.line == line && w.col == col && w.message.contains(fragment)),
        "no warning at {line}:{col} containing {fragment:?}; warnings:\n{}",
        warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn vip_options_keepalived_ignores_warn_where_written() {
    let l = parse_ok(
        "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n \
         10.0.0.9 min_ttl 250 max_ttl 255\n }\n virtual_ipaddress {\n \
         10.0.0.1 preferred_lft 0 home noprefixroute -nodad mngtmpaddr autojoin\n \
         10.0.0.2/24 peer 10.0.0.3\n }\n}\n",
    );
    let w = &l.warnings;
    assert_warning_at(w, 8, 11, "preferred_lft on IPv4 address 10.0.0.1 ignored");
    assert_warning_at(w, 8, 27, "home is an IPv6 option: ignored");
    assert_warning_at(w, 8, 46, "-nodad is an IPv6 option: ignored");
    assert_warning_at(w, 8, 53, "mngtmpaddr is an IPv6 option: ignored");
    assert_warning_at(
        w,
        9,
        14,
        "prefix /24 ignored: with a peer the prefix is the peer's",
    );
    assert_eq!(
        w.len(),
        5,
        "{w:?}: min_ttl/max_ttl are enforced, no warning"
    );
    let i = &l.config.instances[0];
    assert!(
        i.check_unicast_src,
        "the source is checked, with its TTL range"
    );
    let v = &i.virtual_ipaddress;
    assert_eq!(v[0].flags, ["noprefixroute", "autojoin"]);
    assert_eq!(v[0].preferred_lft, None);
    assert_eq!(
        (v[1].peer, v[1].prefix_len),
        (Some(v4("10.0.0.3")), 32),
        "the peer's prefix"
    );
}

#[test]
fn ipv6_vip_options_are_kept_without_warnings() {
    let l = parse_ok(
        "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n \
         2001:db8::1/64 preferred_lft 0 -nodad mngtmpaddr home noprefixroute no_track dev eth1\n \
         2001:db8::2 peer 2001:db8::3/128 preferred_lft forever\n 2001:db8::4\n }\n}\n",
    );
    // Only RFC 5798's wish for a link-local first VIP.
    assert!(
        l.warnings.iter().all(|w| w.message.contains("link-local")),
        "{:?}",
        l.warnings
    );
    let v = &l.config.instances[0].virtual_ipaddress;
    assert_eq!(
        v[0].flags,
        ["-nodad", "mngtmpaddr", "home", "noprefixroute"]
    );
    assert_eq!((v[0].preferred_lft, v[0].no_track), (Some(0), true));
    assert_eq!(v[1].peer, Some(v6("2001:db8::3")));
    assert_eq!(v[1].preferred_lft, Some(u32::MAX));
    // Unset: the plan applies keepalived's default (0 for a /128) when it places the VIP.
    assert_eq!(v[2].preferred_lft, None);
}

#[test]
fn v2_fractional_advert_int_is_rounded_with_a_warning() {
    let l = parse_ok(&instance("advert_int 1.5"));
    assert_eq!(l.config.instances[0].advert_int, Duration::from_secs(2));
    assert_warning(
        &l.warnings,
        5,
        "VRRPv2 advertises whole seconds, rounded to 2",
    );
    let l = parse_ok(&instance("advert_int 0.3"));
    assert_eq!(l.config.instances[0].advert_int, Duration::from_secs(1));
}

#[test]
fn v3_advert_int_finer_than_centiseconds_is_rounded_with_a_warning() {
    let l = parse_ok(&instance("version 3\n advert_int 0.015"));
    assert_eq!(l.config.instances[0].advert_int, Duration::from_millis(20));
    assert_warning(
        &l.warnings,
        6,
        "VRRPv3 advertises centiseconds, rounded to 0.02",
    );
    let l = parse_ok(&instance("version 3\n advert_int 0.01"));
    assert_eq!(l.config.instances[0].advert_int, Duration::from_millis(10));
    assert!(l.warnings.is_empty());
}

#[test]
fn nopreempt_with_state_master_is_cleared() {
    let l = parse_ok(&instance("state MASTER\n priority 200\n nopreempt"));
    assert!(l.config.instances[0].preempt);
    assert_warning(&l.warnings, 7, "nopreempt does not work with state MASTER");
}

#[test]
fn global_defaults_flow_into_instances() {
    let l = parse_ok(&format!(
        "global_defs {{\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 0\n vrrp_mcast_group4 224.0.0.19\n vrrp_strict\n }}\n{}",
        instance("priority 255")
    ));
    let i = &l.config.instances[0];
    assert_eq!(i.garp_master_delay, Duration::from_secs(2));
    assert_eq!(i.garp_master_repeat, 1, "0 repeats become 1, as keepalived");
    assert_eq!(i.mcast_group, Some(v4("224.0.0.19")));
    assert!(i.strict_mode);
    assert_warning(&l.warnings, 3, "must be greater than 0");
}

#[test]
fn owner_drops_weighted_trackers() {
    let l = parse_ok(&format!(
        "vrrp_script s {{\n script \"/bin/true\"\n weight 10\n}}\n{}",
        instance("priority 255\n track_script {\n s\n }")
    ));
    assert!(l.config.instances[0].track_scripts.is_empty());
    assert_warning(&l.warnings, 11, "weighted track_script s ignored");
}

/// A keyword that changes failover behaviour is refused at its line, naming the flag that runs
/// anyway; one for what ha-agent replaces (email) is a warning. With --allow-unsupported all are
/// warnings, once each, at their position, and the summary counts them.
#[test]
fn unsupported_keywords_are_refused_unless_allowed() {
    let text = format!(
        "{}virtual_server 10.0.0.1 80 {{\n lb_kind DR\n real_server 10.0.0.2 80 {{\n uthreshold 1 }}\n}}\nbfd_instance b {{\n neighbor_ip 10.0.0.3\n}}\n",
        instance("track_bfd\n smtp_alert")
    );
    let e = parse(&text).unwrap_err();
    let refused: Vec<(u32, u32)> = e
        .errors
        .iter()
        .filter(|e| e.message.contains("--allow-unsupported"))
        .map(|e| (e.line, e.col))
        .collect();
    assert_eq!(refused, [(5, 2), (11, 2), (13, 1)], "{e}");
    assert!(
        e.errors[0]
            .message
            .starts_with("track_bfd: not supported by ha-agent"),
        "cause first: {e}"
    );

    let options = config::ReadOptions {
        allow_unsupported: true,
        ..Default::default()
    };
    let l = config::parse_str_with(&text, Path::new("/nonexistent/keepalived.conf"), &options)
        .unwrap_or_else(|e| panic!("should parse with --allow-unsupported, got:\n{e}"));
    let ignored: Vec<(u32, u32)> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("not supported") || w.message.contains("not used"))
        .map(|w| (w.line, w.col))
        .collect();
    assert_eq!(ignored, [(5, 2), (6, 2), (11, 2), (13, 1)]);
    let line = config::ignored_line(&l.ignored);
    assert!(
        line.starts_with("ignored: 4 keywords: 3 that change failover")
            && line.contains("bfd_instance, track_bfd, uthreshold")
            && line.contains("1 that only configure what ha-agent replaces (smtp_alert)"),
        "{line}"
    );
}

#[test]
fn typo_suggests_the_nearest_keyword() {
    let e = parse(&instance("virtual_routr_id 9")).unwrap_err();
    assert!(
        e.errors.iter().any(|d| d.line == 5
            && d.message
                == "unknown keyword \"virtual_routr_id\" (in vrrp_instance VI): did you mean `virtual_router_id`?"),
        "{e}"
    );
}

#[test]
fn script_words_outside_the_quotes_are_dropped_as_keepalived_does() {
    let l = parse_ok("vrrp_script s {\n script /bin/check arg\n}\n");
    assert_eq!(l.config.scripts[0].command, ["/bin/check"]);
    assert_warning(&l.warnings, 2, "words after the command are ignored");
}

#[test]
fn comments_after_values_and_inline_blocks() {
    let l = parse_ok(
        "vrrp_instance VI { interface eth0 # the LAN\n virtual_router_id 9 ! nine\n priority 50#low\n virtual_ipaddress { 10.0.0.9/24 dev eth0 } }\n",
    );
    let i = &l.config.instances[0];
    assert_eq!((i.vrid, i.priority), (9, 50));
    assert_eq!(i.virtual_ipaddress[0].prefix_len, 24);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn block_brace_on_next_line() {
    let l = parse_ok(
        "vrrp_instance VI\n{\n interface eth0\n virtual_router_id 3\n virtual_ipaddress\n {\n 10.0.0.3\n }\n}\n",
    );
    assert_eq!(l.config.instances[0].virtual_ipaddress.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Broken configurations: exact file:line:col and message
// ---------------------------------------------------------------------------------------------

#[test]
fn vrid_out_of_range() {
    let e = load_err("broken/vrid_out_of_range.conf");
    assert_error(
        &e,
        "broken/vrid_out_of_range.conf",
        3,
        23,
        "virtual_router_id: expected an integer 1-255, found \"300\"",
    );
    assert_eq!(e.errors.len(), 1, "no cascade of follow-on errors: {e}");
}

/// keepalived's LVS half where the XDP balancer cannot follow: a fwmark service, keepalived's NAT
/// default, a service on an address no vrrp_instance carries; each at its place with the fix.
#[test]
fn lvs_services_ha_agent_cannot_serve() {
    let e = load_err("broken/lvs_refused.conf");
    let f = "broken/lvs_refused.conf";
    assert_error(
        &e,
        f,
        10,
        16,
        "write one `virtual_server IP PORT` per address and port",
    );
    assert_error(&e, f, 15, 1, "no lb_kind, and keepalived's default is NAT");
    assert_error(&e, f, 15, 1, "add `lb_kind DR` (or `lb_kind TUN`)");
    assert_error(
        &e,
        f,
        20,
        1,
        "10.0.0.200 is not a virtual_ipaddress of any vrrp_instance: ha-agent serves a service \
         only on the node that is master of its address",
    );
    assert_eq!(e.errors.len(), 3, "no cascade of follow-on errors: {e}");
}

#[test]
fn unknown_keyword() {
    let e = load_err("broken/unknown_keyword.conf");
    assert_error(
        &e,
        "broken/unknown_keyword.conf",
        4,
        5,
        "unknown keyword \"priorty\"",
    );
}

#[test]
fn track_script_naming_an_undefined_script() {
    let e = load_err("broken/undefined_script.conf");
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_error(
        &e,
        "broken/undefined_script.conf",
        12,
        9,
        "no vrrp_script named \"chk_typo\"",
    );
}

#[test]
fn sync_group_naming_an_unknown_instance() {
    let e = load_err("broken/sync_unknown_instance.conf");
    assert_error(
        &e,
        "broken/sync_unknown_instance.conf",
        4,
        9,
        "no vrrp_instance named \"VI_2\"",
    );
}

#[test]
fn duplicate_vrid_on_one_interface() {
    let e = load_err("broken/duplicate_vrid.conf");
    assert_error(
        &e,
        "broken/duplicate_vrid.conf",
        10,
        5,
        "VI_1 and VI_2 both use VRID 5 with IPv4 on interface eth0",
    );
    // The same VRID on another interface, or in the other family, is fine.
    parse_ok(&format!(
        "{}vrrp_instance B {{\n interface eth1\n virtual_router_id 1\n virtual_ipaddress {{ 10.0.0.2 }}\n}}\nvrrp_instance C {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{ fe80::1 }}\n}}\n",
        instance("")
    ));
}

/// keepalived runs a unicast and a multicast instance with one VRID on one interface, or two
/// unicast ones with different peers; ha-agent's datapaths find an advert's instance by
/// (interface, family, VRID) and would keep one of them: refused at the second VRID.
#[test]
fn same_vrid_on_one_interface_and_family_whatever_the_destinations() {
    let unicast = |name: &str, vrid: u8, peer: &str| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n \
             unicast_peer {{\n {peer}\n }}\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n"
        )
    };
    let multicast = |name: &str, vrid: u8| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n \
             virtual_ipaddress {{ 10.0.0.2 }}\n}}\n"
        )
    };
    for (text, first) in [
        (
            format!("{}{}", unicast("U", 7, "10.0.0.9"), multicast("M", 7)),
            "U and M",
        ),
        (
            format!("{}{}", multicast("M", 7), unicast("U", 7, "10.0.0.9")),
            "M and U",
        ),
        (
            format!(
                "{}{}",
                unicast("U1", 7, "10.0.0.8"),
                unicast("U2", 7, "10.0.0.9")
            ),
            "U1 and U2",
        ),
    ] {
        let e = parse(&text).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        // The second instance's `virtual_router_id`.
        let at = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("virtual_router_id"));
        let (line, l) = at.last().unwrap();
        let d = e.first();
        assert_eq!(
            (d.line, d.col),
            (line as u32 + 1, l.find('v').unwrap() as u32 + 1),
            "{e}"
        );
        assert!(
            d.message.contains(&format!(
                "{first} both use VRID 7 with IPv4 on interface eth0"
            )) && d.message.contains("another VRID"),
            "{e}"
        );
    }
    // Other VRIDs, or another interface, are fine.
    parse_ok(&format!(
        "{}{}",
        unicast("U", 7, "10.0.0.9"),
        multicast("M", 8)
    ));
}

#[test]
fn unterminated_quote() {
    let e = load_err("broken/unterminated_quote.conf");
    assert_error(
        &e,
        "broken/unterminated_quote.conf",
        2,
        12,
        "unterminated quoted string",
    );
}

#[test]
fn unclosed_block() {
    let e = load_err("broken/unclosed_block.conf");
    assert_error(
        &e,
        "broken/unclosed_block.conf",
        1,
        20,
        "missing '}': the block of vrrp_instance opened here is never closed",
    );
}

#[test]
fn extra_closing_brace() {
    let e = load_err("broken/extra_brace.conf");
    assert_error(&e, "broken/extra_brace.conf", 8, 1, "unexpected '}'");
}

#[test]
fn advert_int_with_more_than_microsecond_precision() {
    let e = load_err("broken/advert_int_precision.conf");
    assert_error(
        &e,
        "broken/advert_int_precision.conf",
        4,
        16,
        "advert_int: \"1.0000001\" has more than 6 decimal places",
    );
    let e = parse(&instance("advert_int 0.001")).unwrap_err();
    assert!(
        e.first()
            .message
            .contains("expected a number of seconds 0.01-255"),
        "{e}"
    );
}

#[test]
fn version_2_with_ipv6_as_keepalived() {
    // keepalived sends VRRPv2 over IPv6 outside strict mode (tests/golden/v2-ipv6); in strict
    // mode it reports it and uses version 3 (vrrp.c vrrp_complete_instance).
    let v6 = "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n version 2\n \
              virtual_ipaddress { fe80::1 }\n";
    let loaded = parse_ok(&format!("{v6}}}\n"));
    assert_eq!(loaded.config.instances[0].version, Version::V2);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let strict = parse_ok(&format!("{v6} strict_mode on\n}}\n"));
    assert_eq!(strict.config.instances[0].version, Version::V3);
    assert_warning(&strict.warnings, 4, "cannot use IPv6 with VRRP version 2");
}

#[test]
fn bad_virtual_addresses_are_all_reported() {
    let e = load_err("broken/bad_vip.conf");
    let f = "broken/bad_vip.conf";
    assert_error(
        &e,
        f,
        5,
        9,
        "expected an IP address[/prefix], found \"10.0.0.300/24\"",
    );
    assert_error(
        &e,
        f,
        6,
        9,
        "prefix length \"33\" of 10.0.0.2: expected 0-32",
    );
    assert_error(&e, f, 7, 22, "dev: expected a value, found end of line");
    assert_error(&e, f, 8, 18, "unknown option \"colour\"");
    assert_eq!(e.errors.len(), 4, "{e}");
}

#[test]
fn missing_virtual_router_id() {
    let e = load_err("broken/missing_vrid.conf");
    assert_error(
        &e,
        "broken/missing_vrid.conf",
        1,
        1,
        "virtual_router_id: required",
    );
}

#[test]
fn ah_authentication_is_refused() {
    let e = load_err("broken/auth_ah.conf");
    assert_error(&e, "broken/auth_ah.conf", 5, 19, "auth_type AH");
}

#[test]
fn several_errors_are_reported_together_in_order() {
    let e = load_err("broken/many_errors.conf");
    let f = "broken/many_errors.conf";
    assert_error(
        &e,
        f,
        2,
        18,
        "vrrp_version: expected an integer 2-3, found \"4\"",
    );
    assert_error(&e, f, 3, 23, "expected an IPv4 multicast address");
    assert_error(
        &e,
        f,
        8,
        14,
        "priority: expected an integer 1-255, found \"0\"",
    );
    assert_error(
        &e,
        f,
        9,
        11,
        "state: expected MASTER or BACKUP, found \"MASTERS\"",
    );
    assert_eq!(e.errors.len(), 4, "{e}");
    let lines: Vec<u32> = e.errors.iter().map(|d| d.line).collect();
    assert!(lines.is_sorted());
}

#[test]
fn unicast_peer_of_the_other_family() {
    let e = load_err("broken/mixed_peer_family.conf");
    assert_error(
        &e,
        "broken/mixed_peer_family.conf",
        6,
        9,
        "2001:db8::2 is IPv6 but the instance is IPv4",
    );
}

#[test]
fn missing_value_points_after_the_keyword() {
    let e = load_err("broken/missing_value.conf");
    assert_error(
        &e,
        "broken/missing_value.conf",
        3,
        23,
        "virtual_router_id: expected an integer 1-255, found end of line",
    );
}

#[test]
fn invalid_seq_is_refused_at_its_line() {
    let e = load_err("broken/preprocessor.conf");
    assert_error(
        &e,
        "broken/preprocessor.conf",
        2,
        1,
        "invalid ~SEQ values '~SEQ(N, 1, -1, 3) vrrp_instance VI_$N {'",
    );
}

/// An error in a substituted value points at the reference, where the line uses it.
#[test]
fn error_in_a_definition_points_at_its_use() {
    let e = load_err("broken/definition_value.conf");
    assert_error(
        &e,
        "broken/definition_value.conf",
        4,
        23,
        "virtual_router_id: expected an integer 1-255, found \"300\"",
    );
}

#[test]
fn include_loop() {
    let e = load_err("broken/loop/a.conf");
    assert_error(&e, "broken/loop/b.conf", 1, 1, "include loop");
}

#[test]
fn error_inside_an_included_file_names_that_file() {
    let e = load_err("broken/include_error.conf");
    assert_error(
        &e,
        "broken/inc/bad.conf",
        3,
        23,
        "virtual_router_id: expected an integer 1-255, found \"0\"",
    );
}

#[test]
fn unreadable_main_file() {
    let e = config::load(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/keepalived.conf: cannot read configuration"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics
// ---------------------------------------------------------------------------------------------

fn config_like() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("vrrp_instance".to_string()),
        Just("vrrp_script".to_string()),
        Just("vrrp_sync_group".to_string()),
        Just("global_defs".to_string()),
        Just("track_file".to_string()),
        Just("virtual_ipaddress".to_string()),
        Just("virtual_routes".to_string()),
        Just("unicast_peer".to_string()),
        Just("track_script".to_string()),
        Just("authentication".to_string()),
        Just("auth_type".to_string()),
        Just("auth_pass".to_string()),
        Just("group".to_string()),
        Just("interface".to_string()),
        Just("virtual_router_id".to_string()),
        Just("priority".to_string()),
        Just("advert_int".to_string()),
        Just("state".to_string()),
        Just("MASTER".to_string()),
        Just("script".to_string()),
        Just("weight".to_string()),
        Just("notify".to_string()),
        Just("dev".to_string()),
        Just("brd".to_string()),
        Just("peer".to_string()),
        Just("include".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
        Just("!".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just("10.0.0.1/24".to_string()),
        Just("fe80::1".to_string()),
        Just("255".to_string()),
        Just("0.015".to_string()),
        Just("-254".to_string()),
        "[a-z0-9_./:-]{0,8}",
    ];
    prop::collection::vec(atom, 0..80).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn config_like_text_never_panics(text in config_like()) {
        match parse(&text) {
            Ok(l) => { let _ = config::summary(&l.config); }
            Err(e) => {
                prop_assert!(!e.errors.is_empty());
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn loopback_interface_is_refused() {
    let e = parse("vrrp_instance VI {\n interface lo\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n")
        .unwrap_err();
    assert_eq!((e.first().line, e.first().col), (2, 12));
    assert!(e.first().message.contains("loopback"), "{e}");
}

#[test]
fn notify_with_user_and_group() {
    let l = parse_ok(&instance(
        "notify_backup \"/usr/bin/logger -t vrrp 'now backup'\" daemon adm",
    ));
    let n = l.config.instances[0].notify.backup.as_ref().unwrap();
    assert_eq!(n.command, ["/usr/bin/logger", "-t", "vrrp", "now backup"]);
    let u = n.user.as_ref().unwrap();
    assert_eq!(
        (u.user.as_str(), u.group.as_deref()),
        ("daemon", Some("adm"))
    );
}

/// Every interface name is kept with its position, so that one the host lacks is reported where
/// it is written (`ha-agent run`/`check-config`).
#[test]
fn interface_names_keep_their_position() {
    let loaded = parse_ok(
        "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n    track_interface {\n        eth5\n    }\n}\n\
         vrrp_instance VI_1 {\n    interface eth9\n    virtual_router_id 51\n    track_interface {\n        eth8 weight -10\n    }\n    \
         virtual_ipaddress {\n        192.0.2.200/24 dev eth7\n    }\n    virtual_routes {\n        \
         198.51.100.0/24 via 192.0.2.254 dev eth6\n    }\n}\n",
    );
    let at = |name: &str| {
        let r = loaded
            .config
            .interface_ref(name)
            .unwrap_or_else(|| panic!("no position for {name}"));
        (r.at.line, r.at.col, r.what.clone(), r.at.to_string())
    };
    assert_eq!(
        at("eth9"),
        (
            10,
            15,
            "vrrp_instance VI_1: interface".to_owned(),
            "/nonexistent/keepalived.conf:10:15".to_owned()
        )
    );
    assert_eq!((at("eth8").0, at("eth8").1), (13, 9));
    assert_eq!(
        (at("eth7").0, at("eth7").1, at("eth7").2),
        (16, 28, "virtual_ipaddress 192.0.2.200: dev".to_owned())
    );
    assert_eq!((at("eth6").0, at("eth6").1), (19, 45));
    assert_eq!(
        (at("eth5").0, at("eth5").1, at("eth5").2),
        (6, 9, "vrrp_sync_group G: track_interface".to_owned())
    );
}

/// A fresh directory under the system's temporary directory, removed by the caller.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ha-agent-config-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `path` on a thread and waits at most 5 s: a reader that blocks (a FIFO without a
/// writer) fails the test instead of hanging it.
fn load_within_5s(path: &Path) -> Result<Loaded, ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(config::load(&path));
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("reading the configuration still blocks after 5 s"))
}

/// A FIFO (or `/dev/stdin` on a pipe) as an `includer` (keepalived's include that refuses what
/// is not a regular file; a plain `include` skips it with a warning) or as the file itself is
/// refused at once, at the include's position: it used to block for a writer forever. A file above the size
/// limit is refused without being read. (`/dev/zero`, which was read until memory ran out, is
/// in the broken corpus: `broken/include_device.conf`.)
#[test]
fn what_is_not_a_regular_file_or_too_big_is_refused_at_once() {
    let dir = scratch_dir("fifo");
    let fifo = dir.join("fifo.conf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let main = dir.join("keepalived.conf");
    std::fs::write(
        &main,
        format!(
            "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n}}\n  includer {}\n",
            fifo.display()
        ),
    )
    .unwrap();
    let e = load_within_5s(&main).expect_err("an include of a FIFO is refused");
    let first = e.first();
    assert_eq!(
        (first.file.as_path(), first.line, first.col),
        (main.as_path(), 5, 3),
        "{e}"
    );
    assert!(
        first
            .message
            .contains("a FIFO (named pipe), not a regular file"),
        "{e}"
    );

    let e = load_within_5s(&fifo).expect_err("a FIFO as the configuration is refused");
    assert!(
        e.to_string().contains("cannot read configuration: a FIFO"),
        "{e}"
    );

    let big = dir.join("big.conf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(config::MAX_FILE_BYTES + 1)
        .unwrap();
    let e = load_within_5s(&big).expect_err("a file above the limit is refused");
    assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's GARPs for a lower-priority advert: per instance, else global, else the
/// `vrrp_garp_master_*` values (5 s, 5); none in strict mode (with a warning when set).
#[test]
fn garp_lower_prio_defaults_and_overrides() {
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n{extra}    \
             virtual_ipaddress {{\n        192.0.2.{vrid}\n    }}\n}}\n"
        )
    };
    let l = parse_ok(
        &(inst("A", 1, "")
            + &inst(
                "B",
                2,
                "    garp_lower_prio_repeat 2\n    garp_lower_prio_delay 0\n",
            )),
    );
    let a = l.config.instance("A").unwrap();
    assert_eq!(
        (a.garp_lower_prio_repeat, a.garp_lower_prio_delay),
        (5, Duration::from_secs(5))
    );
    let b = l.config.instance("B").unwrap();
    assert_eq!(
        (b.garp_lower_prio_repeat, b.garp_lower_prio_delay),
        (2, Duration::ZERO)
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    let l = parse_ok(
        &("global_defs {\n    vrrp_garp_master_repeat 3\n    vrrp_garp_master_delay 7\n}\n"
            .to_owned()
            + &inst("A", 1, "")),
    );
    let a = l.config.instance("A").unwrap();
    assert_eq!(
        (a.garp_lower_prio_repeat, a.garp_lower_prio_delay),
        (3, Duration::from_secs(7)),
        "unset, the vrrp_garp_master_* values"
    );
    let l = parse_ok(
        &("global_defs {\n    vrrp_garp_lower_prio_repeat 1\n    vrrp_garp_lower_prio_delay 2\n}\n"
            .to_owned() + &inst("A", 1, "")),
    );
    let a = l.config.instance("A").unwrap();
    assert_eq!(
        (a.garp_lower_prio_repeat, a.garp_lower_prio_delay),
        (1, Duration::from_secs(2))
    );

    let l = parse_ok(&inst(
        "S",
        1,
        "    strict_mode on\n    priority 100\n    garp_lower_prio_repeat 4\n",
    ));
    let s = l.config.instance("S").unwrap();
    assert_eq!(
        (s.garp_lower_prio_repeat, s.garp_lower_prio_delay),
        (0, Duration::ZERO)
    );
    assert_warning(
        &l.warnings,
        6,
        "strict mode sends no repeated gratuitous ARPs",
    );
}

/// `lower_prio_no_advert` and `higher_prio_send_advert`: per instance, else global (bare or
/// true/false, as keepalived), else ha-agent's defaults (an advert in reply to a lower priority,
/// as keepalived; one before stepping down, unlike keepalived); strict mode forces neither
/// advert, with a warning when the configuration asked for one.
#[test]
fn lower_and_higher_prio_advert_defaults_and_overrides() {
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n{extra}    \
             virtual_ipaddress {{\n        192.0.2.{vrid}\n    }}\n}}\n"
        )
    };
    let flags = |l: &Loaded, name: &str| {
        let i = l.config.instance(name).unwrap();
        (i.lower_prio_no_advert, i.higher_prio_send_advert)
    };
    let l = parse_ok(
        &(inst("A", 1, "")
            + &inst(
                "B",
                2,
                "    lower_prio_no_advert\n    higher_prio_send_advert off\n",
            )),
    );
    assert_eq!(flags(&l, "A"), (false, true), "ha-agent's defaults");
    assert_eq!(flags(&l, "B"), (true, false));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    let l = parse_ok(
        &("global_defs {\n    vrrp_lower_prio_no_advert true\n    vrrp_higher_prio_send_advert false\n}\n"
            .to_owned()
            + &inst("A", 1, "")
            + &inst("B", 2, "    higher_prio_send_advert\n")),
    );
    assert_eq!(flags(&l, "A"), (true, false), "the global values");
    assert_eq!(
        flags(&l, "B"),
        (true, true),
        "the instance's over the global"
    );

    let l = parse_ok(&inst(
        "S",
        1,
        "    strict_mode on\n    priority 100\n    lower_prio_no_advert off\n    higher_prio_send_advert\n",
    ));
    assert_eq!(flags(&l, "S"), (true, false), "strict mode");
    assert_warning(
        &l.warnings,
        6,
        "strict mode sends no advert in reply to a lower priority",
    );
    assert_warning(
        &l.warnings,
        7,
        "strict mode sends no advert before stepping down",
    );

    let e = parse(&inst("X", 1, "    higher_prio_send_advert maybe\n")).unwrap_err();
    assert!(
        e.to_string()
            .contains("4:29: higher_prio_send_advert: expected nothing or one of true/on/yes"),
        "{e}"
    );
}

/// Accept mode off is enforced (by `vip_fence`): no warning, whether `no_accept` asked for it
/// or strict mode made it the default.
#[test]
fn accept_mode_off_is_enforced_without_warning() {
    let inst = |extra: &str| {
        format!(
            "vrrp_instance A {{\n    interface eth0\n    virtual_router_id 1\n    priority 100\n{extra}    \
             virtual_ipaddress {{\n        192.0.2.1\n    }}\n}}\n"
        )
    };
    for extra in ["    no_accept\n", "    strict_mode on\n"] {
        let l = parse_ok(&inst(extra));
        assert!(!l.config.instance("A").unwrap().accept, "{extra}");
        assert!(
            !l.warnings.iter().any(|w| w.to_string().contains("enforce")),
            "{:?}",
            l.warnings
        );
    }
    for extra in ["", "    accept\n"] {
        let l = parse_ok(&inst(extra));
        assert!(l.config.instance("A").unwrap().accept, "{extra}");
        assert!(
            !l.warnings.iter().any(|w| w.to_string().contains("enforce")),
            "{:?}",
            l.warnings
        );
    }
}

/// `unicast_ttl` (vrrp_parser.c vrrp_ttl_handler, vrrp_end_handler): 0-255, only with unicast
/// peers (without, a warning and ignored, as keepalived).
#[test]
fn unicast_ttl_needs_peers() {
    let inst = |extra: &str| {
        format!(
            "vrrp_instance A {{\n    interface eth0\n    virtual_router_id 1\n{extra}    \
             virtual_ipaddress {{\n        192.0.2.1\n    }}\n}}\n"
        )
    };
    let l = parse_ok(&inst(
        "    unicast_ttl 64\n    unicast_peer {\n        192.0.2.2\n    }\n",
    ));
    assert_eq!(l.config.instance("A").unwrap().unicast_ttl, Some(64));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = parse_ok(&inst("    unicast_ttl 64\n"));
    assert_eq!(l.config.instance("A").unwrap().unicast_ttl, None);
    assert_warning(&l.warnings, 4, "unicast_ttl without unicast peers: ignored");
    let e = parse(&inst("    unicast_ttl 256\n")).unwrap_err();
    assert!(e.to_string().contains("4:"), "{e}");
}

/// `mcast_dst_ip` (vrrp_parser.c vrrp_mcast_dstip_handler, vrrp.c vrrp_complete_instance): the
/// instance's group, multicast (IPv6: link-local multicast) and of the instance's family;
/// ignored with a warning for a unicast instance.
#[test]
fn mcast_dst_ip_is_the_instance_group() {
    let inst = |extra: &str, vip: &str| {
        format!(
            "vrrp_instance A {{\n    interface eth0\n    virtual_router_id 1\n{extra}    \
             virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
        )
    };
    let l = parse_ok(&inst("    mcast_dst_ip 224.0.0.100\n", "192.0.2.1"));
    assert_eq!(
        l.config.instance("A").unwrap().mcast_group,
        Some(v4("224.0.0.100"))
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = parse_ok(&inst("    mcast_dst_ip ff02::100\n", "fe80::1"));
    assert_eq!(
        l.config.instance("A").unwrap().mcast_group,
        Some("ff02::100".parse().unwrap())
    );
    for (dst, vip, what) in [
        (
            "192.0.2.9",
            "192.0.2.1",
            "4:18: vrrp_instance A: mcast_dst_ip 192.0.2.9 is not multicast",
        ),
        ("ff05::100", "fe80::1", "is not link-local multicast"),
    ] {
        let e = parse(&inst(&format!("    mcast_dst_ip {dst}\n"), vip)).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
    }
    let e = parse(
        "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        \
         192.0.2.1\n    }\n    mcast_dst_ip ff02::100\n}\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("7:18: mcast_dst_ip: ff02::100 is IPv6 but the instance is IPv4"),
        "{e}"
    );
    let l = parse_ok(&inst(
        "    mcast_dst_ip 224.0.0.100\n    unicast_peer {\n        192.0.2.2\n    }\n",
        "192.0.2.1",
    ));
    assert_eq!(l.config.instance("A").unwrap().mcast_group, None);
    assert_warning(&l.warnings, 4, "mcast_dst_ip with unicast peers: ignored");
}

// ---------------------------------------------------------------------------------------------
// Hostile input: escapes echoed, includes that multiply
// ---------------------------------------------------------------------------------------------

#[test]
fn terminal_escapes_in_a_config_come_out_escaped() {
    // An unknown keyword that clears the screen, and an interface name with a carriage return.
    let text = "vrrp_instance VI {\n \x1b[2J\x1b[Hpwned 1\n interface e\rth0\n virtual_router_id 1\n \
                virtual_ipaddress { 10.0.0.1 }\n}\n! \x1b]0;title\x07\n";
    let e = parse(text).expect_err("an unknown keyword is an error");
    let shown = e.to_string();
    assert!(
        !shown.contains(['\x1b', '\r', '\x07']),
        "raw control bytes in {shown:?}"
    );
    assert!(shown.contains("\\x1b[2J\\x1b[Hpwned"), "{shown}");
    for d in &e.errors {
        assert!(!d.message.contains('\x1b'), "{:?}", d.message);
    }
}

/// A directory of its own under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ha-config-{name}-{}", std::process::id()));
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

#[test]
fn include_fan_out_is_bounded_at_the_include() {
    // Each level includes the next twice: 2^13 inclusions of tiny files.
    let dir = TempDir::new("fanout");
    for level in 0..13 {
        let next = format!("include l{}.conf\n", level + 1);
        std::fs::write(dir.0.join(format!("l{level}.conf")), next.repeat(2)).unwrap();
    }
    std::fs::write(dir.0.join("l13.conf"), "! leaf\n").unwrap();
    let main = dir.0.join("keepalived.conf");
    std::fs::write(&main, "global_defs {\n}\ninclude l0.conf\n").unwrap();
    let e = config::load(&main).expect_err("fan-out must be refused");
    let found = e
        .errors
        .iter()
        .find(|d| d.message.contains("more than 4096 files included"));
    let d = found.unwrap_or_else(|| panic!("no fan-out error in:\n{e}"));
    assert_eq!(d.col, 1, "{d}");
    assert!(d.file.starts_with(&dir.0), "{d}");
    assert_eq!(
        e.errors
            .iter()
            .filter(|d| d.message.contains("files included"))
            .count(),
        1,
        "said once: {e}"
    );
}

#[test]
fn include_total_bytes_are_bounded() {
    // One file of 1 MiB of comments, included 70 times: the 64th goes past 64 MiB (the main
    // file counts too).
    let dir = TempDir::new("bytes");
    let big = format!("!{}\n", "x".repeat(1024 * 1024 - 2));
    std::fs::write(dir.0.join("big.conf"), big).unwrap();
    let main = dir.0.join("keepalived.conf");
    std::fs::write(&main, "include big.conf\n".repeat(70)).unwrap();
    let e = config::load(&main).expect_err("70 MiB must be refused");
    let d = e
        .errors
        .iter()
        .find(|d| d.message.contains("more than 64 MiB read in all"))
        .unwrap_or_else(|| panic!("no size error in:\n{e}"));
    assert_eq!(
        (d.file.as_path(), d.line, d.col),
        (main.as_path(), 64, 1),
        "{d}"
    );
}

#[test]
fn include_brace_expansion_is_bounded_with_an_error() {
    let deep = format!("include /nonexistent/{}x.conf\n", "{a}".repeat(40));
    let e = parse(&deep).expect_err("40 nested groups");
    assert!(e.to_string().contains("brace groups"), "{e}");
    let wide = format!("include /nonexistent/{}.conf\n", "{a,b}".repeat(11));
    let e = parse(&wide).expect_err("2048 alternatives");
    assert!(e.to_string().contains("more than 1024 file names"), "{e}");
}
