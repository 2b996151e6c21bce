//! VRRP, the protocol: its vocabulary (`types`: version, family, intervals), the packet codec
//! (`packet`) and the sans-IO state machine (`instance`, `sync_group`). Nothing here opens a
//! socket or reads a clock.

pub mod instance;
pub mod packet;
pub mod sync_group;
pub mod types;
