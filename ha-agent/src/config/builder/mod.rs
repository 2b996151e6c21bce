//! Statements -> typed [`Config`], with keepalived's defaults, fix-ups and semantic checks.
//!
//! Policy: input keepalived cannot read (bad syntax, a value out of range, an unknown keyword, a
//! name that refers to nothing, a conflict) is an error. Where keepalived reads the value but
//! adjusts it (rounds advert_int, truncates auth_pass, drops a VIP of the wrong family, clears
//! nopreempt on a MASTER…), ha-agent makes the same adjustment, so it behaves on the wire as
//! keepalived would, and says so in a warning. Keywords keepalived knows but ha-agent does not act
//! on are what `keywords.rs` says: an error when ignoring them changes failover behaviour (a
//! warning with `--allow-unsupported`), a warning when they configure what ha-agent replaces.
//!
//! One file per concern, each an `impl Builder` block over the same state:
//! - `mod.rs`: the `Builder`, the statements as read (`RawInstance`, `RawGroup`,
//!   `TrackRef`), the top-level dispatch and `finish`, which resolves once all is read;
//! - `args.rs`: reading one statement's arguments (integers, decimals, flags, addresses, notify
//!   scripts), each error at the word that is wrong;
//! - `globals.rs`: `global_defs`;
//! - `trackers.rs`: `vrrp_script`, `track_file`, `track_*` references and their weights, and
//!   resolving those references against the definitions;
//! - `instances.rs`: `vrrp_instance` keywords;
//! - `addresses.rs`: `virtual_ipaddress` lines and address syntax;
//! - `routes.rs`: route and rule lines (`virtual_routes`/`_rules`, `static_*`);
//! - `interfaces.rs`: `garp_group`, `interface_up_down_delays`;
//! - `sync_groups.rs`: `vrrp_sync_group`, its members and its trackers;
//! - `lvs.rs`: `virtual_server`, `virtual_server_group`, real servers, checkers, `SSL`;
//! - `resolve.rs`: completing each instance (keepalived's `vrrp_complete_instance`, in named
//!   steps) and the VRID conflicts between instances;
//! - `tests.rs`: the rules shared between kinds of tracker and between flags, with their wording.

mod addresses;
mod args;
mod globals;
mod instances;
mod interfaces;
mod lvs;
mod resolve;
mod routes;
mod sync_groups;
mod trackers;

use std::net::IpAddr;
use std::time::Duration;

use super::ReadOptions;
use super::error::{Diags, Pos};
use super::keywords::Context;
use super::lexer::Word;
use super::model::*;
use super::parser::Stmt;

/// keepalived lib/timer.h TIMER_HZ_DIGITS: timers are read with up to 6 decimals (microseconds).
const TIMER_HZ_DIGITS: u32 = 6;
const US_PER_SEC: u64 = 1_000_000;

pub(crate) fn build(stmts: &[Stmt], options: &ReadOptions, diags: &mut Diags) -> Config {
    let mut b = Builder {
        d: diags,
        allow_unsupported: options.allow_unsupported,
        interface_refs: Vec::new(),
        global: GlobalDefs::default(),
        scripts: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        instances: Vec::new(),
        groups: Vec::new(),
        statics: Statics::default(),
        rule_priority: (routes::RULE_START_PRIORITY, routes::RULE_START_PRIORITY),
        lvs: lvs::RawLvs::default(),
    };
    for st in stmts {
        b.root(st);
    }
    let mut config = b.finish();
    config.read_options = options.clone();
    config
}

fn source(pos: &Pos) -> Source {
    Source {
        file: pos.file.to_path_buf(),
        line: pos.line,
        col: pos.col,
    }
}

