//! Running the node's HTTP API on a socket until told to stop.

use std::future::Future;

use tokio::net::TcpListener;

use crate::http::router;
use crate::node::Node;

/// Serves the devnet API on `listener` until `shutdown` completes, then stops the orderer.
/// Open block streams are cut at shutdown; every block a client was told of is on disk.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(node.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // Block streams never end on their own; give in-flight requests a moment, then go.
    let mut stop_rx2 = stop_rx.clone();
    let result = tokio::select! {
        r = server => r,
        () = async move {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } => Ok(()),
    };
    drop(stop_rx);
    node.stop();
    result
}
