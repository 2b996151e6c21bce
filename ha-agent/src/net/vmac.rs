//! keepalived's `use_vmac`: a macvlan on the instance's interface that carries the VRID's MAC
//! (RFC 5798 §7.3), so the VIPs answer with one MAC whichever router is master.
//!
//! The pure parts (the MAC, the generated names, the sysctls) are functions of the
//! configuration; the kernel parts create, adopt and delete the macvlans through rtnetlink.
//! Every macvlan ha-agent creates carries an alias ([`MARK`]) that also records the base
//! interface's ARP settings before the first macvlan on it: a restarted agent finds what a
//! crashed one left, and never deletes an interface it did not create.

use std::io;

use futures::TryStreamExt;
use rtnetlink::{
    LinkMacVlan, LinkUnspec,
    packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode},
};

use super::{
    Netlink,
    netlink::{errno, to_io},
};
use crate::vrrp::types::Family;

/// The start of the alias of every macvlan ha-agent creates.
pub const MARK: &str = "ha-agent vmac";

/// keepalived's default `vmac_prefix`.
pub const DEFAULT_PREFIX: &str = "vrrp";

/// RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub fn rfc_mac(vrid: u8, family: Family) -> [u8; 6] {
    let kind = match family {
        Family::Ipv4 => 0x01,
        Family::Ipv6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, kind, vrid]
}

/// `use_vmac`'s MAC as written: five octets, and the sixth when given (else the VRID).
pub type MacArg = ([u8; 5], Option<u8>);

