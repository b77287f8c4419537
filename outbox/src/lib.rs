//! pingan-outbox: the durable outbox and its delivery to a hub. A node's reports and a child
//! hub's forwarded rollups travel the same way: written here before any attempt to send them,
//! delivered in order, retried with backoff while the hub is away, parked with the reason when
//! refused for good.
//!
//! - [`outbox`]: the outbox itself ([`Outbox`]), one SQLite file per office.
//! - [`records`]: keyed records (a hub's forwarded rollups): only the latest revision of a
//!   record waits in the outbox.
//! - [`deliver`]: [`Deliverer`], one pass over the pending reports, and [`Deliverer::run`],
//!   the loop every sender uses.
//! - [`backoff`]: exponential backoff with jitter.
//! - [`client_tls`]: the client side of mutual TLS (CA, certificate, key, or `--insecure`).

pub mod accounts;
pub mod backoff;
pub mod client_tls;
pub mod deliver;
pub mod drafts;
pub mod outbox;
pub mod password;
pub mod records;

pub use deliver::{Deliverer, Pass};
pub use outbox::{Entry, EntryState, Outbox, OutboxError};
pub use tokio_util::sync::CancellationToken;

/// A new submission id (the idempotency key): a random UUID.
pub fn new_submission_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
