//! Where the load balancer sends a real server's packets ([`Forwarding`]): the kernel's route
//! to the real (`ip route get`), the next hop's MAC from the neighbour table of the output
//! interface (the real itself for DR, which must be on-link; its gateway for TUN when routed),
//! the interface's MAC and index, and the route's preferred source (TUN's outer source).
//!
//! A next hop not resolved yet, or STALE, is asked for (`RTM_NEWNEIGH` with `NTF_USE`, as `ip
//! neigh replace … use`: the kernel sends the ARP/NS itself) and looked up again at the next
//! round;
//! [`watch`] does rounds forever, so a real server replaced by a host with another MAC is
//! followed.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::{
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState},
        route::{RouteAddress, RouteAttribute},
    },
};
use tokio::sync::mpsc::UnboundedSender;

use super::manager::Forwarding;
use crate::{config::lvs::LbKind, net::Netlink};

/// The first re-check of an unresolved next hop (doubling up to [`ROUND`]).
const PENDING_FIRST: Duration = Duration::from_millis(10);
/// How often next hops are looked up again (new MACs, routes that changed, and the
/// resolutions asked for).
pub const ROUND: Duration = Duration::from_secs(1);

/// The kernel's route to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTo {
    pub ifindex: u32,
    /// RTA_GATEWAY: the real is not on-link.
    pub gateway: Option<IpAddr>,
    /// RTA_PREFSRC.
    pub pref_src: Option<IpAddr>,
}

impl RouteTo {
    /// The address whose MAC the frames carry.
    pub fn next_hop(&self, real: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(real)
    }
}

/// DR rewrites the MAC only: the real server must be on the director's link. The error says
/// which server and why, for the start to refuse.
pub fn check_kind(real: IpAddr, kind: LbKind, route: &RouteTo) -> Result<()> {
    if let (LbKind::Dr, Some(gw)) = (kind, route.gateway) {
        bail!(
            "real server {real}: lb_kind DR needs it on a link of this director, but the route \
             to it goes through the gateway {gw}; put it on-link, or use lb_kind TUN"
        );
    }
    Ok(())
}

fn route_address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// `ip route get ADDR`.
pub async fn route_to(netlink: &Netlink, addr: IpAddr) -> Result<RouteTo> {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    let msg = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(addr, prefix)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .build();
    let mut routes = netlink.handle().route().get(msg).execute();
    let route = routes
        .try_next()
        .await
        .map_err(crate::net::netlink::to_io)
        .with_context(|| format!("RTM_GETROUTE {addr}"))?
        .with_context(|| format!("no route to {addr}"))?;
    let mut out = RouteTo {
        ifindex: 0,
        gateway: None,
        pref_src: None,
    };
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Oif(i) => out.ifindex = *i,
            RouteAttribute::Gateway(g) => out.gateway = route_address(g),
            RouteAttribute::PrefSource(s) => out.pref_src = route_address(s),
            _ => {}
        }
    }
    if out.ifindex == 0 {
        bail!("the route to {addr} has no output interface (unreachable, blackhole or local)");
    }
    Ok(out)
}

/// A usable neighbour entry: its MAC, and whether the kernel doubts it (STALE: no traffic of
/// the kernel's own confirmed it lately; XDP's never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: [u8; 6],
    pub stale: bool,
}

/// The neighbour table's usable entries, by (ifindex, address).
pub async fn neighbours(netlink: &Netlink) -> Result<HashMap<(u32, IpAddr), Neighbour>> {
    let mut out = HashMap::new();
    let mut dump = netlink.handle().neighbours().get().execute();
    while let Some(msg) = dump
        .try_next()
        .await
        .map_err(crate::net::netlink::to_io)
        .context("RTM_GETNEIGH")?
    {
        let usable = matches!(
            msg.header.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
                | NeighbourState::Noarp
        );
        if !usable {
            continue;
        }
        let (mut dst, mut mac) = (None, None);
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    dst = Some(IpAddr::V4(*a));
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    dst = Some(IpAddr::V6(*a));
                }
                NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
                _ => {}
            }
        }
        if let (Some(d), Some(mac)) = (dst, mac) {
            let stale = msg.header.state == NeighbourState::Stale;
            out.insert((msg.header.ifindex, d), Neighbour { mac, stale });
        }
    }
    Ok(out)
}

