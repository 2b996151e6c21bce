//! The typed configuration, with keepalived's defaults and fix-ups already applied.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

// The protocol's own types: one Version and one Family from the config to the wire.
pub use crate::vrrp::types::{Family, Version};

/// Where something is written: the file, line and column (1-based, in characters) of its
/// first word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A place where the configuration names an interface, so that one the host lacks is reported
/// where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRef {
    pub name: String,
    /// The name itself, e.g. the word after `interface`.
    pub at: Source,
    /// What names it: `vrrp_instance VI_1: interface`, `… track_interface`, `… dev`.
    pub what: String,
}

/// The VRRP part of a keepalived.conf.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub global: GlobalDefs,
    pub scripts: Vec<VrrpScript>,
    pub track_files: Vec<TrackFile>,
    pub track_processes: Vec<TrackProcess>,
    pub instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    /// Every interface name written in the file, in file order.
    pub interface_refs: Vec<InterfaceRef>,
    /// How the file was read (`--config-id`, `--allow-unsupported`): a reload reads it the same way.
    pub read_options: super::ReadOptions,
    /// `static_ipaddress`, `static_routes`, `static_rules`: set at start, removed at stop.
    pub statics: Statics,
    /// `virtual_server`s (keepalived's LVS half), served by the XDP load balancer.
    pub lvs: super::lvs::Lvs,
}

/// The root blocks keepalived sets at start whatever the VRRP state, and removes at stop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statics {
    pub addresses: Vec<VirtualAddress>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

impl Config {
    /// Where interface `name` is first named.
    pub fn interface_ref(&self, name: &str) -> Option<&InterfaceRef> {
        self.interface_refs.iter().find(|r| r.name == name)
    }

    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }

    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|f| f.name == name)
    }

    pub fn track_process(&self, name: &str) -> Option<&TrackProcess> {
        self.track_processes.iter().find(|p| p.name == name)
    }

    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == instance))
    }
}

