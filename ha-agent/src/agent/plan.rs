//! From a parsed keepalived.conf and the interfaces' facts to what the runtime drives: one
//! [`InstancePlan`] per `vrrp_instance` (state machine parameters, advert template, checks,
//! VIPs) and the units that move together (a `vrrp_sync_group`, or an instance alone).
//!
//! Pure: the interface facts come in as a map, so this is tested without a network.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use anyhow::{Result, anyhow, bail};

use crate::{
    config::{self, Config, VrrpInstance},
    net::{self, LIFETIME_FOREVER, Scope, Vip, VipFlags},
    vrrp::{
        instance::{InitialState, InstanceConfig},
        packet::{self, Advert, Auth, DecodeOptions, EncodeError, EncodeOptions, InstanceRules},
        types::{Family, Version, duration_to_cs},
    },
};

/// What the plan needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfFacts {
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    pub primary_v4: Option<std::net::Ipv4Addr>,
    pub link_local_v6: Option<std::net::Ipv6Addr>,
    pub running: bool,
}

/// A VIP and the interface it goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedVip {
    pub vip: Vip,
    pub interface: String,
}

/// Everything the runtime needs about one `vrrp_instance`. Equal plans mean an unchanged
/// instance on reload.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePlan {
    pub name: String,
    pub interface: String,
    pub family: Family,
    /// Source of our adverts, also our primary address for tie breaks.
    pub src: IpAddr,
    /// Multicast group, or the unicast peers.
    pub destinations: Vec<IpAddr>,
    pub machine: InstanceConfig,
    /// The advert we send, priority and interval filled in per send.
    pub advert: Advert,
    pub encode: EncodeOptions,
    pub rules: InstanceRules,
    /// `virtual_ipaddress` (in adverts) then `virtual_ipaddress_excluded` (not in adverts).
    pub vips: Vec<PlacedVip>,
    /// `virtual_routes`: added after the VIPs, removed before them.
    pub routes: Vec<net::Route>,
    /// `virtual_rules`: added after the routes, removed before them.
    pub ip_rules: Vec<net::Rule>,
    /// `promote_secondaries`: the interface's `promote_secondaries` sysctl is set.
    pub promote_secondaries: bool,
    pub garp_delay: Duration,
    pub garp_repeat: u32,
    pub garp_refresh: Duration,
    pub garp_refresh_repeat: u32,
    /// keepalived's `dont_track_primary`: the instance's own interface going down is not a
    /// fault (only its trackers count).
    pub dont_track_primary: bool,
    /// keepalived's `garp_lower_prio_repeat` and `garp_lower_prio_delay`.
    pub garp_lower_prio_repeat: u32,
    pub garp_lower_prio_delay: Duration,
    pub notify: config::Notify,
    pub track_interfaces: Vec<config::Tracker>,
    pub track_scripts: Vec<config::Tracker>,
    pub track_files: Vec<config::Tracker>,
    pub track_processes: Vec<config::Tracker>,
    /// The interfaces of VIPs placed on another interface than the instance's (`dev`), unless
    /// the VIP says `no_track`, each once: one that is not running faults the instance, as
    /// keepalived tracks them (weight 0, `vrrp_complete_instance`).
    pub vip_interfaces: Vec<String>,
    /// A fault the configuration itself imposes (`unicast_fault_no_peer` without peers): the
    /// instance stays in FAULT, shown as a tracker that is down.
    pub config_fault: Option<&'static str>,
    /// keepalived's `track_src_ip`: the configured source address, FAULT while it is not on
    /// the instance's interface.
    pub track_src: Option<IpAddr>,
    /// Accept mode (RFC 5798 §6.1): `false` when a non-owner runs with `no_accept` or strict
    /// mode, and `vip_fence` then drops IP to its VIPs while Master (vrrp.c
    /// `vrrp_handle_accept_mode`: the owner always accepts).
    pub accept: bool,
    /// `unicast_ttl`: the TTL / hop limit of adverts to unicast peers (`None`: 255).
    pub unicast_ttl: Option<u8>,
    /// `use_vmac`: the macvlan the VIPs go on.
    pub vmac: Option<VmacPlan>,
    /// `use_vmac_addr`: the macvlans of VIPs on another interface or of the other family.
    pub addr_vmacs: Vec<AddrVmac>,
}

/// A `use_vmac_addr` macvlan: one per (interface, family) of an instance's VIPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrVmac {
    pub name: String,
    pub base: String,
    pub mac: [u8; 6],
    pub family: Family,
}

/// An instance's `use_vmac` macvlan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacPlan {
    pub name: String,
    pub mac: [u8; 6],
    /// `vmac_xmit_base`: adverts leave from the base interface.
    pub xmit_base: bool,
}

/// A set of instances that change state together.
#[derive(Clone, Debug)]
pub struct UnitPlan {
    /// `Some` for a `vrrp_sync_group`.
    pub group: Option<config::SyncGroup>,
    /// Indices into [`Plan::instances`].
    pub members: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub instances: Vec<InstancePlan>,
    pub units: Vec<UnitPlan>,
    /// `static_ipaddress`, `static_routes`, `static_rules`: for the agent's whole run.
    pub statics: StaticPlan,
    /// How gratuitous ARPs / NAs are spaced on each interface.
    pub garp_pacing: GarpPacing,
}

/// Who paces whose gratuitous ARPs / NAs (keepalived vrrp_if.c `set_default_garp_delay` and
/// `garp_group`): the interfaces of a `garp_group` share its spacing between them; any other
/// interface has its own, `vrrp_garp_interval` / `vrrp_gna_interval`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GarpPacing {
    pub default: net::garp::Spacing,
    pub groups: Vec<(net::garp::Spacing, Vec<String>)>,
}

impl GarpPacing {
    pub fn new(global: &config::GlobalDefs) -> GarpPacing {
        let spacing = |garp, gna| net::garp::Spacing { garp, gna };
        GarpPacing {
            default: spacing(global.vrrp_garp_interval, global.vrrp_gna_interval),
            groups: global
                .garp_groups
                .iter()
                .map(|g| {
                    (
                        spacing(g.garp_interval, g.gna_interval),
                        g.interfaces.clone(),
                    )
                })
                .collect(),
        }
    }

