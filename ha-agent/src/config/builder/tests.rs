//! The rules `trackers.rs` and `resolve.rs` share between kinds of tracker and between flags,
//! pinned with their exact wording and position, without root.

use std::path::Path;

use crate::config::{ConfigError, Loaded, Tracker, parse_str};

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    parse_str(text, Path::new("t.conf"))
}

/// Every warning as `line:col: message`.
fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings
        .iter()
        .map(|w| format!("{}:{}: {}", w.line, w.col, w.message))
        .collect()
}

/// Every error as `line:col: message`.
fn errors(text: &str) -> Vec<String> {
    let e = parse(text).expect_err("should fail");
    e.errors
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect()
}

fn tracker(name: &str, weight: i32, reverse: bool) -> Tracker {
    Tracker {
        name: name.into(),
        weight,
        reverse,
    }
}

const DEFS: &str = "vrrp_script s {\n script \"/bin/true\"\n weight 10 reverse\n}\n\
                    track_file f {\n file /tmp/f\n}\n\
                    track_file g {\n file /tmp/g\n weight 7\n}\n";

fn instance(name: &str, vrid: u8, body: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n \
         virtual_ipaddress {{\n 192.0.2.{vrid}\n }}\n {body}\n}}\n"
    )
}

#[test]
fn references_inherit_the_definition_and_clamp_254() {
    let text = format!(
        "{DEFS}{}",
        instance(
            "A",
            1,
            "track_script {\n s\n }\n track_file {\n f weight -254\n g weight 5 noreverse\n }"
        )
    );
    let l = parse(&text).unwrap();
    let i = &l.config.instances[0];
    assert_eq!(i.track_scripts, [tracker("s", 10, true)]);
    assert_eq!(
        i.track_files,
        [tracker("f", -253, false), tracker("g", 5, false)]
    );
    assert_eq!(
        warnings(&l),
        ["22:11: track_file: weight for f cannot be +/-254, using -253"]
    );
}

#[test]
fn reverse_is_the_only_word_after_a_definition_weight_and_noreverse_also_after_a_reference() {
    let text = format!(
        "vrrp_script s {{\n script \"/bin/true\"\n weight 3 rev\n}}\n\
         track_file f {{\n file /tmp/f\n weight 255\n}}\n{}",
        instance("A", 1, "track_script {\n s weight 3 rev\n }")
    );
    assert_eq!(
        errors(&text),
        [
            "3:11: weight: expected \"reverse\", found \"rev\"",
            "7:9: weight: expected an integer -254 to 254, found \"255\"",
            "16:13: track_script: expected \"reverse\" or \"noreverse\", found \"rev\"",
        ]
    );
}

#[test]
fn a_sync_group_member_without_tracking_weight_keeps_some_references_at_zero_and_drops_others() {
    let text = format!(
        "{DEFS}{}vrrp_sync_group G {{\n group {{\n A\n }}\n}}\n",
        instance(
            "A",
            1,
            "track_interface {\n eth0\n eth1 weight 5\n }\n track_script {\n s\n }\n \
             track_file {\n f\n g\n }"
        )
    );
    let l = parse(&text).unwrap();
    let i = &l.config.instances[0];
    assert_eq!(i.track_interfaces, [tracker("eth1", 0, false)]);
    assert!(i.track_scripts.is_empty());
    assert_eq!(i.track_files, [tracker("f", 0, false)]);
    let ctx = "vrrp_instance A";
    let why = "member of a sync group without sync_group_tracking_weight (as keepalived)";
    assert_eq!(
        warnings(&l),
        [
            "30:1: vrrp_sync_group G: only one instance (A) - this probably isn't what you want"
                .to_owned(),
            format!("19:2: {ctx}: track_interface eth0: own interface is always tracked, ignored"),
            format!("20:2: {ctx}: weight of track_interface eth1 ignored: {why}"),
            format!("23:2: {ctx}: weighted track_script s ignored: {why}"),
            format!("26:2: {ctx}: track_file f: weight set to 0: {why}"),
            format!("27:2: {ctx}: track_file g with weight 7 ignored: {why}"),
        ]
    );
}

