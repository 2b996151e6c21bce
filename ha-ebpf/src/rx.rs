//! XDP `vrrp_rx`: finds VRRP adverts (IP protocol 112, IPv4 or IPv6, one optional 802.1Q tag) and
//! counts them per VRID. Everything is passed on to the stack.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use ha_common::wire::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IPPROTO_VRRP, IPV6_HLEN,
};

use crate::{
    maps::{RX_ADVERTS, bump},
    ptr::{read_at, read_be16},
};

#[xdp]
pub fn vrrp_rx(ctx: XdpContext) -> u32 {
    match try_vrrp_rx(&ctx) {
        Ok(action) => action,
        Err(()) => xdp_action::XDP_PASS,
    }
}

/// Offset of the L3 header and its ethertype, skipping one VLAN tag.
#[inline(always)]
pub fn l3_offset(data: usize, data_end: usize) -> Result<(u16, usize), ()> {
    let ethertype = read_be16(data, data_end, 12)?;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Ok((read_be16(data, data_end, 16)?, ETH_HLEN + 4));
    }
    Ok((ethertype, ETH_HLEN))
}

#[inline(always)]
fn try_vrrp_rx(ctx: &XdpContext) -> Result<u32, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let (ethertype, l3) = l3_offset(data, data_end)?;
    let vrrp = match ethertype {
        ETH_P_IP => {
            let ver_ihl = read_at::<u8>(data, data_end, l3)?;
            let proto = read_at::<u8>(data, data_end, l3 + 9)?;
            if proto != IPPROTO_VRRP {
                return Ok(xdp_action::XDP_PASS);
            }
            l3 + ((ver_ihl & 0x0f) as usize) * 4
        }
        ETH_P_IPV6 => {
            let next = read_at::<u8>(data, data_end, l3 + 6)?;
            if next != IPPROTO_VRRP {
                return Ok(xdp_action::XDP_PASS);
            }
            l3 + IPV6_HLEN
        }
        _ => return Ok(xdp_action::XDP_PASS),
    };
    let vrid = read_at::<u8>(data, data_end, vrrp + 1)?;
    bump(&RX_ADVERTS, vrid as u32);
    Ok(xdp_action::XDP_PASS)
}
