//! The gRPC front door: [`server`] binds and serves (reports, queries, health, reflection);
//! [`report_service`] and [`query_service`] are the handlers. Wire requests become domain types
//! here, once, and the hub's errors become status codes in [`crate::error`].

pub mod lock_service;
pub mod query_service;
pub mod report_service;
pub mod review_service;
pub mod server;
