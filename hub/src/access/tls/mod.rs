//! Mutual TLS: who is calling ([`identity`]), how offices get certificates ([`certs`]), and the
//! server side whose certificate, CA and deny list reload without a restart ([`server`]).

pub mod certs;
pub mod identity;
pub mod server;

pub use identity::{Identity, Role};
pub use server::{ServerTls, TlsFiles};
