//! pingan's domain, and the one definition of a valid report, shared by node and hub.
//!
//! - [`area`]: [`AreaCode`] and [`Level`], the statistical division code and what its length says.
//! - [`divisions`]: the division registry ([`Areas`]) loaded from the national CSV format, with
//!   validity periods and successors, plus population attributes.
//! - [`period`]: [`Period`]: month, quarter, half, year, ISO week, day.
//! - [`span`]: [`Span`]: a period or a cumulative range, expanded into reported periods.
//! - [`catalogue`]: the indicator catalogue (data, not code), its categories and rules.
//! - [`department`]: departments (条), reporters that are not divisions: the registry.
//! - [`form`]: report forms (报表): who reports which metrics for which periods, by when.
//! - [`report`]: [`ValidReport`], what a wire [`pb::Report`] becomes once it passed validation.
//! - [`rollup`]: a child hub's forwarded [`rollup::Rollup`] and values as given, as domain types.
//! - [`question`]: leaders' questions as types, built from the wire requests; [`answer`]:
//!   the answers, turned into the wire replies at the edge.
//! - [`duration`]: lengths of time as people type them (`30`, `10m`, `2小时`).
//! - [`text`]: decoding what offices save (UTF-8, or GBK from Excel/WPS on Chinese Windows).
//! - [`fixtures`]: the committed real county 三台县 (510722) and the default catalogue.
//!
//! [`pb`] is the wire contract (`pingan-proto`), re-exported for the conversions' signatures.

pub mod answer;
pub mod area;
pub mod assess;
pub mod catalogue;
pub mod compare_columns;
pub mod deadline;
pub mod department;
pub mod divisions;
pub mod duration;
pub mod fixtures;
pub mod form;
pub mod period;
pub mod question;
pub mod report;
pub mod rollup;
pub mod span;
pub mod text;
pub mod trend_columns;

pub use area::{AreaCode, Level};
pub use catalogue::{Catalogue, MetricId, MetricKind};
pub use divisions::{Area, Areas};
pub use form::Form;
pub use period::Period;
pub use pingan_proto::pb;
pub use report::{
    PACKED_CATALOGUE_DIFFERS, Receipt, ValidReport, ValidValue, Validator, Violation, Violations,
    pack, unpack,
};
pub use span::Span;

/// The machine's cores, read once (the standard library reads the cgroup's files at each call);
/// the hub's engine and the client's read-back split long work by it.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