/// `use_vmac`'s MAC argument: five octets (the VRID is the sixth, `None` here) or six. Refused
/// as keepalived refuses them: malformed, multicast, or RFC 5798's own prefix (which would
/// collide with another VRID's).
pub fn parse_mac(text: &str) -> Result<MacArg, String> {
    let octets: Vec<&str> = text.trim_end_matches(':').split(':').collect();
    let bad = || format!("invalid MAC address {text}");
    if !(5..=6).contains(&octets.len()) {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (o, s) in mac.iter_mut().zip(&octets) {
        if s.is_empty() || s.len() > 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    if mac[0] & 0x01 != 0 {
        return Err(format!("MAC address {text} is multicast"));
    }
    if mac[..4] == [0x00, 0x00, 0x5e, 0x00] && matches!(mac[4], 0x01 | 0x02) {
        return Err(format!(
            "MAC address {text} is in RFC 5798's range: omit it to use the VRID's"
        ));
    }
    let head = [mac[0], mac[1], mac[2], mac[3], mac[4]];
    Ok((head, (octets.len() == 6).then_some(mac[5])))
}

/// The macvlan names of `wanted` instances (`Some(name)` as written, `None` to generate), as
/// keepalived's `create_vmac_name` (see [`next_name`]), none of them in `taken`; each name
/// given is added to `taken`.
pub fn names(
    prefix: &str,
    wanted: &[Option<(Option<&str>, u8, Family)>],
    taken: &mut Vec<String>,
) -> Vec<Option<String>> {
    taken.extend(
        wanted
            .iter()
            .filter_map(|w| w.and_then(|(n, _, _)| n.map(str::to_owned))),
    );
    wanted
        .iter()
        .map(|w| {
            let (name, vrid, family) = (*w)?;
            match name {
                Some(n) => Some(n.to_owned()),
                None => Some(next_name(prefix, vrid, family, taken)),
            }
        })
        .collect()
}

/// keepalived's `create_vmac_name`: `PREFIX.VRID`, and while that is in `taken`
/// `PREFIXn.VRID` (n = 1, 2, … for IPv4; 6 first, then 1, 2, … for IPv6); added to `taken`.
pub fn next_name(prefix: &str, vrid: u8, family: Family, taken: &mut Vec<String>) -> String {
    let mut num: Option<u32> = None;
    loop {
        let suffix = match num {
            None => format!(".{vrid}"),
            Some(n) => format!("{n}.{vrid}"),
        };
        // IFNAMSIZ: the prefix is cut so that the number and VRID fit in 15 bytes.
        let keep = prefix.len().min(15 - suffix.len());
        let candidate = format!("{}{suffix}", &prefix[..keep]);
        if !taken.contains(&candidate) {
            taken.push(candidate.clone());
            return candidate;
        }
        num = Some(match (family, num) {
            (Family::Ipv6, None) => 6,
            (Family::Ipv6, Some(6)) => 1,
            (Family::Ipv6, Some(5)) => 7,
            (_, None) => 1,
            (_, Some(n)) => n + 1,
        });
    }
}

/// One `/proc/sys/net` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// Under `/proc/sys/net/`, e.g. `ipv4/conf/vrrp.51/arp_ignore`.
    pub path: String,
    pub value: u32,
}

fn sysctl(path: String, value: u32) -> Sysctl {
    Sysctl { path, value }
}

/// What keepalived sets on a macvlan (vrrp_if_config.c `vmac_sysctl`, `vmac_sysctl_6`,
/// vrrp_vmac.c `link_set_ipv6` and `IN6_ADDR_GEN_MODE_NONE`), before it is brought up:
/// ARP answered only for its own addresses, our own adverts and an address-less receive
/// accepted (IPv4), no IPv6 at all on an IPv4 one and no generated link-local on any.
pub fn vmac_sysctls(vmac: &str, family: Family) -> Vec<Sysctl> {
    let v4 = |p: &str, v| sysctl(format!("ipv4/conf/{vmac}/{p}"), v);
    let v6 = |p: &str, v| sysctl(format!("ipv6/conf/{vmac}/{p}"), v);
    match family {
        Family::Ipv4 => vec![
            v4("arp_ignore", 1),
            v4("accept_local", 1),
            v4("rp_filter", 0),
            v4("promote_secondaries", 1),
            v6("addr_gen_mode", 1),
            v6("disable_ipv6", 1),
        ],
        Family::Ipv6 => vec![v4("arp_ignore", 1), v6("addr_gen_mode", 1)],
    }
}

/// What a macvlan's alias records, to restore when the last macvlan goes: the base
/// interface's ARP settings, changed while a macvlan sits on it — keepalived's `arp_ignore`
/// and `arp_filter` (the base never answers ARP for the VIPs with its own MAC), and
/// `arp_announce` 2, which keepalived leaves alone: without it a reply from a VIP leaves by
/// the base's route and the base asks for the client's MAC "tell VIP" with its own MAC, which
/// moves the client's neighbour entry for the VIP off the VRID's MAC — and the host's
/// `all`/`default` `rp_filter` (see [`clear_rp_filter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub arp_ignore: u32,
    pub arp_filter: u32,
    pub arp_announce: u32,
    pub all_rp_filter: u32,
    pub default_rp_filter: u32,
}

const BASE_ARP_KEYS: [&str; 3] = ["arp_ignore", "arp_filter", "arp_announce"];
const SAVED_KEYS: [&str; 5] = [
    "base_arp_ignore",
    "base_arp_filter",
    "base_arp_announce",
    "all_rp_filter",
    "default_rp_filter",
];

impl Saved {
    /// What the base gets while it carries a macvlan (the `rp_filter`s are not the base's).
    pub const WITH_VMAC: Saved = Saved {
        arp_ignore: 1,
        arp_filter: 1,
        arp_announce: 2,
        all_rp_filter: 0,
        default_rp_filter: 0,
    };

    fn values(self) -> [u32; 5] {
        [
            self.arp_ignore,
            self.arp_filter,
            self.arp_announce,
            self.all_rp_filter,
            self.default_rp_filter,
        ]
    }

    /// The base interface's ARP settings.
    pub fn sysctls(self, base: &str) -> Vec<Sysctl> {
        BASE_ARP_KEYS
            .iter()
            .zip(self.values())
            .map(|(k, v)| sysctl(format!("ipv4/conf/{base}/{k}"), v))
            .collect()
    }

