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
    pub instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    /// Every interface name written in the file, in file order.
    pub interface_refs: Vec<InterfaceRef>,
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
    /// `vrrp_skip_check_adv_addr`: don't check the addresses in adverts from the current master.
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_strict`: RFC conformance (no auth, no unicast, owner must be master, …).
    pub vrrp_strict: bool,
    /// `vrrp_check_unicast_src`: drop unicast adverts not from a configured peer.
    pub vrrp_check_unicast_src: bool,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<ScriptUser>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// Notification email settings: parsed, reported as not used (ha-agent sends no mail).
    pub email: EmailSettings,
    /// `vmac_prefix`: the start of generated `use_vmac` interface names (unset: `vrrp`).
    pub vmac_prefix: Option<String>,
    /// `vmac_addr_prefix`: the same for `use_vmac_addr`'s macvlans (unset: `vmac_prefix`).
    pub vmac_addr_prefix: Option<String>,
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
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_check_unicast_src: false,
            script_user: None,
            enable_script_security: false,
            email: EmailSettings::default(),
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

/// One line of `virtual_routes`, kept close to `ip route` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRoute {
    /// Where the line starts.
    pub source: Source,
    /// Destination: `default` or `ADDR[/len]` (the `to` keyword is optional).
    pub to: String,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub table: Option<String>,
    pub metric: Option<u32>,
    /// Other `ip route` words, as written (`blackhole`, `onlink`, `mtu 1400`, …).
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    /// `min_ttl N` (default 0). Parsed, not enforced: a warning says so.
    pub min_ttl: u8,
    /// `max_ttl N` (default 255). Parsed, not enforced: a warning says so.
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
    pub virtual_routes: Vec<VirtualRoute>,
    /// `unicast_src_ip` or `mcast_src_ip` (one setting in keepalived: `vrrp_srcip_handler`).
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`: adverts are unicast to these when there are any.
    pub unicast_peers: Vec<UnicastPeer>,
    /// Where multicast adverts go (global group of the family); `None` when unicast.
    pub mcast_group: Option<IpAddr>,
    pub track_interfaces: Vec<Tracker>,
    pub track_scripts: Vec<Tracker>,
    pub track_files: Vec<Tracker>,
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
    /// `sync_group_tracking_weight` (or the deprecated `global_tracking`): members keep tracker weights.
    pub sync_group_tracking_weight: bool,
}
