//! Interfaces: a one-shot query of what the agent needs to know about one ([`InterfaceInfo`]),
//! and a stream of link changes from the kernel ([`LinkWatch`], `RTNLGRP_LINK` and the address
//! groups, no polling).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
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
    /// `RTM_NEWADDR` (or `RTM_DELADDR`): this address was added to (removed from) the interface;
    /// the other fields repeat the link as last seen. `None` for a link change.
    pub address: Option<IpAddr>,
    /// `RTM_DELADDR`: `address` was removed, not added.
    pub address_removed: bool,
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

/// What a full re-read finds: every link (index, what an event says of it) and every address
/// (interface index, address).
type Snapshot = (Vec<(u32, Seen)>, Vec<(u32, IpAddr)>);

/// What [`LinkWatch`] remembers of a link: what a [`LinkEvent`] says of it, and what a change
/// of which is news.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    name: String,
    up: bool,
    running: bool,
    oper_state: OperState,
}

impl Seen {
    fn of(facts: LinkFacts) -> Seen {
        Seen {
            name: facts.name,
            up: facts.up,
            running: facts.running,
            oper_state: facts.oper_state,
        }
    }

    /// The event for interface `ifindex` as last seen: `removed`, or with a new `address`.
    fn event(self, ifindex: u32, removed: bool, address: Option<IpAddr>) -> LinkEvent {
        LinkEvent {
            ifindex,
            name: self.name,
            up: self.up,
            running: self.running,
            oper_state: self.oper_state,
            removed,
            address,
            address_removed: false,
        }
    }
}

/// A full re-read in flight: kept across calls, so a caller that drops `next_event` (a
/// `select!` another branch won) does not start it over.
type Resync = Pin<Box<dyn std::future::Future<Output = Result<Snapshot, rtnetlink::Error>>>>;

/// Link changes as they happen: an rtnetlink socket bound to `RTNLGRP_LINK`,
/// `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR`.
///
/// Yields a [`LinkEvent`] the first time an interface is seen and then whenever its name,
/// `IFF_UP`, `IFF_RUNNING` or oper state changes (the kernel also sends `RTM_NEWLINK` for changes
/// the agent does not care about, which are folded away), and one for each address added to or
/// removed from an interface (`address_removed`; the link as last seen, or only its name if it
/// did not change since the subscription; a re-created interface gets its addresses after its
/// link: the agent waits for them). Ends if the socket fails.
///
/// When the kernel drops notifications because the socket's buffer is full (`ENOBUFS`, an
/// overrun: the agent was busy), every link and address is read again (dumps on a separate
/// request socket) and what changed meanwhile is reported as if it had been notified.
pub struct LinkWatch {
    messages: Unsolicited,
    task: JoinHandle<()>,
    last: HashMap<u32, Seen>,
    /// The request connection of the re-reads, and its I/O task.
    requests: rtnetlink::Handle,
    requests_task: JoinHandle<()>,
    _requests_unsolicited: Unsolicited,
    resync: Option<Resync>,
    pending: std::collections::VecDeque<LinkEvent>,
    /// Overruns seen since the subscription.
    pub overruns: u64,
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
        let (requests_connection, requests, requests_unsolicited) =
            rtnetlink::new_connection().map_err(LinkError::Subscribe)?;
        let requests_task = tokio::spawn(requests_connection);
        Ok(Self {
            messages,
            task,
            last: HashMap::new(),
            requests,
            requests_task,
            _requests_unsolicited: requests_unsolicited,
            resync: None,
            pending: std::collections::VecDeque::new(),
            overruns: 0,
        })
    }

    /// The next change. Cancel-safe: a re-read in progress carries on at the next call.
    pub async fn next_event(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if let Some(resync) = self.resync.as_mut() {
                let snapshot = resync.await;
                self.resync = None;
                match snapshot {
                    Ok(snapshot) => self.apply(snapshot),
                    Err(e) => {
                        tracing::warn!(
                            "link watch: re-reading the interfaces after an overrun failed \
                             ({e}); changes missed meanwhile show at their next notification"
                        );
                    }
                }
                continue;
            }
            let (msg, _) = self.messages.next().await?;
            if matches!(msg.payload, NetlinkPayload::Overrun(_)) {
                self.overruns += 1;
                tracing::warn!(
                    "link watch: the kernel dropped link and address notifications (netlink \
                     ENOBUFS, overrun {}): re-reading every interface and address",
                    self.overruns
                );
                self.resync = Some(Box::pin(snapshot(self.requests.clone())));
                continue;
            }
            if let Some(event) = self.absorb(msg) {
                return Some(event);
            }
        }
    }

    /// Queues what a re-read shows changed since the last notification seen: links new or
    /// changed, links gone, and every address (the agent waits for a re-created interface's).
    fn apply(&mut self, (links, addresses): Snapshot) {
        let present: std::collections::HashSet<u32> = links.iter().map(|l| l.0).collect();
        let gone: Vec<u32> = self
            .last
            .keys()
            .filter(|i| !present.contains(i))
            .copied()
            .collect();
        for ifindex in gone {
            if let Some(seen) = self.last.remove(&ifindex) {
                self.pending.push_back(seen.event(ifindex, true, None));
            }
        }
        for (ifindex, now) in links {
            if self.last.get(&ifindex) == Some(&now) {
                continue;
            }
            self.last.insert(ifindex, now.clone());
            self.pending.push_back(now.event(ifindex, false, None));
        }
        for (ifindex, address) in addresses {
            if let Some(seen) = self.last.get(&ifindex).cloned() {
                self.pending
                    .push_back(seen.event(ifindex, false, Some(address)));
            }
        }
    }

    fn absorb(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
        let (link, removed) = match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => (link, false),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => (link, true),
            NetlinkPayload::InnerMessage(
                m @ (RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_)),
            ) => {
                let (addr, removed) = match &m {
                    RouteNetlinkMessage::NewAddress(a) => (a, false),
                    RouteNetlinkMessage::DelAddress(a) => (a, true),
                    _ => return None,
                };
                let ifindex = addr.header.index;
                // Said even of an interface whose link did not change since the subscription
                // (`track_src_ip` watches the addresses of links that never change).
                let seen = match self.last.get(&ifindex) {
                    Some(seen) => seen.clone(),
                    None => Seen {
                        name: if_name(ifindex)?,
                        up: false,
                        running: false,
                        oper_state: OperState::Unknown,
                    },
                };
                let mut event = seen.event(ifindex, false, Some(address_of(addr)?));
                event.address_removed = removed;
                return Some(event);
            }
            _ => return None,
        };
        let facts = link_facts(&link);
        let ifindex = facts.index;
        let now = Seen::of(facts);
        if removed {
            self.last.remove(&ifindex);
            return Some(now.event(ifindex, true, None));
        }
        if self.last.get(&ifindex) == Some(&now) {
            return None;
        }
        self.last.insert(ifindex, now.clone());
        Some(now.event(ifindex, false, None))
    }
}