#[test]
fn the_owner_drops_weighted_interfaces_too() {
    let text = instance(
        "A",
        1,
        "priority 255\n track_interface {\n eth1 weight 5\n eth2\n }",
    );
    let l = parse(&text).unwrap();
    assert_eq!(
        l.config.instances[0].track_interfaces,
        [tracker("eth2", 0, false)]
    );
    assert_eq!(
        warnings(&l),
        [
            "9:2: vrrp_instance A: weighted track_interface eth1 ignored: address owner (priority 255) (as keepalived)"
        ]
    );
}

#[test]
fn a_sync_group_with_an_owner_clears_its_own_tracker_weights() {
    let text = format!(
        "{DEFS}{}{}vrrp_sync_group G {{\n group {{\n A\n B\n }}\n sync_group_tracking_weight\n \
         track_interface {{\n eth1 weight 5\n }}\n track_script {{\n s\n }}\n track_file {{\n g\n }}\n}}\n",
        instance("A", 1, "priority 255"),
        instance("B", 2, "priority 100"),
    );
    let l = parse(&text).unwrap();
    let g = &l.config.sync_groups[0];
    assert_eq!(g.track_interfaces, [tracker("eth1", 0, false)]);
    assert_eq!(g.track_scripts, [tracker("s", 0, true)]);
    assert_eq!(g.track_files, [tracker("g", 0, false)]);
    let ctx = "vrrp_sync_group G";
    assert_eq!(
        warnings(&l),
        [
            format!("35:2: {ctx}: weight of tracked eth1 cleared: a member has priority 255"),
            format!("38:2: {ctx}: weight of track_script s cleared: a member has priority 255"),
            format!("41:2: {ctx}: weight of track_file g set to 0: a member has priority 255"),
        ]
    );
}

#[test]
fn undefined_references_are_errors_in_instances_and_sync_groups() {
    let text = format!(
        "{}vrrp_sync_group G {{\n group {{\n A\n }}\n track_file {{\n nofile\n }}\n}}\n",
        instance("A", 1, "track_script {\n noscript\n }")
    );
    assert_eq!(
        errors(&text),
        [
            "8:2: vrrp_instance A: track_script: no vrrp_script named \"noscript\"",
            "16:2: vrrp_sync_group G: track_file: no track_file named \"nofile\"",
        ]
    );
}

#[test]
fn strict_mode_forces_the_advert_flags_and_no_lower_priority_garp() {
    let text = instance(
        "A",
        1,
        "strict_mode\n lower_prio_no_advert off\n higher_prio_send_advert on\n \
         garp_lower_prio_repeat 3\n garp_lower_prio_delay 0",
    );
    let l = parse(&text).unwrap();
    let i = &l.config.instances[0];
    assert!(i.lower_prio_no_advert);
    assert!(!i.higher_prio_send_advert);
    assert_eq!(i.garp_lower_prio_repeat, 0);
    let ctx = "vrrp_instance A";
    let strict: Vec<String> = warnings(&l)
        .into_iter()
        .filter(|w| w.contains("strict mode sends"))
        .collect();
    assert_eq!(
        strict,
        [
            format!(
                "10:2: {ctx}: garp_lower_prio_repeat: strict mode sends no repeated gratuitous ARPs: 0 (as keepalived)"
            ),
            format!(
                "8:2: {ctx}: strict mode sends no advert in reply to a lower priority: lower_prio_no_advert on (as keepalived)"
            ),
            format!(
                "9:2: {ctx}: strict mode sends no advert before stepping down: higher_prio_send_advert off (as keepalived)"
            ),
        ]
    );
}

#[test]
fn outside_strict_mode_the_instance_flag_wins_over_the_global_one() {
    let text = format!(
        "global_defs {{\n vrrp_lower_prio_no_advert\n vrrp_garp_lower_prio_repeat 4\n}}\n{}",
        instance("A", 1, "lower_prio_no_advert off")
    );
    let l = parse(&text).unwrap();
    let i = &l.config.instances[0];
    assert!(!i.lower_prio_no_advert);
    assert_eq!(i.garp_lower_prio_repeat, 4);
    assert!(warnings(&l).is_empty(), "{:?}", warnings(&l));
}

