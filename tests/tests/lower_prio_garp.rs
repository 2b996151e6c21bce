//! A master that hears a lower-priority master sends gratuitous ARPs (keepalived: "we receive
//! a lower prio adv, we just refresh remote ARP cache", `garp_lower_prio_repeat`), also after
//! a hang: `tests/tests/partition.rs` shows the same for a healed partition.
//!
//! Node 1 (150) is master; it hangs (SIGSTOP) long enough for node 2 (100) to take over and
//! announce itself by gratuitous ARP, so the client's neighbour entry for the VIP points at
//! node 2. When node 1 resumes it is still master, hears node 2's adverts and node 2 steps
//! down. Without node 1's gratuitous ARPs the client keeps node 2's MAC (which no longer
//! answers for the VIP) until its entry goes stale: seconds without the VIP. With them it
//! moves back at once.

use std::{net::Ipv4Addr, time::Duration};

use ha_tests::{Lab, ha_agent_bin, v3_instance, wait_for};

/// How long an agent may take to answer on its status socket (XDP loads on a loaded machine).
const READY: Duration = Duration::from_secs(20);

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

fn conf(priority: u8) -> String {
    v3_instance(priority, "0.1")
}

/// The MAC the client's neighbour table has for the VIP, if any.
fn client_mac(lab: &Lab) -> Option<String> {
    lab.client.neighbour_mac(VIP.into()).ok().flatten()
}

/// Node 1 hangs until node 2 has taken over and the client follows node 2, then resumes; the
/// client must be back on node 1 within `within`. Returns how long that took.
fn hang_and_resume(lab: &Lab, a1: &ha_tests::Daemon, within: Duration) -> Duration {
    let (mac1, mac2) = (lab.node(1).mac().unwrap(), lab.node(2).mac().unwrap());
    a1.signal(libc::SIGSTOP).unwrap();
    wait_for(
        "the client to follow node 2",
        Duration::from_secs(5),
        || Ok(client_mac(lab).as_deref() == Some(&*mac2)),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a1.signal(libc::SIGCONT).unwrap();
    wait_for("node 2 to step down", Duration::from_secs(5), || {
        Ok(!lab.node(2).has_addr(VIP.into())?)
    })
    .unwrap();
    wait_for("the client to come back to node 1", within, || {
        Ok(client_mac(lab).as_deref() == Some(&*mac1))
    })
    .unwrap_or_else(|e| panic!("{e}: node 1's log:\n{}", a1.log()))
}

/// Two hangs in a row, the second within `garp_lower_prio_delay` (5 s) of the first
/// reassertion: the second reassertion must not wait for the first one's delayed burst.
#[test]
fn a_second_hang_within_the_reassertion_delay_is_reasserted_too() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("lowgarp2", 2).expect("lab");
    let mut a1 = lab.ha_agent(1, &conf(150), &[]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab.ha_agent(2, &conf(100), &[]).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to hold the VIP", Duration::from_secs(10), || {
        lab.node(1).has_addr(VIP.into())
    })
    .unwrap();
    lab.client
        .run("ping", &["-c", "1", "-W", "1", &VIP.to_string()])
        .unwrap();
    // Node 2 may have been master for a moment at start, and with higher_prio_send_advert its
    // step-down advert made node 1 reassert then: count from here.
    let reassertions = || {
        a1.log()
            .matches("reasserting over a lower priority")
            .count()
    };
    let before = reassertions();
    let first = std::time::Instant::now();
    hang_and_resume(&lab, &a1, Duration::from_secs(1));
    let second = hang_and_resume(&lab, &a1, Duration::from_secs(1));
    assert!(
        first.elapsed() < Duration::from_secs(5),
        "both hangs within the 5 s delay ({:?}), back in {second:?}",
        first.elapsed()
    );
    assert_eq!(reassertions() - before, 2, "{}", a1.log());
}

#[test]
fn a_resumed_master_brings_the_clients_back_by_gratuitous_arp() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("lowgarp", 2).expect("lab");
    let (mac1, mac2) = (lab.node(1).mac().unwrap(), lab.node(2).mac().unwrap());
    let mut a1 = lab.ha_agent(1, &conf(150), &[]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab.ha_agent(2, &conf(100), &[]).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    let secs = Duration::from_secs;
    wait_for("node 1 to hold the VIP", secs(10), || {
        lab.node(1).has_addr(VIP.into())
    })
    .unwrap();
    // The client resolves the VIP (a neighbour entry that gratuitous ARPs then update).
    lab.client
        .run("ping", &["-c", "1", "-W", "1", &VIP.to_string()])
        .unwrap();
    assert_eq!(client_mac(&lab).as_deref(), Some(&*mac1));

    a1.signal(libc::SIGSTOP).unwrap();
    wait_for("the client to follow node 2", secs(5), || {
        Ok(client_mac(&lab).as_deref() == Some(&*mac2))
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a1.signal(libc::SIGCONT).unwrap();
    wait_for("node 2 to step down", secs(5), || {
        Ok(!lab.node(2).has_addr(VIP.into())?)
    })
    .unwrap();
    let took = wait_for("the client to come back to node 1", secs(3), || {
        Ok(client_mac(&lab).as_deref() == Some(&*mac1))
    })
    .unwrap_or_else(|e| panic!("{e}: node 1's log:\n{}", a1.log()));
    assert!(
        a1.log().contains("reasserting over a lower priority"),
        "{}",
        a1.log()
    );
    // And the VIP answers through it.
    lab.client
        .run("ping", &["-c", "1", "-W", "1", &VIP.to_string()])
        .unwrap_or_else(|e| panic!("{e} ({took:?} after node 2 stepped down)"));
}
