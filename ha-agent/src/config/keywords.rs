//! keepalived 2.2.7's keywords for its VRRP half and `global_defs`, in ONE table: where each is
//! written, what ha-agent does with it, and why. The builder handles the supported ones in its
//! `match` arms and asks this table about every other word (`lookup`): a keyword that changes
//! failover behaviour and that ha-agent does not act on is an error unless `--allow-unsupported`
//! (no silent difference), one that only configures what ha-agent replaces is a warning, and a
//! word keepalived does not know is an error with the nearest keyword as a suggestion, as
//! keepalived (lib/parser.c `process_stream`: "Unknown keyword").
//!
//! Making a keyword work is a one-line change here: its `Unsupported` becomes `Supported` (and
//! the reason says what it does), beside the builder's new match arm. The README's table
//! "keepalived keyword → ha-agent" is [`render_markdown`]'s output; `cargo xtask keywords`
//! rewrites it and a unit test fails when they differ.
//!
//! Sources: keepalived/vrrp/vrrp_parser.c `init_vrrp_keywords`, core/global_parser.c
//! `init_global_keywords`, trackers/track_file.c, check/check_parser.c, bfd/bfd_parser.c.

/// Where a keyword is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// Top level of the file.
    Root,
    /// Inside `global_defs { }`.
    Global,
    /// Inside `vrrp_instance NAME { }`.
    Instance,
    /// Inside `vrrp_sync_group NAME { }`.
    SyncGroup,
    /// Inside `virtual_server IP PORT { }` / `virtual_server group NAME { }`.
    VirtualServer,
    /// Inside `virtual_server_group NAME { }` (besides its `IP PORT` lines).
    VirtualServerGroup,
    /// Inside `real_server IP PORT { }`.
    RealServer,
    /// Inside any checker block (check_api.c's common keywords; TCP_CHECK and PING_CHECK have
    /// only these).
    Checker,
    /// Inside `HTTP_GET { }` / `SSL_GET { }`.
    HttpGet,
    /// Inside `url { }` of HTTP_GET / SSL_GET.
    Url,
    /// Inside `MISC_CHECK { }`.
    MiscCheck,
    /// Inside `UDP_CHECK { }`.
    UdpCheck,
    /// Inside `DNS_CHECK { }`.
    DnsCheck,
    /// Inside `SMTP_CHECK { }`.
    SmtpCheck,
    /// Inside `FILE_CHECK { }`.
    FileCheck,
    /// Inside the root `SSL { }`.
    Ssl,
}

/// What ha-agent does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Read and acted on as keepalived does.
    Supported,
    /// Changes failover behaviour and is not acted on: refused unless `--allow-unsupported`.
    Unsupported,
    /// Configures what ha-agent replaces (SNMP, D-Bus, email, process names, rlimits…): a
    /// warning, nothing else.
    Replaced,
    /// keepalived's LVS half that ha-agent's XDP balancer does not build: refused unless
    /// `--allow-unsupported`, as it changes what the director serves.
    Lvs,
}

/// One keepalived keyword.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyword {
    pub ctx: Context,
    pub name: &'static str,
    pub status: Status,
    /// Why it has that status (for an unsupported one: what differs from keepalived).
    pub reason: &'static str,
}

const fn k(ctx: Context, name: &'static str, status: Status, reason: &'static str) -> Keyword {
    Keyword {
        ctx,
        name,
        status,
        reason,
    }
}

use Context::{
    Checker, DnsCheck, FileCheck, Global, HttpGet, Instance, MiscCheck, RealServer, Root,
    SmtpCheck, Ssl, SyncGroup, UdpCheck, Url, VirtualServer, VirtualServerGroup,
};
use Status::{Lvs, Replaced, Supported, Unsupported};

const SCHED: &str =
    "scheduling and limits of keepalived's processes: set them in ha-agent's systemd unit";
const SNMP: &str =
    "SNMP: ha-agent's state is in `ha-agent status --json` and its Prometheus metrics";
const DBUS: &str = "D-Bus: ha-agent's state is in `ha-agent status --json` and its control socket";
const EMAIL: &str = "ha-agent sends no email; a notify script can";
const PROC_NAME: &str = "names keepalived's child processes: ha-agent is one process";
const RCVBUF: &str = "netlink socket buffer sizes: ha-agent sizes its own and resyncs on ENOBUFS";
const GARP_EXTRA: &str =
    "no periodic gratuitous ARP/NA on the base interface of a VMAC or on extra interfaces";
const LVS_SYNC: &str =
    "flows survive a failover without a sync daemon: both directors place flows by the same table";
const LVS_FLUSH: &str = "ha-agent's balancer owns its maps: they start empty and a clean stop removes them; there is no IPVS table to flush";
const NFT_IPVS: &str = "ha-agent writes no nftables rules for IPVS: fwmark services are refused, the XDP balancer needs no marks";
const LVS_FIFO: &str =
    "no LVS notify FIFO: notify_up / notify_down and quorum_up / quorum_down scripts are run";
const TIMERS: &str =
    "checker timer, inherited checker <- real_server <- virtual_server <- default, as keepalived";
const CHECKER: &str =
    "a health checker of the real server (keepalived 2.2: up when all its checkers are)";
const TLS_FILES: &str = "SSL_GET connects with TLS without verifying the server or presenting a client certificate; ignoring this would check a different thing";

