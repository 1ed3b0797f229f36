//! The server's connections, held within bounds: no more sockets than [`ConnectionLimits::max_connections`] (a
//! cap kept below the process's file limit, so accepting never starves the database and the blob store of file
//! descriptors); at the cap the oldest idle connection makes way for a new one, so a flood of silent sockets
//! cannot lock out `/api/health` or the admin; a request's headers must arrive within `header_timeout` (which
//! also closes a keep-alive connection left silent that long), its body may not pause longer than
//! `idle_timeout`, and neither may a response the peer stops reading. An accept error (the file limit reached
//! anyway) backs off and is logged once per burst, not once per connection.
//!
//! A connection is *busy* from the moment its request's headers are read until its response's body is written;
//! only a connection that is not busy is ever closed to make room, so no answer is cut short. A WebSocket keeps
//! its slot until it closes; the live feed bounds those connections itself.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Sleep;

use crate::http::Peer;
use crate::services::ConnectionLimits;

/// How long shutdown waits for requests in flight before it drops them (an upload cut short is recorded as
/// failed at the next start).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long the accept loop waits for a slot before it looks again for an idle connection to close.
const RECHECK: Duration = Duration::from_millis(100);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Raises the process's soft limit on open files to its hard limit (as servers do: the soft default of 1,024 is
/// a relic) and answers the limit now in force.
pub fn raise_file_limit() -> u64 {
    #[cfg(unix)]
    // SAFETY: getrlimit and setrlimit only read and write the struct passed, which lives on this stack frame.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1_024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    1_024
}

/// What the accept loop and every connection share.
#[derive(Default)]
struct Table {
    /// Sockets held, WebSockets included.
    open: AtomicUsize,
    /// A socket closed.
    freed: Notify,
    /// The HTTP connections (not the upgraded ones), by id: the candidates to make room.
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

/// One HTTP connection as the table sees it.
struct Conn {
    opened: Instant,
    /// Requests whose answers are not yet written (more than one only when pipelined).
    busy: AtomicUsize,
    /// Asks the connection to close if it is still idle.
    evict: Notify,
}

impl Table {
    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a slot for an accepted socket; it is given back when the socket closes.
    fn slot(self: &Arc<Self>) -> Slot {
        self.open.fetch_add(1, Ordering::AcqRel);
        Slot(self.clone())
    }

    fn register(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        self.conns().insert(id, conn.clone());
        (id, conn)
    }

    fn unregister(&self, id: u64) {
        self.conns().remove(&id);
        self.freed.notify_waiters();
    }

    /// Asks the oldest idle connection to close; false when every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.conns();
        let oldest = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.opened);
        match oldest {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A socket's place under the cap.
struct Slot(Arc<Table>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        // Every waiter takes its `notified()` before it looks at the count, so none misses this.
        self.0.freed.notify_waiters();
    }
}

/// Marks its connection busy for as long as it lives: from a request's headers to its answer's last byte.
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts on `listener` and serves each connection with `service` within `limits`, until `shutdown`
/// resolves; then stops accepting, asks every connection to finish its request in flight and close, and waits
/// for them (at most [`SHUTDOWN_GRACE`]).
pub async fn run<S, B>(listener: TcpListener, service: S, limits: ConnectionLimits, shutdown: impl Future<Output = ()>)
where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let table = Arc::new(Table::default());
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut errors = AcceptErrors::default();
    'accepting: loop {
        while table.open() >= limits.max_connections {
            let freed = table.freed.notified();
            table.evict_oldest_idle();
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep(RECHECK) => {}
                () = &mut shutdown => break 'accepting,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.reset();
                let slot = table.slot();
                let (table, service, stopped) = (table.clone(), service.clone(), stopped.clone());
                tokio::spawn(serve(stream, peer, slot, table, service, limits, stopped));
            }
            // The peer gave up before it was accepted: nothing to do, nothing to say.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                if errors.wait(e, &mut shutdown).await {
                    break;
                }
            }
        }
    }
    drop(listener);
    stop.send_replace(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    loop {
        let freed = table.freed.notified();
        if table.conns().is_empty() {
            break;
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            tracing::warn!(
                connections = table.conns().len(),
                "requests still in flight after {}s are dropped",
                SHUTDOWN_GRACE.as_secs()
            );
            break;
        }
    }
}