    /// The `garp_group` `interface` is in (an index into `groups`).
    pub fn group_of(&self, interface: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|(_, ifs)| ifs.iter().any(|i| i == interface))
    }

    /// The spacing of `interface`'s gratuitous ARPs and of its NAs.
    pub fn spacing(&self, interface: &str) -> net::garp::Spacing {
        self.group_of(interface)
            .map_or(self.default, |g| self.groups[g].0)
    }
}

/// What the root `static_*` blocks put on the host at start and take off at stop.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StaticPlan {
    pub addresses: Vec<Static<PlacedVip>>,
    pub routes: Vec<Static<net::Route>>,
    pub rules: Vec<Static<net::Rule>>,
}

/// A static entry, and whether it is put back when someone deletes it (not `no_track`).
#[derive(Clone, Debug, PartialEq)]
pub struct Static<T> {
    pub entry: T,
    pub track: bool,
}

impl Plan {
    /// Decode options for adverts arriving on `interface` in `family`: the checksum variants
    /// that the instances there need (the TTL rule is per instance: `InstanceRules`).
    pub fn decode_options(&self, interface: &str, family: Family) -> DecodeOptions {
        let here = || {
            self.instances
                .iter()
                .filter(|i| i.interface == interface && i.family == family)
        };
        let as_v2 = here().filter(|i| i.encode.v3_checksum_as_v2).count();
        let all = here().count();
        DecodeOptions {
            v3_ipv4_checksum: match as_v2 {
                0 => packet::V3Ipv4Checksum::PseudoHeader,
                n if n == all => packet::V3Ipv4Checksum::AsV2,
                _ => packet::V3Ipv4Checksum::Either,
            },
            unicast_any_ttl: false,
        }
    }

    /// The (interface, family) pairs that need a receive socket.
    /// The multicast groups the instances on `interface` in `family` advertise to (none when
    /// they all use unicast peers), each once.
    pub fn groups(&self, interface: &str, family: Family) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for i in &self.instances {
            if i.interface != interface || i.family != family {
                continue;
            }
            for d in &i.destinations {
                if d.is_multicast() && !out.contains(d) {
                    out.push(*d);
                }
            }
        }
        out
    }

    pub fn listeners(&self) -> Vec<(String, Family)> {
        let mut out: Vec<(String, Family)> = Vec::new();
        for i in &self.instances {
            if !out.iter().any(|(n, f)| *n == i.interface && *f == i.family) {
                out.push((i.interface.clone(), i.family));
            }
        }
        out
    }
}

impl InstancePlan {
    /// Where adverts leave from: the macvlan with `use_vmac` (source MAC the VRID's), unless
    /// `vmac_xmit_base`.
    pub fn advert_interface(&self) -> &str {
        match &self.vmac {
            Some(v) if !v.xmit_base => &v.name,
            _ => &self.interface,
        }
    }

    /// This instance's macvlans (`use_vmac`'s first, then `use_vmac_addr`'s), their bases'
    /// indices from `facts` (0 for one it lacks).
    pub fn vmac_specs(&self, facts: &HashMap<String, IfFacts>) -> Vec<net::vmac::VmacSpec> {
        let spec = |name: &str, base: &str, mac, family| net::vmac::VmacSpec {
            name: name.to_owned(),
            base: base.to_owned(),
            base_index: facts.get(base).map_or(0, |f| f.index),
            mac,
            family,
        };
        let main = self
            .vmac
            .iter()
            .map(|v| spec(&v.name, &self.interface, v.mac, self.family));
        let addr = self
            .addr_vmacs
            .iter()
            .map(|a| spec(&a.name, &a.base, a.mac, a.family));
        main.chain(addr).collect()
    }

    /// The base of the macvlan a VIP is on, or its own interface: where it is fenced (TC
    /// ingress on the base runs before macvlan's receive handler, and the macvlan's frames
    /// pass the base's TC egress).
    pub fn fence_interface<'a>(&'a self, pv: &'a PlacedVip) -> &'a str {
        if self.vmac.as_ref().is_some_and(|v| v.name == pv.interface) {
            return &self.interface;
        }
        match self.addr_vmacs.iter().find(|a| a.name == pv.interface) {
            Some(a) => &a.base,
            None => &pv.interface,
        }
    }

    /// The adverts for one `Action::SendAdvert { priority, adver_int_cs }`, one per destination:
    /// what the runtime sends, and what the golden tests compare with keepalived's packets.
    pub fn encode_adverts(
        &self,
        priority: u8,
        adver_int_cs: u16,
    ) -> Result<Vec<(IpAddr, Vec<u8>)>, EncodeError> {
        let mut advert = self.advert.clone();
        advert.priority = priority;
        advert.adver_int_cs = adver_int_cs;
        self.destinations
            .iter()
            .map(|&dst| Ok((dst, advert.encode(self.src, dst, &self.encode)?)))
            .collect()
    }
}

/// A `virtual_ipaddress` line as the address to add, with every option keepalived applies
/// (vrrp_ipaddress.c `netlink_ipaddress`). The configuration layer has already dropped, with a
/// warning, what keepalived ignores (IPv6-only options on IPv4 addresses).
fn placed(v: &config::VirtualAddress, default_if: &str) -> PlacedVip {
    let mut vip = Vip::new(v.addr).with_prefix_len(v.prefix_len);
    if let Some(b) = v.broadcast {
        vip = vip.with_broadcast(b);
    }
    if let Some(s) = v.scope {
        vip = vip.with_scope(Scope::from_u8(s));
    }
    if let Some(l) = &v.label {
        vip = vip.with_label(l.clone());
    }
    if let Some(p) = v.peer {
        vip = vip.with_peer(p);
    }
    let has = |flag: &str| v.flags.iter().any(|f| f == flag);
    vip = vip.with_flags(VipFlags {
        home: has("home"),
        mngtmpaddr: has("mngtmpaddr"),
        noprefixroute: has("noprefixroute"),
        autojoin: has("autojoin"),
        dad: has("-nodad"),
    });
    if v.addr.is_ipv6() {
        // keepalived's default when preferred_lft is not set: a /128 is deprecated (preferred
        // 0), so that the kernel never picks the VIP as a source; a subnet is preferred forever.
        let preferred = v.preferred_lft.unwrap_or(if v.prefix_len == 128 {
            0
        } else {
            LIFETIME_FOREVER
        });
        // Like keepalived, no IFA_CACHEINFO for forever: the kernel's default.
        if preferred != LIFETIME_FOREVER {
            vip = vip.with_preferred_lft(preferred);
        }
    }
    PlacedVip {
        vip,
        interface: v.dev.clone().unwrap_or_else(|| default_if.to_owned()),
    }
}

