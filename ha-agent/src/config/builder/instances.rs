//! `vrrp_instance`: each keyword as written into a `RawInstance` (keepalived/vrrp/vrrp_parser.c
//! handlers, in the order keepalived reads them), with the checks one line allows: the family
//! its addresses share, duplicate VIPs and peers. What needs the whole instance is `resolve.rs`'s.

use std::net::IpAddr;
use std::time::Duration;

use super::{Builder, RawAuth, RawInstance, TIMER_HZ_DIGITS, US_PER_SEC, addresses::bad_ifname};
use crate::config::error::Pos;
use crate::config::keywords::Context;
use crate::config::model::{Family, Notify, State, UnicastPeer, Version, VirtualAddress};
use crate::config::parser::Stmt;

impl Builder<'_> {
    pub(super) fn vrrp_instance(&mut self, st: &Stmt) {
        // vrrp_handler: "vrrp instance %s already defined"
        let Some((name, stmts)) =
            self.named_block(st, |b, name| b.instances.iter().any(|i| i.name == name))
        else {
            return;
        };
        let mut v = RawInstance {
            name: name.clone(),
            pos: st.pos().clone(),
            state: None,
            interface: None,
            interface_seen: false,
            vrid_seen: false,
            vrid: None,
            priority: None,
            advert_int: None,
            version: None,
            family: None,
            nopreempt: None,
            preempt_delay: None,
            auth: RawAuth::default(),
            vips: Vec::new(),
            evips: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            promote_secondaries: false,
            src_ip: None,
            peers: Vec::new(),
            unicast_configured: false,
            check_unicast_src: false,
            unicast_fault_no_peer: false,
            track_src_ip: None,
            down_timer_adverts: None,
            track_if: Vec::new(),
            track_script: Vec::new(),
            track_file: Vec::new(),
            track_process: Vec::new(),
            dont_track_primary: false,
            notify: Notify::default(),
            garp_delay: None,
            garp_rep: None,
            garp_refresh: None,
            garp_refresh_rep: None,
            garp_lower_prio_delay: None,
            garp_lower_prio_rep: None,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            v3_checksum_as_v2: false,
            accept: None,
            strict: None,
            skip_check_adv_addr: None,
            unicast_ttl: None,
            mcast_dst: None,
            use_vmac: None,
            vmac_xmit_base: None,
            use_vmac_addr: false,
        };
        let ctx = format!("vrrp_instance {name}: ");
        for x in stmts {
            self.instance_keyword(&mut v, x, &ctx);
        }
        self.instances.push(v);
    }

    fn instance_keyword(&mut self, v: &mut RawInstance, x: &Stmt, ctx: &str) {
        let max_secs = u64::from(u32::MAX) / US_PER_SEC;
        match x.kw() {
            "state" => {
                let Some(s) = self.string(x, "MASTER or BACKUP") else {
                    return;
                };
                let state = match s.as_str() {
                    "MASTER" => State::Master,
                    "BACKUP" => State::Backup,
                    _ => {
                        // vrrp_state_handler: "unknown state, defaulting to BACKUP"
                        self.d.error(
                            &x.args[0].pos,
                            format!("state: expected MASTER or BACKUP, found \"{s}\""),
                        );
                        return;
                    }
                };
                if state == State::Backup && matches!(v.state, Some((State::Master, _))) {
                    // vrrp_state_handler: "state previously set as MASTER - ignoring BACKUP"
                    self.d.warn(
                        x.pos(),
                        "state: previously set as MASTER - ignoring BACKUP (as keepalived)",
                    );
                    return;
                }
                v.state = Some((state, x.pos().clone()));
            }
            "interface" => {
                v.interface_seen = true;
                let Some(ifname) = self.string(x, "an interface name") else {
                    return;
                };
                if let Some(msg) = bad_ifname(&ifname) {
                    self.d.error(&x.args[0].pos, format!("interface: {msg}"));
                    return;
                }
                if ifname == "lo" {
                    // vrrp_int_handler: "cannot use a loopback interface (%s) for vrrp"
                    self.d.error(
                        &x.args[0].pos,
                        "interface: the loopback interface cannot carry VRRP",
                    );
                    return;
                }
                self.interface_ref(
                    &ifname,
                    &x.args[0].pos,
                    format!("vrrp_instance {}: interface", v.name),
                );
                v.interface = Some((ifname, x.pos().clone()));
            }
            "virtual_router_id" => {
                v.vrid_seen = true;
                // vrrp_vrid_handler: read_unsigned_strvec(…, 1, 255)
                if let Some(id) = self.uint(x, 1, 255) {
                    v.vrid = Some((id as u8, x.pos().clone()));
                }
            }
            "priority" => {
                // vrrp_prio_handler: [1, VRRP_PRIO_OWNER]
                if let Some(p) = self.uint(x, 1, 255) {
                    v.priority = Some((p as u8, x.pos().clone()));
                }
            }
            "advert_int" => {
                // vrrp_adv_handler: [TIMER_HZ / 100, 255 * TIMER_HZ] with 6 decimals
                if let Some(us) =
                    self.decimal(x, TIMER_HZ_DIGITS, US_PER_SEC / 100, 255 * US_PER_SEC)
                {
                    v.advert_int = Some((us, x.args[0].pos.clone()));
                }
            }
            "version" => {
                if let Some(ver) = self.version_word(x) {
                    v.version = Some((ver, x.args[0].pos.clone()));
                }
            }
            "nopreempt" => {
                self.bare_flag(x);
                v.nopreempt = Some(x.pos().clone());
            }
            "preempt" => {
                self.bare_flag(x);
                v.nopreempt = None;
            }
            "preempt_delay" => {
                // vrrp_preempt_delay_handler: [0, TIMER_MAX_SEC]
                if let Some(us) = self.decimal(x, TIMER_HZ_DIGITS, 0, 1000 * US_PER_SEC) {
                    v.preempt_delay = Some((us, x.pos().clone()));
                }
            }
            "authentication" => {
                self.extra_args(x, 0);
                let Some(lines) = self.block(x) else { return };
                v.auth.block_pos = Some(x.pos().clone());
                for l in lines {
                    match l.kw() {
                        "auth_type" => {
                            if let Some(t) = self.string(l, "PASS or AH") {
                                v.auth.auth_type = Some((t, l.args[0].pos.clone()));
                            }
                        }
                        "auth_pass" => {
                            if let Some(p) = self.string(l, "a password") {
                                let mut bytes = p.into_bytes();
                                if bytes.len() > 8 {
                                    // vrrp_auth_pass_handler: "Truncating auth_pass to 8 characters"
                                    bytes.truncate(8);
                                    self.d.warn(
                                        &l.args[0].pos,
                                        format!(
                                            "auth_pass: longer than 8 characters, truncated to \"{}\" (as keepalived)",
                                            String::from_utf8_lossy(&bytes)
                                        ),
                                    );
                                }
                                v.auth.pass = Some((bytes, l.args[0].pos.clone()));
                            }
                        }
                        _ => self.unknown(l, &format!("{ctx}authentication: ")),
                    }
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                self.extra_args(x, 0);
                let excluded = x.kw() == "virtual_ipaddress_excluded";
                let Some(lines) = self.block(x) else { return };
                for l in lines {
                    self.no_block(l);
                    let Some(addr) = self.vip(x.kw(), l) else {
                        continue;
                    };
                    self.add_vip(v, addr, l, excluded);
                }
            }
            "virtual_routes" => {
                let r = self.route_block(x);
                v.routes.extend(r);
            }
            "virtual_rules" => {
                let r = self.rule_block(x);
                v.rules.extend(r);
            }
            "promote_secondaries" => {
                self.bare_flag(x);
                v.promote_secondaries = true;
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                // vrrp_srcip_handler: sets the instance family; must match it.
                if x.kw() == "unicast_src_ip" {
                    v.unicast_configured = true;
                }
                let Some((a, pos)) = self.ip(x) else { return };
                if self.check_family(v, &a, &pos, x.kw()) {
                    v.src_ip = Some(a);
                }
            }
            // vrrp_parser.c vrrp_mcast_dstip_handler: sets the family too; IPv4 multicast, or
            // IPv6 link-local multicast (ff02::/16).
            "mcast_dst_ip" => {
                let Some((a, pos)) = self.ip(x) else { return };
                let ok = match a {
                    IpAddr::V4(a) => a.is_multicast(),
                    IpAddr::V6(a) => a.segments()[0] == 0xff02,
                };
                if !ok {
                    self.d.error(
                        &pos,
                        format!(
                            "{ctx}mcast_dst_ip {a} is not {}multicast",
                            if a.is_ipv6() { "link-local " } else { "" }
                        ),
                    );
                } else if self.check_family(v, &a, &pos, x.kw()) {
                    v.mcast_dst = Some((a, pos));
                }
            }
            "unicast_peer" => {
                v.unicast_configured = true;
                self.extra_args(x, 0);
                let Some(lines) = self.block(x) else { return };
                for l in lines {
                    self.no_block(l);
                    self.unicast_peer(v, l);
                }
            }
            "check_unicast_src" => {
                self.bare_flag(x);
                v.unicast_configured = true;
                v.check_unicast_src = true;
            }
            "unicast_fault_no_peer" => {
                // vrrp_parser.c vrrp_unicast_fault_no_peer: unicast, and FAULT without peers.
                self.bare_flag(x);
                v.unicast_configured = true;
                v.unicast_fault_no_peer = true;
            }
            "track_src_ip" => {
                self.bare_flag(x);
                v.track_src_ip = Some(x.pos().clone());
            }
            "down_timer_adverts" => {
                // vrrp_parser.c vrrp_down_timer_adverts_handler: 1-100.
                if let Some(n) = self.uint(x, 1, 100) {
                    v.down_timer_adverts = Some(n as u8);
                }
            }
            "native_ipv6" => {
                // vrrp_parser.c vrrp_native_ipv6_handler: an IPv6 instance, VRRPv3, even before
                // (or without) an IPv6 address; an IPv4 address already seen is an error.
                self.bare_flag(x);
                match &v.family {
                    Some((Family::Ipv4, at)) => self.d.error(
                        x.pos(),
                        format!(
                            "native_ipv6: the instance is already IPv4 (from {}:{}:{})",
                            at.file.display(),
                            at.line,
                            at.col
                        ),
                    ),
                    _ => {
                        v.family = Some((Family::Ipv6, x.pos().clone()));
                        v.version = Some((Version::V3, x.pos().clone()));
                    }
                }
            }
            "track_interface" => {
                let ctx = format!("vrrp_instance {}: track_interface", v.name);
                self.track_interfaces(x, &mut v.track_if, ctx);
            }
            "track_script" => self.track_refs(x, &mut v.track_script),
            "track_file" => self.track_refs(x, &mut v.track_file),
            "track_process" => self.track_refs(x, &mut v.track_process),
            "dont_track_primary" => {
                self.bare_flag(x);
                v.dont_track_primary = true;
            }
            "notify" => self.notify_script(x, &mut v.notify.notify),
            "notify_master" => self.notify_script(x, &mut v.notify.master),
            "notify_backup" => self.notify_script(x, &mut v.notify.backup),
            "notify_fault" => self.notify_script(x, &mut v.notify.fault),
            "notify_stop" => self.notify_script(x, &mut v.notify.stop),
            // vrrp_parser.c vrrp_notify_deleted_handler: bare, or with a script.
            "notify_deleted" => {
                if v.notify.notify_deleted {
                    self.d
                        .error(x.pos(), "notify_deleted: already specified in this block");
                } else {
                    if x.args.is_empty() {
                        self.no_block(x);
                    } else {
                        self.notify_script(x, &mut v.notify.deleted);
                    }
                    v.notify.notify_deleted = true;
                }
            }
            "notify_master_rx_lower_pri" => {
                self.notify_script(x, &mut v.notify.master_rx_lower_pri);
            }
            "notify_priority_changes" => {
                if let Some(b) = self.flag(x) {
                    v.notify.priority_changes = Some(b);
                }
            }
            "garp_master_delay" => {
                if let Some(s) = self.uint(x, 0, max_secs) {
                    v.garp_delay = Some(Duration::from_secs(s));
                }
            }
            "garp_master_refresh" => {
                if let Some(s) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_refresh = Some(Duration::from_secs(s));
                }
            }
            "garp_master_repeat" => {
                if let Some(n) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_rep = Some(self.at_least_one(x, n));
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(n) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_refresh_rep = Some(self.at_least_one(x, n));
                }
            }
            // vrrp_parser.c vrrp_garp_lower_prio_delay_handler / _rep_handler.
            "garp_lower_prio_delay" => {
                if let Some(s) = self.uint(x, 0, max_secs) {
                    v.garp_lower_prio_delay = Some((Duration::from_secs(s), x.pos().clone()));
                }
            }
            "garp_lower_prio_repeat" => {
                if let Some(n) = self.uint(x, 0, i32::MAX as u64) {
                    v.garp_lower_prio_rep = Some((n as u32, x.pos().clone()));
                }
            }
            // vrrp_parser.c vrrp_lower_prio_no_advert_handler / _higher_prio_send_advert_.
            "lower_prio_no_advert" => {
                if let Some(b) = self.flag(x) {
                    v.lower_prio_no_advert = Some((b, x.pos().clone()));
                }
            }
            "higher_prio_send_advert" => {
                if let Some(b) = self.flag(x) {
                    v.higher_prio_send_advert = Some((b, x.pos().clone()));
                }
            }
            "v3_checksum_as_v2" => {
                if let Some(b) = self.flag(x) {
                    v.v3_checksum_as_v2 = b;
                }
            }
            "accept" => {
                self.bare_flag(x);
                v.accept = Some(true);
            }
            "no_accept" => {
                self.bare_flag(x);
                v.accept = Some(false);
            }
            "strict_mode" => {
                if let Some(b) = self.flag(x) {
                    v.strict = Some(b);
                }
            }
            // vrrp_parser.c vrrp_ttl_handler.
            "unicast_ttl" => {
                if let Some(n) = self.uint(x, 0, 255) {
                    v.unicast_ttl = Some((n as u8, x.pos().clone()));
                }
            }
            "skip_check_adv_addr" => {
                // vrrp_skip_check_adv_addr_handler sets the flag for any valid argument.
                if self.flag(x).is_some() {
                    v.skip_check_adv_addr = Some(true);
                }
            }
            "use_vmac" => self.use_vmac_line(v, x, ctx),
            "use_vmac_addr" => {
                self.bare_flag(x);
                v.use_vmac_addr = true;
            }
            "vmac_xmit_base" => {
                self.bare_flag(x);
                v.vmac_xmit_base = Some(x.pos().clone());
            }
            "auth_type" | "auth_pass" => {
                self.d.error(
                    x.pos(),
                    format!(
                        "{ctx}{} belongs inside an authentication {{ }} block",
                        x.kw()
                    ),
                );
            }
            _ => self.not_handled(x, Context::Instance, ctx),
        }
    }

    /// `use_vmac [NAME] [MAC]`: a word with ':' is the MAC (interface names cannot hold one),
    /// as keepalived's `vrrp_vmac_handler` tells them apart.
    fn use_vmac_line(&mut self, v: &mut RawInstance, x: &Stmt, ctx: &str) {
        self.no_block(x);
        let (mut name, mut mac) = (None, None);
        for w in &x.args {
            if w.text.contains(':') {
                if mac.is_some() {
                    self.d
                        .error(&w.pos, format!("{ctx}use_vmac: MAC address already given"));
                    return;
                }
                match crate::net::vmac::parse_mac(&w.text) {
                    Ok(m) => mac = Some(m),
                    Err(e) => {
                        self.d.error(&w.pos, format!("{ctx}use_vmac: {e}"));
                        return;
                    }
                }
            } else if name.is_some() {
                self.d.warn(
                    &w.pos,
                    format!("{ctx}use_vmac: unexpected \"{}\" ignored", w.text),
                );
            } else if let Some(msg) = bad_ifname(&w.text) {
                self.d.error(&w.pos, format!("{ctx}use_vmac: {msg}"));
                return;
            } else {
                name = Some(w.text.clone());
            }
        }
        v.use_vmac = Some((name, mac));
    }

    /// Sets the instance family from its first address, or checks the address against it.
    fn check_family(&mut self, v: &mut RawInstance, a: &IpAddr, pos: &Pos, kw: &str) -> bool {
        let fam = Family::of(a);
        match &v.family {
            None => {
                v.family = Some((fam, pos.clone()));
                true
            }
            Some((f, _)) if *f == fam => true,
            Some((f, set_at)) => {
                self.d.error(
                    pos,
                    format!(
                        "{kw}: {a} is {} but the instance is {} (from {}:{}:{})",
                        fam,
                        f,
                        set_at.file.display(),
                        set_at.line,
                        set_at.col
                    ),
                );
                false
            }
        }
    }

    fn add_vip(&mut self, v: &mut RawInstance, addr: VirtualAddress, l: &Stmt, excluded: bool) {
        let pos = l.pos().clone();
        let dup = v
            .vips
            .iter()
            .chain(v.evips.iter())
            .find(|(o, _)| o.addr == addr.addr && (!excluded || o.dev == addr.dev));
        if let Some((_, at)) = dup {
            // keepalived 2.2.7 accepts the address twice (`keepalived -t` says nothing) and the
            // kernel keeps one: added once here, and said.
            self.d.warn(
                &pos,
                format!(
                    "{}: {} is already listed at line {}: added once",
                    if excluded {
                        "virtual_ipaddress_excluded"
                    } else {
                        "virtual_ipaddress"
                    },
                    addr.addr,
                    at.line
                ),
            );
            return;
        }
        if excluded {
            v.evips.push((addr, pos));
            return;
        }
        let fam = Family::of(&addr.addr);
        match &v.family {
            None => v.family = Some((fam, pos.clone())),
            Some((f, set_at)) if *f != fam => {
                // vrrp_data.c alloc_vrrp_vip: "address family must match VRRP instance [%s] - ignoring".
                // keepalived drops the address (it does not move it to the excluded list).
                self.d.warn(
                    &pos,
                    format!(
                        "virtual_ipaddress: {} is {} but the instance is {} (from line {}): \
                         address ignored, as keepalived does; list it under \
                         virtual_ipaddress_excluded to have it managed",
                        addr.addr, fam, f, set_at.line
                    ),
                );
                return;
            }
            Some(_) => {}
        }
        v.vips.push((addr, pos));
    }

    /// One `unicast_peer` line: `ADDR [min_ttl N] [max_ttl N]` (vrrp_data.c `alloc_vrrp_unicast_peer`).
    fn unicast_peer(&mut self, v: &mut RawInstance, l: &Stmt) {
        let Some(addr) = self.ip_word("unicast_peer", &l.keyword) else {
            return;
        };
        if !self.check_family(v, &addr, l.pos(), "unicast_peer") {
            return;
        }
        let mut peer = UnicastPeer {
            addr,
            min_ttl: 0,
            max_ttl: 255,
        };
        let mut i = 0;
        while i < l.args.len() {
            let k = &l.args[i];
            let Some(val) = l.args.get(i + 1) else {
                self.d.error(
                    &l.end_pos(),
                    format!(
                        "unicast_peer: {}: expected an integer 0-255, found end of line",
                        k.text
                    ),
                );
                return;
            };
            let Some(ttl) = self.uint_word(&format!("unicast_peer: {}", k.text), val, 0, 255)
            else {
                return;
            };
            match k.text.as_str() {
                "min_ttl" => peer.min_ttl = ttl as u8,
                "max_ttl" => peer.max_ttl = ttl as u8,
                _ => {
                    self.d.error(
                        &k.pos,
                        format!(
                            "unicast_peer: expected min_ttl or max_ttl, found \"{}\"",
                            k.text
                        ),
                    );
                    return;
                }
            }
            // A TTL check only makes sense with source checking (alloc_vrrp_unicast_peer).
            v.check_unicast_src = true;
            i += 2;
        }
        if v.peers.iter().any(|p| p.addr == addr) {
            self.d
                .error(l.pos(), format!("unicast_peer: duplicate peer {addr}"));
            return;
        }
        if peer.min_ttl > peer.max_ttl {
            self.d.error(
                l.pos(),
                format!(
                    "unicast_peer: {addr}: min_ttl {} > max_ttl {} would discard every advert",
                    peer.min_ttl, peer.max_ttl
                ),
            );
            return;
        }
        v.peers.push(peer);
    }
}
