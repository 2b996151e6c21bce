//! The deterministic LAN simulator used by `tests/simulator.rs`.

pub mod lan;
pub mod rng;
pub mod scenario;
