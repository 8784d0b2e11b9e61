//! A TCP proxy for fault tests: placed between managers and PostgreSQL or
//! Redis, it passes traffic, refuses new connections, resets every open
//! one, pauses (black-holes: connections stay open, nothing is forwarded)
//! or delays every chunk it forwards.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Close new connections at once (a server that is down).
    Refuse,
    /// Forward nothing, close nothing (a partition).
    Pause,
    /// Wait this long before forwarding each chunk (a slow server or link).
    Delay(Duration),
}

struct State {
    mode: Mutex<Mode>,
    conns: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A running proxy; stops (and closes every connection) when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Pass),
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || accept_loop(listener, upstream, s));
        Proxy { addr, state }
    }

    /// Sets what the proxy does from now on.
    pub fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Resets every open connection (RST, as a restarting server does).
    pub fn reset_all(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            reset(&c);
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, scheme: &str, rest: &str) -> String {
        format!("{scheme}://{}{rest}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.reset_all();
    }
}

/// Closes `c` with a reset (SO_LINGER 0), not an orderly FIN.
fn reset(c: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = c.shutdown(Shutdown::Both);
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        client.set_nonblocking(false).unwrap();
        if *state.mode.lock().unwrap() == Mode::Refuse {
            reset(&client);
            continue;
        }
        let Ok(server) = TcpStream::connect(upstream) else {
            reset(&client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        {
            let mut conns = state.conns.lock().unwrap();
            conns.push(client.try_clone().unwrap());
            conns.push(server.try_clone().unwrap());
        }
        for (from, to) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server, client),
        ] {
            let s = state.clone();
            std::thread::spawn(move || pump(from, to, s));
        }
    }
}

/// Copies `from` to `to` chunk by chunk, as the mode says.
fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<State>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            if state.stop.load(Ordering::SeqCst) {
                return;
            }
            let mode = *state.mode.lock().unwrap();
            match mode {
                Mode::Pause => std::thread::sleep(Duration::from_millis(5)),
                Mode::Delay(d) => {
                    std::thread::sleep(d);
                    break;
                }
                Mode::Pass | Mode::Refuse => break,
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