/// `global_defs`: the keys that matter to VRRP. Defaults from keepalived/core/global_data.c
/// `set_vrrp_defaults` and `set_default_mcast_group`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDefs {
    /// `router_id`; keepalived defaults it to the host name at run time.
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2): the version of instances that set none and are IPv4.
    pub vrrp_version: Version,
    /// `vrrp_mcast_group4` (default 224.0.0.18).
    pub vrrp_mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6` (default ff02::12).
    pub vrrp_mcast_group6: Ipv6Addr,
    /// `vrrp_garp_master_delay` (default 5 s): instances' `garp_master_delay` default.
    pub vrrp_garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat` (default 5).
    pub vrrp_garp_master_repeat: u32,
    /// `vrrp_garp_master_refresh` (default 0: no refresh).
    pub vrrp_garp_master_refresh: Duration,
    /// `vrrp_garp_master_refresh_repeat` (default 1).
    pub vrrp_garp_master_refresh_repeat: u32,
    /// `vrrp_garp_lower_prio_delay`; unset means `vrrp_garp_master_delay`, as keepalived (0 for
    /// instances in strict mode).
    pub vrrp_garp_lower_prio_delay: Option<Duration>,
    /// `vrrp_garp_lower_prio_repeat`; unset means `vrrp_garp_master_repeat` (as above).
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_lower_prio_no_advert`: the instances' `lower_prio_no_advert` default (false).
    pub vrrp_lower_prio_no_advert: bool,
    /// `vrrp_higher_prio_send_advert`: the instances' `higher_prio_send_advert` default. **On in
    /// ha-agent** (keepalived: off): without it a healed partition can leave clients on the
    /// node that stepped down for seconds (see `VrrpInstance::higher_prio_send_advert`).
    pub vrrp_higher_prio_send_advert: bool,
    /// `vrrp_garp_interval` (default 0): delay between gratuitous ARPs on one interface.
    pub vrrp_garp_interval: Duration,
    /// `vrrp_gna_interval` (default 0): delay between unsolicited neighbour adverts.
    pub vrrp_gna_interval: Duration,
    /// Root `garp_group` blocks: their interfaces' spacing instead of the two above.
    pub garp_groups: Vec<GarpGroup>,
    /// Root `interface_up_down_delays`: links whose changes are acted on only after a delay.
    pub link_delays: Vec<LinkDelay>,
    /// `vrrp_skip_check_adv_addr`: don't check the addresses in adverts from the current master.
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_strict`: RFC conformance (no auth, no unicast, owner must be master, …).
    pub vrrp_strict: bool,
    /// `vrrp_check_unicast_src`: drop unicast adverts not from a configured peer.
    pub vrrp_check_unicast_src: bool,
    /// `vrrp_down_timer_adverts` (default 3, 1-100): the instances' `down_timer_adverts`.
    pub vrrp_down_timer_adverts: u8,
    /// `disable_local_igmp`: no IGMP reports for link-local groups while the agent runs.
    pub disable_local_igmp: bool,
    /// `vrrp_startup_delay` (default 0): after the daemon starts (not after a reload), no backup
    /// takes over before this delay plus its Master_Down_Interval (keepalived vrrp_scheduler.c
    /// `vrrp_init_instance_sands`), so a booting node does not grab VIPs before its links settle.
    pub vrrp_startup_delay: Duration,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<ScriptUser>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `startup_script CMD [USER [GROUP]]` / `startup_script_timeout` (default 10s): run and
    /// waited for before anything starts (keepalived core/main.c `run_startup_script`).
    pub startup_script: Option<NotifyScript>,
    pub startup_script_timeout: Duration,
    /// `shutdown_script CMD [USER [GROUP]]` / `shutdown_script_timeout` (default 10s): run and
    /// waited for once the instances are stopped and their VIPs removed.
    pub shutdown_script: Option<NotifyScript>,
    pub shutdown_script_timeout: Duration,
    /// `default_interface IF` (unset: keepalived's `eth0`): the `dev` of a `static_ipaddress`
    /// line without one (keepalived vrrp_ipaddress.c `get_default_if`).
    pub default_interface: Option<String>,
    /// `process_monitor_rcv_bufs` (track_process's connector socket; unset: ha-agent's 1 MiB)
    /// and `process_monitor_rcv_bufs_force` (SO_RCVBUFFORCE: above net.core.rmem_max).
    pub process_monitor_rcv_bufs: Option<u32>,
    pub process_monitor_rcv_bufs_force: bool,
    /// Notification email settings: parsed, reported as not used (ha-agent sends no mail).
    pub email: EmailSettings,
    /// `vmac_prefix`: the start of generated `use_vmac` interface names (unset: `vrrp`).
    pub vmac_prefix: Option<String>,
    /// `vmac_addr_prefix`: the same for `use_vmac_addr`'s macvlans (unset: `vmac_prefix`).
    pub vmac_addr_prefix: Option<String>,
    /// `notify_fifo` / `notify_fifo_script`.
    pub notify_fifo: NotifyFifo,
    /// `vrrp_notify_fifo` / `vrrp_notify_fifo_script`: the same lines, in a second FIFO.
    pub vrrp_notify_fifo: NotifyFifo,
    /// `vrrp_notify_priority_changes`: the default of the instances' `notify_priority_changes`.
    pub vrrp_notify_priority_changes: bool,
    /// `fifo_write_vrrp_states_on_reload`: after a reload, every kept instance's and group's
    /// state is written to the FIFOs again.
    pub fifo_write_vrrp_states_on_reload: bool,
    /// `net_namespace NAME` (top level): the agent enters /run/netns/NAME before it reads or
    /// touches any interface, as keepalived.
    pub net_namespace: Option<NetNamespace>,
    /// `instance NAME` (top level): names the agent's files, as keepalived's pid files
    /// (`keepalived_NAME.pid`): the default control socket is /run/ha-agent/NAME.sock and the
    /// default pid file /run/ha-agent/NAME.pid.
    pub instance: Option<String>,
}

/// A root `garp_group` (keepalived's `garp_delay_t`): interfaces that share one pace of
/// gratuitous ARPs and one of NAs, e.g. VLANs on one NIC. An interval not given is 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GarpGroup {
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    pub interfaces: Vec<String>,
}

/// One line of `interface_up_down_delays`: `IF DOWN_DELAY [UP_DELAY]` (an up delay not given
/// is 0, as keepalived's code; its man page says "the same as the down delay"). A change of
/// the link is acted on once it has lasted this long; a shorter flap is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDelay {
    pub interface: String,
    pub down: Duration,
    pub up: Duration,
}

