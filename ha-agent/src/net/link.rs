//! Interfaces: a one-shot query of what the agent needs to know about one ([`InterfaceInfo`]),
//! and a stream of link changes from the kernel ([`LinkWatch`], `RTNLGRP_LINK` and the address
//! groups, no polling).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::{MulticastGroup, sys::SocketAddr};
use tokio::task::JoinHandle;

use super::netlink::{Netlink, errno, to_io};

/// What went wrong, and on what interface.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no interface named `{name}`")]
    NoSuchInterface { name: String },
    #[error("no interface with index {ifindex}")]
    NoSuchIndex { ifindex: u32 },
    #[error("`{call}` failed for interface `{name}`")]
    Netlink {
        call: &'static str,
        name: String,
        #[source]
        io_error: io::Error,
    },
    #[error("subscribing to RTNLGRP_LINK (`bind(AF_NETLINK)`) failed")]
    Subscribe(#[source] io::Error),
}

/// `IFLA_OPERSTATE` (RFC 2863 operational status), as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    Other(u8),
}

impl From<State> for OperState {
    fn from(state: State) -> Self {
        match state {
            State::Unknown => Self::Unknown,
            State::NotPresent => Self::NotPresent,
            State::Down => Self::Down,
            State::LowerLayerDown => Self::LowerLayerDown,
            State::Testing => Self::Testing,
            State::Dormant => Self::Dormant,
            State::Up => Self::Up,
            other => Self::Other(u8::from(other)),
        }
    }
}

/// What the agent needs to know about its VRRP interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub index: u32,
    pub name: String,
    /// `IFLA_ADDRESS` when it is an Ethernet (6-byte) address.
    pub mac: Option<[u8; 6]>,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: up and with carrier (what keepalived watches for FAULT).
    pub running: bool,
    pub oper_state: OperState,
    /// The first IPv4 address that is not `IFA_F_SECONDARY`: the source keepalived uses when
    /// no `mcast_src_ip`/`unicast_src_ip` is configured.
    pub primary_v4: Option<Ipv4Addr>,
    /// The first fe80::/10 address: the source of VRRPv3 IPv6 adverts (RFC 5798 §5.1.2.1).
    pub link_local_v6: Option<Ipv6Addr>,
}

/// A change of one interface, as seen on `RTNLGRP_LINK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    pub name: String,
    pub up: bool,
    pub running: bool,
    pub oper_state: OperState,
    /// `RTM_DELLINK`: the interface is gone.
    pub removed: bool,
    /// `RTM_NEWADDR`: this address was added to the interface; the other fields repeat the
    /// link as last seen. `None` for a link change.
    pub address: Option<IpAddr>,
}

/// The name of interface `index` (`if_indextoname(3)`), if there is one.
pub fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success `buf` holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The index of interface `name` (`if_nametoindex(3)`).
pub fn if_index(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

struct LinkFacts {
    index: u32,
    name: String,
    mac: Option<[u8; 6]>,
    up: bool,
    running: bool,
    oper_state: OperState,
}

fn link_facts(msg: &LinkMessage) -> LinkFacts {
    let mut facts = LinkFacts {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        running: msg.header.flags.contains(LinkFlags::Running),
        oper_state: OperState::Unknown,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => facts.name = name.clone(),
            LinkAttribute::Address(addr) => facts.mac = <[u8; 6]>::try_from(addr.as_slice()).ok(),
            LinkAttribute::OperState(state) => facts.oper_state = (*state).into(),
            _ => {}
        }
    }
    facts
}

fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point links).
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

