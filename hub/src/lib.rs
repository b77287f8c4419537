//! pingan-hub: receives reports from nodes, stores every revision durably, and answers leaders.
//!
//! - [`server`]: `serve(listener, state, shutdown)`, the gRPC server (reports, health, reflection).
//! - [`service`]: the `ReportService` handlers.
//! - [`query_service`]: the `QueryService` handlers; [`query`]: the rollups and the engine.
//! - [`cli`]: `pingan-hub query ...`, the leaders' command line client (tables, CSV, JSON).
//! - [`store`]: the SQLite store with its group-committing writer thread.
//! - [`state`]: [`HubState`], what the handlers share.
//! - [`error`]: the hub's errors and their one mapping to gRPC codes.
//! - [`tls`]: mutual TLS, identities and certificates; [`authz`]: who may do what where.
//! - [`clock`]: the injected clock.
//! - [`config`]: command-line and file configuration.
//! - [`import`]: `pingan-hub import`, historical figures from CSV into the store.
//! - [`users`]: web accounts (argon2id hashes, expiring sessions), each a viewer of one area.
//! - [`web`]: the leaders' dashboard (HTTPS, sign-in, tables, .xlsx and CSV downloads).
//! - [`tables`]: the tables leaders read, shared by the command line and the dashboard.
//! - [`demo`]: the README's demo, 三台县 reporting to a hub on loopback.

pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod forward;
pub mod import;
pub mod owners;
pub mod query;
pub mod query_service;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod tables;
pub mod tls;
pub mod users;
pub mod web;

pub use clock::Clock;
pub use state::HubState;
pub use store::Store;