/// Every keyword, by context, in keepalived's order; one line each, so that flipping a status
/// is a one-line change.
#[rustfmt::skip]
pub(crate) const KEYWORDS: &[Keyword] = &[
    // Top level.
    k(Root, "global_defs", Supported, "the settings below"),
    k(Root, "vrrp_instance", Supported, "a VRRP instance"),
    k(Root, "vrrp_script", Supported, "a check script (script, interval, timeout, weight, rise, fall, user, init_fail)"),
    k(Root, "vrrp_sync_group", Supported, "instances that change state together"),
    k(Root, "track_file", Supported, "a tracked file (file, weight, init_file), re-read on inotify"),
    k(Root, "vrrp_track_file", Supported, "deprecated synonym of track_file"),
    k(Root, "vrrp_track_process", Supported, "a tracked process (process, param_match, quorum, quorum_max, delays, weight, full_command) from the kernel's process events connector"),
    k(Root, "bfd_instance", Unsupported, "ha-agent runs no BFD: FRR's bfdd with a vrrp_script or track_file on its session state does the same"),
    k(Root, "static_ipaddress", Supported, "addresses set at start, put back when deleted, removed at stop"),
    k(Root, "static_routes", Supported, "routes set at start, put back when deleted, removed at stop"),
    k(Root, "static_rules", Supported, "rules set at start, put back when deleted, removed at stop"),
    k(Root, "track_group", Unsupported, "static addresses and routes do not follow a track group"),
    k(Root, "garp_group", Supported, "one pace of gratuitous ARPs (garp_interval) and of NAs (gna_interval) shared by the interfaces it lists, instead of vrrp_garp_interval / vrrp_gna_interval"),
    k(Root, "linkbeat_interfaces", Replaced, "link state comes from rtnetlink events, which every driver reports"),
    k(Root, "linkbeat_use_polling", Replaced, "link state comes from rtnetlink events, which every driver reports"),
    k(Root, "interface_up_down_delays", Supported, "a link going down (up) is acted on once it has stayed so for the delay; a shorter flap is ignored"),
    k(Root, "net_namespace", Supported, "the agent (and check-config) enters /run/netns/NAME before touching anything"),
    k(Root, "net_namespace_ipvs", Lvs, "the XDP balancer runs in the agent's namespace, on the VRRP interface: IPVS in another namespace is not built"),
    k(Root, "namespace_with_ipsets", Replaced, "ha-agent uses no ipsets"),
    k(Root, "use_pid_dir", Replaced, "pid file: `run --pid-file`"),
    k(Root, "instance", Supported, "names the default pid file and control socket (/run/ha-agent/NAME.pid, .sock)"),
    k(Root, "child_wait_time", Replaced, "ha-agent has no child daemons to wait for at exit"),
    k(Root, "virtual_server", Supported, "a service balanced by the XDP load balancer while this node is master of its address (DR or TUN; see Load balancing)"),
    k(Root, "virtual_server_group", Supported, "addresses and ranges (`10.0.0.1-10 80`, `10.0.0.0/28 80`) expanded to one service each; fwmark members refused"),
    k(Root, "SSL", Supported, "the block is read; its keywords say what ha-agent does"),
    // global_defs.
    k(Global, "router_id", Supported, "shown in status and passed to notify scripts"),
    k(Global, "vrrp_version", Supported, "default VRRP version"),
    k(Global, "vrrp_mcast_group4", Supported, "IPv4 advert destination"),
    k(Global, "vrrp_mcast_group6", Supported, "IPv6 advert destination"),
    k(Global, "vrrp_garp_master_delay", Supported, "default garp_master_delay"),
    k(Global, "vrrp_garp_master_repeat", Supported, "default garp_master_repeat"),
    k(Global, "vrrp_garp_master_refresh", Supported, "default garp_master_refresh"),
    k(Global, "vrrp_garp_master_refresh_repeat", Supported, "default garp_master_refresh_repeat"),
    k(Global, "vrrp_garp_lower_prio_delay", Supported, "default garp_lower_prio_delay"),
    k(Global, "vrrp_garp_lower_prio_repeat", Supported, "default garp_lower_prio_repeat"),
    k(Global, "vrrp_garp_interval", Supported, "gap between gratuitous ARPs"),
    k(Global, "vrrp_gna_interval", Supported, "gap between unsolicited NAs"),
    k(Global, "vrrp_lower_prio_no_advert", Supported, "default lower_prio_no_advert"),
    k(Global, "vrrp_higher_prio_send_advert", Supported, "default higher_prio_send_advert"),
    k(Global, "vrrp_check_unicast_src", Supported, "default check_unicast_src"),
    k(Global, "vrrp_skip_check_adv_addr", Supported, "default skip_check_adv_addr"),
    k(Global, "vrrp_strict", Supported, "strict RFC mode"),
    k(Global, "script_user", Supported, "user scripts run as"),
    k(Global, "enable_script_security", Supported, "refuse scripts a non-root user can change"),
    k(Global, "process_names", Replaced, PROC_NAME),
    k(Global, "process_name", Replaced, PROC_NAME),
    k(Global, "vrrp_process_name", Replaced, PROC_NAME),
    k(Global, "checker_process_name", Replaced, PROC_NAME),
    k(Global, "lvs_process_name", Replaced, PROC_NAME),
    k(Global, "bfd_process_name", Replaced, PROC_NAME),
    k(Global, "notification_email_from", Replaced, EMAIL),
    k(Global, "smtp_server", Replaced, EMAIL),
    k(Global, "smtp_helo_name", Replaced, EMAIL),
    k(Global, "smtp_connect_timeout", Replaced, EMAIL),
    k(Global, "notification_email", Replaced, EMAIL),
    k(Global, "smtp_alert", Replaced, EMAIL),
    k(Global, "smtp_alert_vrrp", Replaced, EMAIL),
    k(Global, "smtp_alert_checker", Replaced, EMAIL),
    k(Global, "no_email_faults", Replaced, EMAIL),
    k(Global, "startup_script", Supported, "run and waited for (killed at its timeout) before the instances start"),
    k(Global, "startup_script_timeout", Supported, "startup_script is killed after it (default 10s), the start goes on"),
    k(Global, "shutdown_script", Supported, "run and waited for after the instances stop and their VIPs are removed"),
    k(Global, "shutdown_script_timeout", Supported, "shutdown_script is killed after it (default 10s), the exit goes on"),
    k(Global, "max_auto_priority", Replaced, SCHED),
    k(Global, "min_auto_priority_delay", Replaced, SCHED),
    k(Global, "checker_log_all_failures", Replaced, "logging of keepalived's health checkers"),
    k(Global, "dynamic_interfaces", Unsupported, "an interface missing at start is refused; keepalived waits for it"),
    k(Global, "default_interface", Supported, "the interface of a static_ipaddress line without dev (default eth0), as keepalived"),
    k(Global, "disable_local_igmp", Supported, "net.ipv4.igmp_link_local_mcast_reports 0 while running, restored at exit"),
    k(Global, "lvs_timeouts", Replaced, "established flows stay in the XDP LRU flow table until evicted by newer ones, not after IPVS timeouts"),
    k(Global, "lvs_flush", Replaced, LVS_FLUSH),
    k(Global, "lvs_flush_on_stop", Replaced, LVS_FLUSH),
    k(Global, "lvs_flush_onstop", Replaced, LVS_FLUSH),
    k(Global, "lvs_sync_daemon", Replaced, LVS_SYNC),
    k(Global, "vrrp_down_timer_adverts", Supported, "default down_timer_adverts (1-100)"),
    k(Global, "vrrp_min_garp", Supported, "one gratuitous ARP/NA at takeover, no delayed burst, no refresh (vrrp_garp_master_* still at their defaults)"),
    k(Global, "vrrp_garp_extra_if", Unsupported, GARP_EXTRA),
    k(Global, "vrrp_vmac_garp_intvl", Unsupported, GARP_EXTRA),
    k(Global, "vrrp_iptables", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "vrrp_ipsets", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "nftables", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "nftables_priority", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "nftables_ifindex", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "nftables_ipvs", Replaced, NFT_IPVS),
    k(Global, "nftables_ipvs_priority", Replaced, NFT_IPVS),
    k(Global, "nftables_ipvs_start_fwmark", Replaced, NFT_IPVS),
    k(Global, "nftables_counters", Replaced, "keepalived's firewall for accept mode: ha-agent's is its TC program"),
    k(Global, "vrrp_priority", Replaced, SCHED),
    k(Global, "vrrp_no_swap", Replaced, SCHED),
    k(Global, "vrrp_rt_priority", Replaced, SCHED),
    k(Global, "vrrp_cpu_affinity", Replaced, SCHED),
    k(Global, "vrrp_rlimit_rttime", Replaced, SCHED),
    k(Global, "vrrp_rlimit_rtime", Replaced, SCHED),
    k(Global, "notify_fifo", Supported, "keepalived's state lines to a FIFO (PATH [USER [GROUP]])"),
    k(Global, "notify_fifo_script", Supported, "reader of notify_fifo, started with its path"),
    k(Global, "vrrp_notify_fifo", Supported, "the VRRP lines to a FIFO"),
    k(Global, "vrrp_notify_fifo_script", Supported, "reader of vrrp_notify_fifo"),
    k(Global, "vrrp_notify_priority_changes", Supported, "default notify_priority_changes"),
    k(Global, "fifo_write_vrrp_states_on_reload", Supported, "kept instances' states rewritten to the FIFO at reload"),
    k(Global, "lvs_notify_fifo", Lvs, LVS_FIFO),
    k(Global, "lvs_notify_fifo_script", Lvs, LVS_FIFO),
    k(Global, "checker_priority", Replaced, SCHED),
    k(Global, "checker_no_swap", Replaced, SCHED),
    k(Global, "checker_rt_priority", Replaced, SCHED),
    k(Global, "checker_cpu_affinity", Replaced, SCHED),
    k(Global, "checker_rlimit_rttime", Replaced, SCHED),
    k(Global, "checker_rlimit_rtime", Replaced, SCHED),
    k(Global, "bfd_priority", Replaced, SCHED),
    k(Global, "bfd_no_swap", Replaced, SCHED),
    k(Global, "bfd_rt_priority", Replaced, SCHED),
    k(Global, "bfd_cpu_affinity", Replaced, SCHED),
    k(Global, "bfd_rlimit_rttime", Replaced, SCHED),
    k(Global, "bfd_rlimit_rtime", Replaced, SCHED),
    k(Global, "snmp_socket", Replaced, SNMP),
    k(Global, "enable_traps", Replaced, SNMP),
    k(Global, "enable_snmp_vrrp", Replaced, SNMP),
    k(Global, "enable_snmp_keepalived", Replaced, SNMP),
    k(Global, "enable_snmp_rfc", Replaced, SNMP),
    k(Global, "enable_snmp_rfcv2", Replaced, SNMP),
    k(Global, "enable_snmp_rfcv3", Replaced, SNMP),
    k(Global, "enable_snmp_checker", Replaced, SNMP),
    k(Global, "enable_dbus", Replaced, DBUS),
    k(Global, "dbus_service_name", Replaced, DBUS),
    k(Global, "vrrp_netlink_cmd_rcv_bufs", Replaced, RCVBUF),
    k(Global, "vrrp_netlink_cmd_rcv_bufs_force", Replaced, RCVBUF),
    k(Global, "vrrp_netlink_monitor_rcv_bufs", Replaced, RCVBUF),
    k(Global, "vrrp_netlink_monitor_rcv_bufs_force", Replaced, RCVBUF,),
    k(Global, "process_monitor_rcv_bufs", Supported, "receive buffer of the process events socket"),
    k(Global, "process_monitor_rcv_bufs_force", Supported, "the same, above net.core.rmem_max"),
    k(Global, "lvs_netlink_cmd_rcv_bufs", Replaced, RCVBUF),
    k(Global, "lvs_netlink_cmd_rcv_bufs_force", Replaced, RCVBUF),
    k(Global, "lvs_netlink_monitor_rcv_bufs", Replaced, RCVBUF),
    k(Global, "lvs_netlink_monitor_rcv_bufs_force", Replaced, RCVBUF,),
    k(Global, "rs_init_notifies", Lvs, "notify_up / notify_down for every real server at start is not built: they run on changes only"),
    k(Global, "no_checker_emails", Replaced, EMAIL),
    k(Global, "vrrp_rx_bufs_policy", Replaced, "advert socket buffers: XDP counts adverts before any socket"),
    k(Global, "vrrp_rx_bufs_multiplier", Replaced, "advert socket buffers: XDP counts adverts before any socket"),
    k(Global, "vrrp_startup_delay", Supported, "at start no backup takes over before this delay + its master-down interval"),
    k(Global, "log_unknown_vrids", Replaced, "adverts for other VRIDs are counted as foreign in status and metrics"),
    k(Global, "vmac_prefix", Supported, "start of generated use_vmac names (default vrrp)"),
    k(Global, "vmac_addr_prefix", Supported, "start of generated use_vmac_addr names"),
    k(Global, "umask", Replaced, "ha-agent's files are created owner-only"),
    k(Global, "random_seed", Replaced, "keepalived's test hook"),
    k(Global, "reload_check_config", Replaced, "a reload that does not load is refused and the running configuration stays"),
    k(Global, "reload_time_file", Unsupported, "no reload at a scheduled time: SIGHUP reloads"),
    k(Global, "reload_repeat", Unsupported, "no reload at a scheduled time: SIGHUP reloads"),
    k(Global, "reload_file", Replaced, "keepalived's reload bookkeeping"),
    k(Global, "include_check", Replaced, "an include that matches nothing is a warning"),
    k(Global, "config_save_dir", Replaced, "keepalived's reload bookkeeping"),
    k(Global, "tmp_config_directory", Replaced, "keepalived's reload bookkeeping"),
    k(Global, "data_use_instance", Replaced, "names keepalived's dump files: ha-agent's are named from its socket"),
    // vrrp_instance.
    k(Instance, "use_vmac", Supported, "VIPs on a macvlan with the VRID's MAC (00:00:5e:00:01|02:VRID), created, adopted after a crash and removed by the agent"),
    k(Instance, "use_vmac_addr", Supported, "VIPs on other interfaces or of the other family get their own macvlan"),
    k(Instance, "vmac_xmit_base", Supported, "adverts leave from the base interface, VIPs stay on the macvlan"),
    k(Instance, "use_ipvlan", Unsupported, "the kernels ha-agent is built and tested on have no ipvlan driver: use use_vmac (a macvlan)"),
    k(Instance, "unicast_peer", Supported, "unicast peers, with min_ttl/max_ttl enforced on receive"),
    k(Instance, "unicast_fault_no_peer", Supported, "unicast without peers stays in FAULT instead of multicast"),
    k(Instance, "check_unicast_src", Supported, "adverts only from the listed peers"),
    k(Instance, "old_unicast_checksum", Unsupported, "keepalived <= 1.3.5 (2017) computed unicast VRRPv3 checksums over the multicast group; XDP and the codec check RFC 5798's only"),
    k(Instance, "native_ipv6", Supported, "the instance is IPv6 and VRRPv3"),
    k(Instance, "state", Supported, "initial state"),
    k(Instance, "interface", Supported, "the interface adverts use"),
    k(Instance, "vrf", Unsupported, "not built yet: the instance's sockets, VIPs and routes are not bound to a VRF"),
    k(Instance, "dont_track_primary", Supported, "the advert interface does not put the instance in FAULT"),
    k(Instance, "track_interface", Supported, "FAULT or weight on a link change"),
    k(Instance, "track_script", Supported, "FAULT or weight from a vrrp_script"),
    k(Instance, "track_file", Supported, "FAULT or weight from a track_file"),
    k(Instance, "track_process", Supported, "FAULT or weight from tracked processes"),
    k(Instance, "track_bfd", Unsupported, "ha-agent runs no BFD: FRR's bfdd with a vrrp_script or track_file on its session state does the same"),
    k(Instance, "mcast_src_ip", Supported, "advert source address"),
    k(Instance, "unicast_src_ip", Supported, "unicast advert source address"),
    k(Instance, "mcast_dst_ip", Supported, "the instance's own multicast group, sent to and checked on receive"),
    k(Instance, "track_src_ip", Supported, "FAULT while the configured source address is not on the interface"),
    k(Instance, "virtual_router_id", Supported, "the VRID"),
    k(Instance, "unicast_ttl", Supported, "TTL / hop limit of adverts to unicast peers"),
    k(Instance, "version", Supported, "VRRP version 2 or 3"),
    k(Instance, "priority", Supported, "priority"),
    k(Instance, "advert_int", Supported, "advert interval"),
    k(Instance, "virtual_ipaddress", Supported, "the VIPs"),
    k(Instance, "virtual_ipaddress_excluded", Supported, "VIPs not in adverts"),
    k(Instance, "promote_secondaries", Supported, "sets the interface's promote_secondaries, restored at stop"),
    k(Instance, "linkbeat_use_polling", Replaced, "link state comes from rtnetlink events, which every driver reports"),
    k(Instance, "virtual_routes", Supported, "routes installed with the VIPs"),
    k(Instance, "virtual_rules", Supported, "rules added with the VIPs on MASTER, removed on leaving it"),
    k(Instance, "accept", Supported, "accept mode on"),
    k(Instance, "no_accept", Supported, "accept mode off: the TC fence drops IP to the VIPs of a non-owner master (not on the socket datapath)"),
    k(Instance, "skip_check_adv_addr", Supported, "adverts' addresses not compared"),
    k(Instance, "strict_mode", Supported, "strict RFC mode for this instance"),
    k(Instance, "preempt", Supported, "preemption on (the default)"),
    k(Instance, "nopreempt", Supported, "no preemption"),
    k(Instance, "preempt_delay", Supported, "delay before preempting"),
    k(Instance, "debug", Replaced, "debug level: `run --log-level`"),
    k(Instance, "notify_backup", Supported, "script on BACKUP"),
    k(Instance, "notify_master", Supported, "script on MASTER"),
    k(Instance, "notify_fault", Supported, "script on FAULT"),
    k(Instance, "notify_stop", Supported, "script on stop"),
    k(Instance, "notify_deleted", Supported, "DELETED (and its script) for an instance a reload removes"),
    k(Instance, "notify", Supported, "script on every state"),
    k(Instance, "notify_master_rx_lower_pri", Supported, "script run when a master hears a lower priority"),
    k(Instance, "smtp_alert", Replaced, EMAIL),
    k(Instance, "notify_priority_changes", Supported, "MASTER_PRIORITY / BACKUP_PRIORITY lines"),
    k(Instance, "lvs_sync_daemon_interface", Replaced, LVS_SYNC),
    k(Instance, "garp_master_delay", Supported, "gratuitous ARP delay after MASTER"),
    k(Instance, "garp_master_refresh", Supported, "gratuitous ARP refresh while MASTER"),
    k(Instance, "garp_master_repeat", Supported, "gratuitous ARPs sent on MASTER"),
    k(Instance, "garp_master_refresh_repeat", Supported, "gratuitous ARPs on each refresh"),
    k(Instance, "garp_lower_prio_delay", Supported, "gratuitous ARP delay on hearing a lower priority"),
    k(Instance, "garp_lower_prio_repeat", Supported, "gratuitous ARPs on hearing a lower priority"),
    k(Instance, "down_timer_adverts", Supported, "adverts in the master-down interval (1-100, default 3)"),
    k(Instance, "garp_extra_if", Unsupported, GARP_EXTRA),
    k(Instance, "vmac_garp_intvl", Unsupported, GARP_EXTRA),
    k(Instance, "lower_prio_no_advert", Supported, "a master answers a lower priority with gratuitous ARPs only"),
    k(Instance, "higher_prio_send_advert", Supported, "a master hearing a higher priority adverts once (ha-agent's default: on)"),
    k(Instance, "kernel_rx_buf_size", Replaced, "advert socket buffers: XDP counts adverts before any socket"),
    k(Instance, "authentication", Supported, "PASS authentication (auth_type, auth_pass)"),
    k(Instance, "v3_checksum_as_v2", Supported, "VRRPv3 checksum without the pseudo-header (newer keepalived)"),
    k(Instance, "no_virtual_ipaddress", Unsupported, "newer keepalived: an instance without VIPs is not accepted as such"),
    k(Instance, "timer_expired_backup", Unsupported, "newer keepalived: not acted on"),
    k(Instance, "thread_timer_expired", Unsupported, "newer keepalived: not acted on"),
    k(Instance, "owner_ignore_adverts", Unsupported, "newer keepalived: an address owner still hears adverts"),
    k(Instance, "auth_hmac", Unsupported, "newer keepalived: HMAC authentication is not checked or sent"),
    // vrrp_sync_group.
    k(SyncGroup, "group", Supported, "the member instances"),
    k(SyncGroup, "track_interface", Supported, "FAULT or weight for every member"),
    k(SyncGroup, "track_script", Supported, "FAULT or weight for every member"),
    k(SyncGroup, "track_file", Supported, "FAULT or weight for every member"),
    k(SyncGroup, "track_process", Supported, "FAULT or weight from tracked processes, for every member"),
    k(SyncGroup, "track_bfd", Unsupported, "ha-agent runs no BFD: FRR's bfdd with a vrrp_script or track_file on its session state does the same"),
    k(SyncGroup, "notify_backup", Supported, "script on BACKUP"),
    k(SyncGroup, "notify_master", Supported, "script on MASTER"),
    k(SyncGroup, "notify_fault", Supported, "script on FAULT"),
    k(SyncGroup, "notify_stop", Supported, "script on stop"),
    k(SyncGroup, "notify", Supported, "script on every state"),
    k(SyncGroup, "smtp_alert", Replaced, EMAIL),
    k(SyncGroup, "global_tracking", Supported, "deprecated: sync_group_tracking_weight"),
    k(SyncGroup, "sync_group_tracking_weight", Supported, "members' tracker weights apply to the group"),
    k(SyncGroup, "notify_priority_changes", Supported, "MASTER_PRIORITY / BACKUP_PRIORITY lines for the members"),
    // virtual_server (check/check_parser.c).
    k(VirtualServer, "ip_family", Supported, "must match the service's address"),
    k(VirtualServer, "retry", Supported, TIMERS),
    k(VirtualServer, "delay_before_retry", Supported, TIMERS),
    k(VirtualServer, "warmup", Supported, TIMERS),
    k(VirtualServer, "connect_timeout", Supported, TIMERS),
    k(VirtualServer, "delay_loop", Supported, TIMERS),
    k(VirtualServer, "inhibit_on_failure", Supported, "the real servers' default: a failed server keeps its flows with weight 0"),
    k(VirtualServer, "lb_algo", Supported, "rr wrr lc wlc sh mh, all placed by a Maglev table (weights honoured); dh lblc lblcr sed nq fo ovf twos refused"),
    k(VirtualServer, "lvs_sched", Supported, "synonym of lb_algo"),
    k(VirtualServer, "hashed", Replaced, "keepalived accepts it and sets no flag"),
    k(VirtualServer, "ops", Unsupported, "one-packet scheduling is not built: every UDP flow stays on its server through the flow table"),
    k(VirtualServer, "flag-1", Supported, "sh/mh fallback: always on, a down server is not in the table"),
    k(VirtualServer, "flag-2", Supported, "sh/mh port: the port is hashed too"),
    k(VirtualServer, "flag-3", Replaced, "IPVS scheduler flag 3 has no meaning for sh or mh"),
    k(VirtualServer, "sh-port", Supported, "the source port is hashed too (sh)"),
    k(VirtualServer, "sh-fallback", Supported, "always on: a down server is not in the table"),
    k(VirtualServer, "mh-port", Supported, "the source port is hashed too (mh)"),
    k(VirtualServer, "mh-fallback", Supported, "always on: a down server is not in the table"),
    k(VirtualServer, "lb_kind", Supported, "DR (destination MAC rewritten) or TUN (IPIP / IP6IP6, `type ipip`); NAT refused: its replies return through the director's stack, which XDP does not rewrite"),
    k(VirtualServer, "lvs_method", Supported, "synonym of lb_kind"),
    k(VirtualServer, "persistence_engine", Unsupported, "persistence engines (sip) are not built: persistence is by client address"),
    k(VirtualServer, "persistence_timeout", Supported, "a client stays on its server this long (bare: 360 s)"),
    k(VirtualServer, "persistence_granularity", Supported, "clients grouped by this netmask (IPv4) or prefix length (IPv6)"),
    k(VirtualServer, "protocol", Supported, "TCP or UDP; SCTP refused"),
    k(VirtualServer, "ha_suspend", Supported, "checkers run only while this node is master of the address"),
    k(VirtualServer, "smtp_alert", Replaced, EMAIL),
    k(VirtualServer, "virtualhost", Supported, "the HTTP_GET / SSL_GET Host header default"),
    k(VirtualServer, "snmp_name", Replaced, SNMP),
    k(VirtualServer, "alpha", Supported, "real servers start down until their checkers succeed"),
    k(VirtualServer, "omega", Supported, "notify_down / quorum_down run when the service is removed"),
    k(VirtualServer, "quorum_up", Supported, "script run when the weight of the servers up reaches quorum + hysteresis"),
    k(VirtualServer, "quorum_down", Supported, "script run when it falls below quorum - hysteresis"),
    k(VirtualServer, "quorum", Supported, "the weight of the servers up below which the sorry server takes over"),
    k(VirtualServer, "hysteresis", Supported, "quorum's margin up and down"),
    k(VirtualServer, "weight", Supported, "the real servers' default weight"),
    k(VirtualServer, "sorry_server", Supported, "takes every new flow while the service is below quorum"),
    k(VirtualServer, "sorry_server_inhibit", Supported, "the sorry server stays in the table with weight 0 when unused"),
    k(VirtualServer, "sorry_server_lvs_method", Supported, "DR or TUN for the sorry server"),
    k(VirtualServer, "real_server", Supported, "a server of the service"),
    // virtual_server_group.
    k(VirtualServerGroup, "fwmark", Unsupported, "XDP runs before netfilter sets marks, so a fwmark service never sees its packets: list the addresses and ports (`IP PORT`, `IP-LAST PORT`)"),
    // real_server.
    k(RealServer, "weight", Supported, "its share of new flows in the Maglev table (0: no new flows)"),
    k(RealServer, "lvs_method", Supported, "DR or TUN for this server"),
    k(RealServer, "uthreshold", Unsupported, "connection limits need per-server connection counts, which the XDP balancer does not keep: ignoring them would send the server more than its limit"),
    k(RealServer, "lthreshold", Unsupported, "connection limits need per-server connection counts, which the XDP balancer does not keep"),
    k(RealServer, "inhibit_on_failure", Supported, "on failure the weight goes to 0 and existing flows stay"),
    k(RealServer, "notify_up", Supported, "script run when the server comes up"),
    k(RealServer, "notify_down", Supported, "script run when the server goes down"),
    k(RealServer, "alpha", Supported, TIMERS),
    k(RealServer, "retry", Supported, TIMERS),
    k(RealServer, "delay_before_retry", Supported, TIMERS),
    k(RealServer, "warmup", Supported, TIMERS),
    k(RealServer, "connect_timeout", Supported, TIMERS),
    k(RealServer, "delay_loop", Supported, TIMERS),
    k(RealServer, "smtp_alert", Replaced, EMAIL),
    k(RealServer, "virtualhost", Supported, "the HTTP_GET / SSL_GET Host header default"),
    k(RealServer, "snmp_name", Replaced, SNMP),
    k(RealServer, "TCP_CHECK", Supported, CHECKER),
    k(RealServer, "HTTP_GET", Supported, CHECKER),
    k(RealServer, "SSL_GET", Supported, CHECKER),
    k(RealServer, "MISC_CHECK", Supported, CHECKER),
    k(RealServer, "PING_CHECK", Supported, CHECKER),
    k(RealServer, "UDP_CHECK", Supported, CHECKER),
    k(RealServer, "DNS_CHECK", Supported, CHECKER),
    k(RealServer, "SMTP_CHECK", Supported, CHECKER),
    k(RealServer, "FILE_CHECK", Supported, CHECKER),
    // Every checker (check/check_api.c; MISC_CHECK and FILE_CHECK have no connect_*, bind*).
    k(Checker, "connect_ip", Supported, "the address checked (default the real server's)"),
    k(Checker, "connect_port", Supported, "the port checked (default the real server's)"),
    k(Checker, "bindto", Supported, "the checker's source address"),
    k(Checker, "bind_port", Supported, "the checker's source port"),
    k(Checker, "bind_if", Supported, "the interface of a link-local bindto"),
    k(Checker, "connect_timeout", Supported, TIMERS),
    k(Checker, "fwmark", Unsupported, "the checkers do not mark their packets"),
    k(Checker, "retry", Supported, TIMERS),
    k(Checker, "delay_before_retry", Supported, TIMERS),
    k(Checker, "warmup", Supported, TIMERS),
    k(Checker, "delay_loop", Supported, TIMERS),
    k(Checker, "alpha", Supported, TIMERS),
    k(Checker, "log_all_failures", Supported, "every failed attempt is logged, not only changes"),
    // HTTP_GET / SSL_GET (check/check_http.c).
    k(HttpGet, "nb_get_retry", Supported, "deprecated: retry"),
    k(HttpGet, "virtualhost", Supported, "the Host header"),
    k(HttpGet, "http_protocol", Supported, "1.0, 1.0C (Connection: close) or 1.1"),
    k(HttpGet, "enable_sni", Supported, "SSL_GET sends the virtualhost as SNI"),
    k(HttpGet, "fast_recovery", Unsupported, "newer keepalived: not acted on"),
    k(HttpGet, "url", Supported, "a URL checked (path, digest, status_code, virtualhost, regex)"),
    k(Url, "path", Supported, "the path requested"),
    k(Url, "digest", Supported, "MD5 of the body"),
    k(Url, "status_code", Supported, "codes and ranges accepted (default 2xx)"),
    k(Url, "virtualhost", Supported, "the Host header of this URL"),
    k(Url, "regex", Supported, "the body must match (a Rust regex)"),
    k(Url, "regex_no_match", Supported, "the body must not match"),
    k(Url, "regex_options", Unsupported, "PCRE options are not applied to the Rust regex: write them inline (`(?i)`)"),
    k(Url, "regex_min_offset", Unsupported, "the regex is matched over the whole body"),
    k(Url, "regex_max_offset", Unsupported, "the regex is matched over the whole body"),
    k(Url, "regex_stack", Replaced, "PCRE's JIT stack size: the Rust regex needs none"),
    // MISC_CHECK (check/check_misc.c).
    k(MiscCheck, "misc_path", Supported, "the command run; exit 0 is up"),
    k(MiscCheck, "misc_timeout", Supported, "the command's time limit (default delay_loop)"),
    k(MiscCheck, "misc_dynamic", Supported, "exit 2-255 sets the weight to the code - 2"),
    k(MiscCheck, "user", Supported, "the user the command runs as (default script_user)"),
    // UDP_CHECK (check/check_udp.c).
    k(UdpCheck, "payload", Supported, "the datagram sent (hex)"),
    k(UdpCheck, "require_reply", Supported, "a reply is needed, matching the hex when given"),
    k(UdpCheck, "min_reply_length", Supported, "the shortest reply accepted"),
    k(UdpCheck, "max_reply_length", Supported, "the longest reply accepted"),
    // DNS_CHECK (check/check_dns.c).
    k(DnsCheck, "type", Supported, "the record type asked (default SOA)"),
    k(DnsCheck, "name", Supported, "the name asked (default .)"),
    // SMTP_CHECK (check/check_smtp.c).
    k(SmtpCheck, "helo_name", Supported, "the HELO name"),
    k(SmtpCheck, "host", Unsupported, "several hosts per SMTP_CHECK are not built: write one SMTP_CHECK per host with connect_ip"),
    // FILE_CHECK (check/check_file.c).
    k(FileCheck, "track_file", Supported, "the root track_file it reads"),
    k(FileCheck, "weight", Supported, "the value times this adjusts the weight (default the track_file's)"),
    // SSL (check/check_parser.c).
    k(Ssl, "password", Unsupported, TLS_FILES),
    k(Ssl, "ca", Unsupported, TLS_FILES),
    k(Ssl, "certificate", Unsupported, TLS_FILES),
    k(Ssl, "key", Unsupported, TLS_FILES),
];