/// `net_namespace NAME`, with where it is written (the error when the host lacks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNamespace {
    pub name: String,
    pub at: Source,
}

/// A notify FIFO (keepalived core/notify.c `fifo_open`): created if absent (and removed at
/// exit), opened read-write, the script started with the FIFO's path as last argument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyFifo {
    /// `notify_fifo PATH`; a script without a path is unused, as in keepalived.
    pub path: Option<PathBuf>,
    /// `notify_fifo PATH USER [GROUP]`: who owns the FIFO it creates.
    pub owner: Option<ScriptUser>,
    /// `notify_fifo_script "COMMAND" [USER [GROUP]]`.
    pub script: Option<NotifyScript>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_version: Version::V2,
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            vrrp_garp_master_delay: Duration::from_secs(5),
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: Duration::ZERO,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_lower_prio_delay: None,
            vrrp_garp_lower_prio_repeat: None,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: true,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            garp_groups: Vec::new(),
            link_delays: Vec::new(),
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_check_unicast_src: false,
            vrrp_down_timer_adverts: 3,
            vrrp_startup_delay: Duration::ZERO,
            disable_local_igmp: false,
            script_user: None,
            enable_script_security: false,
            startup_script: None,
            startup_script_timeout: Duration::from_secs(10),
            shutdown_script: None,
            shutdown_script_timeout: Duration::from_secs(10),
            default_interface: None,
            process_monitor_rcv_bufs: None,
            process_monitor_rcv_bufs_force: false,
            email: EmailSettings::default(),
            notify_fifo: NotifyFifo::default(),
            vrrp_notify_fifo: NotifyFifo::default(),
            vrrp_notify_priority_changes: false,
            fifo_write_vrrp_states_on_reload: false,
            net_namespace: None,
            instance: None,
            vmac_prefix: None,
            vmac_addr_prefix: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailSettings {
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
    /// Where the user is named, for the error when the host lacks it.
    pub at: Source,
}

/// Two users are the same when they name the same user and group, wherever written: a notify
/// line that only moved does not change its instance on reload.
impl PartialEq for ScriptUser {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user && self.group == other.group
    }
}

impl Eq for ScriptUser {}

/// `vrrp_script NAME { … }`. Defaults from keepalived/vrrp/vrrp_data.c `alloc_vrrp_script`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    pub name: String,
    pub source: Source,
    /// `script`: the command split into argv as keepalived splits it.
    pub command: Vec<String>,
    /// `interval` (default 1 s).
    pub interval: Duration,
    /// `timeout`; unset (0) means the interval (keepalived vrrp_scheduler.c), resolved here.
    pub timeout: Duration,
    /// `weight` (default 0: a failing script puts the instance in FAULT).
    pub weight: i32,
    /// `weight N reverse`.
    pub weight_reverse: bool,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// `user USER [GROUP]`; unset means the global `script_user`.
    pub user: Option<ScriptUser>,
    /// `init_fail`: the script starts in the failed state.
    pub init_fail: bool,
}

/// `track_file NAME { … }` (or its older name `vrrp_track_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub name: String,
    pub source: Source,
    /// `file PATH`.
    pub file: PathBuf,
    /// `weight N [reverse]` (default 1: the value in the file times 1).
    pub weight: i32,
    pub weight_reverse: bool,
    /// `init_file [VALUE] [overwrite]`: create the file at start.
    pub init_file: Option<TrackFileInit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFileInit {
    pub value: i32,
    pub overwrite: bool,
}

