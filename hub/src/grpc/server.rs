//! The gRPC server: report service, health checking and reflection on one listener.

use std::future::Future;

use futures_util::StreamExt as _;
use pingan_domain::pb;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::{
    grpc::{query_service::Queries, report_service::Reports},
    state::HubState,
};

/// How often the TLS files (certificate, key, CA, deny list) are checked for changes.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest message the hub decodes (a batch item is one report; 4 MiB is far above any real one).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How long in-flight requests may take to finish after a shutdown is asked for: a stream a
/// peer keeps open (a node's idle SubmitBatch, say) is cut after this, not waited for.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `serving` (a server that stops taking work once `asked` resolves, then drains) until it
/// has drained, or until [`DRAIN`] after `asked`: whatever is still open then is dropped. Acked
/// reports are durable before their receipt goes out, so cutting a connection loses nothing.
async fn drain_within<E>(
    serving: impl Future<Output = Result<(), E>>,
    asked: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), E> {
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => served,
        () = async {
            if asked.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(DRAIN).await;
        } => {
            tracing::warn!("connections still open {DRAIN:?} after the shutdown was asked for: closed");
            Ok(())
        }
    }
}

/// Serves the hub on an already bound listener until `shutdown` resolves, then drains in-flight
/// requests (for at most [`DRAIN`]) and closes the store: every acked report is on disk when this
/// returns.
pub async fn serve(
    listener: TcpListener,
    state: HubState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (asked, asked_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = asked.send(());
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::report_service_server::ReportServiceServer<Reports>>()
        .await;
    // reflection in both versions: grpcurl and Postman of today speak v1, Python's
    // grpcio-reflection and older tools v1alpha
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let reports = pb::report_service_server::ReportServiceServer::new(Reports::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let queries = pb::query_service_server::QueryServiceServer::new(Queries::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(64 * 1024 * 1024);
    let locks = pb::lock_service_server::LockServiceServer::new(
        super::lock_service::LockService::new(state.clone()),
    );
    let reviews = pb::review_service_server::ReviewServiceServer::new(
        super::review_service::ReviewService::new(state.clone()),
    );
    let addr = listener.local_addr()?;
    let router = tonic::transport::Server::builder()
        // dead peers are noticed and their connections closed; no request runs for ever
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tcp_keepalive(Some(std::time::Duration::from_secs(60)))
        .timeout(std::time::Duration::from_secs(300))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(reports)
        .add_service(queries)
        .add_service(locks)
        .add_service(reviews);
    match state.auth.tls().cloned() {
        Some(tls) => {
            tracing::info!(%addr, "hub serving gRPC over mutual TLS");
            let watcher = tls.watch(RELOAD_EVERY);
            let (incoming, acceptor) = crate::access::tls::server::incoming(listener, tls);
            let served = drain_within(
                router.serve_with_incoming_shutdown(incoming, shutdown),
                asked_rx,
            )
            .await;
            acceptor.abort();
            watcher.abort();
            served?;
        }
        None => {
            tracing::warn!(%addr, "hub serving PLAINTEXT gRPC (--insecure): no authentication, no encryption");
            // TCP_NODELAY as on the TLS path (tonic sets it only on listeners it binds)
            let incoming = TcpListenerStream::new(listener).map(|tcp| {
                tcp.inspect(|t| {
                    let _ = t.set_nodelay(true);
                })
            });
            drain_within(
                router.serve_with_incoming_shutdown(incoming, shutdown),
                asked_rx,
            )
            .await?;
        }
    }
    state.store.close();
    tracing::info!(%addr, "hub stopped");
    Ok(())
}