    /// The host's `rp_filter` defaults.
    pub fn rp_sysctls(self) -> Vec<Sysctl> {
        vec![
            sysctl("ipv4/conf/all/rp_filter".into(), self.all_rp_filter),
            sysctl("ipv4/conf/default/rp_filter".into(), self.default_rp_filter),
        ]
    }

    /// The alias a macvlan carries: the mark, then the settings to restore.
    pub fn alias(self) -> String {
        let mut out = MARK.to_owned();
        for (k, v) in SAVED_KEYS.iter().zip(self.values()) {
            out.push_str(&format!(" {k}={v}"));
        }
        out
    }

    /// The settings an alias written by [`Saved::alias`] records; `None` if not ours.
    pub fn from_alias(alias: &str) -> Option<Saved> {
        let rest = alias.strip_prefix(MARK)?;
        let mut v = [0u32; 5];
        for word in rest.split_whitespace() {
            let (k, val) = word.split_once('=')?;
            let i = SAVED_KEYS.iter().position(|s| *s == k)?;
            v[i] = val.parse().ok()?;
        }
        Some(Saved {
            arp_ignore: v[0],
            arp_filter: v[1],
            arp_announce: v[2],
            all_rp_filter: v[3],
            default_rp_filter: v[4],
        })
    }
}

/// keepalived's `clear_rp_filter`: a macvlan needs `rp_filter` 0 (client traffic to a VIP
/// arrives on it, while the route back to the client is the base's), which takes `all` 0 as
/// the kernel uses the larger of `all` and the interface's. So that no interface loses its
/// filtering, `default` and every interface below `all` are first raised to it. `interfaces`
/// are the current per-interface values; empty when `all` is already 0.
pub fn clear_rp_filter(all: u32, default: u32, interfaces: &[(String, u32)]) -> Vec<Sysctl> {
    if all == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if default < all {
        out.push(sysctl("ipv4/conf/default/rp_filter".into(), all));
    }
    for (name, v) in interfaces {
        if *v < all {
            out.push(sysctl(format!("ipv4/conf/{name}/rp_filter"), all));
        }
    }
    out.push(sysctl("ipv4/conf/all/rp_filter".into(), 0));
    out
}

/// What went wrong, on which interface.
#[derive(Debug, thiserror::Error)]
pub enum VmacError {
    #[error("`{call}` failed for `{name}`")]
    Netlink {
        call: &'static str,
        name: String,
        #[source]
        io_error: io::Error,
    },
    #[error("writing /proc/sys/net/{path}")]
    Sysctl {
        path: String,
        #[source]
        io_error: io::Error,
    },
    #[error(
        "interface `{name}` exists and ha-agent did not create it (no `{MARK}` alias): name \
         another interface after use_vmac, or remove `{name}`"
    )]
    NotOurs { name: String },
}

/// A link as read from the kernel, with what tells whether it is one of our macvlans.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_LINK`: the lower device of a macvlan.
    pub base_index: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub macvlan: bool,
    /// What its alias says to restore: `Some` exactly when the alias is ours.
    pub saved: Option<Saved>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            base_index: None,
            mac: None,
            macvlan: false,
            saved: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Link(i) => link.base_index = Some(*i),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::IfAlias(a) => link.saved = Saved::from_alias(a),
                LinkAttribute::LinkInfo(infos) => {
                    link.macvlan |= infos
                        .iter()
                        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::MacVlan)));
                }
                _ => {}
            }
        }
        link
    }

    /// A macvlan this agent (or an earlier run of it) created.
    pub fn ours(&self) -> bool {
        self.macvlan && self.saved.is_some()
    }
}

