//! The accept loop: hyper's HTTP/1.1 server on each connection, bounded in number, in
//! the time a request head may take, and in the time a client may leave an answer
//! untaken; TLS in front when configured.
//!
//! `axum::serve` has none of these bounds: a client sending half a request head held its
//! connection for ever. Here the loop takes a connection slot before it accepts (so
//! beyond [`Limits::max_connections`] connections wait in the kernel's accept queue, and
//! the process never runs out of descriptors by a client's doing), gives hyper a timer for
//! its header-read timeout, and wraps the socket in [`Stall`] for answers nobody reads.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;

/// Accept and serve connections for ever.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let mut accept_failing = false;
    loop {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => {
                accept_failing = false;
                stream
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                // Out of descriptors or memory: wait for some to come back, say so once.
                if !accept_failing {
                    eprintln!("memglass: warning: cannot accept connections: {error}; retrying");
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            slot,
            http.clone(),
            app.clone(),
            limits,
            tls.clone(),
        ));
    }
}

/// Errors of one connection that was already gone when accepted.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serve one connection; its slot is given back when it ends.
async fn connection(
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    http: http1::Builder,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
) {
    let service = TowerToHyperService::new(app);
    // Errors here are the client's (a timeout, a reset, a bad request hyper answered):
    // nothing to report.
    match tls {
        None => {
            let io = TokioIo::new(Stall::new(stream, limits.idle_timeout));
            let _ = http.serve_connection(io, service).await;
        }
        Some(tls) => {
            // The handshake gets the header-read timeout too: a client that opens a
            // connection and sends half a ClientHello is a slowloris as well.
            let Ok(Ok(stream)) =
                tokio::time::timeout(limits.header_read_timeout, tls.accept(stream)).await
            else {
                return;
            };
            let io = TokioIo::new(Stall::new(stream, limits.idle_timeout));
            let _ = http.serve_connection(io, service).await;
        }
    }
}

/// A connection that fails with `TimedOut` when a write (or flush, or shutdown) has made
/// no progress for `limit`: a client that stopped reading an answer. Reads are not timed
/// here: hyper times the head, the request timeout the body, and an idle kept-alive
/// connection is waiting for a head.
pub struct Stall<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S> Stall<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, limit: Duration) -> Stall<S> {
        Stall {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// `result` of a write-side call: progress disarms the timer; `Pending` arms it (once)
    /// and fails when it has run out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.armed = false;
            return result;
        }
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.limit;
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no byte of the answer within the idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, result)
    }
}