impl Netlink {
    /// Index, MAC, state, primary IPv4 and link-local IPv6 of interface `name` (one
    /// `RTM_GETLINK` and one `RTM_GETADDR` dump).
    pub async fn interface(&self, name: &str) -> Result<InterfaceInfo, LinkError> {
        let mut links = self
            .handle()
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) => return Err(LinkError::NoSuchInterface { name: name.into() }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                return Err(LinkError::NoSuchInterface { name: name.into() });
            }
            Err(e) => {
                return Err(LinkError::Netlink {
                    call: "RTM_GETLINK",
                    name: name.into(),
                    io_error: to_io(e),
                });
            }
        };
        let facts = link_facts(&link);
        self.interface_addresses(facts).await
    }

    /// As [`Netlink::interface`], by index.
    pub async fn interface_by_index(&self, ifindex: u32) -> Result<InterfaceInfo, LinkError> {
        let mut links = self.handle().link().get().match_index(ifindex).execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) => return Err(LinkError::NoSuchIndex { ifindex }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                return Err(LinkError::NoSuchIndex { ifindex });
            }
            Err(e) => {
                return Err(LinkError::Netlink {
                    call: "RTM_GETLINK",
                    name: format!("#{ifindex}"),
                    io_error: to_io(e),
                });
            }
        };
        let facts = link_facts(&link);
        self.interface_addresses(facts).await
    }

    async fn interface_addresses(&self, facts: LinkFacts) -> Result<InterfaceInfo, LinkError> {
        let mut addrs = self
            .handle()
            .address()
            .get()
            .set_link_index_filter(facts.index)
            .execute();
        let mut primary_v4 = None;
        let mut link_local_v6 = None;
        loop {
            let msg = match addrs.try_next().await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(e) => {
                    return Err(LinkError::Netlink {
                        call: "RTM_GETADDR",
                        name: facts.name,
                        io_error: to_io(e),
                    });
                }
            };
            match address_of(&msg) {
                Some(IpAddr::V4(a))
                    if primary_v4.is_none()
                        && !msg.header.flags.contains(AddressHeaderFlags::Secondary) =>
                {
                    primary_v4 = Some(a);
                }
                Some(IpAddr::V6(a))
                    if link_local_v6.is_none()
                        && msg.header.scope == AddressScope::Link
                        && a.is_unicast_link_local() =>
                {
                    link_local_v6 = Some(a);
                }
                _ => {}
            }
        }
        Ok(InterfaceInfo {
            index: facts.index,
            name: facts.name,
            mac: facts.mac,
            up: facts.up,
            running: facts.running,
            oper_state: facts.oper_state,
            primary_v4,
            link_local_v6,
        })
    }
}

type Unsolicited = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// Link changes as they happen: an rtnetlink socket bound to `RTNLGRP_LINK`,
/// `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR`.
///
/// Yields a [`LinkEvent`] the first time an interface is seen and then whenever its name,
/// `IFF_UP`, `IFF_RUNNING` or oper state changes (the kernel also sends `RTM_NEWLINK` for changes
/// the agent does not care about, which are folded away), and one for each address added to an
/// interface seen since the subscription (a re-created interface gets its addresses after its
/// link: the agent waits for them). Ends if the socket fails.
pub struct LinkWatch {
    messages: Unsolicited,
    task: JoinHandle<()>,
    last: HashMap<u32, (String, bool, bool, OperState)>,
}

impl LinkWatch {
    /// Subscribes; must be called inside a tokio runtime, in the namespace to watch.
    pub fn subscribe() -> Result<Self, LinkError> {
        let (connection, _handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(LinkError::Subscribe)?;
        let task = tokio::spawn(connection);
        Ok(Self {
            messages,
            task,
            last: HashMap::new(),
        })
    }

    /// The next change (same as `StreamExt::next`).
    pub async fn next_event(&mut self) -> Option<LinkEvent> {
        self.next().await
    }

    fn absorb(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
        let (link, removed) = match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => (link, false),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => (link, true),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(addr)) => {
                let ifindex = addr.header.index;
                let (name, up, running, oper_state) = self.last.get(&ifindex)?.clone();
                return Some(LinkEvent {
                    ifindex,
                    name,
                    up,
                    running,
                    oper_state,
                    removed: false,
                    address: Some(address_of(&addr)?),
                });
            }
            _ => return None,
        };
        let facts = link_facts(&link);
        let event = LinkEvent {
            ifindex: facts.index,
            name: facts.name,
            up: facts.up,
            running: facts.running,
            oper_state: facts.oper_state,
            removed,
            address: None,
        };
        if removed {
            self.last.remove(&event.ifindex);
            return Some(event);
        }
        let now = (
            event.name.clone(),
            event.up,
            event.running,
            event.oper_state,
        );
        if self.last.get(&event.ifindex) == Some(&now) {
            return None;
        }
        self.last.insert(event.ifindex, now);
        Some(event)
    }
}

impl Stream for LinkWatch {
    type Item = LinkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            match self.messages.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(event) = self.absorb(msg) {
                        return Poll::Ready(Some(event));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
