//! The HTTP/1.1 accept loop. It does what `axum::serve` does (one task per connection,
//! graceful shutdown that lets in-flight requests finish) plus one thing it cannot: every request
//! carries a [`ConnectionKill`] that lets its handler close the TCP connection without sending
//! a response — the "dropped connection" fault, which clients must see as a connection error.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Request extension: closes the connection the request arrived on.
#[derive(Clone)]
pub(crate) struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes the connection without an answer. The caller should then never finish (its
    /// future is dropped with the connection).
    pub fn kill(&self) {
        // `notify_one` stores a permit if the connection task is not waiting yet.
        self.0.notify_one();
    }
}

/// Serves `app` on `listener` until `stop` fires (or its sender is dropped), then stops
/// accepting, lets open connections finish their current request, and returns.
pub(crate) async fn serve(listener: TcpListener, app: Router, stop: oneshot::Receiver<()>) {
    let (closing_tx, closing_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tracker.spawn(connection(stream, app.clone(), closing_rx.clone()));
    }
    drop(listener);
    let _ = closing_tx.send(true);
    tracker.close();
    tracker.wait().await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    mut closing: watch::Receiver<bool>,
) {
    let kill = Arc::new(Notify::new());
    let handle = ConnectionKill(kill.clone());
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(handle.clone());
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|e| match e {})) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut shutting_down = *closing.borrow();
    if shutting_down {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // Dropping `conn` closes the socket: the client gets no response at all.
            () = kill.notified() => return,
            _ = closing.changed(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
