//! One listener, served: accepts connections (optionally through TLS) and runs each as an
//! HTTP/1.1 keep-alive connection with hyper until the accept loop is dropped, which drops every
//! connection it spawned. Knows nothing of what the handler answers.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The response type every simulated server answers with.
pub type Answer = Response<Full<Bytes>>;

/// Serves `listener` forever with `handler`. Cancel by dropping (aborting) the future: the
/// connections live in a `JoinSet` owned by it and are aborted with it.
pub async fn accept_loop<H, Fut>(listener: TcpListener, tls: Option<TlsAcceptor>, handler: H)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        match tls {
                            None => serve_connection(stream, handler).await,
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(stream) => serve_connection(stream, handler).await,
                                Err(e) => tracing::debug!(error = %e, "dev: TLS handshake failed"),
                            },
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "dev: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection<IO, H, Fut>(io: IO, handler: H)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let service = service_fn(move |req| {
        let answer = handler(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    if let Err(e) = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, "dev: connection ended with an error");
    }
}
