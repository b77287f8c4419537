//! pingan-node: what a village, township or county office runs to report its figures.
//!
//! - [`outbox`]: the durable local outbox every report is written to before delivery.
//! - [`deliver`]: delivery of the outbox to the hub, with retries for transient errors only.
//! - [`backoff`]: exponential backoff with jitter.
//! - [`client_tls`]: the client side of mutual TLS (CA, certificate, key, or `--insecure`).
//! - [`form`]: reading values from `--set`, CSV and JSON forms.

pub mod backoff;
pub mod client_tls;
pub mod deliver;
pub mod form;
pub mod outbox;

pub use deliver::{Deliverer, Pass};
pub use outbox::{Entry, EntryState, Outbox, OutboxError};

/// Writes `text` to standard output; a reader that went away (`pingan-node status | head`)
/// ends the output quietly instead of panicking.
pub fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("writing standard output: {e}"),
    }
}

/// A new submission id (the idempotency key): a random UUID.
pub fn new_submission_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Today in 北京时间 on this machine's clock.
pub fn today_beijing() -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    chrono::Utc::now().with_timezone(&offset).date_naive()
}