/// The table's entry for `name` in `ctx`.
pub(crate) fn lookup(ctx: Context, name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|kw| kw.ctx == ctx && kw.name == name)
}

/// The keyword of `ctx` nearest to `word` (a typo), if one is near enough to be meant.
pub(crate) fn nearest(ctx: Context, word: &str) -> Option<&'static str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    KEYWORDS
        .iter()
        .filter(|kw| kw.ctx == ctx)
        .map(|kw| (edit_distance(word, kw.name), kw.name))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Edit distance in characters, a swap of two neighbours counting as one edit (optimal string
/// alignment): "gruop" is one edit from "group".
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The README's section between these markers is [`render_markdown`]'s output.
#[cfg(test)]
const README_BEGIN: &str = "<!-- keywords:begin (generated by `cargo xtask keywords` from ha-agent/src/config/keywords.rs) -->";
#[cfg(test)]
const README_END: &str = "<!-- keywords:end -->";

impl Context {
    /// Where a keyword of this context is written, in keepalived's words (`code`: they are
    /// keepalived's block names, set as code in the README and in bold in the man page).
    fn place(self) -> (&'static str, bool) {
        match self {
            Root => ("top level", false),
            Global => ("global_defs", true),
            Instance => ("vrrp_instance", true),
            SyncGroup => ("vrrp_sync_group", true),
            VirtualServer => ("virtual_server", true),
            VirtualServerGroup => ("virtual_server_group", true),
            RealServer => ("real_server", true),
            Checker => ("every checker", false),
            HttpGet => ("HTTP_GET / SSL_GET", true),
            Url => ("url", true),
            MiscCheck => ("MISC_CHECK", true),
            UdpCheck => ("UDP_CHECK", true),
            DnsCheck => ("DNS_CHECK", true),
            SmtpCheck => ("SMTP_CHECK", true),
            FileCheck => ("FILE_CHECK", true),
            Ssl => ("SSL", true),
        }
    }
}

/// The table "keepalived keyword → ha-agent", as Markdown (only the README test and
/// `cargo xtask keywords`, which runs it, need it).
#[cfg(test)]
fn render_markdown() -> String {
    let mut out =
        String::from("| keepalived keyword | where | ha-agent | why |\n|---|---|---|---|\n");
    for kw in KEYWORDS {
        let ctx = match kw.ctx.place() {
            (place, false) => place.to_string(),
            (place, true) => place
                .split(" / ")
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(" / "),
        };
        let status = match kw.status {
            Supported => "supported",
            Unsupported => "**refused** (`--allow-unsupported`: ignored)",
            Replaced => "ignored, warning",
            Lvs => "**refused**, LVS (`--allow-unsupported`: ignored)",
        };
        out.push_str(&format!(
            "| `{}` | {ctx} | {status} | {} |\n",
            kw.name, kw.reason
        ));
    }
    out
}

/// The same table for ha-agent.conf(5): one subsection per context, in the table's order (the
/// README's order), each keyword a tagged paragraph whose first word is its status: `supported`,
/// `refused` or `ignored`. `roff` escapes the text; `code` spans become bold.
pub(crate) fn render_roff(page: &mut roff::Roff) {
    let mut current = None;
    for kw in KEYWORDS {
        if current != Some(kw.ctx) {
            current = Some(kw.ctx);
            let heading = match kw.ctx.place() {
                (place, true) => place.to_string(),
                (place, false) => format!("{}{}", place[..1].to_uppercase(), &place[1..]),
            };
            page.control("SS", [heading.as_str()]);
        }
        page.control("TP", []);
        page.text([roff::bold(kw.name)]);
        let status = match kw.status {
            Supported => "supported: ",
            Unsupported => "refused (ignored with a warning under --allow-unsupported): ",
            Replaced => "ignored, with a warning: ",
            Lvs => "refused, LVS (ignored with a warning under --allow-unsupported): ",
        };
        let mut line = vec![roff::roman(status)];
        line.extend(code_spans(kw.reason));
        page.text(line);
    }
}

/// `text` with its `code` spans in bold, the rest roman.
pub(crate) fn code_spans(text: &str) -> Vec<roff::Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| {
            if i % 2 == 1 {
                roff::bold(part)
            } else {
                roff::roman(part)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_keyword_and_context() {
        for (i, a) in KEYWORDS.iter().enumerate() {
            assert!(
                !KEYWORDS[..i]
                    .iter()
                    .any(|b| b.ctx == a.ctx && b.name == a.name),
                "{} twice in {:?}",
                a.name,
                a.ctx
            );
            assert!(!a.reason.is_empty(), "{} has no reason", a.name);
        }
    }

    #[test]
    fn typos_suggest_the_nearest_keyword_of_their_context() {
        assert_eq!(
            nearest(Instance, "virtual_routr_id"),
            Some("virtual_router_id")
        );
        assert_eq!(nearest(Instance, "priorty"), Some("priority"));
        assert_eq!(nearest(Global, "router_idd"), Some("router_id"));
        assert_eq!(nearest(SyncGroup, "gruop"), Some("group"));
        assert_eq!(nearest(Instance, "completely_else"), None);
        // A keyword of another context is not offered.
        assert_eq!(nearest(Root, "priorty"), None);
    }

    /// The builder and the table agree: a supported keyword is read by an arm of its block, an
    /// unsupported one is refused naming --allow-unsupported, a replaced one is a warning.
    #[test]
    fn builder_follows_the_table() {
        for kw in KEYWORDS {
            // The keyword on line 2 (1 at top level), in a block that is otherwise valid.
            let v = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n";
            let w = "vrrp_instance W {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress { 10.0.0.2 }\n}\n";
            // The LVS blocks: a service on V's address; the keyword at `at`.
            let vs = |inner: &str| {
                format!(
                    "{v}virtual_server 10.0.0.1 80 {{\n lb_kind DR\n real_server 10.0.0.11 80 {{\n{inner}\n }}\n}}\n"
                )
            };
            let check = |open: &str, extra: &str| {
                vs(&format!("  {open} {{\n   {} x\n{extra}  }}", kw.name))
            };
            let (text, line) = match kw.ctx {
                Root => (format!("{} x {{\n}}\n", kw.name), 1),
                Global if kw.name == "notification_email" => (
                    "global_defs {\n notification_email { a@example.org }\n}\n".to_string(),
                    2,
                ),
                Global => (format!("global_defs {{\n {} x\n}}\n", kw.name), 2),
                Instance => (
                    format!(
                        "vrrp_instance V {{\n {} x\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{ 10.0.0.1 }}\n}}\n",
                        kw.name
                    ),
                    2,
                ),
                SyncGroup => (
                    format!(
                        "vrrp_sync_group G {{\n {} x\n group {{ V W }}\n}}\n{v}{w}",
                        kw.name
                    ),
                    2,
                ),
                VirtualServer => (
                    format!(
                        "{v}virtual_server 10.0.0.1 80 {{\n {} x\n lb_kind DR\n real_server 10.0.0.11 80\n}}\n",
                        kw.name
                    ),
                    7,
                ),
                VirtualServerGroup => (
                    format!(
                        "{v}virtual_server_group G {{\n {} x\n 10.0.0.1 80\n}}\nvirtual_server group G {{\n lb_kind DR\n real_server 10.0.0.11 80\n}}\n",
                        kw.name
                    ),
                    7,
                ),
                RealServer => (vs(&format!("  {} x", kw.name)), 9),
                Checker => (check("TCP_CHECK", ""), 10),
                HttpGet => (check("HTTP_GET", "   url {\n    path /\n   }\n"), 10),
                Url => (
                    check("HTTP_GET", "").replace(
                        &format!("   {} x\n", kw.name),
                        &format!("   url {{\n    path /\n    {} x\n   }}\n", kw.name),
                    ),
                    12,
                ),
                MiscCheck => (check("MISC_CHECK", "   misc_path /bin/true\n"), 10),
                UdpCheck => (check("UDP_CHECK", ""), 10),
                DnsCheck => (check("DNS_CHECK", ""), 10),
                SmtpCheck => (check("SMTP_CHECK", ""), 10),
                FileCheck => (
                    format!(
                        "track_file f {{\n file /tmp/f\n}}\n{}",
                        check("FILE_CHECK", "   track_file f\n")
                    ),
                    13,
                ),
                Ssl => (format!("SSL {{\n {} x\n}}\n", kw.name), 2),
            };
            let path = std::path::Path::new("/nonexistent/keepalived.conf");
            let (errors, warnings) = match crate::config::parse_str(&text, path) {
                Ok(l) => (Vec::new(), l.warnings),
                Err(e) => (e.errors, Vec::new()),
            };
            let said = |list: &[crate::config::Diagnostic], what: &str| {
                list.iter()
                    .any(|d| d.line == line && d.message.contains(what))
            };
            match kw.status {
                Supported => assert!(
                    !said(&errors, "unknown keyword")
                        && !said(&errors, "listed as supported")
                        && !said(&errors, "--allow-unsupported")
                        && !said(&warnings, "not used by ha-agent"),
                    "{:?} {}: not read by the builder: {errors:?}",
                    kw.ctx,
                    kw.name
                ),
                Unsupported | Lvs => assert!(
                    said(&errors, "--allow-unsupported"),
                    "{:?} {}: not refused: {errors:?}",
                    kw.ctx,
                    kw.name
                ),
                Replaced => assert!(
                    said(&warnings, "parsed but not used"),
                    "{:?} {}: no warning: {errors:?} {warnings:?}",
                    kw.ctx,
                    kw.name
                ),
            }
        }
    }

    /// ha-agent.conf(5) has every keyword of the table, once, under its context's heading, and
    /// its entry starts with its status word; it has no keyword the table lacks.
    #[test]
    fn man_page_has_every_keyword_with_its_status() {
        let mut page = roff::Roff::new();
        render_roff(&mut page);
        let text = page.to_roff();
        // (heading, keyword as roff wrote it, the text of its entry) for each `.TP` entry.
        let mut entries = Vec::new();
        for section in text.split(".SS ").skip(1) {
            let (heading, body) = section.split_once('\n').expect("a heading line");
            for entry in body.split(".TP\n").skip(1) {
                let mut lines = entry.lines();
                let name = lines.next().expect("the keyword line");
                entries.push((
                    heading.trim_matches('"').to_string(),
                    name.to_string(),
                    lines.collect::<Vec<_>>().join(" "),
                ));
            }
        }
        assert_eq!(entries.len(), KEYWORDS.len(), "one entry per keyword");
        for (kw, (heading, name, said)) in KEYWORDS.iter().zip(&entries) {
            let (place, _) = kw.ctx.place();
            assert!(
                heading.eq_ignore_ascii_case(place),
                "{} is under {heading:?}, not {place:?}",
                kw.name
            );
            // roff escapes `-` as `\-`; keyword names have no other character it escapes.
            assert_eq!(*name, format!("\\fB{}\\fR", kw.name.replace('-', "\\-")));
            let word = match kw.status {
                Supported => "supported:",
                Unsupported => "refused (",
                Replaced => "ignored,",
                Lvs => "refused, LVS",
            };
            assert!(
                said.starts_with(word),
                "{:?} {}: {said:?} does not start with {word:?}",
                kw.ctx,
                kw.name
            );
        }
    }

    /// README.md's section between the markers is the renderer's output; with
    /// HA_AGENT_UPDATE_README=1 (what `cargo xtask keywords` sets) it is rewritten instead.
    #[test]
    fn readme_keyword_table_is_generated() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let (Some(b), Some(e)) = (readme.find(README_BEGIN), readme.find(README_END)) else {
            panic!("README.md lacks the markers {README_BEGIN} … {README_END}");
        };
        let start = b + README_BEGIN.len();
        let want = format!("\n{}", render_markdown());
        if std::env::var_os("HA_AGENT_UPDATE_README").is_some() {
            let new = format!("{}{want}{}", &readme[..start], &readme[e..]);
            std::fs::write(path, new).expect("writing README.md");
        } else {
            assert!(
                readme[start..e] == want,
                "README.md's keyword table differs from config/keywords.rs: run `cargo xtask keywords`"
            );
        }
    }
}