#[test]
fn every_named_block_is_defined_once() {
    let text = format!(
        "{DEFS}vrrp_script s {{\n script \"/bin/true\"\n}}\nvrrp_track_file f {{\n file /x\n}}\n{}{}\
         vrrp_sync_group G {{\n group {{\n A\n }}\n}}\nvrrp_sync_group G {{\n group {{\n A\n }}\n}}\n",
        instance("A", 1, ""),
        instance("A", 2, ""),
    );
    assert_eq!(
        errors(&text),
        [
            "12:1: vrrp_script s: already defined",
            "15:1: vrrp_track_file f: already defined",
            "26:1: vrrp_instance A: already defined",
            "39:1: vrrp_sync_group G: already defined",
        ]
    );
}

#[test]
fn down_timer_adverts_instance_then_global_then_three() {
    let text = format!(
        "global_defs {{\n vrrp_down_timer_adverts 5\n}}\n{}{}",
        instance("A", 1, "down_timer_adverts 7"),
        instance("B", 2, "")
    );
    let l = parse(&text).unwrap();
    assert_eq!(l.config.instances[0].down_timer_adverts, 7);
    assert_eq!(l.config.instances[1].down_timer_adverts, 5);
    let l = parse(&instance("C", 3, "")).unwrap();
    assert_eq!(l.config.instances[0].down_timer_adverts, 3);
    let l = parse(&instance("S", 5, "down_timer_adverts 7\n strict_mode")).unwrap();
    assert_eq!(l.config.instances[0].down_timer_adverts, 3);
    assert!(
        warnings(&l)
            .iter()
            .any(|w| w.contains("incompatible with strict mode - resetting to 3")),
        "{:?}",
        warnings(&l)
    );
    assert_eq!(
        errors(&instance("D", 4, "down_timer_adverts 101")),
        ["7:21: down_timer_adverts: expected an integer 1-100, found \"101\""]
    );
}

#[test]
fn native_ipv6_makes_an_ipv6_v3_instance_and_refuses_ipv4() {
    let text = "vrrp_instance A {\n interface eth0\n native_ipv6\n virtual_router_id 1\n \
                virtual_ipaddress {\n fe80::1\n 2001:db8::1\n }\n}\n";
    let l = parse(text).unwrap();
    let i = &l.config.instances[0];
    assert_eq!(i.family, crate::config::Family::Ipv6);
    assert_eq!(i.version, crate::config::Version::V3);
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n \
                virtual_ipaddress {\n 192.0.2.1\n }\n native_ipv6\n}\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("7:2: native_ipv6: the instance is already IPv4 (from t.conf:5:2)"),
        "{e:?}"
    );
}

#[test]
fn unicast_fault_no_peer_without_peers_is_a_fault_not_multicast() {
    let l = parse(&instance("A", 1, "unicast_fault_no_peer")).unwrap();
    assert!(l.config.instances[0].unicast_fault_no_peer);
    assert!(
        warnings(&l).iter().any(|w| w.contains("stays in FAULT")),
        "{:?}",
        warnings(&l)
    );
    let with_peer = instance(
        "B",
        2,
        "unicast_fault_no_peer\n unicast_src_ip 192.0.2.10\n unicast_peer {\n 192.0.2.11\n }",
    );
    let l = parse(&with_peer).unwrap();
    assert!(!l.config.instances[0].unicast_fault_no_peer);
    assert!(l.config.instances[0].is_unicast());
}

#[test]
fn vrrp_startup_delay_is_read_to_the_microsecond() {
    let text = format!(
        "global_defs {{\n vrrp_startup_delay 2.5\n}}\n{}",
        instance("A", 1, "")
    );
    let l = parse(&text).unwrap();
    assert_eq!(
        l.config.global.vrrp_startup_delay,
        std::time::Duration::from_millis(2500)
    );
    let text = format!(
        "global_defs {{\n vrrp_startup_delay 90\n}}\n{}",
        instance("A", 1, "")
    );
    let l = parse(&text).unwrap();
    assert!(warnings(&l).iter().any(|w| w.contains("very large")));
}

#[test]
fn track_src_ip_needs_a_configured_source() {
    let l = parse(&instance("A", 1, "mcast_src_ip 192.0.2.9\n track_src_ip")).unwrap();
    assert!(l.config.instances[0].track_src_ip);
    let l = parse(&instance("B", 2, "track_src_ip")).unwrap();
    assert!(!l.config.instances[0].track_src_ip);
    assert_eq!(
        warnings(&l),
        [
            "7:2: vrrp_instance B: track_src_ip without unicast_src_ip or mcast_src_ip: nothing to track, ignored (as keepalived)"
        ]
    );
}

