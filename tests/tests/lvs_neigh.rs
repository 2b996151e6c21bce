//! The load balancer's next hops (`ha_agent::lvs::neigh`) from a director's namespace: a DR real
//! server on the LAN is resolved (the director asks the kernel to ARP for it: nothing else
//! talks to it) to its MAC, the director's MAC, ifindex and source; a real server replaced by a
//! host with another MAC is followed; DR to a routed real server is refused, TUN goes to its
//! gateway.

use std::{net::IpAddr, time::Duration};

use anyhow::{Result, bail};
use ha_agent::{
    config::lvs::LbKind,
    lvs::{manager::Forwarding, neigh},
    net::Netlink,
};
use ha_tests::{IFACE, Lab, in_netns, wait_for};

fn mac_bytes(text: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(text.trim().split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap();
    }
    out
}

/// One resolution round, in the director's namespace (its own runtime and netlink socket).
fn resolve_in(ns: &str, real: IpAddr, kind: LbKind) -> Result<Option<Forwarding>> {
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let netlink = Netlink::new()?;
            let table = neigh::neighbours(&netlink).await?;
            neigh::resolve(&netlink, &table, real, kind).await
        })
    })
}

#[test]
fn next_hops_are_resolved_followed_and_dr_needs_them_on_link() -> Result<()> {
    let lab = Lab::new("lvsneigh", 2)?;
    let (director, real) = (lab.node(1), lab.node(2));
    let real_ip = IpAddr::V4(real.ipv4);
    // STALE after ~1 s and the first probe 1 s later: the replaced MAC is found in seconds.
    director.sh(&format!(
        "sysctl -qw net.ipv4.neigh.{IFACE}.base_reachable_time_ms=1000 \
         net.ipv4.neigh.{IFACE}.delay_first_probe_time=1"
    ))?;
    assert_eq!(
        resolve_in(&director.ns, real_ip, LbKind::Dr)?,
        None,
        "nothing has talked to the real server yet: no neighbour, resolution asked for"
    );
    let ifindex: u32 = director
        .run("cat", &[&format!("/sys/class/net/{IFACE}/ifindex")])?
        .trim()
        .parse()?;
    let want = Forwarding {
        ifindex,
        dst_mac: mac_bytes(&real.mac()?),
        src_mac: mac_bytes(&director.mac()?),
        tun_src: IpAddr::V4(director.ipv4),
    };
    let mut last = None;
    wait_for("the real server's MAC", Duration::from_secs(5), || {
        last = resolve_in(&director.ns, real_ip, LbKind::Dr)?;
        Ok(last == Some(want))
    })
    .map_err(|e| anyhow::anyhow!("{e}: last {last:?}, want {want:?}"))?;

    // The real server is replaced by a host with another MAC; it says nothing.
    real.run(
        "ip",
        &["link", "set", "dev", IFACE, "address", "02:00:00:00:99:99"],
    )?;
    let replaced = [2, 0, 0, 0, 0x99, 0x99];
    wait_for(
        "the replaced real server's MAC",
        Duration::from_secs(20),
        || {
            last = resolve_in(&director.ns, real_ip, LbKind::Dr)?;
            Ok(last.is_some_and(|f| f.dst_mac == replaced))
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}: last {last:?}"))?;

    // A real server behind a gateway (the other node): DR refused, TUN to the gateway's MAC.
    director.run(
        "ip",
        &[
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            &real.ipv4.to_string(),
        ],
    )?;
    let routed: IpAddr = "198.51.100.10".parse()?;
    match resolve_in(&director.ns, routed, LbKind::Dr) {
        Ok(f) => bail!("DR to a routed real server was taken: {f:?}"),
        Err(e) => {
            let text = format!("{e:#}");
            assert!(
                text.contains("gateway 192.0.2.2") && text.contains("lb_kind TUN"),
                "{text}"
            );
        }
    }
    wait_for("the gateway's MAC for TUN", Duration::from_secs(5), || {
        last = resolve_in(&director.ns, routed, LbKind::Tun)?;
        Ok(last.is_some_and(|f| f.dst_mac == replaced))
    })
    .map_err(|e| anyhow::anyhow!("{e}: last {last:?}"))?;
    Ok(())
}