/// Builds the plan. `facts` must hold every interface the configuration names.
pub fn build(config: &Config, facts: &HashMap<String, IfFacts>) -> Result<Plan> {
    let mut instances: Vec<InstancePlan> = Vec::new();
    let (names, mut taken) = vmac_names(config);
    for (inst, vmac) in config.instances.iter().zip(names) {
        // One macvlan, one MAC: two instances naming the same one would re-create it in turn.
        if let Some(other) = instances
            .iter()
            .find(|o| o.vmac.is_some() && o.vmac.as_ref().map(|v| &v.name) == vmac.as_ref())
        {
            bail!(
                "{}: vrrp_instance {}: use_vmac: {} is vrrp_instance {}'s macvlan already; \
                 name another",
                inst.source,
                inst.name,
                vmac.unwrap_or_default(),
                other.name
            );
        }
        instances.push(instance(config, inst, facts, vmac, &mut taken)?);
    }
    let mut units = Vec::new();
    let mut grouped = vec![false; instances.len()];
    for group in &config.sync_groups {
        let members: Vec<usize> = group
            .members
            .iter()
            .filter_map(|m| config.instances.iter().position(|i| &i.name == m))
            .collect();
        for &m in &members {
            grouped[m] = true;
        }
        units.push(UnitPlan {
            group: Some(group.clone()),
            members,
        });
    }
    for (i, done) in grouped.iter().enumerate() {
        if !done {
            units.push(UnitPlan {
                group: None,
                members: vec![i],
            });
        }
    }
    let s = &config.statics;
    let statics = StaticPlan {
        // static_ipaddress requires dev (the builder checks).
        addresses: s
            .addresses
            .iter()
            .map(|a| Static {
                entry: placed(a, ""),
                track: !a.no_track,
            })
            .collect(),
        routes: s
            .routes
            .iter()
            .map(|r| {
                let entry = route(r, None, facts)
                    .map_err(|e| anyhow!("{}: static_routes: {e}", r.source))?;
                Ok(Static {
                    entry,
                    track: !r.no_track,
                })
            })
            .collect::<Result<_>>()?,
        rules: s
            .rules
            .iter()
            .map(|r| Static {
                entry: rule(r),
                track: !r.no_track,
            })
            .collect(),
    };
    Ok(Plan {
        instances,
        units,
        statics,
        garp_pacing: GarpPacing::new(&config.global),
    })
}

/// Each instance's `use_vmac` interface name (keepalived's generated `vrrp.VRID` when none
/// is written), in config order, and every name they take.
pub fn vmac_names(config: &Config) -> (Vec<Option<String>>, Vec<String>) {
    let wanted: Vec<_> = config
        .instances
        .iter()
        .map(|i| {
            let v = i.use_vmac.as_ref()?;
            Some((v.name.as_deref(), i.vrid, i.family))
        })
        .collect();
    let prefix = config
        .global
        .vmac_prefix
        .as_deref()
        .unwrap_or(net::vmac::DEFAULT_PREFIX);
    let mut taken = Vec::new();
    (net::vmac::names(prefix, &wanted, &mut taken), taken)
}