#[test]
fn track_process_definitions_as_keepalived_reads_them() {
    use crate::config::ParamMatch;
    use std::time::Duration;
    let text = format!(
        "vrrp_track_process web {{\n process nginx\n}}\n\
         vrrp_track_process app {{\n process \"/srv/my app\" -c \"a b\"\n param_match partial\n \
         quorum 2\n quorum_max 3\n delay 0.5\n fork_delay 2\n weight -254 reverse\n}}\n\
         vrrp_track_process none {{\n process forbidden\n quorum_max 0\n}}\n{}",
        instance(
            "A",
            1,
            "track_process {\n web\n app weight 254 noreverse\n none weight 0 reverse\n }"
        )
    );
    let l = parse(&text).unwrap();
    assert_eq!(warnings(&l), Vec::<String>::new());
    let web = l.config.track_process("web").unwrap();
    // keepalived's defaults: weight 0 (down is FAULT), quorum 1, no maximum, comm matched.
    assert_eq!(
        (web.weight, web.quorum, web.quorum_max, web.full_command),
        (0, 1, u32::MAX, false)
    );
    assert_eq!(web.param_match, ParamMatch::None);
    let app = l.config.track_process("app").unwrap();
    assert_eq!(app.process, "/srv/my app");
    assert_eq!(app.params, ["-c", "a b"]);
    assert_eq!(app.param_match, ParamMatch::Partial);
    assert!(app.full_command, "parameters match the command line");
    assert_eq!((app.quorum, app.quorum_max), (2, 3));
    assert_eq!(app.fork_delay, Duration::from_secs(2));
    assert_eq!(app.terminate_delay, Duration::from_millis(500));
    assert_eq!((app.weight, app.weight_reverse), (-254, true));
    let none = l.config.track_process("none").unwrap();
    assert_eq!((none.quorum, none.quorum_max), (0, 0));
    // References keep ±254 (vrrp_track.c alloc_track_process), and their own reverse.
    assert_eq!(
        l.config.instances[0].track_processes,
        [
            tracker("web", 0, false),
            tracker("app", 254, false),
            tracker("none", 0, true)
        ]
    );
}

#[test]
fn track_process_errors_are_refused_where_written() {
    let e = errors(&format!(
        "vrrp_track_process p {{\n quorum_max 2\n quorum 3\n param_match whole\n delay 0\n}}\n{}",
        instance("A", 1, "track_process {\n p\n q\n }")
    ));
    assert_eq!(
        e,
        [
            "1:1: vrrp_track_process p: no process set (expected `process NAME [PARAMETER…]`)",
            "3:2: vrrp_track_process p: quorum 3 is greater than quorum_max 2",
            "4:14: vrrp_track_process p: param_match: expected \"initial\" or \"partial\" \
             (or nothing: exact), found \"whole\"",
            "5:8: delay: expected a number of seconds 0.000001-3600, found \"0\"",
            "15:2: vrrp_instance A: track_process: no vrrp_track_process named \"q\"",
        ]
    );
}

#[test]
fn a_long_comm_never_matches_and_a_weighted_group_process_with_an_owner_is_zeroed() {
    let text = format!(
        "vrrp_track_process p {{\n process a_name_of_sixteen_\n weight 10\n}}\n\
         vrrp_sync_group G {{\n group {{\n A\n B\n }}\n track_process {{\n p\n }}\n}}\n{}{}",
        instance("A", 1, "priority 255"),
        instance("B", 2, "")
    );
    let l = parse(&text).unwrap();
    let w = warnings(&l);
    assert!(
        w.iter()
            .any(|w| w.starts_with("2:10: ") && w.contains("never matches")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with("11:2: ")
            && w.contains("weight of track_process p set to 0: a member has priority 255")),
        "{w:?}"
    );
    assert_eq!(
        l.config.sync_groups[0].track_processes,
        [tracker("p", 0, false)]
    );
}

