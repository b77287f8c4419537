//! `pingan-hub`: the hub's command line.

use std::{io::IsTerminal as _, sync::Arc};

use anyhow::Context as _;
use clap::Parser as _;
use pingan_hub::{
    Clock, HubState, Store,
    config::{Cli, Command, ServeArgs},
    demo, server,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (catalogue, areas) = args.registry.load()?;
    tracing::info!(
        areas = areas.len(),
        metrics = catalogue.metrics().len(),
        "registry loaded"
    );
    let store = Store::open(&args.data)
        .with_context(|| format!("opening store in {}", args.data.display()))?;
    let state = HubState {
        catalogue: Arc::new(catalogue),
        areas: Arc::new(areas),
        store: Arc::new(store),
        clock: Clock::System,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    // one plain line on stdout, for scripts and tests that start the hub on port 0
    println!("pingan-hub listening on {}", listener.local_addr()?);
    server::serve(listener, state, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested, finishing in-flight work");
}