/// `vrrp_track_process NAME { … }`: how many processes of a name run (keepalived's
/// `vrrp_tracked_process_t`, defaults from vrrp_data.c `alloc_vrrp_process`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProcess {
    pub name: String,
    pub source: Source,
    /// `process NAME [PARAM…]`: the name a process must have (its comm, or its argv[0] with
    /// `full_command`), exactly.
    pub process: String,
    /// The parameters after the name: matched as `param_match` says.
    pub params: Vec<String>,
    pub param_match: ParamMatch,
    /// `full_command` (or parameters, or `param_match`): match /proc/PID/cmdline, not comm.
    pub full_command: bool,
    /// `weight N [reverse]` (default 0: down is FAULT).
    pub weight: i32,
    pub weight_reverse: bool,
    /// `quorum` (default 1): at least this many processes for up.
    pub quorum: u32,
    /// `quorum_max` (default unlimited): at most this many for up.
    pub quorum_max: u32,
    /// `fork_delay` (or `delay`): quorum gained by a fork counts after this long.
    pub fork_delay: Duration,
    /// `terminate_delay` (or `delay`): quorum lost by an exit counts after this long.
    pub terminate_delay: Duration,
}

/// `param_match`: how a process's parameters are compared (track_process.c `check_params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMatch {
    /// Parameters are not looked at.
    None,
    /// The parameters are exactly the configured ones (none if none are configured).
    Exact,
    /// The first parameters are the configured ones.
    Partial,
    /// As `Partial`, and the last configured one may be the start of the process's.
    Initial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Master,
    Backup,
}

/// `authentication { auth_type PASS; auth_pass … }` (VRRPv2 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The password as sent: at most 8 bytes (keepalived truncates longer ones).
    pub pass: Vec<u8>,
}

/// One line of `virtual_ipaddress` / `virtual_ipaddress_excluded`
/// (keepalived/vrrp/vrrp_ipaddress.c `alloc_ipaddress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    /// `/prefix` (default 32 or 128).
    pub prefix_len: u8,
    /// `dev IFNAME`; unset means the instance's interface.
    pub dev: Option<String>,
    /// `brd ADDR|+|-` resolved to an address (IPv4 only).
    pub broadcast: Option<Ipv4Addr>,
    /// `scope global|site|link|host|nowhere|N` (IPv4 only).
    pub scope: Option<u8>,
    /// `label NAME` (IPv4 only).
    pub label: Option<String>,
    /// `peer ADDR[/len]`: `prefix_len` is then the peer's.
    pub peer: Option<IpAddr>,
    /// `no_track`: the address's interface going down does not fault the instance (without
    /// it, a VIP on another interface than the instance's makes the instance track that
    /// interface, as keepalived does).
    pub no_track: bool,
    /// `home`, `-nodad`, `mngtmpaddr`, `noprefixroute`, `autojoin` as written, each once. On
    /// an IPv4 address only `noprefixroute` and `autojoin` are kept (the IPv6 ones are dropped
    /// with a warning).
    pub flags: Vec<String>,
    /// `preferred_lft N|forever` (forever is `u32::MAX`), IPv6 only: keepalived ignores it on
    /// IPv4, and so do we, with a warning. Unset, an IPv6 VIP gets keepalived's default when
    /// it is placed: 0 (deprecated) for a /128, forever otherwise.
    pub preferred_lft: Option<u32>,
    /// `use_vmac`: on another interface (`dev`) or of the other family, this VIP gets a
    /// macvlan of its own, as with the instance's `use_vmac_addr`.
    pub use_vmac: bool,
}

