//! mlsched's scheduling core: pure, deterministic decision code on an in-memory cluster snapshot.
//!
//! The live scheduler and the trace simulator both call into this crate, so what the simulator measures
//! is what the cluster runs. Nothing here performs I/O or blocks.

pub mod core;
pub mod frag;
pub mod framework;
pub mod gang;
pub mod plugins;
pub mod quantity;
pub mod topology;