/// Asks the kernel to resolve `addr` on `ifindex` (`ip neigh replace ADDR dev IF use`): it
/// sends the ARP request or neighbour solicitation itself.
pub async fn solicit(netlink: &Netlink, ifindex: u32, addr: IpAddr) -> Result<()> {
    netlink
        .handle()
        .neighbours()
        .add(ifindex, addr)
        .state(NeighbourState::Incomplete)
        .flags(NeighbourFlags::Use)
        .replace()
        .execute()
        .await
        .map_err(crate::net::netlink::to_io)
        .with_context(|| format!("RTM_NEWNEIGH {addr} NTF_USE"))
}

/// One real server's forwarding now: None while its next hop is not resolved (resolution is
/// asked for). Errors: no route, or DR to a routed server.
pub async fn resolve(
    netlink: &Netlink,
    table: &HashMap<(u32, IpAddr), Neighbour>,
    real: IpAddr,
    kind: LbKind,
) -> Result<Option<Forwarding>> {
    let route = route_to(netlink, real).await?;
    check_kind(real, kind, &route)?;
    let hop = route.next_hop(real);
    let Some(&Neighbour {
        mac: dst_mac,
        stale,
    }) = table.get(&(route.ifindex, hop))
    else {
        solicit(netlink, route.ifindex, hop).await?;
        return Ok(None);
    };
    if stale {
        // Revalidated by the kernel (unicast probes, then a broadcast): a server replaced by a
        // host with another MAC is found again, as the balancer's packets never confirm it.
        solicit(netlink, route.ifindex, hop).await?;
    }
    let link = netlink.interface_by_index(route.ifindex).await?;
    let Some(src_mac) = link.mac else {
        bail!(
            "{}: not an Ethernet interface (no MAC to send from)",
            link.name
        );
    };
    let unspecified = if real.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    Ok(Some(Forwarding {
        ifindex: route.ifindex,
        dst_mac,
        src_mac,
        tun_src: route.pref_src.unwrap_or(unspecified),
    }))
}

/// What a round found for one real server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    Ready(Forwarding),
    /// Asked for, not resolved yet: the status says "no neighbour".
    Pending,
    Failed(String),
}

/// Resolves `hops` every [`ROUND`] and sends each change (address, what was found); runs
/// until the receiver is gone.
pub async fn watch(hops: Vec<(IpAddr, LbKind)>, tx: UnboundedSender<(IpAddr, Hop)>) {
    let netlink = match Netlink::new() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("virtual_server next hops: {e}");
            return;
        }
    };
    let mut known: HashMap<IpAddr, Hop> = HashMap::new();
    // While a next hop is unresolved (a start, a new real server), look again soon: ARP/ND
    // answers in milliseconds, and until then that server takes no flows.
    let mut pending_delay = PENDING_FIRST;
    let mut first = true;
    loop {
        let pending = known.values().any(|h| matches!(h, Hop::Pending));
        if !first {
            if pending {
                tokio::time::sleep(pending_delay).await;
                pending_delay = (pending_delay * 2).min(ROUND);
            } else {
                pending_delay = PENDING_FIRST;
                tokio::time::sleep(ROUND).await;
            }
        }
        first = false;
        let table = match neighbours(&netlink).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("virtual_server next hops: {e:#}");
                continue;
            }
        };
        for &(addr, kind) in &hops {
            let hop = match resolve(&netlink, &table, addr, kind).await {
                Ok(Some(f)) => Hop::Ready(f),
                Ok(None) => Hop::Pending,
                Err(e) => Hop::Failed(format!("{e:#}")),
            };
            if known.get(&addr) != Some(&hop) {
                known.insert(addr, hop.clone());
                if tx.send((addr, hop)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_refuses_a_routed_real_server_tun_takes_its_gateway() {
        let real: IpAddr = "192.0.2.10".parse().unwrap();
        let gw: IpAddr = "10.0.0.254".parse().unwrap();
        let routed = RouteTo {
            ifindex: 2,
            gateway: Some(gw),
            pref_src: None,
        };
        let err = check_kind(real, LbKind::Dr, &routed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("192.0.2.10") && err.contains("lb_kind TUN"),
            "{err}"
        );
        assert!(check_kind(real, LbKind::Tun, &routed).is_ok());
        assert_eq!(routed.next_hop(real), gw);
        let on_link = RouteTo {
            gateway: None,
            ..routed
        };
        assert!(check_kind(real, LbKind::Dr, &on_link).is_ok());
        assert_eq!(on_link.next_hop(real), real);
    }
}
