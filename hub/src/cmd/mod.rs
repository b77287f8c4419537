//! The command line: the flags of every subcommand ([`config`]), the leaders' query client
//! ([`query_client`]), historical imports ([`import`]) and the README's demo ([`demo`]).

pub mod bulletin_client;
pub mod config;
pub mod demo;
pub mod import;
pub mod lock_client;
pub mod migrate;
pub mod query_client;
pub mod review_client;

/// A text file a user hands the hub (a 考核方案), UTF-8 or GBK as Excel/WPS users save them.
pub fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    Ok(pingan_domain::text::decode(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .0)
}

/// `--scheme FILE`'s text, or empty (the hub's own scheme).
pub fn scheme_text(path: Option<&std::path::Path>) -> anyhow::Result<String> {
    path.map_or_else(|| Ok(String::new()), read_text)
}