/// Every link and address, read with `requests` (RTM_GETLINK and RTM_GETADDR dumps).
async fn snapshot(requests: rtnetlink::Handle) -> Result<Snapshot, rtnetlink::Error> {
    let mut links = Vec::new();
    let mut dump = requests.link().get().execute();
    while let Some(msg) = dump.try_next().await? {
        let f = link_facts(&msg);
        links.push((f.index, Seen::of(f)));
    }
    let mut addresses = Vec::new();
    let mut dump = requests.address().get().execute();
    while let Some(msg) = dump.try_next().await? {
        if let Some(a) = address_of(&msg) {
            addresses.push((msg.header.index, a));
        }
    }
    Ok((links, addresses))
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.task.abort();
        self.requests_task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_repeats_the_link_as_last_seen() {
        let seen = Seen {
            name: "eth0".into(),
            up: true,
            running: false,
            oper_state: OperState::Down,
        };
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            seen.clone().event(7, false, Some(addr)),
            LinkEvent {
                ifindex: 7,
                name: "eth0".into(),
                up: true,
                running: false,
                oper_state: OperState::Down,
                removed: false,
                address: Some(addr),
                address_removed: false,
            }
        );
        let gone = seen.event(7, true, None);
        assert!(gone.removed && gone.address.is_none());
    }

    /// Regression: an overrun (ENOBUFS) was ignored, and what the kernel dropped was never
    /// known: here a link created while the socket's buffer is full of address notifications.
    /// In a network namespace of this thread's own (`unshare`), so nothing of the host changes.
    #[test]
    fn an_overrun_is_followed_by_a_full_re_read() {
        let t = std::thread::spawn(|| {
            // SAFETY: unshare(2) on this thread only; it owns nothing shared with other threads
            // that depends on its network namespace.
            assert_eq!(
                unsafe { libc::unshare(libc::CLONE_NEWNET) },
                0,
                "run as root"
            );
            let ip = |args: &str, stdin: Option<String>| {
                let mut cmd = std::process::Command::new("ip");
                cmd.args(args.split_whitespace());
                cmd.stdin(std::process::Stdio::piped());
                let mut child = cmd.spawn().expect("ip");
                if let Some(text) = stdin {
                    use std::io::Write as _;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(text.as_bytes())
                        .unwrap();
                }
                drop(child.stdin.take());
                assert!(child.wait().unwrap().success(), "ip {args}");
            };
            ip("link set lo up", None);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut watch = LinkWatch::subscribe().unwrap();
                // The runtime does not run while `ip` does: nothing reads the socket, and 4096
                // address notifications overflow its buffer (a busy agent).
                let batch: String = (0..4096u32)
                    .map(|n| format!("addr add 10.{}.{}.1/32 dev lo\n", n / 256, n % 256))
                    .collect();
                ip("-batch -", Some(batch));
                // Created while the buffer is full: its notification is dropped.
                ip("link add hav0 type veth peer name hav1", None);
                let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    loop {
                        let ev = watch.next_event().await.expect("watch ended");
                        if ev.name == "hav0" && !ev.removed {
                            return ev;
                        }
                    }
                })
                .await
                .expect("hav0 never reported: the overrun was not followed by a re-read");
                assert!(watch.overruns >= 1);
                assert!(!seen.running);
            });
        });
        t.join().unwrap();
    }
}
