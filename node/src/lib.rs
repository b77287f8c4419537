//! pingan-node: what a village, township or county office runs to report its figures.
//!
//! - [`form`]: reading values from `--set`, CSV, JSON and Excel forms.
//! - [`office`]: who the office reports for, its forms, periods and where each stands.
//! - [`web`]: `pingan-node serve`, the entry page (填报).
//!
//! The durable outbox and its delivery to the hub are the `pingan-outbox` crate's, shared with
//! a hub forwarding to its parent and the demo.

pub mod form;
pub mod office;
pub mod web;

pub use pingan_outbox::new_submission_id;

pub use pingan_domain::text::print_out;

/// Today in 北京时间 on this machine's clock.
pub fn today_beijing() -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    chrono::Utc::now().with_timezone(&offset).date_naive()
}
