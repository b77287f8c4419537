//! Hubs above hubs: a child hub forwards the rollups of its jurisdiction to its parent
//! ([`forward`]); a parent records which child owns which subtree ([`owners`]).

pub mod forward;
pub mod owners;