fn secs(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[derive(Debug, Clone)]
struct TrackRef {
    name: String,
    pos: Pos,
    weight: Option<i32>,
    reverse: Option<bool>,
}

#[derive(Default)]
struct RawAuth {
    block_pos: Option<Pos>,
    auth_type: Option<(String, Pos)>,
    pass: Option<(Vec<u8>, Pos)>,
}

struct RawInstance {
    name: String,
    pos: Pos,
    state: Option<(State, Pos)>,
    interface: Option<(String, Pos)>,
    /// An `interface` line was present (even if invalid): no "interface required" cascade.
    interface_seen: bool,
    vrid_seen: bool,
    vrid: Option<(u8, Pos)>,
    priority: Option<(u8, Pos)>,
    advert_int: Option<(u64, Pos)>,
    version: Option<(Version, Pos)>,
    /// The family and the position of the address that set it.
    family: Option<(Family, Pos)>,
    nopreempt: Option<Pos>,
    preempt_delay: Option<(u64, Pos)>,
    auth: RawAuth,
    vips: Vec<(VirtualAddress, Pos)>,
    evips: Vec<(VirtualAddress, Pos)>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
    promote_secondaries: bool,
    src_ip: Option<IpAddr>,
    peers: Vec<UnicastPeer>,
    unicast_configured: bool,
    check_unicast_src: bool,
    unicast_fault_no_peer: bool,
    track_src_ip: Option<Pos>,
    down_timer_adverts: Option<u8>,
    track_if: Vec<TrackRef>,
    track_script: Vec<TrackRef>,
    track_file: Vec<TrackRef>,
    track_process: Vec<TrackRef>,
    dont_track_primary: bool,
    notify: Notify,
    garp_delay: Option<Duration>,
    garp_rep: Option<u32>,
    garp_refresh: Option<Duration>,
    garp_refresh_rep: Option<u32>,
    garp_lower_prio_delay: Option<(Duration, Pos)>,
    garp_lower_prio_rep: Option<(u32, Pos)>,
    lower_prio_no_advert: Option<(bool, Pos)>,
    higher_prio_send_advert: Option<(bool, Pos)>,
    v3_checksum_as_v2: bool,
    accept: Option<bool>,
    strict: Option<bool>,
    skip_check_adv_addr: Option<bool>,
    unicast_ttl: Option<(u8, Pos)>,
    mcast_dst: Option<(IpAddr, Pos)>,
    /// `use_vmac`: name, MAC (the VRID's octet `None` when five octets are given).
    use_vmac: Option<(Option<String>, Option<crate::net::vmac::MacArg>)>,
    vmac_xmit_base: Option<Pos>,
    use_vmac_addr: bool,
}

struct RawGroup {
    name: String,
    pos: Pos,
    members: Vec<Word>,
    had_group: bool,
    notify: Notify,
    track_if: Vec<TrackRef>,
    track_script: Vec<TrackRef>,
    track_file: Vec<TrackRef>,
    track_process: Vec<TrackRef>,
    tracking_weight: bool,
}

struct Builder<'d> {
    d: &'d mut Diags,
    /// `--allow-unsupported`: failover keywords ha-agent ignores are warnings, not errors.
    allow_unsupported: bool,
    interface_refs: Vec<InterfaceRef>,
    global: GlobalDefs,
    scripts: Vec<(VrrpScript, Pos)>,
    track_files: Vec<(TrackFile, Pos)>,
    track_processes: Vec<(TrackProcess, Pos)>,
    instances: Vec<RawInstance>,
    groups: Vec<RawGroup>,
    statics: Statics,
    /// The preference of the next IPv4 and IPv6 rule written without one.
    rule_priority: (u32, u32),
    /// `virtual_server`, `virtual_server_group` as read (`lvs.rs`).
    lvs: lvs::RawLvs,
}