/// A route of `virtual_routes` or `static_routes`, as keepalived reads it
/// (keepalived/vrrp/vrrp_iproute.c `alloc_route`): `ip route` words, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where the line starts.
    pub source: Source,
    pub family: Family,
    /// `unicast` (default), `blackhole`, `unreachable`, `prohibit`, `throw`.
    pub kind: RouteKind,
    /// Destination and prefix length (`default`: the family's 0/0).
    pub dst: IpAddr,
    pub dst_len: u8,
    /// `from ADDR[/LEN]`: source prefix (`RTA_SRC`), IPv6 only as in keepalived.
    pub from: Option<(IpAddr, u8)>,
    /// `src ADDR`: the preferred source (`RTA_PREFSRC`).
    pub src: Option<IpAddr>,
    /// `via ADDR` (or the deprecated `gw`).
    pub via: Option<IpAddr>,
    /// `dev IF` / `oif IF`.
    pub dev: Option<String>,
    /// `table N|NAME` (default main, 254).
    pub table: u32,
    /// `metric|priority|preference N`.
    pub metric: Option<u32>,
    /// `scope S`; unset: as `ip route` (link for a device route without gateway, else global).
    pub scope: Option<u8>,
    /// `protocol P`; keepalived's own (18) unless set with `no_track`.
    pub protocol: u8,
    /// `onlink`.
    pub onlink: bool,
    /// `tos|dsfield N`.
    pub tos: u8,
    /// `realms [SRC/]DST` as the kernel keeps it: SRC << 16 | DST (IPv4, `RTA_FLOW`).
    pub realms: Option<u32>,
    /// `pref low|medium|high|N` (IPv6 router preference, `RTA_PREF`).
    pub pref: Option<u8>,
    /// `expires N` seconds (IPv6, `RTA_EXPIRES`).
    pub expires: Option<u32>,
    /// `mtu [lock] N`, `advmss N`, … (`RTA_METRICS`).
    pub metrics: Vec<RouteMetric>,
    /// `congctl [lock] NAME` (`RTAX_CC_ALGO`).
    pub congctl: Option<(String, bool)>,
    /// `nexthop via ADDR [dev IF] [weight N] [onlink] …`, or the two gateways of `via A or B`.
    pub nexthops: Vec<Nexthop>,
    /// `prepend` (keepalived's default), `append` or `add`: how it goes in beside other
    /// routes to the same destination.
    pub add_mode: RouteAddMode,
    /// `no_track`.
    pub no_track: bool,
}

/// How a route is added where routes to the same destination, type of service and metric
/// exist (`ip route prepend|append|add`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteAddMode {
    /// In front of them (keepalived's default: `NLM_F_CREATE` alone).
    #[default]
    Prepend,
    /// Behind them (`NLM_F_APPEND`).
    Append,
    /// Not at all (`NLM_F_EXCL`).
    Exclusive,
}

/// `rtm_type` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// One `RTAX_*` route metric: which, its value, and whether it is `lock`ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMetric {
    pub name: MetricName,
    pub value: u32,
    pub lock: bool,
}

/// The `RTAX_*` metrics a route line may set, with an integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricName {
    Mtu,
    Advmss,
    Hoplimit,
    Window,
    Cwnd,
    Initcwnd,
    Initrwnd,
    Ssthresh,
    Reordering,
    Quickack,
    FastopenNoCookie,
    /// In the kernel's units: 1/8 ms.
    Rtt,
    /// In the kernel's units: 1/4 ms.
    Rttvar,
    /// In ms.
    RtoMin,
    /// `features ecn`: `RTAX_FEATURE_ECN`.
    Features,
}

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nexthop {
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// `weight N` (1-256).
    pub weight: Option<u16>,
    pub onlink: bool,
}

/// A rule of `virtual_rules` or `static_rules` (keepalived/vrrp/vrrp_iprule.c `alloc_rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Source,
    pub family: Family,
    /// `from ADDR[/LEN]` (`all` is 0/0).
    pub from: Option<(IpAddr, u8)>,
    /// `to ADDR[/LEN]`.
    pub to: Option<(IpAddr, u8)>,
    pub action: RuleAction,
    /// `preference|priority|order N`; unset, keepalived's count down from 16384, with a warning.
    pub priority: u32,
    /// `not`.
    pub invert: bool,
    /// `fwmark N[/MASK]`.
    pub fwmark: Option<(u32, Option<u32>)>,
    /// `tos|dsfield N`.
    pub tos: u8,
    /// `iif IF` / `dev IF`.
    pub iif: Option<String>,
    /// `oif IF`.
    pub oif: Option<String>,
    /// keepalived's own (18) unless `no_track` (then none).
    pub protocol: Option<u8>,
    /// `realms [SRC/]DST`: SRC << 16 | DST (IPv4).
    pub realms: Option<u32>,
    /// `suppress_prefixlength|sup_pl N`.
    pub suppress_prefixlen: Option<u32>,
    /// `suppress_ifgroup|sup_group N`.
    pub suppress_ifgroup: Option<u32>,
    /// `tunnel-id N`.
    pub tunnel_id: Option<u64>,
    /// `uidrange A-B`.
    pub uid_range: Option<(u32, u32)>,
    /// `ipproto tcp|udp|icmp|…|N`.
    pub ip_proto: Option<u8>,
    /// `sport N[-M]`, `dport N[-M]`.
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub no_track: bool,
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// `table|lookup N`.
    Table(u32),
    /// `l3mdev`: the table of the VRF device the packet came in or goes out on.
    L3mdev,
    /// `goto N`.
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    /// `min_ttl N` (default 0): adverts from this peer with a lower TTL / hop limit are dropped.
    pub min_ttl: u8,
    /// `max_ttl N` (default 255): adverts with a higher one are dropped.
    pub max_ttl: u8,
}

