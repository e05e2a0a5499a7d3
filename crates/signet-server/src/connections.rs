//! A bound on the connections open at once: every accepted connection holds a permit until it
//! closes, and one accepted while none is left is closed at once, before any TLS handshake. A
//! client that opens connections and sends nothing cannot exhaust the daemon's sockets or
//! memory; those it has open are closed by the header-read and handshake timeouts.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use futures_util::future::Either;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

/// An acceptor that admits at most a fixed number of connections at once, then hands each to
/// `inner` (plain, or TLS).
#[derive(Clone)]
pub(crate) struct LimitConnections<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<A> LimitConnections<A> {
    pub(crate) fn new(inner: A, max_connections: usize) -> Self {
        LimitConnections {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

/// The service of one connection; it holds the connection's permit, so the permit is given
/// back when the connection closes and its service is dropped.
#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl<S, R> Service<R> for Counted<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}

type Refused<T> = std::future::Ready<io::Result<T>>;

impl<I, S, A> Accept<I, S> for LimitConnections<A>
where
    A: Accept<I, Counted<S>>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Either<A::Future, Refused<(A::Stream, A::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Either::Left(self.inner.accept(
                stream,
                Counted {
                    inner: service,
                    _permit: Arc::new(permit),
                },
            )),
            // Dropping the stream closes the connection.
            Err(_) => Either::Right(std::future::ready(Err(io::Error::other(
                "too many connections open",
            )))),
        }
    }
}
