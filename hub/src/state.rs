//! What every hub handler shares: the catalogue, the division registry, the store and the clock.

use std::sync::Arc;

use pingan_proto::{Areas, Catalogue, Validator};

use crate::{clock::Clock, store::Store};

/// The hub's shared state.
#[derive(Debug, Clone)]
pub struct HubState {
    pub catalogue: Arc<Catalogue>,
    pub areas: Arc<Areas>,
    pub store: Arc<Store>,
    pub clock: Clock,
}

impl HubState {
    /// A validator for "now" on the hub's own clock: the hub, not the node, decides whether a
    /// period has ended.
    pub fn validator(&self) -> Validator<'_> {
        Validator {
            catalogue: &self.catalogue,
            areas: Some(&self.areas),
            today: self.clock.today(),
        }
    }
}
