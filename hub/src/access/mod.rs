//! Who is calling and what they may do: mutual TLS and certificates ([`tls`]), the rules of who
//! may do what where ([`authz`]), and the dashboard's accounts ([`users`]).

pub mod authz;
pub mod tls;
pub mod users;