/// The notify FIFO keywords (core/global_parser.c) and the notify options of instances and
/// sync groups are read, not warned about; a second `notify_fifo` is refused at its line.
#[test]
fn notify_fifo_and_the_notify_options_are_read() {
    let text = format!(
        "global_defs {{\n notify_fifo /run/n.fifo www\n notify_fifo_script \"/bin/cat\"\n \
         vrrp_notify_fifo /run/v.fifo\n vrrp_notify_fifo_script /bin/reader nobody\n \
         vrrp_notify_priority_changes\n fifo_write_vrrp_states_on_reload\n}}\n{}{}\
         vrrp_sync_group G {{\n group {{\n A B\n }}\n notify_priority_changes false\n}}\n",
        instance(
            "A",
            1,
            "notify_deleted\n notify_master_rx_lower_pri \"/bin/aws-fix arg\"\n \
             notify_priority_changes off"
        ),
        instance("B", 2, "notify_deleted /bin/gone"),
    );
    let l = parse(&text).unwrap();
    assert_eq!(warnings(&l), Vec::<String>::new());
    let g = &l.config.global;
    assert_eq!(
        g.notify_fifo.path.as_deref(),
        Some(Path::new("/run/n.fifo"))
    );
    assert_eq!(g.notify_fifo.owner.as_ref().unwrap().user, "www");
    assert_eq!(g.notify_fifo.script.as_ref().unwrap().command, ["/bin/cat"]);
    assert_eq!(
        g.vrrp_notify_fifo.path.as_deref(),
        Some(Path::new("/run/v.fifo"))
    );
    let vs = g.vrrp_notify_fifo.script.as_ref().unwrap();
    assert_eq!(vs.user.as_ref().unwrap().user, "nobody");
    assert!(g.vrrp_notify_priority_changes && g.fifo_write_vrrp_states_on_reload);
    let (a, b) = (&l.config.instances[0].notify, &l.config.instances[1].notify);
    assert!(a.notify_deleted && a.deleted.is_none());
    assert_eq!(
        a.master_rx_lower_pri.as_ref().unwrap().command,
        ["/bin/aws-fix", "arg"]
    );
    assert_eq!(a.priority_changes, Some(false));
    assert!(b.notify_deleted);
    assert_eq!(b.deleted.as_ref().unwrap().command, ["/bin/gone"]);
    assert_eq!(l.config.sync_groups[0].notify.priority_changes, Some(false));
    let summary = crate::config::summary(&l.config);
    assert!(
        summary.contains("notify_fifo: /run/n.fifo, script /bin/cat\n")
            && summary.contains("vrrp_notify_fifo: /run/v.fifo, script /bin/reader\n"),
        "{summary}"
    );
    assert_eq!(
        errors("global_defs {\n notify_fifo /a\n notify_fifo /b\n}\n"),
        ["3:2: notify_fifo: already specified"]
    );
    let same = parse(&format!(
        "global_defs {{\n vrrp_notify_fifo /a\n notify_fifo /a\n}}\n{}",
        instance("A", 1, "")
    ))
    .unwrap();
    assert_eq!(
        warnings(&same),
        [
            "3:2: notify_fifo and vrrp_notify_fifo name the same FIFO: vrrp_notify_fifo ignored \
          (as keepalived)"
        ]
    );
    assert_eq!(same.config.global.vrrp_notify_fifo.path, None);
}

/// `net_namespace` and `instance` are read once; a name that would leave /run/netns or
/// /run/ha-agent is refused at its word.
#[test]
fn net_namespace_and_instance_are_read_once_and_name_no_path() {
    let l = parse(&format!(
        "net_namespace blue\ninstance edge\n{}",
        instance("A", 1, "")
    ))
    .unwrap();
    assert_eq!(warnings(&l), Vec::<String>::new());
    let ns = l.config.global.net_namespace.as_ref().unwrap();
    assert_eq!((ns.name.as_str(), ns.at.line, ns.at.col), ("blue", 1, 15));
    assert_eq!(l.config.global.instance.as_deref(), Some("edge"));
    assert_eq!(
        errors("net_namespace a\nnet_namespace b\ninstance ../x\n"),
        [
            "2:1: net_namespace: already specified",
            "3:10: instance: \"../x\" cannot name a file",
        ]
    );
}