fn nl_error(call: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> VmacError {
    let name = name.to_owned();
    move |e| VmacError::Netlink {
        call,
        name,
        io_error: to_io(e),
    }
}

/// Writes `s` (the kernel's value is the source of truth; no read-back).
pub fn write_sysctl(s: &Sysctl) -> Result<(), VmacError> {
    std::fs::write(format!("/proc/sys/net/{}", s.path), s.value.to_string()).map_err(|e| {
        VmacError::Sysctl {
            path: s.path.clone(),
            io_error: e,
        }
    })
}

fn read_sysctl(path: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/sys/net/{path}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The base's ARP settings and the host's `rp_filter`s as they are now.
pub fn read_saved(base: &str) -> Saved {
    let read = |i: &str, k: &str| read_sysctl(&format!("ipv4/conf/{i}/{k}")).unwrap_or(0);
    Saved {
        arp_ignore: read(base, "arp_ignore"),
        arp_filter: read(base, "arp_filter"),
        arp_announce: read(base, "arp_announce"),
        all_rp_filter: read("all", "rp_filter"),
        default_rp_filter: read("default", "rp_filter"),
    }
}

/// [`clear_rp_filter`] on this host's values.
fn clear_host_rp_filter() -> Result<(), VmacError> {
    let read = |i: &str| read_sysctl(&format!("ipv4/conf/{i}/rp_filter")).unwrap_or(0);
    let all = read("all");
    let mut interfaces = Vec::new();
    if all > 0
        && let Ok(dir) = std::fs::read_dir("/proc/sys/net/ipv4/conf")
    {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "all" && name != "default" {
                interfaces.push((name.clone(), read(&name)));
            }
        }
    }
    for s in clear_rp_filter(all, read("default"), &interfaces) {
        write_sysctl(&s)?;
    }
    Ok(())
}

/// What one instance's macvlan must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacSpec {
    pub name: String,
    pub base: String,
    pub base_index: u32,
    pub mac: [u8; 6],
    pub family: Family,
}

