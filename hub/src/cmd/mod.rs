//! The command line: the flags of every subcommand ([`config`]), the leaders' query client
//! ([`query_client`]), historical imports ([`import`]) and the README's demo ([`demo`]).

pub mod bulletin_client;
pub mod config;
pub mod demo;
pub mod import;
pub mod lock_client;
pub mod query_client;
pub mod review_client;
