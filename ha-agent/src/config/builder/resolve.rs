//! Completing an instance once every block is read: keepalived's defaults and fix-ups that
//! need the whole instance (vrrp.c `vrrp_complete_instance`), one named step each, then the
//! VRID conflicts between instances (vrrp.c `check_vrid_conflicts`).

use std::net::IpAddr;
use std::time::Duration;

use super::addresses::is_link_local6;
use super::trackers::{NoWeight, TrackKind};
use super::{
    Builder, RawGroup, RawInstance, TIMER_HZ_DIGITS, US_PER_SEC, secs, source, state_name,
};
use crate::config::decimal::fmt_decimal;
use crate::config::error::Pos;
use crate::config::model::{Authentication, Family, State, UseVmac, VirtualAddress, VrrpInstance};
use crate::vrrp::types::{US_PER_CS, V3_MAX_ADVER_INT_CS, Version, round_to_unit_us};

/// One instance being completed: as written, and what every step reads.
struct Draft<'r> {
    raw: &'r RawInstance,
    /// `vrrp_instance NAME`, the start of every message.
    ctx: String,
    strict: bool,
}

impl Builder<'_> {
    /// The instance as configured, or `None` if it has errors (each reported; the others are
    /// still collected).
    pub(super) fn complete(
        &mut self,
        raw: &RawInstance,
        group: Option<&RawGroup>,
    ) -> Option<VrrpInstance> {
        let g = self.global.clone();
        let errors_before = self.d.errors.len();
        let c = Draft {
            raw,
            ctx: format!("vrrp_instance {}", raw.name),
            strict: raw.strict.unwrap_or(g.vrrp_strict),
        };
        let vrid = self.vrid(&c)?;
        let family = raw.family.as_ref().map_or(Family::Ipv4, |(f, _)| *f);
        let version = self.version(&c, family, g.vrrp_version);
        let (priority, state) = self.priority_and_state(&c);
        let authentication = self.authentication(&c, version);
        let unicast = self.unicast(&c);
        let interface = self.interface(&c);
        let (vips, evips) = self.vips(&c, version, family, unicast);
        let (preempt, preempt_delay) = self.preemption(&c, priority, state);
        let accept = self.accept_mode(&c, priority, version);
        let advert_int = self.advert_int(&c, version);

        // Weights are dropped for the address owner and for sync group members without
        // sync_group_tracking_weight (vrrp_complete_instance).
        let no_weight = if group.is_some_and(|g| !g.tracking_weight) {
            Some(NoWeight::SyncGroup)
        } else if priority == 255 {
            Some(NoWeight::Owner)
        } else {
            None
        };
        let own = interface.as_deref();
        let track_interfaces =
            self.instance_trackers(TrackKind::Interface, &raw.track_if, no_weight, own, &c.ctx);
        let track_scripts =
            self.instance_trackers(TrackKind::Script, &raw.track_script, no_weight, own, &c.ctx);
        let track_files =
            self.instance_trackers(TrackKind::File, &raw.track_file, no_weight, own, &c.ctx);
        let track_processes = self.instance_trackers(
            TrackKind::Process,
            &raw.track_process,
            no_weight,
            own,
            &c.ctx,
        );

        // vrrp.c vrrp_complete_instance: `mcast_dst_ip`, else the global group of the family.
        let mcast_group = if unicast {
            if let Some((_, pos)) = &raw.mcast_dst {
                self.d.warn(
                    pos,
                    format!(
                        "{}: mcast_dst_ip with unicast peers: ignored (as keepalived)",
                        c.ctx
                    ),
                );
            }
            None
        } else {
            Some(raw.mcast_dst.as_ref().map_or(
                match family {
                    Family::Ipv4 => IpAddr::V4(g.vrrp_mcast_group4),
                    Family::Ipv6 => IpAddr::V6(g.vrrp_mcast_group6),
                },
                |(a, _)| *a,
            ))
        };

        if self.d.errors.len() > errors_before {
            // Keep collecting errors elsewhere, but an instance with errors is not completed.
            return None;
        }
        let garp_lower_prio_repeat = self.garp_lower_prio(
            &c,
            raw.garp_lower_prio_rep
                .as_ref()
                .map(|(n, p)| (u64::from(*n), p)),
            u64::from(
                g.vrrp_garp_lower_prio_repeat
                    .unwrap_or(g.vrrp_garp_master_repeat),
            ),
            "garp_lower_prio_repeat",
        ) as u32;
        let garp_lower_prio_delay = Duration::from_secs(
            self.garp_lower_prio(
                &c,
                raw.garp_lower_prio_delay
                    .as_ref()
                    .map(|(d, p)| (d.as_secs(), p)),
                g.vrrp_garp_lower_prio_delay
                    .unwrap_or(g.vrrp_garp_master_delay)
                    .as_secs(),
                "garp_lower_prio_delay",
            ),
        );
        // vrrp.c vrrp_complete_instance: strict mode forces no advert on a lower priority and
        // none before stepping down, with a message when the configuration asked otherwise.
        let lower_prio_no_advert = self.strict_flag(
            &c,
            &raw.lower_prio_no_advert,
            g.vrrp_lower_prio_no_advert,
            true,
            "strict mode sends no advert in reply to a lower priority: \
             lower_prio_no_advert on (as keepalived)",
        );
        let higher_prio_send_advert = self.strict_flag(
            &c,
            &raw.higher_prio_send_advert,
            g.vrrp_higher_prio_send_advert,
            false,
            "strict mode sends no advert before stepping down: \
             higher_prio_send_advert off (as keepalived)",
        );
        Some(VrrpInstance {
            name: raw.name.clone(),
            source: source(&raw.pos),
            state,
            interface,
            vrid,
            priority,
            advert_int: secs(advert_int),
            version,
            family,
            preempt,
            preempt_delay: secs(preempt_delay),
            authentication,
            virtual_ipaddress: vips,
            virtual_ipaddress_excluded: evips,
            virtual_routes: raw.routes.clone(),
            virtual_rules: raw.rules.clone(),
            promote_secondaries: raw.promote_secondaries,
            src_ip: raw.src_ip,
            unicast_peers: raw.peers.clone(),
            mcast_group,
            track_interfaces,
            track_scripts,
            track_files,
            track_processes,
            dont_track_primary: raw.dont_track_primary,
            notify: raw.notify.clone(),
            garp_master_delay: raw.garp_delay.unwrap_or(g.vrrp_garp_master_delay),
            garp_master_repeat: raw.garp_rep.unwrap_or(g.vrrp_garp_master_repeat),
            garp_master_refresh: raw.garp_refresh.unwrap_or(g.vrrp_garp_master_refresh),
            garp_master_refresh_repeat: raw
                .garp_refresh_rep
                .unwrap_or(g.vrrp_garp_master_refresh_repeat),
            garp_lower_prio_delay,
            garp_lower_prio_repeat,
            lower_prio_no_advert,
            higher_prio_send_advert,
            v3_checksum_as_v2: raw.v3_checksum_as_v2,
            accept,
            strict_mode: c.strict,
            skip_check_adv_addr: raw
                .skip_check_adv_addr
                .unwrap_or(g.vrrp_skip_check_adv_addr),
            check_unicast_src: raw.check_unicast_src || g.vrrp_check_unicast_src,
            down_timer_adverts: self.down_timer_adverts(&c, g.vrrp_down_timer_adverts),
            unicast_fault_no_peer: raw.unicast_fault_no_peer && raw.peers.is_empty(),
            track_src_ip: self.track_src_ip(&c),
            unicast_ttl: self.unicast_ttl(&c, unicast),
            use_vmac: self.use_vmac(&c, vrid),
            use_vmac_addr: raw.use_vmac_addr,
        })
    }

    /// `use_vmac` with its MAC completed (five octets take the VRID), and `vmac_xmit_base`,
    /// which keepalived ignores without `use_vmac`.
    fn use_vmac(&mut self, c: &Draft, vrid: u8) -> Option<UseVmac> {
        let Some((name, mac)) = &c.raw.use_vmac else {
            if let Some(at) = &c.raw.vmac_xmit_base {
                // vrrp.c vrrp_complete_instance: "vmac_xmit_base is only valid with a vmac"
                self.d.warn(
                    at,
                    format!(
                        "{}: vmac_xmit_base is only valid with use_vmac: ignored",
                        c.ctx
                    ),
                );
            }
            return None;
        };
        let mut xmit_base = c.raw.vmac_xmit_base.is_some();
        if !c.raw.peers.is_empty() && !xmit_base {
            // keepalived.conf(5): "If using use_vmac with unicast peers, vmac_xmit_base must
            // be set."
            self.d.warn(
                &c.raw.pos,
                format!(
                    "{}: use_vmac with unicast peers: set vmac_xmit_base (keepalived's man \
                     page requires it; adverts leave from the macvlan as written)",
                    c.ctx
                ),
            );
        }
        if let (true, Some(at)) = (c.strict, &c.raw.vmac_xmit_base) {
            // vrrp.c: "xmit_base is incompatible with strict mode - resetting"
            self.d.warn(
                at,
                format!(
                    "{}: vmac_xmit_base is incompatible with strict mode: adverts leave \
                     from the macvlan (as keepalived)",
                    c.ctx
                ),
            );
            xmit_base = false;
        }
        Some(UseVmac {
            name: name.clone(),
            mac: mac.map(|(m, last)| {
                let mut out = [0; 6];
                out[..5].copy_from_slice(&m);
                out[5] = last.unwrap_or(vrid);
                out
            }),
            xmit_base,
        })
    }

    /// `down_timer_adverts`, else the global one; strict mode resets it to 3 with keepalived's
    /// message (vrrp.c `vrrp_complete_instance`).
    fn down_timer_adverts(&mut self, c: &Draft, global: u8) -> u8 {
        let n = c.raw.down_timer_adverts.unwrap_or(global);
        if c.strict && n != 3 {
            self.d.warn(
                &c.raw.pos,
                format!(
                    "{}: down_timer_adverts is incompatible with strict mode - resetting to 3 (as keepalived)",
                    c.ctx
                ),
            );
            return 3;
        }
        n
    }

    /// `track_src_ip` needs a configured source address to track (vrrp.c clears it otherwise).
    fn track_src_ip(&mut self, c: &Draft) -> bool {
        match (&c.raw.track_src_ip, c.raw.src_ip) {
            (Some(_), Some(_)) => true,
            (Some(pos), None) => {
                self.d.warn(
                    pos,
                    format!(
                        "{}: track_src_ip without unicast_src_ip or mcast_src_ip: nothing to track, ignored (as keepalived)",
                        c.ctx
                    ),
                );
                false
            }
            (None, _) => false,
        }
    }

    /// `virtual_router_id` is required; an invalid one was reported where it was written.
    fn vrid(&mut self, c: &Draft) -> Option<u8> {
        if c.raw.vrid.is_none() && !c.raw.vrid_seen {
            self.d.error(
                &c.raw.pos,
                format!("{}: virtual_router_id: required (1-255)", c.ctx),
            );
        }
        c.raw.vrid.as_ref().map(|(vrid, _)| *vrid)
    }

    /// Version: instance `version`, else 3 for IPv6, else global vrrp_version. VRRPv2 over
    /// IPv6 is no RFC's but keepalived sends it outside strict mode (tests/golden/v2-ipv6);
    /// in strict mode it says so and uses 3 (vrrp.c vrrp_complete_instance).
    fn version(&mut self, c: &Draft, family: Family, global_version: Version) -> Version {
        let ctx = &c.ctx;
        match (&c.raw.version, family) {
            (Some((Version::V2, pos)), Family::Ipv6) if c.strict => {
                self.d.warn(
                    pos,
                    format!(
                        "{ctx}: strict mode cannot use IPv6 with VRRP version 2: version 3 (as keepalived)"
                    ),
                );
                Version::V3
            }
            (Some((v, _)), _) => *v,
            (None, Family::Ipv6) => Version::V3,
            (None, Family::Ipv4) => global_version,
        }
    }

    /// Priority from state, state from priority.
    fn priority_and_state(&mut self, c: &Draft) -> (u8, State) {
        let (raw, ctx, strict, at) = (c.raw, &c.ctx, c.strict, &c.raw.pos);
        let priority = match (&raw.priority, &raw.state) {
            (Some((p, _)), _) => *p,
            (None, Some((State::Master, _))) => 255,
            (None, _) => 100,
        };
        let mut state = match &raw.state {
            Some((s, _)) => *s,
            None if priority == 255 => State::Master,
            None => State::Backup,
        };
        if let Some((State::Backup, spos)) = &raw.state
            && priority == 255
        {
            self.d.warn(
                spos,
                format!(
                    "{ctx}: state BACKUP with priority 255: the address owner takes over as MASTER \
                     regardless (after the master down interval)"
                ),
            );
        }
        if strict && ((state == State::Master) != (priority == 255)) {
            let fixed = if priority == 255 {
                State::Master
            } else {
                State::Backup
            };
            self.d.warn(
                raw.state.as_ref().map_or(at, |(_, p)| p),
                format!(
                    "{ctx}: in strict mode state MASTER must match being address owner (priority 255): using {}",
                    state_name(fixed)
                ),
            );
            state = fixed;
        }
        (priority, state)
    }

    /// `authentication`: PASS for VRRPv2 outside strict mode, else none, saying why.
    fn authentication(&mut self, c: &Draft, version: Version) -> Option<Authentication> {
        let (raw, ctx, strict) = (c.raw, &c.ctx, c.strict);
        let mut authentication = None;
        if let Some(block) = &raw.auth.block_pos {
            match (&raw.auth.auth_type, &raw.auth.pass) {
                (None, _) => self.d.warn(
                    block,
                    format!(
                        "{ctx}: authentication without auth_type: no authentication (as keepalived)"
                    ),
                ),
                (Some((t, tpos)), pass) => match t.as_str() {
                    "PASS" => {
                        if strict {
                            self.d.warn(tpos, format!("{ctx}: strict mode does not support authentication, ignored (as keepalived)"));
                        } else if version == Version::V3 {
                            self.d.warn(tpos, format!("{ctx}: VRRP version 3 does not support authentication, ignored (as keepalived)"));
                        } else if let Some((p, _)) = pass.as_ref().filter(|(p, _)| !p.is_empty()) {
                            authentication = Some(Authentication { pass: p.clone() });
                        } else {
                            self.d.warn(tpos, format!("{ctx}: auth_type PASS without auth_pass: no authentication (as keepalived)"));
                        }
                    }
                    "AH" => self.d.error(
                        tpos,
                        format!("{ctx}: auth_type AH (IPsec AH) is not supported by ha-agent"),
                    ),
                    other => self.d.error(
                        tpos,
                        format!("{ctx}: auth_type: expected PASS or AH, found \"{other}\""),
                    ),
                },
            }
        }
        authentication
    }

    /// Unicast when there are peers; strict mode allows none.
    fn unicast(&mut self, c: &Draft) -> bool {
        let (raw, ctx, strict, at) = (c.raw, &c.ctx, c.strict, &c.raw.pos);
        let unicast = !raw.peers.is_empty();
        if raw.unicast_configured && !unicast && raw.unicast_fault_no_peer {
            self.d.warn(
                at,
                format!("{ctx}: unicast without any unicast_peer (unicast_fault_no_peer): the instance stays in FAULT (as keepalived)"),
            );
        } else if raw.unicast_configured && !unicast {
            self.d.warn(
                at,
                format!("{ctx}: unicast keyword without any unicast_peer: using multicast (deprecated in keepalived)"),
            );
        }
        if strict && unicast {
            self.d.error(
                at,
                format!("{ctx}: unicast peers are not supported in strict mode"),
            );
        }
        unicast
    }

    /// `unicast_ttl`, for unicast instances only (vrrp_parser.c vrrp_end_handler).
    fn unicast_ttl(&mut self, c: &Draft, unicast: bool) -> Option<u8> {
        let (ttl, pos) = c.raw.unicast_ttl.as_ref()?;
        if !unicast {
            self.d.warn(
                pos,
                format!(
                    "{}: unicast_ttl without unicast peers: ignored (as keepalived)",
                    c.ctx
                ),
            );
            return None;
        }
        Some(*ttl)
    }

    /// The interface, required unless unicast from a (not link-local) `unicast_src_ip`.
    fn interface(&mut self, c: &Draft) -> Option<String> {
        let (raw, ctx, at) = (c.raw, &c.ctx, &c.raw.pos);
        let interface = raw.interface.as_ref().map(|(i, _)| i.clone());
        if interface.is_none() && !raw.interface_seen {
            match raw.src_ip {
                None => self.d.error(
                    at,
                    format!("{ctx}: interface: required (or unicast_src_ip with unicast peers)"),
                ),
                Some(IpAddr::V6(a)) if is_link_local6(&a) => self.d.error(
                    at,
                    format!("{ctx}: a link-local unicast_src_ip needs an interface"),
                ),
                Some(_) => {}
            }
        }
        interface
    }

    /// The VIPs, and the excluded ones: those an advert cannot carry are moved there.
    fn vips(
        &mut self,
        c: &Draft,
        version: Version,
        family: Family,
        unicast: bool,
    ) -> (Vec<VirtualAddress>, Vec<VirtualAddress>) {
        let (raw, ctx, strict, at) = (c.raw, &c.ctx, c.strict, &c.raw.pos);
        let mut vips: Vec<VirtualAddress> = raw.vips.iter().map(|(v, _)| v.clone()).collect();
        let mut evips: Vec<VirtualAddress> = raw.evips.iter().map(|(v, _)| v.clone()).collect();
        if vips.is_empty() {
            if version == Version::V3 || family == Family::Ipv6 || strict {
                self.d.error(
                    at,
                    format!("{ctx}: no virtual_ipaddress: at least one is required"),
                );
            } else {
                self.d.warn(
                    at,
                    format!("{ctx}: no virtual_ipaddress: at least one is sensible"),
                );
            }
        }
        if family == Family::Ipv6
            && !unicast
            && let Some((first, fpos)) = raw.vips.first()
            && let IpAddr::V6(a) = first.addr
            && !is_link_local6(&a)
        {
            let msg = format!("{ctx}: the first IPv6 VIP {a} should be link-local (fe80::/10)");
            if strict {
                self.d.error(fpos, msg);
            } else {
                self.d.warn(fpos, msg);
            }
        }
        // The count field is 8 bits and the advert must fit a 1500-byte frame (DEFAULT_MTU).
        let max_addr = match family {
            Family::Ipv4 => 255,
            Family::Ipv6 => (1500 - 14 - 40 - 8) / 16,
        };
        if vips.len() > max_addr {
            self.d.warn(
                at,
                format!(
                    "{ctx}: {} VIPs exceed the {max_addr} an advert can carry: the excess is moved to virtual_ipaddress_excluded (as keepalived)",
                    vips.len()
                ),
            );
            let excess = vips.split_off(max_addr);
            evips.splice(0..0, excess);
        }
        (vips, evips)
    }

    /// `preempt` and `preempt_delay` (µs), cleared where keepalived clears them.
    fn preemption(&mut self, c: &Draft, priority: u8, state: State) -> (bool, u64) {
        let (raw, ctx, strict) = (c.raw, &c.ctx, c.strict);
        let mut preempt = raw.nopreempt.is_none();
        let mut preempt_delay = raw.preempt_delay.as_ref().map_or(0, |(d, _)| *d);
        if let Some(np) = &raw.nopreempt {
            if priority == 255 {
                self.d.warn(np, format!("{ctx}: nopreempt is incompatible with priority 255: preempting (as keepalived)"));
                preempt = true;
            } else if state == State::Master {
                self.d.warn(np, format!("{ctx}: nopreempt does not work with state MASTER: preempting (as keepalived); use state BACKUP"));
                preempt = true;
            }
        }
        if let Some((_, dpos)) = &raw.preempt_delay
            && preempt_delay > 0
        {
            if state == State::Master {
                self.d.warn(dpos, format!("{ctx}: preempt_delay does not work with state MASTER: cleared (as keepalived)"));
                preempt_delay = 0;
            } else if strict {
                self.d.warn(dpos, format!("{ctx}: preempt_delay is incompatible with strict mode: cleared (as keepalived)"));
                preempt_delay = 0;
            } else if !preempt {
                self.d.warn(dpos, format!("{ctx}: preempt_delay is incompatible with nopreempt: cleared (as keepalived)"));
                preempt_delay = 0;
            }
        }
        (preempt, preempt_delay)
    }

    /// Accept mode default: on, unless strict and not the owner. Off, `vip_fence` enforces it
    /// (the XDP datapath; the socket datapath says at start that it cannot).
    fn accept_mode(&mut self, c: &Draft, priority: u8, version: Version) -> bool {
        let (raw, ctx, strict, at) = (c.raw, &c.ctx, c.strict, &c.raw.pos);
        let mut accept = raw.accept.unwrap_or(priority == 255 || !strict);
        if accept && priority != 255 && strict && version == Version::V2 {
            self.d.warn(at, format!("{ctx}: accept mode with VRRPv2 does not comply with RFC 3768 in strict mode: off (as keepalived)"));
            accept = false;
        }
        accept
    }

    /// Advert interval (µs): whole seconds for v2, centiseconds for v3.
    fn advert_int(&mut self, c: &Draft, version: Version) -> u64 {
        let (raw, ctx, at) = (c.raw, &c.ctx, &c.raw.pos);
        let mut adv = raw.advert_int.as_ref().map_or(US_PER_SEC, |(a, _)| *a);
        let adv_pos = raw.advert_int.as_ref().map_or(at, |(_, p)| p);
        if version == Version::V2 {
            if !adv.is_multiple_of(US_PER_SEC) {
                let rounded = round_to_unit_us(adv, US_PER_SEC);
                self.d.warn(
                    adv_pos,
                    format!(
                        "{ctx}: advert_int {}: VRRPv2 advertises whole seconds, rounded to {} (as keepalived)",
                        fmt_decimal(adv, TIMER_HZ_DIGITS),
                        fmt_decimal(rounded, TIMER_HZ_DIGITS)
                    ),
                );
                adv = rounded;
            }
        } else if adv >= (u64::from(V3_MAX_ADVER_INT_CS) + 1) * US_PER_CS {
            self.d.warn(
                adv_pos,
                format!(
                    "{ctx}: advert_int {}: VRRPv3 maximum is 40.95 s, using 40.95 (as keepalived)",
                    fmt_decimal(adv, TIMER_HZ_DIGITS)
                ),
            );
            adv = u64::from(V3_MAX_ADVER_INT_CS) * US_PER_CS;
        } else if !adv.is_multiple_of(US_PER_CS) {
            let rounded = round_to_unit_us(adv, US_PER_CS);
            self.d.warn(
                adv_pos,
                format!(
                    "{ctx}: advert_int {}: VRRPv3 advertises centiseconds, rounded to {} (as keepalived)",
                    fmt_decimal(adv, TIMER_HZ_DIGITS),
                    fmt_decimal(rounded, TIMER_HZ_DIGITS)
                ),
            );
            adv = rounded;
        }
        adv
    }

    /// `garp_lower_prio_delay` / `_repeat`: unset, the global value (itself defaulting to the
    /// vrrp_garp_master_* one, vrrp.c vrrp_complete_init); strict mode wants none.
    fn garp_lower_prio(
        &mut self,
        c: &Draft,
        set: Option<(u64, &Pos)>,
        global: u64,
        what: &str,
    ) -> u64 {
        if !c.strict {
            return set.map_or(global, |(n, _)| n);
        }
        if let Some((n, pos)) = set
            && n != 0
        {
            self.d.warn(
                pos,
                format!(
                    "{}: {what}: strict mode sends no repeated gratuitous ARPs: 0 (as keepalived)",
                    c.ctx
                ),
            );
        }
        0
    }

    /// A flag strict mode forces to `forced`, with `why` where the configuration asked
    /// otherwise; outside strict mode, the instance's value, else the global one.
    fn strict_flag(
        &mut self,
        c: &Draft,
        set: &Option<(bool, Pos)>,
        global: bool,
        forced: bool,
        why: &str,
    ) -> bool {
        match set {
            _ if !c.strict => set.as_ref().map_or(global, |(b, _)| *b),
            Some((b, pos)) if *b != forced => {
                self.d.warn(pos, format!("{}: {why}", c.ctx));
                forced
            }
            _ => forced,
        }
    }

    /// vrrp.c `check_vrid_conflicts`: one VRID per interface, family and multicast group; for
    /// unicast, per local address and shared peer. Stricter than keepalived: one VRID per
    /// interface and family whatever the destinations, since both datapaths (XDP's slots, the
    /// socket's table) find an advert's instance by (interface, family, VRID) alone.
    pub(super) fn vrid_conflicts(&mut self, done: &[(VrrpInstance, &RawInstance)]) {
        for (j, (b, braw)) in done.iter().enumerate() {
            for (a, _) in &done[..j] {
                if a.family != b.family || a.vrid != b.vrid {
                    continue;
                }
                let one_slot = a.interface.is_some() && a.interface == b.interface;
                let keepalived = a.is_unicast() == b.is_unicast()
                    && if a.is_unicast() {
                        let same_if = a.interface.is_none()
                            || b.interface.is_none()
                            || a.interface == b.interface;
                        let same_src =
                            a.src_ip.is_none() || b.src_ip.is_none() || a.src_ip == b.src_ip;
                        let shared_peer = a
                            .unicast_peers
                            .iter()
                            .any(|p| b.unicast_peers.iter().any(|q| q.addr == p.addr));
                        same_if && same_src && shared_peer
                    } else {
                        a.interface.is_some()
                            && a.interface == b.interface
                            && a.mcast_group == b.mcast_group
                    };
                if keepalived || one_slot {
                    let pos = braw.vrid.as_ref().map_or(&braw.pos, |(_, p)| p);
                    // keepalived would run these two; say why ha-agent cannot.
                    let why = if keepalived {
                        ""
                    } else {
                        " (ha-agent runs one instance per VRID, family and interface, whatever \
                         their unicast peers or multicast: give one of them another VRID)"
                    };
                    self.d.error(
                        pos,
                        format!(
                            "virtual_router_id: {} and {} both use VRID {} with {} on interface {}{why}",
                            a.name,
                            b.name,
                            b.vrid,
                            b.family,
                            b.interface.as_deref().unwrap_or("(none)")
                        ),
                    );
                }
            }
        }
    }
}