/// A tracker reference with its effective weight (a script's or file's own weight unless
/// overridden on the reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

/// A notify command: argv and the optional `USER [GROUP]` after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyScript {
    pub command: Vec<String>,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify`: called with `INSTANCE|GROUP NAME STATE PRIORITY`.
    pub notify: Option<NotifyScript>,
    pub master: Option<NotifyScript>,
    pub backup: Option<NotifyScript>,
    pub fault: Option<NotifyScript>,
    pub stop: Option<NotifyScript>,
    /// `notify_deleted [SCRIPT]`: an instance a reload removes reports DELETED (the script, if
    /// any, runs); without it, FAULT as keepalived always did (unless it is in FAULT already).
    pub deleted: Option<NotifyScript>,
    pub notify_deleted: bool,
    /// `notify_master_rx_lower_pri`: run, with no arguments, when a master hears a lower
    /// priority advert (keepalived's hook to re-assert cloud secondary addresses).
    pub master_rx_lower_pri: Option<NotifyScript>,
    /// `notify_priority_changes [true|false]`: the notify FIFO hears effective priority changes;
    /// unset: the sync group's, else global `vrrp_notify_priority_changes`.
    pub priority_changes: Option<bool>,
}

/// `vrrp_instance NAME { … }`, completed as keepalived/vrrp/vrrp.c `vrrp_complete_instance` does.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub source: Source,
    /// `state`; unset: MASTER if priority is 255, else BACKUP.
    pub state: State,
    /// `interface`.
    pub interface: Option<String>,
    /// `virtual_router_id` (required).
    pub vrid: u8,
    /// `priority`; unset: 255 if `state MASTER`, else 100.
    pub priority: u8,
    /// `advert_int` (default 1 s), rounded to whole seconds (v2) or centiseconds (v3).
    pub advert_int: Duration,
    /// `version`, else 3 for IPv6, else global `vrrp_version`.
    pub version: Version,
    /// Address family of the instance: of its first VIP, peer or source address (IPv4 if none).
    pub family: Family,
    /// `preempt` (default) / `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay` (default 0).
    pub preempt_delay: Duration,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    pub virtual_routes: Vec<Route>,
    /// `virtual_rules`: added with the VIPs, removed with them.
    pub virtual_rules: Vec<Rule>,
    /// `promote_secondaries`: set `net.ipv4.conf.IF.promote_secondaries` on the interface.
    pub promote_secondaries: bool,
    /// `unicast_src_ip` or `mcast_src_ip` (one setting in keepalived: `vrrp_srcip_handler`).
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`: adverts are unicast to these when there are any.
    pub unicast_peers: Vec<UnicastPeer>,
    /// Where multicast adverts go (`mcast_dst_ip`, else the global group of the family); `None`
    /// when unicast.
    pub mcast_group: Option<IpAddr>,
    pub track_interfaces: Vec<Tracker>,
    pub track_scripts: Vec<Tracker>,
    pub track_files: Vec<Tracker>,
    pub track_processes: Vec<Tracker>,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    pub notify: Notify,
    /// `garp_master_delay` (default global `vrrp_garp_master_delay`, 5 s).
    pub garp_master_delay: Duration,
    /// `garp_master_repeat` (default global, 5).
    pub garp_master_repeat: u32,
    /// `garp_master_refresh` (default global, 0 = off).
    pub garp_master_refresh: Duration,
    /// `garp_master_refresh_repeat` (default global, 1).
    pub garp_master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`: after a burst for a lower-priority advert (a master reasserting
    /// itself), a second burst this much later; 0: none. Default the global
    /// `vrrp_garp_lower_prio_delay`, itself `vrrp_garp_master_delay` (5 s); 0 in strict mode.
    pub garp_lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat`: gratuitous ARPs / NAs per VIP a master sends when it hears a
    /// lower-priority advert; 0: none. Default the global `vrrp_garp_lower_prio_repeat`, itself
    /// `vrrp_garp_master_repeat` (5); 0 in strict mode.
    pub garp_lower_prio_repeat: u32,
    /// `lower_prio_no_advert`: a master that hears a lower priority sends no advert in reply
    /// (its gratuitous ARPs still go). Default the global `vrrp_lower_prio_no_advert`; always
    /// on in strict mode (RFC 5798 §6.4.3 discards the advert).
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: a master that hears a higher priority advertises its own once
    /// before it steps down, so that the new master hears a lower priority and sends its
    /// gratuitous ARPs (`garp_lower_prio_repeat`). Without it, when a partition heals and the
    /// winner's advert reaches the loser first, the loser steps down silently and clients that
    /// followed it stay on its MAC until their neighbour entries expire. Default the global
    /// `vrrp_higher_prio_send_advert`, **on in ha-agent** (keepalived's default is off); always
    /// off in strict mode.
    pub higher_prio_send_advert: bool,
    /// `v3_checksum_as_v2`.
    pub v3_checksum_as_v2: bool,
    /// `accept` / `no_accept`; unset: on, except in strict mode for a non-owner.
    pub accept: bool,
    /// `strict_mode`, else global `vrrp_strict`.
    pub strict_mode: bool,
    /// `skip_check_adv_addr`, else global `vrrp_skip_check_adv_addr`.
    pub skip_check_adv_addr: bool,
    /// `check_unicast_src` or global `vrrp_check_unicast_src`, or a peer with `min_ttl`/`max_ttl`.
    pub check_unicast_src: bool,
    /// `down_timer_adverts`, else global `vrrp_down_timer_adverts`: the multiplier of the
    /// Master_Down_Interval (1-100, default 3).
    pub down_timer_adverts: u8,
    /// `track_src_ip` with a `unicast_src_ip`/`mcast_src_ip`: FAULT while that address is not
    /// on the interface (keepalived_netlink.c, `VRRP_FLAG_TRACK_SADDR`).
    pub track_src_ip: bool,
    /// `unicast_fault_no_peer` with no `unicast_peer`: the instance stays in FAULT instead of
    /// falling back to multicast (keepalived vrrp.c `vrrp_complete_instance`).
    pub unicast_fault_no_peer: bool,
    /// `unicast_ttl`: the TTL / hop limit of adverts to unicast peers (unset: 255).
    pub unicast_ttl: Option<u8>,
    /// `use_vmac [NAME] [MAC]` (with `vmac_xmit_base`): the VIPs go on a macvlan that carries
    /// the VRID's MAC, so a failover never changes a client's neighbour entry.
    pub use_vmac: Option<UseVmac>,
    /// `use_vmac_addr`: a VIP on another interface (`dev`) or of the other family goes on a
    /// macvlan of its own, on its interface, with its family's VRID MAC.
    pub use_vmac_addr: bool,
}

/// `use_vmac [NAME] [MAC]` and `vmac_xmit_base` (keepalived/vrrp/vrrp_parser.c
/// `vrrp_vmac_handler`, `vrrp_vmac_xmit_base_handler`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseVmac {
    /// The macvlan's name as written; unset: `vmac_prefix`.VRID, chosen in the plan.
    pub name: Option<String>,
    /// A MAC as written (the last octet the VRID when five are given); unset: RFC 5798's
    /// 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
    pub mac: Option<[u8; 6]>,
    /// `vmac_xmit_base`: adverts go out of the base interface (its own MAC), the VIPs stay on
    /// the macvlan.
    pub xmit_base: bool,
}

impl VrrpInstance {
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }
}

/// `vrrp_sync_group NAME { group { … } … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub source: Source,
    /// `group { INSTANCE… }`, the instances that exist (in that order).
    pub members: Vec<String>,
    pub notify: Notify,
    pub track_interfaces: Vec<Tracker>,
    pub track_scripts: Vec<Tracker>,
    pub track_files: Vec<Tracker>,
    pub track_processes: Vec<Tracker>,
    /// `sync_group_tracking_weight` (or the deprecated `global_tracking`): members keep tracker weights.
    pub sync_group_tracking_weight: bool,
}
