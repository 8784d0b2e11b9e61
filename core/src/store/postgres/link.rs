//! One PostgreSQL connection, driven on the calling thread with a deadline
//! on every wait.
//!
//! The synchronous `postgres` crate drives a `tokio_postgres` connection on
//! a current-thread runtime inside each call (its `Connection::block_on`);
//! this does the same, with two differences a fleet needs: every call ends
//! by its deadline (a server that stops answering — a partition, a paused
//! proxy — cannot hold a call beyond it, as a socket that stays open never
//! errors by itself), and a connection whose call timed out or failed below
//! SQL is marked broken and never used again (its protocol state is
//! unknown). Notifications that arrive meanwhile are kept in [`Link::notes`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Notification, Row, Statement};

use super::tls::Tls;
use crate::error::{Error, ErrorKind, Result};

/// What drives a connection's socket (its type depends on the TLS used).
pub(crate) trait Drive: Send {
    /// Polls the connection: sends requests, reads answers and messages.
    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<AsyncMessage, tokio_postgres::Error>>>;
}

impl<S, T> Drive for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<AsyncMessage, tokio_postgres::Error>>> {
        tokio_postgres::Connection::poll_message(self, cx)
    }
}

/// One connection and the runtime its socket is registered with.
pub(crate) struct Link {
    rt: tokio::runtime::Runtime,
    client: Client,
    conn: Box<dyn Drive>,
    /// Notifications received and not yet taken.
    pub(crate) notes: VecDeque<Notification>,
    /// The connection ended, or a call on it timed out or failed below SQL:
    /// it is not used again.
    broken: bool,
}

/// The error of a wait that reached its deadline.
pub(crate) fn timed_out(what: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("PostgreSQL did not answer in time ({what}; storage_timeout_ms bounds every call)"),
    )
}

/// Time left until `deadline`, or the timeout error.
fn left(deadline: Instant, what: &str) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out(what));
    }
    Ok(left)
}

/// Runs the future `$fut` (made from the client) on the link's connection
/// until `$deadline`: the fields borrowed apart, as the future borrows the
/// client while the connection is polled.
macro_rules! on_link {
    ($link:expr, $deadline:expr, |$client:ident| $fut:expr) => {{
        let Link {
            rt,
            client: $client,
            conn,
            notes,
            broken,
        } = $link;
        drive(rt, conn, notes, broken, $deadline, $fut)
    }};
}

impl Link {
    /// Connects (TCP, TLS, startup and authentication) before `deadline`.
    pub(crate) fn connect(
        config: &tokio_postgres::Config,
        tls: &Tls,
        deadline: Instant,
    ) -> Result<Link> {
        let wait = left(deadline, "connecting")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Internal, format!("runtime: {e}")))?;
        let out = rt.block_on(async { tokio::time::timeout(wait, tls.connect(config)).await });
        match out {
            Err(_) => Err(timed_out("connecting")),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok((client, conn))) => Ok(Link {
                rt,
                client,
                conn,
                notes: VecDeque::new(),
                broken: false,
            }),
        }
    }

    /// True if the connection must not be used again.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// Prepares `sql`.
    pub(crate) fn prepare(&mut self, deadline: Instant, sql: &str) -> Result<Statement> {
        on_link!(self, deadline, |client| client.prepare(sql))
    }

    /// Runs a prepared statement and returns its rows.
    pub(crate) fn query(
        &mut self,
        deadline: Instant,
        s: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        on_link!(self, deadline, |client| client.query(s, params))
    }

    /// Runs a prepared statement expecting at most one row.
    pub(crate) fn query_opt(
        &mut self,
        deadline: Instant,
        s: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        on_link!(self, deadline, |client| client.query_opt(s, params))
    }

    /// Runs a prepared statement and returns the rows it changed.
    pub(crate) fn execute(
        &mut self,
        deadline: Instant,
        s: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        on_link!(self, deadline, |client| client.execute(s, params))
    }

    /// Runs statements given as text (no parameters).
    pub(crate) fn batch_execute(&mut self, deadline: Instant, sql: &str) -> Result<()> {
        on_link!(self, deadline, |client| client.batch_execute(sql))
    }

    /// Reads what the server sends until a notification is there or
    /// `until` passes (`Ok` either way); an error if the connection ends.
    pub(crate) fn wait_notes(&mut self, until: Instant) -> Result<()> {
        if self.broken {
            return Err(closed());
        }
        if !self.notes.is_empty() {
            return Ok(());
        }
        let wait = until.saturating_duration_since(Instant::now());
        let pending = std::future::pending::<std::result::Result<(), tokio_postgres::Error>>();
        let out = poll_both(
            &self.rt,
            &mut self.conn,
            &mut self.notes,
            wait,
            pending,
            true,
        );
        settle(out, &mut self.broken).map(drop)
    }
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Storage,
        "the connection to PostgreSQL was closed",
    )
}

