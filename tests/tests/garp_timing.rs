//! Gratuitous ARP timing, as keepalived does it: on becoming master `garp_master_repeat`
//! GARPs, as many again `garp_master_delay` later, and `garp_master_refresh_repeat` every
//! `garp_master_refresh` counted from the transition. Seen from the client with tcpdump.

use std::time::Duration;

use ha_tests::{Capture, Lab, ha_agent_bin, wait_for};

const VIP: &str = "192.0.2.200";

/// The capture times (seconds, tcpdump's `-tt`) of the gratuitous ARPs for the VIP.
fn garp_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| {
            l.contains(&format!("Request who-has {VIP} ")) && l.contains(&format!("tell {VIP},"))
        })
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn garp_repeat_delay_and_refresh_are_timed_as_keepalived() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("garptime", 1).expect("lab");
    let mut capture =
        Capture::start(&lab.client, &lab.dir, "client", "eth0", "arp").expect("capture");
    let conf = format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    version 3\n    \
         priority 150\n    advert_int 0.1\n    garp_master_repeat 2\n    garp_master_delay 1\n    \
         garp_master_refresh 2\n    garp_master_refresh_repeat 1\n    virtual_ipaddress {{\n        \
         {VIP}/24\n    }}\n}}\n"
    );
    let agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    wait_for("the agent to be master", Duration::from_secs(5), || {
        Ok(agent.log().contains("-> MASTER"))
    })
    .unwrap();
    // The burst (0 s), the delayed burst (1 s), refreshes at 2, 4 and 6 s.
    std::thread::sleep(Duration::from_millis(6500));
    capture.stop().unwrap();
    let text = capture.read(&["-tt", "-n"]).unwrap();
    let times = garp_times(&text);
    assert!(!times.is_empty(), "no gratuitous ARP captured:\n{text}");
    let at: Vec<f64> = times.iter().map(|t| t - times[0]).collect();
    // Expected offsets from the first GARP: 2 at 0, 2 at 1, 1 at 2, 4 and 6; up to 0.4 s late
    // (a loaded host delays a timer) and 0.1 s early (capture timestamps), no more.
    let expected = [0.0, 0.0, 1.0, 1.0, 2.0, 4.0, 6.0];
    let ok = at.len() == expected.len()
        && at
            .iter()
            .zip(expected)
            .all(|(got, want)| *got >= want - 0.1 && *got <= want + 0.4);
    assert!(
        ok,
        "GARPs at {at:?} s after the first, want {expected:?}; capture:\n{text}\nagent log:\n{}",
        agent.log()
    );
}
