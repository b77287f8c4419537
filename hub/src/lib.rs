//! pingan-hub: receives reports from nodes, stores every revision durably, and answers leaders.
//!
//! Grouped by what the modules hold (the README's layout table says the same):
//!
//! - [`grpc`]: the gRPC front door: the server, the `ReportService` and `QueryService`
//!   handlers, turning wire requests into domain types once.
//! - [`web`]: the leaders' dashboard (HTTPS, sign-in, tables, .xlsx and CSV downloads).
//! - [`query`]: the rollups kept current as reports commit, and the engine that answers from
//!   them (typed requests in, domain answers out).
//! - [`tables`]: the tables leaders read, shared by the command line and the dashboard.
//! - [`store`]: the SQLite store: schema and migrations, the group-committing writer, readers.
//! - [`federation`]: a child hub forwarding rollups to its parent; subtrees owned by children.
//! - [`access`]: mutual TLS and identities, who may do what where, web accounts.
//! - [`cmd`]: the command line: flags, `pingan-hub query`, `import` and the demo.
//! - [`state`]: [`HubState`], what the front doors share; [`error`]: the hub's errors and
//!   their one mapping to gRPC codes; [`clock`]: the injected clock.

pub mod access;
pub mod bulletin;
pub mod clock;
pub mod cmd;
pub mod error;
pub mod federation;
pub mod grpc;
pub mod query;
pub mod remind;
pub mod state;
pub mod store;
pub mod tables;
pub mod web;

pub use clock::Clock;
pub use state::HubState;
pub use store::Store;