/// Top-level blocks, and the resolution once every block is read.
impl Builder<'_> {
    fn root(&mut self, st: &Stmt) {
        match st.kw() {
            "global_defs" => {
                self.extra_args(st, 0);
                if let Some(stmts) = self.block(st) {
                    for s in stmts {
                        self.global_def(s);
                    }
                }
            }
            "vrrp_script" => self.vrrp_script(st),
            "vrrp_instance" => self.vrrp_instance(st),
            "vrrp_sync_group" => self.sync_group(st),
            "track_file" | "vrrp_track_file" => self.track_file_def(st),
            "static_ipaddress" => self.static_addresses(st),
            "static_routes" => {
                let r = self.route_block(st);
                self.statics.routes.extend(r);
            }
            "static_rules" => {
                let r = self.rule_block(st);
                self.statics.rules.extend(r);
            }
            "vrrp_track_process" => self.track_process_def(st),
            "garp_group" => self.garp_group(st),
            "interface_up_down_delays" => self.interface_up_down_delays(st),
            "virtual_server" => self.virtual_server(st),
            "virtual_server_group" => self.virtual_server_group(st),
            "SSL" => self.ssl_block(st),
            // core/global_parser.c instance_handler: the first one wins.
            "instance" => {
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "an instance name") {
                    self.extra_args(st, 1);
                    if self.global.instance.is_some() {
                        self.d.error(st.pos(), "instance: already specified");
                    } else if w.text.contains('/') || w.text == "." || w.text == ".." {
                        // It names files in /run/ha-agent.
                        self.d.error(
                            &w.pos,
                            format!("instance: \"{}\" cannot name a file", w.text),
                        );
                    } else {
                        self.global.instance = Some(w.text.clone());
                    }
                }
            }
            // core/global_parser.c net_namespace_handler: the first one wins.
            "net_namespace" => {
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "a network namespace name") {
                    self.extra_args(st, 1);
                    if self.global.net_namespace.is_some() {
                        self.d.error(st.pos(), "net_namespace: already specified");
                    } else if w.text.contains('/') || w.text == "." || w.text == ".." {
                        // A name under /run/netns, as `ip netns` makes them.
                        self.d.error(
                            &w.pos,
                            format!("net_namespace: \"{}\" is not a namespace name", w.text),
                        );
                    } else {
                        self.global.net_namespace = Some(NetNamespace {
                            name: w.text.clone(),
                            at: source(&w.pos),
                        });
                    }
                }
            }
            _ => self.not_handled(st, Context::Root, ""),
        }
    }

    /// `KEYWORD NAME { … }` (vrrp_instance, vrrp_script, track_file, vrrp_sync_group): the name
    /// and the statements, unless `defined(name)`: then "already defined", as keepalived.
    fn named_block<'s>(
        &mut self,
        st: &'s Stmt,
        defined: impl FnOnce(&Self, &str) -> bool,
    ) -> Option<(String, &'s [Stmt])> {
        let name = self.arg(st, 0, "a name")?.text.clone();
        self.extra_args(st, 1);
        let stmts = self.block(st)?;
        if defined(self, &name) {
            self.d
                .error(st.pos(), format!("{} {name}: already defined", st.kw()));
            return None;
        }
        Some((name, stmts))
    }

    /// Once every statement is read: resolves the names, completes the instances and the sync
    /// groups, checks what instances share.
    fn finish(mut self) -> Config {
        let members = self.sync_group_members();
        let instances: Vec<RawInstance> = std::mem::take(&mut self.instances);
        let mut done = Vec::new();
        for raw in &instances {
            if let Some(inst) = self.complete(raw, members.group_of(&raw.name)) {
                done.push((inst, raw));
            }
        }
        self.vrid_conflicts(&done);
        self.clamp_link_delays(&done);

        let sync_groups = members
            .groups
            .iter()
            .map(|(g, names)| self.complete_sync_group(g, names, &done))
            .collect();
        let lvs = self.finish_lvs(&done.iter().map(|(i, _)| i).collect::<Vec<_>>());

        Config {
            global: self.global,
            scripts: self.scripts.into_iter().map(|(s, _)| s).collect(),
            track_files: self.track_files.into_iter().map(|(f, _)| f).collect(),
            track_processes: self.track_processes.into_iter().map(|(p, _)| p).collect(),
            instances: done.into_iter().map(|(i, _)| i).collect(),
            sync_groups,
            interface_refs: self.interface_refs,
            read_options: ReadOptions::default(),
            statics: self.statics,
            lvs,
        }
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
    }
}

#[cfg(test)]
mod lvs_tests;
#[cfg(test)]
mod tests;