/// Serves one connection until it closes, is asked to make room while idle, or the server stops.
async fn serve<S, B>(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    table: Arc<Table>,
    service: S,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let (id, conn) = table.register();
    let io = TokioIo::new(Guarded::new(stream, slot, limits.idle_timeout));
    let service = Tracking {
        inner: service,
        peer,
        conn: conn.clone(),
        body_timeout: limits.idle_timeout,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut connection = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut stopping = false;
    let outcome = loop {
        tokio::select! {
            served = connection.as_mut() => break Some(served),
            () = conn.evict.notified() => {
                // Only an idle connection makes room; one that just became busy keeps its place.
                if conn.busy.load(Ordering::Acquire) == 0 {
                    break None;
                }
            }
            changed = stopped.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    };
    table.unregister(id);
    // Timeouts, resets and malformed requests are the peer's doing; they are not the server's errors.
    if let Some(Err(e)) = outcome {
        tracing::debug!(error = %e, "connection closed");
    }
}

/// Hands each request to the routes with its body timed and its peer's address, and keeps its connection busy until the answer is
/// written.
#[derive(Clone)]
struct Tracking<S> {
    inner: S,
    peer: SocketAddr,
    conn: Arc<Conn>,
    body_timeout: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracking<S>
where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Answered<B>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.conn.clone());
        let mut request = request.map(|body| TimedBody::new(body, self.body_timeout));
        request.extensions_mut().insert(Peer(self.peer));
        // Warp's service is always ready, so it is called at once (as hyper-util's adapter does).
        let answer = self.inner.clone().call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Answered { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection busy until it is written (or dropped).
pub struct Answered<B> {
    body: B,
    _busy: Busy,
}

impl<B> Body for Answered<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A timer for "no progress for this long": started when an operation first cannot proceed, cleared when one
/// does, so the cost of a step that proceeds at once is a flag.
struct Stall {
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            timer: None,
            armed: false,
        }
    }

    fn progressed(&mut self) {
        self.armed = false;
    }

    /// After a step that could not proceed: true once no step proceeded for the whole timeout.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            timer.as_mut().reset(deadline);
            self.armed = true;
        }
        timer.as_mut().poll(cx).is_ready()
    }
}

/// A request body that fails when its next frame is more than the idle timeout in coming: a body trickled a
/// byte at a time does not hold a connection (or an upload's blob) for hours.
pub struct TimedBody {
    body: Incoming,
    stall: Stall,
}

/// The error a [`TimedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request's body paused longer than {0:?}")]
pub struct BodyTimeout(Duration);

impl TimedBody {
    fn new(body: Incoming, timeout: Duration) -> Self {
        Self {
            body,
            stall: Stall::new(timeout),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stall.progressed();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.stall.expired(cx) => Poll::Ready(Some(Err(BodyTimeout(this.stall.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An accepted socket holding its slot, whose writes fail when the peer has not read for the idle timeout (a
/// reader that stalls a download, or a WebSocket, does not hold its slot for ever).
struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    stall: Stall,
}

impl Guarded {
    fn new(stream: TcpStream, slot: Slot, timeout: Duration) -> Self {
        Self {
            stream,
            _slot: slot,
            stall: Stall::new(timeout),
        }
    }

    /// A write's outcome, or an error once writes made no progress for the idle timeout.
    fn wrote(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        match poll {
            Poll::Pending if self.stall.expired(cx) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
            ready => {
                self.stall.progressed();
                ready
            }
        }
    }
}

impl Drop for Guarded {
    /// Closing a socket whose receive buffer still holds bytes sends a reset instead of a FIN, and a reset makes the
    /// peer's kernel drop an answer it has not read yet: an upload refused before its body was read then reads as
    /// "connection closed before message completed". What is already buffered (up to 1 MiB) is discarded first.
    fn drop(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        let mut drained = 0;
        while drained < (1 << 20) {
            match self.stream.try_read(&mut buf) {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Errors an accept reports about one peer that already left: skipped.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Backs off after an accept error (out of file descriptors, memory or buffers), doubling the wait up to a
/// second, and logs one line per ten seconds of trouble with the count of errors it did not log.
struct AcceptErrors {
    delay: Duration,
    logged: Option<Instant>,
    unlogged: u64,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        Self {
            delay: Self::FIRST,
            logged: None,
            unlogged: 0,
        }
    }
}

impl AcceptErrors {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn reset(&mut self) {
        self.delay = Self::FIRST;
    }

    /// Logs (or counts) `e` and waits; true when shutdown came first.
    async fn wait(&mut self, e: std::io::Error, shutdown: &mut Pin<&mut impl Future<Output = ()>>) -> bool {
        if self.logged.is_none_or(|at| at.elapsed() >= Self::LOG_EVERY) {
            tracing::warn!(error = %e, unlogged = self.unlogged, "cannot accept connections; backing off");
            self.logged = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = shutdown.as_mut() => true,
        }
    }
}