fn instance(
    config: &Config,
    inst: &VrrpInstance,
    facts: &HashMap<String, IfFacts>,
    vmac_name: Option<String>,
    taken: &mut Vec<String>,
) -> Result<InstancePlan> {
    let at = format!("{}: vrrp_instance {}", inst.source, inst.name);
    let interface = inst
        .interface
        .clone()
        .ok_or_else(|| anyhow!("{at}: no `interface`: add `interface IFNAME` to the instance"))?;
    let f = facts
        .get(&interface)
        .ok_or_else(|| anyhow!("{at}: interface {interface} does not exist on this host"))?;
    let family = inst.family;
    let src: IpAddr = match (inst.src_ip, family) {
        (Some(a), _) => a,
        (None, Family::Ipv4) => f
            .primary_v4
            .ok_or_else(|| anyhow!("{at}: interface {interface} has no IPv4 address to send adverts from; add one or set unicast_src_ip"))?
            .into(),
        (None, Family::Ipv6) => f
            .link_local_v6
            .ok_or_else(|| anyhow!("{at}: interface {interface} has no IPv6 link-local address to send adverts from"))?
            .into(),
    };
    let destinations: Vec<IpAddr> = if inst.is_unicast() {
        inst.unicast_peers.iter().map(|p| p.addr).collect()
    } else {
        vec![inst.mcast_group.unwrap_or(match family {
            Family::Ipv4 => config.global.vrrp_mcast_group4.into(),
            Family::Ipv6 => config.global.vrrp_mcast_group6.into(),
        })]
    };
    let version = inst.version;
    let adver_int_cs = duration_to_cs(inst.advert_int).max(1);
    let in_advert: Vec<IpAddr> = inst.virtual_ipaddress.iter().map(|v| v.addr).collect();
    let auth = match (&inst.authentication, version, family) {
        (Some(a), Version::V2, Family::Ipv4) => {
            let mut data = [0u8; 8];
            for (d, s) in data.iter_mut().zip(&a.pass) {
                *d = *s;
            }
            Auth::Pass(data)
        }
        _ => Auth::None,
    };
    let mut machine = InstanceConfig::new(inst.vrid, version, inst.priority, src);
    machine.advert_interval_cs = adver_int_cs;
    machine.preempt = inst.preempt;
    machine.preempt_delay = inst.preempt_delay;
    machine.down_timer_adverts = inst.down_timer_adverts;
    machine.vips = in_advert.clone();
    machine.garp_lower_prio = inst.garp_lower_prio_repeat > 0;
    machine.lower_prio_advert = !inst.lower_prio_no_advert;
    machine.higher_prio_advert = inst.higher_prio_send_advert;
    machine.initial_state = Some(match inst.state {
        config::State::Master => InitialState::Master,
        config::State::Backup => InitialState::Backup,
    });
    machine.validate().map_err(|e| anyhow!("{at}: {e}"))?;
    let advert = Advert {
        version,
        vrid: inst.vrid,
        priority: inst.priority,
        adver_int_cs,
        addrs: in_advert.clone(),
        auth,
    };
    let rules = InstanceRules {
        vrid: inst.vrid,
        version,
        family,
        auth,
        adver_int_cs,
        vips: (!inst.skip_check_adv_addr).then(|| in_advert.clone()),
        unicast_peers: if inst.check_unicast_src {
            inst.unicast_peers.iter().map(|p| p.addr).collect()
        } else {
            Vec::new()
        },
        // keepalived checks TTL per instance, for multicast ones only.
        unicast_any_ttl: !inst.unicast_peers.is_empty(),
        peer_ttl: inst
            .unicast_peers
            .iter()
            .filter(|p| inst.check_unicast_src && (p.min_ttl, p.max_ttl) != (0, 255))
            .map(|p| {
                let range = packet::PeerTtl {
                    min_ttl: p.min_ttl,
                    max_ttl: p.max_ttl,
                };
                (p.addr, range)
            })
            .collect(),
        group: inst.mcast_group.filter(|_| !inst.is_unicast()),
    };
    let vmac = inst
        .use_vmac
        .as_ref()
        .zip(vmac_name)
        .map(|(v, name)| VmacPlan {
            name,
            mac: v
                .mac
                .unwrap_or_else(|| net::vmac::rfc_mac(inst.vrid, family)),
            xmit_base: v.xmit_base,
        });
    let addr_prefix = (config.global.vmac_addr_prefix.as_deref())
        .or(config.global.vmac_prefix.as_deref())
        .unwrap_or(net::vmac::DEFAULT_PREFIX);
    let mut addr_vmacs: Vec<AddrVmac> = Vec::new();
    let mut vips = Vec::new();
    // keepalived's vrrp_complete_instance: a VIP of the instance's family on its interface
    // goes on the use_vmac macvlan; with use_vmac_addr any other gets one of its own per
    // (interface, family); the rest stay where they are written.
    for v in inst
        .virtual_ipaddress
        .iter()
        .chain(&inst.virtual_ipaddress_excluded)
    {
        let mut pv = placed(v, &interface);
        let vip_family = Family::of(&v.addr);
        if pv.interface == interface && vip_family == family {
            if let Some(m) = &vmac {
                pv.interface = m.name.clone();
            }
        } else if inst.use_vmac_addr || v.use_vmac {
            let existing = addr_vmacs
                .iter()
                .find(|a| a.base == pv.interface && a.family == vip_family);
            pv.interface = match existing {
                Some(a) => a.name.clone(),
                None => {
                    let name = net::vmac::next_name(addr_prefix, inst.vrid, vip_family, taken);
                    let mac = inst.use_vmac.as_ref().and_then(|u| u.mac);
                    addr_vmacs.push(AddrVmac {
                        name: name.clone(),
                        base: pv.interface.clone(),
                        mac: mac.unwrap_or_else(|| net::vmac::rfc_mac(inst.vrid, vip_family)),
                        family: vip_family,
                    });
                    name
                }
            };
        }
        vips.push(pv);
    }
    let mut vip_interfaces: Vec<String> = Vec::new();
    for v in inst
        .virtual_ipaddress
        .iter()
        .chain(&inst.virtual_ipaddress_excluded)
        .filter(|v| !v.no_track)
    {
        if let Some(dev) = &v.dev
            && *dev != interface
            && !vip_interfaces.contains(dev)
        {
            vip_interfaces.push(dev.clone());
        }
    }
    let routes = inst
        .virtual_routes
        .iter()
        .map(|r| {
            route(r, Some(&interface), facts).map_err(|e| {
                anyhow!(
                    "{}: vrrp_instance {}: virtual_routes {}/{}: {e}",
                    r.source,
                    inst.name,
                    r.dst,
                    r.dst_len
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(InstancePlan {
        name: inst.name.clone(),
        routes,
        ip_rules: inst.virtual_rules.iter().map(rule).collect(),
        promote_secondaries: inst.promote_secondaries,
        interface,
        family,
        src,
        destinations,
        machine,
        advert,
        encode: EncodeOptions {
            v3_checksum_as_v2: inst.v3_checksum_as_v2,
        },
        rules,
        vips,
        garp_delay: inst.garp_master_delay,
        garp_repeat: inst.garp_master_repeat,
        garp_refresh: inst.garp_master_refresh,
        garp_refresh_repeat: inst.garp_master_refresh_repeat,
        dont_track_primary: inst.dont_track_primary,
        garp_lower_prio_repeat: inst.garp_lower_prio_repeat,
        garp_lower_prio_delay: inst.garp_lower_prio_delay,
        notify: inst.notify.clone(),
        track_interfaces: inst.track_interfaces.clone(),
        track_scripts: inst.track_scripts.clone(),
        track_files: inst.track_files.clone(),
        track_processes: inst.track_processes.clone(),
        vip_interfaces,
        config_fault: inst
            .unicast_fault_no_peer
            .then_some("unicast without any unicast_peer (unicast_fault_no_peer)"),
        track_src: inst.src_ip.filter(|_| inst.track_src_ip),
        accept: inst.accept || inst.priority == 255,
        unicast_ttl: inst.unicast_ttl,
        vmac,
        addr_vmacs,
    })
}

/// A route line as a route to install. A unicast route without gateway or nexthops goes on
/// `default_if` (the instance's interface) when it names no `dev`.
fn route(
    r: &config::Route,
    default_if: Option<&str>,
    facts: &HashMap<String, IfFacts>,
) -> Result<net::Route> {
    let index = |dev: &str| {
        facts
            .get(dev)
            .map(|f| f.index)
            .ok_or_else(|| anyhow!("interface {dev} does not exist on this host"))
    };
    let mut out = net::Route::new(r.dst, r.dst_len);
    out.kind = match r.kind {
        config::RouteKind::Unicast => net::RouteKind::Unicast,
        config::RouteKind::Blackhole => net::RouteKind::Blackhole,
        config::RouteKind::Unreachable => net::RouteKind::Unreachable,
        config::RouteKind::Prohibit => net::RouteKind::Prohibit,
        config::RouteKind::Throw => net::RouteKind::Throw,
    };
    out.from = r.from;
    out.via = r.via;
    out.src = r.src;
    out.metric = r.metric;
    out.table = r.table;
    out.scope = r.scope.map(Scope::from_u8);
    out.protocol = r.protocol;
    out.onlink = r.onlink;
    out.tos = r.tos;
    out.realms = r.realms;
    out.append = r.add_mode == config::RouteAddMode::Append;
    out.exclusive = r.add_mode == config::RouteAddMode::Exclusive;
    out.pref = r.pref;
    out.expires = r.expires;
    if let Some((name, lock)) = &r.congctl {
        out.metrics
            .push(rtnetlink::packet_route::route::RouteMetric::CcAlgo(
                name.clone(),
            ));
        if *lock {
            out.locked |= 1 << 16; // RTAX_CC_ALGO
        }
    }
    for m in &r.metrics {
        use config::MetricName as N;
        use rtnetlink::packet_route::route::RouteMetric as M;
        // RTAX_* numbers, for the lock bits.
        let (metric, rtax) = match m.name {
            N::Mtu => (M::Mtu(m.value), 2),
            N::Window => (M::Window(m.value), 3),
            N::Ssthresh => (M::SsThresh(m.value), 6),
            N::Cwnd => (M::Cwnd(m.value), 7),
            N::Advmss => (M::Advmss(m.value), 8),
            N::Reordering => (M::Reordering(m.value), 9),
            N::Hoplimit => (M::Hoplimit(m.value), 10),
            N::Initcwnd => (M::InitCwnd(m.value), 11),
            N::Initrwnd => (M::InitRwnd(m.value), 14),
            N::Quickack => (M::QuickAck(m.value), 15),
            N::FastopenNoCookie => (M::FastopenNoCookie(m.value), 17),
            N::Rtt => (M::Rtt(m.value), 4),
            N::Rttvar => (M::RttVar(m.value), 5),
            N::RtoMin => (M::RtoMin(m.value), 13),
            N::Features => (M::Features(m.value), 12),
        };
        out.metrics.push(metric);
        if m.lock {
            out.locked |= 1 << rtax;
        }
    }
    for n in &r.nexthops {
        out.nexthops.push(net::Nexthop {
            via: n.via,
            ifindex: n.dev.as_deref().map(index).transpose()?,
            weight: n.weight,
            onlink: n.onlink,
        });
    }
    let dev = r.dev.as_deref().or(
        if r.kind == config::RouteKind::Unicast && r.via.is_none() && r.nexthops.is_empty() {
            default_if
        } else {
            None
        },
    );
    if let Some(dev) = dev {
        out.ifindex = Some(index(dev)?);
    }
    if out.kind == net::RouteKind::Unicast
        && out.via.is_none()
        && out.ifindex.is_none()
        && out.nexthops.is_empty()
    {
        bail!("a route needs via, dev or nexthop");
    }
    Ok(out)
}

/// A rule line as the rule to install.
fn rule(r: &config::Rule) -> net::Rule {
    let action = match r.action {
        config::RuleAction::Table(t) => net::RuleAction::Table(t),
        config::RuleAction::L3mdev => net::RuleAction::L3mdev,
        config::RuleAction::Goto(t) => net::RuleAction::Goto(t),
        config::RuleAction::Nop => net::RuleAction::Nop,
        config::RuleAction::Blackhole => net::RuleAction::Blackhole,
        config::RuleAction::Unreachable => net::RuleAction::Unreachable,
        config::RuleAction::Prohibit => net::RuleAction::Prohibit,
    };
    let mut out = net::Rule::new(r.family == Family::Ipv6, action, r.priority);
    out.from = r.from;
    out.to = r.to;
    out.invert = r.invert;
    out.fwmark = r.fwmark.map(|f| f.0);
    out.fwmask = r.fwmark.and_then(|f| f.1);
    out.tos = r.tos;
    out.iif = r.iif.clone();
    out.oif = r.oif.clone();
    out.protocol = r.protocol;
    out.realms = r.realms;
    out.suppress_prefixlen = r.suppress_prefixlen;
    out.suppress_ifgroup = r.suppress_ifgroup;
    out.tunnel_id = r.tunnel_id;
    out.uid_range = r.uid_range;
    out.ip_proto = r.ip_proto;
    out.sport = r.sport;
    out.dport = r.dport;
    out
}

/// Every interface the configuration names (instances, VIP `dev`s, tracked interfaces).
pub fn interfaces(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    };
    for inst in &config.instances {
        if let Some(i) = &inst.interface {
            add(i);
        }
        for v in inst
            .virtual_ipaddress
            .iter()
            .chain(&inst.virtual_ipaddress_excluded)
        {
            if let Some(d) = &v.dev {
                add(d);
            }
        }
        for t in &inst.track_interfaces {
            add(&t.name);
        }
        for r in &inst.virtual_routes {
            for d in r
                .dev
                .iter()
                .chain(r.nexthops.iter().filter_map(|n| n.dev.as_ref()))
            {
                add(d);
            }
        }
    }
    for g in &config.sync_groups {
        for t in &g.track_interfaces {
            add(&t.name);
        }
    }
    // keepalived: an unknown interface in interface_up_down_delays is fatal.
    for d in &config.global.link_delays {
        add(&d.interface);
    }
    let s = &config.statics;
    for d in s.addresses.iter().filter_map(|a| a.dev.as_ref()) {
        add(d);
    }
    for r in &s.routes {
        for d in r
            .dev
            .iter()
            .chain(r.nexthops.iter().filter_map(|n| n.dev.as_ref()))
        {
            add(d);
        }
    }
    out
}

/// A plan built from configuration text on three made-up interfaces (eth0 with 192.0.2.1 and
/// fe80::1, eth1, eth2), for the tests of the plan and of what is built on it.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::{collections::HashMap, path::Path};

    use super::{IfFacts, Plan, build};

    pub fn facts() -> HashMap<String, IfFacts> {
        let mut facts = HashMap::from([(
            "eth0".to_owned(),
            IfFacts {
                index: 2,
                mac: Some([2, 0, 0, 0, 0, 1]),
                primary_v4: Some("192.0.2.1".parse().unwrap()),
                link_local_v6: Some("fe80::1".parse().unwrap()),
                running: true,
            },
        )]);
        for (name, index) in [("eth1", 3), ("eth2", 4)] {
            facts.insert(
                name.to_owned(),
                IfFacts {
                    index,
                    mac: Some([2, 0, 0, 0, 0, index as u8]),
                    primary_v4: None,
                    link_local_v6: None,
                    running: true,
                },
            );
        }
        facts
    }

    pub fn plan(text: &str) -> Plan {
        let path = Path::new("/etc/keepalived/keepalived.conf");
        let loaded = crate::config::parse_str(text, path).unwrap();
        build(&loaded.config, &facts()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{
        fixtures::{facts, plan},
        *,
    };

    #[test]
    fn use_vmac_puts_the_vips_on_the_macvlan_and_the_adverts_too() {
        let p = plan(
            "global_defs {\n vmac_prefix vm\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n \
             virtual_ipaddress {\n 192.0.2.200/24\n 192.0.2.201/24 dev eth1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 52\n use_vmac\n \
             vmac_xmit_base\n virtual_ipaddress {\n 2001:db8::1/64\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 53\n \
             virtual_ipaddress {\n 192.0.2.203/24\n }\n}\n",
        );
        let [a, b, c] = &p.instances[..] else {
            panic!("three instances")
        };
        let vmac = a.vmac.as_ref().unwrap();
        assert_eq!(vmac.name, "vm.51");
        assert_eq!(vmac.mac, [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(a.vips[0].interface, "vm.51");
        assert_eq!(a.vips[1].interface, "eth1", "a VIP's own dev stays");
        assert_eq!(a.advert_interface(), "vm.51");
        // Adverts are still received on the base: its listener stays.
        assert_eq!(p.listeners()[0], ("eth0".to_owned(), Family::Ipv4));
        let spec = &a.vmac_specs(&facts())[0];
        assert_eq!((spec.base.as_str(), spec.base_index), ("eth0", 2));
        assert_eq!(a.fence_interface(&a.vips[0]), "eth0");
        assert_eq!(b.vmac.as_ref().unwrap().mac, [0, 0, 0x5e, 0, 2, 52]);
        assert_eq!(b.vips[0].interface, "vm.52");
        assert_eq!(b.advert_interface(), "eth0", "vmac_xmit_base");
        assert_eq!((&c.vmac, c.advert_interface()), (&None, "eth0"));
    }

    #[test]
    fn use_vmac_addr_gives_other_interfaces_and_families_their_own_macvlan() {
        let p = plan(
            "global_defs {\n vmac_addr_prefix va\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n \
             use_vmac_addr\n virtual_ipaddress {\n 192.0.2.200/24\n 192.0.2.201/24 dev eth1\n \
             192.0.2.202/24 dev eth1\n }\n virtual_ipaddress_excluded {\n 2001:db8::1/64\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 52\n \
             virtual_ipaddress {\n 192.0.2.210/24\n 192.0.2.211/24 dev eth2 use_vmac\n }\n \
             virtual_ipaddress_excluded {\n 2001:db8::2/64\n }\n}\n",
        );
        let a = &p.instances[0];
        let on: Vec<&str> = a.vips.iter().map(|v| v.interface.as_str()).collect();
        assert_eq!(on, ["vrrp.51", "va.51", "va.51", "va6.51"]);
        let addr: Vec<_> = (a.addr_vmacs.iter())
            .map(|v| (v.name.as_str(), v.base.as_str(), v.mac))
            .collect();
        assert_eq!(
            addr,
            [
                ("va.51", "eth1", [0, 0, 0x5e, 0, 1, 51]),
                ("va6.51", "eth0", [0, 0, 0x5e, 0, 2, 51])
            ]
        );
        // Fenced where their frames pass: the macvlans' bases.
        let fenced: Vec<&str> = a.vips.iter().map(|v| a.fence_interface(v)).collect();
        assert_eq!(fenced, ["eth0", "eth1", "eth1", "eth0"]);
        assert_eq!(a.vmac_specs(&facts()).len(), 3);
        // Without use_vmac_addr nothing moves, and without use_vmac another family's eVIP
        // stays on the interface.
        let b = &p.instances[1];
        let on: Vec<&str> = b.vips.iter().map(|v| v.interface.as_str()).collect();
        assert_eq!(on, ["eth0", "va.52", "eth0"], "a VIP's own use_vmac");
        assert_eq!(b.addr_vmacs[0].base, "eth2");
    }

    #[test]
    fn two_instances_cannot_share_a_macvlan() {
        let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac vm\n \
                    virtual_ipaddress {\n 192.0.2.200\n }\n}\n\
                    vrrp_instance B {\n interface eth1\n virtual_router_id 52\n use_vmac vm\n \
                    virtual_ipaddress {\n 192.0.2.201\n }\n}\n";
        let loaded = crate::config::parse_str(text, Path::new("k.conf")).unwrap();
        let e = build(&loaded.config, &facts()).unwrap_err().to_string();
        assert!(
            e.starts_with("k.conf:9:1: vrrp_instance B: use_vmac: vm is vrrp_instance A's"),
            "{e}"
        );
    }

    #[test]
    fn keepalived_v2_pass_instance() {
        let p = plan(
            "vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 120\n \
             advert_int 2\n authentication {\n auth_type PASS\n auth_pass secret99\n }\n \
             virtual_ipaddress {\n 192.0.2.200/24 label eth0:vip\n }\n}\n",
        );
        let i = &p.instances[0];
        assert_eq!(i.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            i.destinations,
            vec!["224.0.0.18".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(i.machine.version, Version::V2);
        assert_eq!(i.machine.advert_interval_cs, 200);
        assert_eq!(i.machine.priority, 120);
        assert_eq!(i.advert.auth, Auth::pass("secret99"));
        assert_eq!(i.vips[0].vip.prefix_len, 24);
        assert_eq!(i.vips[0].vip.label.as_deref(), Some("eth0:vip"));
        assert_eq!(p.units.len(), 1);
        assert_eq!(p.listeners(), vec![("eth0".to_owned(), Family::Ipv4)]);
    }

    #[test]
    fn v3_ipv6_uses_link_local_and_group() {
        let p = plan(
            "vrrp_instance V6 {\n interface eth0\n virtual_router_id 7\n advert_int 0.05\n \
             virtual_ipaddress {\n 2001:db8::200/64\n }\n}\n",
        );
        let i = &p.instances[0];
        assert_eq!(i.family, Family::Ipv6);
        assert_eq!(i.src, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(i.destinations, vec!["ff02::12".parse::<IpAddr>().unwrap()]);
        assert_eq!(i.machine.version, Version::V3);
        assert_eq!(i.machine.advert_interval_cs, 5);
    }

    /// Accept mode as `vip_fence` gets it: off for a non-owner with `no_accept` or strict mode,
    /// on for the owner whatever it says (vrrp.c vrrp_handle_accept_mode); `unicast_ttl` and
    /// the peers' TTL ranges (only those narrower than 0-255) go to the sender and the rules.
    #[test]
    fn accept_mode_and_ttl_options() {
        let inst = |name: &str, vrid: u8, extra: &str| {
            format!(
                "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n{extra} \
                 virtual_ipaddress {{\n 192.0.2.{}\n }}\n}}\n",
                200 + vrid
            )
        };
        let p = plan(&[
            inst("ON", 1, ""),
            inst("OFF", 2, " no_accept\n"),
            inst("OWNER", 3, " priority 255\n no_accept\n"),
            inst("STRICT", 4, " strict_mode\n"),
            inst(
                "TTL",
                5,
                " unicast_ttl 64\n unicast_peer {\n 192.0.2.2 min_ttl 10 max_ttl 20\n 192.0.2.3\n }\n",
            ),
        ]
        .concat());
        let accept: Vec<bool> = p.instances.iter().map(|i| i.accept).collect();
        assert_eq!(accept, [true, false, true, false, true]);
        let ttl = &p.instances[4];
        assert_eq!(ttl.unicast_ttl, Some(64));
        assert_eq!(p.instances[0].unicast_ttl, None);
        let range = packet::PeerTtl {
            min_ttl: 10,
            max_ttl: 20,
        };
        assert_eq!(
            ttl.rules.peer_ttl,
            vec![("192.0.2.2".parse::<IpAddr>().unwrap(), range)]
        );
        assert_eq!(
            ttl.rules.ttl_range("192.0.2.3".parse().unwrap()),
            packet::PeerTtl::ANY
        );
    }

    #[test]
    fn unicast_peers_and_sync_group_units() {
        let p = plan(
            "vrrp_sync_group G {\n group {\n A\n B\n }\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n 192.0.2.2\n }\n \
             virtual_ipaddress {\n 192.0.2.201\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 192.0.2.202\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n 192.0.2.203\n }\n}\n",
        );
        assert_eq!(
            p.instances[0].destinations,
            vec!["192.0.2.2".parse::<IpAddr>().unwrap()]
        );
        // The TTL waiver is the unicast instance's alone, not its interface's.
        assert!(p.instances[0].rules.unicast_any_ttl);
        assert!(!p.instances[1].rules.unicast_any_ttl);
        assert!(!p.decode_options("eth0", Family::Ipv4).unicast_any_ttl);
        assert_eq!(p.units.len(), 2);
        assert_eq!(p.units[0].members, vec![0, 1]);
        assert_eq!(p.units[1].members, vec![2]);
    }

    #[test]
    fn virtual_routes() {
        let p = plan(
            "vrrp_instance R {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n 192.0.2.200/24\n }\n \
             virtual_routes {\n 198.51.100.0/24 via 192.0.2.254 metric 10\n default via 192.0.2.254 table 100\n \
             203.0.113.7 dev eth0\n }\n}\n",
        );
        let r = &p.instances[0].routes;
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].dst, r[0].prefix_len, r[0].metric),
            ("198.51.100.0".parse().unwrap(), 24, Some(10))
        );
        assert_eq!(r[0].via, Some("192.0.2.254".parse().unwrap()));
        assert_eq!(r[0].ifindex, None);
        assert_eq!((r[1].prefix_len, r[1].table), (0, 100));
        assert_eq!((r[2].prefix_len, r[2].ifindex), (32, Some(2)));
    }

    #[test]
    fn routes_rules_and_statics_are_planned() {
        let p = plan(
            "static_ipaddress {\n 10.10.0.1/24 dev eth1\n}\n\
             static_routes {\n 10.20.0.0/16 via 10.10.0.254 dev eth1\n}\n\
             static_rules {\n from 10.10.0.1 table 50 priority 90\n}\n\
             vrrp_instance R {\n interface eth0\n virtual_router_id 9\n promote_secondaries\n \
             virtual_ipaddress {\n 192.0.2.200/24\n }\n \
             virtual_routes {\n default table 100 nexthop via 192.0.2.1 dev eth2 weight 2 nexthop via 192.0.2.2\n \
             blackhole 203.0.113.0/24 table 100\n 198.51.100.0/24 via 192.0.2.1 mtu lock 1400\n }\n \
             virtual_rules {\n from 192.0.2.200 table 100 priority 100\n }\n}\n",
        );
        let i = &p.instances[0];
        assert!(i.promote_secondaries);
        let r = &i.routes;
        assert_eq!(r[0].nexthops[0].ifindex, Some(4));
        assert_eq!(r[0].nexthops[0].weight, Some(2));
        assert_eq!(r[0].ifindex, None, "a multipath route takes no default dev");
        assert_eq!((r[1].kind, r[1].ifindex), (net::RouteKind::Blackhole, None));
        assert_eq!(r[2].locked, 1 << 2, "RTAX_MTU is 2");
        assert_eq!(i.ip_rules[0].action, net::RuleAction::Table(100));
        assert_eq!(
            i.ip_rules[0].from,
            Some(("192.0.2.200".parse().unwrap(), 32))
        );
        assert_eq!(p.statics.addresses[0].entry.interface, "eth1");
        assert_eq!(p.statics.routes[0].entry.ifindex, Some(3));
        assert_eq!(p.statics.rules[0].entry.priority, 90);
        assert!(p.statics.rules[0].track);
    }

    #[test]
    fn vip_options_are_applied() {
        let p = plan(
            "vrrp_instance V4 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n \
             192.0.2.200 peer 192.0.2.201 noprefixroute autojoin\n \
             192.0.2.202/24 brd + scope link label eth0:x\n \
             192.0.2.203 preferred_lft 0 home mngtmpaddr -nodad\n }\n}\n\
             vrrp_instance V6 {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n \
             2001:db8::10/64 preferred_lft 0 noprefixroute home mngtmpaddr -nodad\n \
             2001:db8::11\n 2001:db8::12/64\n 2001:db8::13 preferred_lft forever\n \
             2001:db8::14/64 preferred_lft 30\n 2001:db8::15 peer 2001:db8::16\n }\n}\n",
        );
        let v4: Vec<&Vip> = p.instances[0].vips.iter().map(|v| &v.vip).collect();
        let noprefixroute_autojoin = VipFlags {
            noprefixroute: true,
            autojoin: true,
            ..VipFlags::default()
        };
        assert_eq!(
            *v4[0],
            Vip::new("192.0.2.200".parse().unwrap())
                .with_peer("192.0.2.201".parse().unwrap())
                .with_flags(noprefixroute_autojoin)
        );
        assert_eq!(
            *v4[1],
            Vip::new("192.0.2.202".parse().unwrap())
                .with_prefix_len(24)
                .with_broadcast("192.0.2.255".parse().unwrap())
                .with_scope(Scope::Link)
                .with_label("eth0:x")
        );
        // keepalived applies preferred_lft, home, mngtmpaddr and -nodad to IPv6 only (the
        // configuration warns and drops them on IPv4).
        assert_eq!(*v4[2], Vip::new("192.0.2.203".parse().unwrap()));

        let v6: Vec<&Vip> = p.instances[1].vips.iter().map(|v| &v.vip).collect();
        assert_eq!(
            *v6[0],
            Vip::new("2001:db8::10".parse().unwrap())
                .with_prefix_len(64)
                .with_preferred_lft(0)
                .with_flags(VipFlags {
                    home: true,
                    mngtmpaddr: true,
                    noprefixroute: true,
                    autojoin: false,
                    dad: true,
                })
        );
        // Unset preferred_lft: keepalived's default, deprecated for a /128, forever otherwise
        // (forever is the kernel's default: no lifetimes sent).
        assert_eq!(v6[1].preferred_lft, Some(0));
        assert_eq!(v6[2].preferred_lft, None);
        assert_eq!(v6[3].preferred_lft, None, "preferred_lft forever on a /128");
        assert_eq!(v6[4].preferred_lft, Some(30));
        assert_eq!(
            (v6[5].peer, v6[5].prefix_len, v6[5].preferred_lft),
            (Some("2001:db8::16".parse().unwrap()), 128, Some(0))
        );
        assert!(v6.iter().skip(1).all(|v| v.flags == VipFlags::default()));
    }

    #[test]
    fn vips_on_other_interfaces_are_tracked_unless_no_track() {
        let p = plan(
            "vrrp_instance T {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n \
             192.0.2.200\n 192.0.2.201 dev eth0\n 198.51.100.1 dev eth1\n \
             198.51.100.2 dev eth1\n 198.51.100.3 dev eth2 no_track\n }\n \
             virtual_ipaddress_excluded {\n 203.0.113.1 dev eth2\n }\n}\n\
             vrrp_instance N {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n \
             192.0.2.210 dev eth1 no_track\n 192.0.2.211 no_track\n }\n}\n",
        );
        assert_eq!(p.instances[0].vip_interfaces, ["eth1", "eth2"]);
        assert!(p.instances[1].vip_interfaces.is_empty());
        let placed: Vec<&str> = p.instances[0]
            .vips
            .iter()
            .map(|v| v.interface.as_str())
            .collect();
        assert_eq!(placed, ["eth0", "eth0", "eth1", "eth1", "eth2", "eth2"]);
    }

    #[test]
    fn missing_interface_is_named() {
        let loaded = config::parse_str(
            "vrrp_instance X {\n interface bond9\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.9\n }\n}\n",
            Path::new("/k.conf"),
        )
        .unwrap();
        let err = build(&loaded.config, &facts()).unwrap_err().to_string();
        assert!(
            err.contains("/k.conf:1:1: vrrp_instance X: interface bond9 does not exist"),
            "{err}"
        );
    }

    #[test]
    fn garp_spacing_is_the_groups_on_its_interfaces_and_the_globals_elsewhere() {
        let p = plan(
            "global_defs {\n vrrp_garp_interval 0.01\n vrrp_gna_interval 0.02\n}\n\
             garp_group {\n garp_interval 0.5\n interfaces {\n eth1 eth2\n }\n}\n\
             garp_group {\n gna_interval 0.25\n interface eth3\n}\n\
             vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n \
             192.0.2.200\n 198.51.100.1 dev eth1\n }\n}\n",
        );
        let ms = Duration::from_millis;
        let spacing = |garp, gna| net::garp::Spacing { garp, gna };
        let pacing = &p.garp_pacing;
        assert_eq!(pacing.spacing("eth0"), spacing(ms(10), ms(20)));
        assert_eq!(pacing.spacing("eth1"), spacing(ms(500), ms(0)));
        assert_eq!(pacing.spacing("eth3"), spacing(ms(0), ms(250)));
        // eth1 and eth2 share one pace; eth0 is on its own.
        assert_eq!(pacing.group_of("eth1"), pacing.group_of("eth2"));
        assert_ne!(pacing.group_of("eth1"), pacing.group_of("eth3"));
        assert_eq!(pacing.group_of("eth0"), None);
    }
}