#[test]
fn use_vmac_takes_a_name_and_a_mac_and_vmac_xmit_base() {
    let text = instance("A", 7, "use_vmac vip7 02:11:22:33:44\n vmac_xmit_base")
        + &instance("B", 8, "use_vmac")
        + &instance("C", 9, "vmac_xmit_base");
    let l = parse(&text).unwrap();
    let a = l.config.instances[0].use_vmac.clone().unwrap();
    assert_eq!(a.name.as_deref(), Some("vip7"));
    // Five octets: the VRID is the sixth.
    assert_eq!(a.mac, Some([0x02, 0x11, 0x22, 0x33, 0x44, 7]));
    assert!(a.xmit_base);
    let b = l.config.instances[1].use_vmac.clone().unwrap();
    assert_eq!((b.name, b.mac, b.xmit_base), (None, None, false));
    assert_eq!(l.config.instances[2].use_vmac, None);
    assert_eq!(
        warnings(&l),
        ["24:2: vrrp_instance C: vmac_xmit_base is only valid with use_vmac: ignored"]
    );
}

#[test]
fn vmac_xmit_base_is_reset_in_strict_mode_as_keepalived() {
    let l = parse(&instance("A", 7, "use_vmac\n vmac_xmit_base\n strict_mode")).unwrap();
    assert!(!l.config.instances[0].use_vmac.as_ref().unwrap().xmit_base);
    assert!(
        warnings(&l)
            .iter()
            .any(|w| w.starts_with("8:2: ") && w.contains("incompatible with strict mode")),
        "{:?}",
        warnings(&l)
    );
}

#[test]
fn use_vmac_refuses_what_keepalived_refuses_and_use_ipvlan_says_why() {
    let e = errors(&instance("A", 7, "use_vmac 00:00:5e:00:01:07"));
    assert!(e[0].contains("RFC 5798"), "{e:?}");
    let e = errors(&instance("A", 7, "use_vmac averyveryverylongname"));
    assert!(e[0].contains("longer than 15"), "{e:?}");
    let e = errors(&instance("A", 7, "use_ipvlan"));
    assert!(
        e[0].starts_with("7:2: ") && e[0].contains("no ipvlan"),
        "{e:?}"
    );
}

#[test]
fn use_vmac_with_unicast_peers_asks_for_vmac_xmit_base_as_keepalived_s_man_page() {
    let body = "use_vmac\n unicast_peer {\n 192.0.2.9\n }";
    let l = parse(&instance("A", 7, body)).unwrap();
    assert!(
        warnings(&l)
            .iter()
            .any(|w| w.starts_with("1:1: ") && w.contains("set vmac_xmit_base")),
        "{:?}",
        warnings(&l)
    );
    let l = parse(&instance("A", 7, &format!("{body}\n vmac_xmit_base"))).unwrap();
    assert!(!warnings(&l).iter().any(|w| w.contains("vmac_xmit_base")));
}
/// core/global_parser.c startup_shutdown_script: `CMD [USER [GROUP]]` as a notify line, the
/// first one wins (a second is an error); the timeouts default to 10s and take 1-1000.
#[test]
fn startup_and_shutdown_scripts() {
    let l = parse(
        "global_defs {\n startup_script \"/bin/echo up\" nobody\n startup_script_timeout 3\n \
         shutdown_script /bin/true\n}\n",
    )
    .unwrap();
    let g = &l.config.global;
    let up = g.startup_script.as_ref().unwrap();
    assert_eq!(up.command, ["/bin/echo", "up"]);
    assert_eq!(up.user.as_ref().unwrap().user, "nobody");
    assert_eq!(g.startup_script_timeout, std::time::Duration::from_secs(3));
    let down = g.shutdown_script.as_ref().unwrap();
    assert_eq!(down.command, ["/bin/true"]);
    assert!(down.user.is_none());
    assert_eq!(
        g.shutdown_script_timeout,
        std::time::Duration::from_secs(10)
    );
    assert!(warnings(&l).is_empty(), "{:?}", warnings(&l));

    assert_eq!(
        errors("global_defs {\n startup_script /bin/true\n startup_script /bin/false\n}\n"),
        ["3:2: startup_script: already specified in this block"]
    );
    assert_eq!(
        errors("global_defs {\n shutdown_script_timeout 0\n}\n"),
        ["2:26: shutdown_script_timeout: expected an integer 1-1000, found \"0\""]
    );
    assert_eq!(
        errors("global_defs {\n startup_script_timeout 1001\n}\n"),
        ["2:25: startup_script_timeout: expected an integer 1-1000, found \"1001\""]
    );
}

