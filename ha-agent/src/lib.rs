//! ha-agent: a VRRP failover agent that reads keepalived.conf, speaks VRRPv2/v3 with keepalived,
//! and uses XDP and TC to count adverts in the kernel and fence VIPs it must not own.
//!
//! One module per concept (see DESIGN.md): `config` reads keepalived.conf, `vrrp` is the codec
//! and the pure state machine, `datapath` loads the eBPF programs.

pub mod agent;
pub mod config;
pub mod control;
pub mod datapath;
pub mod net;
pub mod notify;
pub mod status;
pub mod track;
pub mod vrrp;