/// How polling a call and its connection ended.
enum Outcome<T> {
    /// The call finished (or the server refused it).
    Done(std::result::Result<T, tokio_postgres::Error>),
    /// The connection failed.
    Failed(tokio_postgres::Error),
    /// The connection ended.
    Ended,
    /// The wait reached its end.
    TimedOut,
    /// A notification arrived (when asked to stop at one).
    Noted,
}

/// Polls `fut` and the connection together, for at most `wait`.
fn poll_both<T>(
    rt: &tokio::runtime::Runtime,
    conn: &mut Box<dyn Drive>,
    notes: &mut VecDeque<Notification>,
    wait: Duration,
    fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    stop_at_note: bool,
) -> Outcome<T> {
    let mut fut = pin!(fut);
    let polled = std::future::poll_fn(|cx| {
        loop {
            match conn.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => notes.push_back(n),
                Poll::Ready(Some(Ok(_))) => {}
                // A last answer may have arrived before the end.
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(match fut.as_mut().poll(cx) {
                        Poll::Ready(out) => Outcome::Done(out),
                        Poll::Pending => Outcome::Failed(e),
                    });
                }
                Poll::Ready(None) => {
                    return Poll::Ready(match fut.as_mut().poll(cx) {
                        Poll::Ready(out) => Outcome::Done(out),
                        Poll::Pending => Outcome::Ended,
                    });
                }
                Poll::Pending => break,
            }
        }
        match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Outcome::Done(out)),
            Poll::Pending if stop_at_note && !notes.is_empty() => Poll::Ready(Outcome::Noted),
            Poll::Pending => Poll::Pending,
        }
    });
    rt.block_on(async { tokio::time::timeout(wait, polled).await })
        .unwrap_or(Outcome::TimedOut)
}

/// What an outcome tells the caller: the answer, an error, or `None` (the
/// wait ended first, or a notification came). A connection that failed
/// or ended is broken; an error the server sent leaves it usable.
fn settle<T>(out: Outcome<T>, broken: &mut bool) -> Result<Option<T>> {
    match out {
        Outcome::Done(Ok(v)) => Ok(Some(v)),
        Outcome::Done(Err(e)) => {
            if e.as_db_error().is_none() {
                *broken = true;
            }
            Err(e.into())
        }
        Outcome::Failed(e) => {
            *broken = true;
            Err(e.into())
        }
        Outcome::Ended => {
            *broken = true;
            Err(closed())
        }
        Outcome::TimedOut | Outcome::Noted => Ok(None),
    }
}

/// Runs `fut` on the connection until it is done, the connection fails or
/// `deadline` passes; in the last two cases the connection is broken (a
/// call cut off leaves the protocol state unknown).
fn drive<T>(
    rt: &tokio::runtime::Runtime,
    conn: &mut Box<dyn Drive>,
    notes: &mut VecDeque<Notification>,
    broken: &mut bool,
    deadline: Instant,
    fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    if *broken {
        return Err(closed());
    }
    let wait = left(deadline, "waiting for the server")?;
    match settle(poll_both(rt, conn, notes, wait, fut, false), broken)? {
        Some(v) => Ok(v),
        None => {
            *broken = true;
            Err(timed_out("waiting for the server"))
        }
    }
}