#[test]
fn a_garp_group_without_a_delay_or_naming_a_grouped_interface_again_is_ignored_with_a_warning() {
    let l = parse(
        "garp_group {\n interface eth0\n}\n\
         garp_group {\n garp_interval 0.1\n interfaces {\n eth1 eth2\n }\n}\n\
         garp_group {\n gna_interval 1\n interface eth2\n interface eth3\n}\n",
    )
    .unwrap();
    assert_eq!(
        warnings(&l),
        [
            "1:1: garp_group: no garp_interval or gna_interval, the group is ignored",
            "11:2: garp_group: gna_interval: very large (1 seconds)",
            "12:12: garp_group: already specified for eth2, ignored",
        ]
    );
    let groups = &l.config.global.garp_groups;
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].interfaces, ["eth1", "eth2"]);
    assert_eq!(groups[1].interfaces, ["eth3"]);
    assert_eq!(groups[1].garp_interval, std::time::Duration::ZERO);
    let summary = crate::config::summary(&l.config);
    assert!(
        summary.contains("garp_group eth1 eth2: a GARP every 0.1s, an NA every 0s"),
        "{summary}"
    );
    assert_eq!(
        errors("garp_group {\n garp_intervl 1\n}\n"),
        ["2:2: unknown keyword \"garp_intervl\" (in garp_group)"]
    );
}

#[test]
fn vrrp_min_garp_sends_one_garp_unless_the_counts_were_set_before_it() {
    let g = |text: &str| parse(text).unwrap().config.global;
    let min = g("global_defs {\n vrrp_min_garp\n}\n");
    assert_eq!(
        (
            min.vrrp_garp_master_repeat,
            min.vrrp_garp_master_delay,
            min.vrrp_garp_master_refresh_repeat
        ),
        (1, std::time::Duration::ZERO, 0)
    );
    let set = g("global_defs {\n vrrp_garp_master_repeat 3\n vrrp_min_garp\n}\n");
    assert_eq!(set.vrrp_garp_master_repeat, 3);
    let off = g("global_defs {\n vrrp_min_garp false\n}\n");
    assert_eq!(off.vrrp_garp_master_repeat, 5);
    // An instance without garp_master_repeat inherits the single GARP.
    let l = parse(
        "global_defs {\n vrrp_min_garp\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n",
    )
    .unwrap();
    assert_eq!(l.config.instances[0].garp_master_repeat, 1);
    assert_eq!(
        l.config.instances[0].garp_master_delay,
        std::time::Duration::ZERO
    );
}

#[test]
fn interface_up_down_delays_read_down_then_up_and_are_cut_below_the_backups_timeout() {
    let ms = std::time::Duration::from_millis;
    let l = parse(
        "interface_up_down_delays {\n eth0 1\n eth1 0.5 0.25\n eth2 3\n}\n\
         vrrp_instance V {\n interface eth2\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n",
    )
    .unwrap();
    let d = &l.config.global.link_delays;
    assert_eq!(
        (d[0].interface.as_str(), d[0].down, d[0].up),
        ("eth0", ms(1000), ms(0))
    );
    assert_eq!((d[1].down, d[1].up), (ms(500), ms(250)));
    // advert_int 1, down_timer_adverts 3: at most 2 s less 1/256 s.
    assert_eq!(d[2].down, ms(2000) - std::time::Duration::from_micros(3906));
    assert_eq!(
        warnings(&l),
        ["6:1: vrrp_instance V: eth2's down delay cut to 1.996094s (2 adverts of 1s, less 1/256)"]
    );
    let summary = crate::config::summary(&l.config);
    assert!(
        summary.contains(
            "interface_up_down_delays eth1: link down acted on after 0.5s, up after 0.25s"
        ),
        "{summary}"
    );
    // Each must exist on the host (keepalived: fatal), reported where it is written.
    let r = l.config.interface_ref("eth1").expect("eth1 is named");
    assert_eq!(
        (r.at.line, r.at.col, r.what.as_str()),
        (3, 2, "interface_up_down_delays")
    );
    assert!(crate::agent::plan::interfaces(&l.config).contains(&"eth1".to_string()));
    assert_eq!(
        errors("interface_up_down_delays {\n eth0 256\n}\n"),
        ["2:7: interface_up_down_delays: expected a number of seconds 0-255, found \"256\""]
    );
}
