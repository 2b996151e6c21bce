//! Sending adverts: one socket per (interface, source address), each instance's encoded adverts
//! cached while its priority, interval and source stay the same, and the adverts that fall due
//! together sent together (one `sendmmsg` per socket).

use std::{collections::HashMap, net::IpAddr, rc::Rc};

use anyhow::{Context, Result};
use tracing::{debug, error};

use crate::{
    agent::plan::{InstancePlan, Plan},
    net::AdvertSender,
};

/// An instance's encoded adverts, one per destination.
struct Cache {
    priority: u8,
    adver_int_cs: u16,
    src: IpAddr,
    packets: Vec<(IpAddr, Rc<[u8]>)>,
}

/// An advert waiting in a batch: instance, destination, bytes.
type Pending = (usize, IpAddr, Rc<[u8]>);

pub(super) struct Adverts {
    /// Each instance's advert socket; instances on one interface with one source share it.
    senders: Vec<Rc<AdvertSender>>,
    cache: Vec<Option<Cache>>,
    /// While timers are handled: the adverts due, sent together ([`Adverts::flush`]).
    batch: Option<Vec<Pending>>,
}

/// Opens the advert sockets of `plan`'s instances, in plan order.
pub(super) fn open(plan: &Plan) -> Result<Vec<Rc<AdvertSender>>> {
    let mut senders = Vec::new();
    let mut shared: HashMap<(&str, IpAddr, Option<u8>), Rc<AdvertSender>> = HashMap::new();
    for ip in &plan.instances {
        let interface = ip.advert_interface();
        let key = (interface, ip.src, ip.unicast_ttl);
        if let Some(sender) = shared.get(&key) {
            senders.push(sender.clone());
            continue;
        }
        let sender = match ip.src {
            IpAddr::V4(a) => AdvertSender::open_v4(interface, Some(a)),
            // From a macvlan, the base's link-local is the source (not an address of it).
            IpAddr::V6(a) => {
                AdvertSender::open_v6_from(interface, Some(a), interface != ip.interface)
            }
        }
        .and_then(|s| match ip.unicast_ttl {
            Some(ttl) => s.set_unicast_ttl(ttl).map(|()| s),
            None => Ok(s),
        })
        .with_context(|| {
            format!(
                "vrrp_instance {}: opening the advert socket on {interface}",
                ip.name
            )
        })?;
        let sender = Rc::new(sender);
        shared.insert(key, sender.clone());
        senders.push(sender);
    }
    Ok(senders)
}

impl Adverts {
    /// For `instances` instances; no socket until [`Adverts::install`].
    pub fn new(instances: usize) -> Adverts {
        Adverts {
            senders: Vec::new(),
            cache: (0..instances).map(|_| None).collect(),
            batch: None,
        }
    }

    /// The sockets [`open`] opened.
    pub fn install(&mut self, senders: Vec<Rc<AdvertSender>>) {
        self.senders = senders;
    }

    /// From now until [`Adverts::flush`], adverts are held and sent together.
    pub fn begin_batch(&mut self) {
        self.batch = Some(Vec::new());
    }

    /// Sends instance `i`'s adverts with `priority` and `adver_int_cs` (or holds them in the
    /// batch).
    pub async fn send(&mut self, i: usize, ip: &InstancePlan, priority: u8, adver_int_cs: u16) {
        if !self.encode(i, ip, priority, adver_int_cs) {
            return;
        }
        let packets = &self.cache[i].as_ref().expect("encoded").packets;
        if let Some(batch) = &mut self.batch {
            // No copy of the bytes: a batch holds the cache's (a master at 255 VRIDs @ 0.01
            // sends 25,500 a second).
            batch.extend(packets.iter().map(|(dst, bytes)| (i, *dst, bytes.clone())));
            return;
        }
        for (dst, bytes) in packets.clone() {
            if let Err(e) = self.senders[i].send_to(&bytes, dst).await {
                // A down link makes sends fail; the link watch puts the instance in FAULT.
                debug!(instance = %ip.name, "advert to {dst}: {e}");
            }
        }
    }

    /// Puts instance `i`'s adverts, one per destination, in its cache unless they are there
    /// with the same priority, interval and source; false when they cannot be encoded.
    fn encode(&mut self, i: usize, ip: &InstancePlan, priority: u8, adver_int_cs: u16) -> bool {
        if let Some(c) = &self.cache[i]
            && (c.priority, c.adver_int_cs, c.src) == (priority, adver_int_cs, ip.src)
        {
            return true;
        }
        let packets: Vec<(IpAddr, Rc<[u8]>)> = match ip.encode_adverts(priority, adver_int_cs) {
            Ok(p) => p.into_iter().map(|(dst, b)| (dst, Rc::from(b))).collect(),
            Err(e) => {
                error!(instance = %ip.name, "cannot encode advert: {e}");
                return false;
            }
        };
        self.cache[i] = Some(Cache {
            priority,
            adver_int_cs,
            src: ip.src,
            packets,
        });
        true
    }

    /// Sends the batched adverts: one `sendmmsg` per socket.
    pub async fn flush(&mut self, plan: &Plan) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let mut groups: Vec<(Rc<AdvertSender>, Vec<usize>)> = Vec::new();
        for (k, (i, _, _)) in batch.iter().enumerate() {
            let sender = &self.senders[*i];
            match groups.iter_mut().find(|(g, _)| Rc::ptr_eq(g, sender)) {
                Some((_, ks)) => ks.push(k),
                None => groups.push((sender.clone(), vec![k])),
            }
        }
        for (sender, ks) in groups {
            let msgs: Vec<(&[u8], IpAddr)> =
                ks.iter().map(|&k| (&*batch[k].2, batch[k].1)).collect();
            for (j, e) in sender.send_each(&msgs).await {
                let (i, dst, _) = &batch[ks[j]];
                // A down link makes sends fail; the link watch puts the instance in FAULT.
                debug!(instance = %plan.instances[*i].name, "advert to {dst}: {e}");
            }
        }
    }

    /// Instance `i`'s cache carries over to index `to` of `next` (a reload that keeps it).
    pub fn carry(&mut self, i: usize, next: &mut Adverts, to: usize) {
        next.cache[to] = self.cache[i].take();
    }
}
