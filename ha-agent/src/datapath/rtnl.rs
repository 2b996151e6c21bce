//! The few synchronous rtnetlink requests the XDP datapath makes on its interface: what it is
//! (link type, XDP program attached) and setting its XDP program through `IFLA_XDP`, which the
//! kernel keeps with the interface whatever becomes of the process (a `bpf_link` dies with its
//! last file descriptor).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use rtnetlink::{
    packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload},
    packet_route::{
        RouteNetlinkMessage,
        link::{LinkAttribute, LinkLayerType, LinkMessage, LinkXdp, XdpAttached},
    },
    sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE},
};

/// `IFLA_XDP_FLAGS` bits (include/uapi/linux/if_link.h).
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;
pub const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// What the datapath needs to know of an interface before attaching to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub link_layer: LinkLayerType,
    /// The XDP program attached, if any: its id and the mode flag it runs in.
    pub xdp: Option<(u32, u32)>,
}

/// Link type and XDP program of interface `ifindex`.
pub fn link_state(ifindex: u32) -> io::Result<LinkState> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let replies = request(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST)?;
    let link = replies
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if l.header.index == ifindex => Some(l),
            _ => None,
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no RTM_NEWLINK reply"))?;
    let mut id = None;
    let mut mode = 0;
    for attr in &link.attributes {
        let LinkAttribute::Xdp(xdp) = attr else {
            continue;
        };
        for x in xdp {
            match x {
                LinkXdp::ProgId(p) if *p != 0 => id = Some(*p),
                LinkXdp::Attached(XdpAttached::Driver) => mode = XDP_FLAGS_DRV_MODE,
                LinkXdp::Attached(XdpAttached::SocketBuffer) => mode = XDP_FLAGS_SKB_MODE,
                LinkXdp::Attached(XdpAttached::Hardware) => mode = XDP_FLAGS_HW_MODE,
                _ => {}
            }
        }
    }
    Ok(LinkState {
        link_layer: link.header.link_layer_type,
        xdp: id.map(|id| (id, mode)),
    })
}

/// Sets (`prog` Some) or removes (`None`) the XDP program of `ifindex` with `flags`; with
/// `expected`, only if that program is the one attached (`XDP_FLAGS_REPLACE`).
pub fn set_xdp(
    ifindex: u32,
    prog: Option<BorrowedFd<'_>>,
    mut flags: u32,
    expected: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut xdp = vec![LinkXdp::Fd(prog.map_or(-1, |fd| fd.as_raw_fd()))];
    if let Some(fd) = expected {
        flags |= XDP_FLAGS_REPLACE;
        xdp.push(LinkXdp::ExpectedFd(fd.as_raw_fd() as u32));
    }
    xdp.push(LinkXdp::Flags(flags));
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    request(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK).map(drop)
}

/// Sends one request and collects the replies up to its ACK (or the one reply of a GET).
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        None => Ok(out),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m);
                    if flags & NLM_F_ACK == 0 {
                        return Ok(out);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len.next_multiple_of(4);
        }
    }
}