impl Netlink {
    /// The link named `name`, if there is one.
    pub async fn vmac_link(&self, name: &str) -> Result<Option<Link>, VmacError> {
        let mut links = self
            .handle()
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(l) => Ok(l.as_ref().map(Link::from_message)),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl_error("RTM_GETLINK", name)(e)),
        }
    }

    /// Every macvlan ha-agent created in this network namespace.
    pub async fn our_vmacs(&self) -> Result<Vec<Link>, VmacError> {
        let mut links = self.handle().link().get().execute();
        let mut out = Vec::new();
        while let Some(msg) = links
            .try_next()
            .await
            .map_err(nl_error("RTM_GETLINK", "(dump)"))?
        {
            let link = Link::from_message(&msg);
            if link.ours() {
                out.push(link);
            }
        }
        Ok(out)
    }

    /// Makes `spec`'s macvlan exist, configured and up, and returns its index: one of ours
    /// that is right already is adopted as it is (a kept master's VIPs stay on it), one of
    /// ours that is wrong (other base or MAC) is re-created, anything else is refused.
    pub async fn ensure_vmac(&self, spec: &VmacSpec) -> Result<u32, VmacError> {
        let ours = self.our_vmacs().await?;
        // The settings from before the first macvlan on the base (ARP) or on the host
        // (rp_filter): ours changed them since.
        let mut saved = read_saved(&spec.base);
        if let Some(s) = ours
            .iter()
            .find(|l| l.base_index == Some(spec.base_index))
            .and_then(|l| l.saved)
        {
            (saved.arp_ignore, saved.arp_filter) = (s.arp_ignore, s.arp_filter);
            saved.arp_announce = s.arp_announce;
        }
        if let Some(s) = ours.iter().find_map(|l| l.saved) {
            (saved.all_rp_filter, saved.default_rp_filter) = (s.all_rp_filter, s.default_rp_filter);
        }
        let mut index = None;
        if let Some(link) = self.vmac_link(&spec.name).await? {
            if !link.ours() {
                return Err(VmacError::NotOurs {
                    name: spec.name.clone(),
                });
            }
            if link.base_index == Some(spec.base_index) && link.mac == Some(spec.mac) {
                index = Some(link.index);
            } else {
                self.handle()
                    .link()
                    .del(link.index)
                    .execute()
                    .await
                    .map_err(nl_error("RTM_DELLINK", &spec.name))?;
            }
        }
        let index = match index {
            Some(i) => i,
            None => {
                // Private mode, as keepalived: frames from our other macvlans are not bridged.
                let msg = LinkMacVlan::new(&spec.name, spec.base_index, MacVlanMode::Private)
                    .address(spec.mac.to_vec())
                    .build();
                self.handle()
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(nl_error("RTM_NEWLINK (macvlan)", &spec.name))?;
                let link = self
                    .vmac_link(&spec.name)
                    .await?
                    .ok_or_else(|| VmacError::Netlink {
                        call: "RTM_GETLINK",
                        name: spec.name.clone(),
                        io_error: io::Error::from_raw_os_error(libc::ENODEV),
                    })?;
                // The mark first: a crash from here on leaves a macvlan we will recognise.
                let alias = LinkUnspec::new_with_index(link.index)
                    .alias(saved.alias())
                    .build();
                self.handle()
                    .link()
                    .set(alias)
                    .execute()
                    .await
                    .map_err(nl_error("RTM_SETLINK (ifalias)", &spec.name))?;
                link.index
            }
        };
        if spec.family == Family::Ipv4 {
            clear_host_rp_filter()?;
        }
        // Before it is up: no link-local is generated, no IPv6 at all on an IPv4 macvlan.
        for s in vmac_sysctls(&spec.name, spec.family) {
            write_sysctl(&s)?;
        }
        for s in Saved::WITH_VMAC.sysctls(&spec.base) {
            write_sysctl(&s)?;
        }
        self.handle()
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl_error("RTM_SETLINK (up)", &spec.name))?;
        Ok(index)
    }

    /// Deletes our macvlans on the interfaces `bases` (indices) whose names are not in `keep`,
    /// and restores a base's ARP settings once no macvlan of ours is left on it: another agent
    /// in this namespace, on other interfaces, keeps its own. Returns what was removed, and
    /// the errors.
    pub async fn remove_vmacs(
        &self,
        keep: &[String],
        bases: &[u32],
    ) -> (Vec<String>, Vec<VmacError>) {
        let (mut removed, mut errors) = (Vec::new(), Vec::new());
        let ours = match self.our_vmacs().await {
            Ok(o) => o,
            Err(e) => return (removed, vec![e]),
        };
        let gone =
            |l: &&Link| !keep.contains(&l.name) && l.base_index.is_some_and(|b| bases.contains(&b));
        for link in ours.iter().filter(gone) {
            match self.handle().link().del(link.index).execute().await {
                Ok(()) => removed.push(link.name.clone()),
                Err(e) if errno(&e) == Some(libc::ENODEV) => {}
                Err(e) => {
                    errors.push(nl_error("RTM_DELLINK", &link.name)(e));
                    continue;
                }
            }
            let base_in_use = ours.iter().any(|o| {
                o.base_index == link.base_index
                    && (keep.contains(&o.name) || !removed.contains(&o.name))
            });
            let (Some(base), Some(saved)) =
                (link.base_index.and_then(super::link::if_name), link.saved)
            else {
                continue;
            };
            if !base_in_use {
                for s in saved.sysctls(&base) {
                    if let Err(e) = write_sysctl(&s) {
                        errors.push(e);
                    }
                }
            }
        }
        // The last one gone: the host's rp_filter defaults back. The interfaces raised to
        // `all` keep their value, which with `all` back filters exactly as before.
        let left = ours
            .iter()
            .any(|o| keep.contains(&o.name) || !removed.contains(&o.name));
        if let (false, Some(saved)) = (left, ours.iter().find_map(|l| l.saved)) {
            for s in saved.rp_sysctls() {
                if let Err(e) = write_sysctl(&s) {
                    errors.push(e);
                }
            }
        }
        (removed, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_mac_carries_the_family_and_the_vrid() {
        assert_eq!(rfc_mac(51, Family::Ipv4), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(rfc_mac(255, Family::Ipv6), [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn a_mac_argument_is_parsed_and_checked_as_keepalived() {
        assert_eq!(
            parse_mac("02:11:22:33:44"),
            Ok(([2, 0x11, 0x22, 0x33, 0x44], None))
        );
        assert_eq!(
            parse_mac("02:11:22:33:44:55"),
            Ok(([2, 0x11, 0x22, 0x33, 0x44], Some(0x55)))
        );
        assert!(
            parse_mac("01:11:22:33:44:55")
                .unwrap_err()
                .contains("multicast")
        );
        assert!(parse_mac("00:00:5e:00:01:07").unwrap_err().contains("5798"));
        assert!(parse_mac("02:11:22:33").is_err());
        assert!(parse_mac("02:11:22:33:44:zz").is_err());
        assert!(parse_mac("02:11:22:33:44:555").is_err());
    }

    #[test]
    fn names_are_keepalived_s_and_never_collide() {
        let w = |n: Option<&'static str>, vrid, f| Some((n, vrid, f));
        let mut taken = Vec::new();
        let got = names(
            "vrrp",
            &[
                w(None, 51, Family::Ipv4),
                None,
                w(None, 51, Family::Ipv6),
                w(None, 51, Family::Ipv4),
                w(Some("vrrp.52"), 9, Family::Ipv4),
                w(None, 52, Family::Ipv4),
            ],
            &mut taken,
        );
        let want = [
            Some("vrrp.51"),
            None,
            Some("vrrp6.51"),
            Some("vrrp1.51"),
            Some("vrrp.52"),
            Some("vrrp1.52"),
        ];
        assert_eq!(got, want.map(|n| n.map(str::to_owned)));
        // IFNAMSIZ: a long prefix is cut so the VRID stays.
        let long = names(
            "averyverylongprefix",
            &[w(None, 200, Family::Ipv4)],
            &mut Vec::new(),
        );
        assert_eq!(long, [Some("averyverylo.200".to_owned())]);
        // use_vmac_addr's next: after every instance's.
        assert_eq!(next_name("vrrp", 51, Family::Ipv6, &mut taken), "vrrp2.51");
    }

    #[test]
    fn the_sysctls_are_keepalived_s() {
        let v4 = vmac_sysctls("vrrp.1", Family::Ipv4);
        assert!(v4.contains(&sysctl("ipv4/conf/vrrp.1/arp_ignore".into(), 1)));
        assert!(v4.contains(&sysctl("ipv4/conf/vrrp.1/accept_local".into(), 1)));
        assert!(v4.contains(&sysctl("ipv4/conf/vrrp.1/rp_filter".into(), 0)));
        assert!(v4.contains(&sysctl("ipv6/conf/vrrp.1/disable_ipv6".into(), 1)));
        let v6 = vmac_sysctls("vrrp.1", Family::Ipv6);
        assert!(v6.contains(&sysctl("ipv6/conf/vrrp.1/addr_gen_mode".into(), 1)));
        assert!(!v6.iter().any(|s| s.path.ends_with("disable_ipv6")));
    }

    #[test]
    fn rp_filter_is_cleared_as_keepalived_without_loosening_any_interface() {
        assert_eq!(clear_rp_filter(0, 0, &[("eth0".into(), 0)]), []);
        let got = clear_rp_filter(1, 0, &[("eth0".into(), 0), ("eth1".into(), 2)]);
        assert_eq!(
            got,
            [
                sysctl("ipv4/conf/default/rp_filter".into(), 1),
                sysctl("ipv4/conf/eth0/rp_filter".into(), 1),
                sysctl("ipv4/conf/all/rp_filter".into(), 0),
            ]
        );
    }

    #[test]
    fn the_alias_marks_ours_and_keeps_the_base_settings() {
        let saved = Saved {
            arp_ignore: 2,
            arp_filter: 0,
            arp_announce: 1,
            all_rp_filter: 1,
            default_rp_filter: 2,
        };
        assert_eq!(Saved::from_alias(&saved.alias()), Some(saved));
        assert_eq!(Saved::from_alias("uplink to the core"), None);
        assert_eq!(Saved::from_alias("ha-agent vmac base_arp_ignore=x"), None);
        assert_eq!(
            Saved::WITH_VMAC.sysctls("eth0")[0],
            sysctl("ipv4/conf/eth0/arp_ignore".into(), 1)
        );
    }
}
