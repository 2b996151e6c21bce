//! VRRP, the protocol: the packet codec (`packet`) and the sans-IO state machine (`instance`).
//! Nothing here opens a socket or reads a clock.

pub mod instance;
pub mod packet;
pub mod sync_group;
