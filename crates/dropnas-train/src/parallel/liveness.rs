//! Bounded waits: a peer that dies must not leave the others hanging in a collective call.
//!
//! [`Watchdog`] ends the process when a collective call does not return in time (burn-collective
//! has no timeouts of its own). Between nodes, [`Lifelines`] keeps one TCP connection from every
//! node to node 0 beside the collective: a node that dies (even by `kill -9`) closes it at once,
//! and the other end stops naming the lost node, without waiting for the timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ends the process with `msg`: a lost peer leaves nothing to wait for (the last checkpoint on
/// disk stays valid: checkpoints are written whole, then renamed).
pub fn fatal(msg: &str) -> ! {
    eprintln!(
        "error: {msg}; the run stopped. The last checkpoint in the run folder is kept: start every node again with --resume to continue"
    );
    std::process::exit(1)
}

/// How long a peer waits for the others in one collective call before giving up: the
/// `DROPNAS_PEER_TIMEOUT` environment variable (seconds), else 10 minutes (a first GPU step
/// compiles its kernels, and peers wait for the slowest).
pub fn peer_timeout() -> Duration {
    let s = std::env::var("DROPNAS_PEER_TIMEOUT").ok().and_then(|v| v.trim().parse::<f64>().ok());
    Duration::from_secs_f64(s.filter(|s| *s > 0.0).unwrap_or(600.0))
}

/// A thread that ends the process when an armed wait outlives the timeout.
pub struct Watchdog {
    tx: Sender<Option<String>>,
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Self {
        let (tx, rx): (Sender<Option<String>>, Receiver<Option<String>>) = channel();
        std::thread::Builder::new()
            .name("dropnas-watchdog".into())
            .spawn(move || {
                let mut armed: Option<(Instant, String)> = None;
                loop {
                    let msg = match &armed {
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some((at, _)) => rx.recv_timeout(timeout.saturating_sub(at.elapsed())),
                    };
                    match msg {
                        Ok(Some(what)) => armed = Some((Instant::now(), what)),
                        Ok(None) => armed = None,
                        Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {
                            let what = armed.take().map(|a| a.1).unwrap_or_default();
                            fatal(&format!(
                                "{what}; gave up after {:.0} s (DROPNAS_PEER_TIMEOUT)",
                                timeout.as_secs_f64()
                            ))
                        }
                    }
                }
            })
            .expect("cannot start the watchdog thread");
        Self { tx }
    }

    pub fn arm(&self, what: String) {
        let _ = self.tx.send(Some(what));
    }

    pub fn disarm(&self) {
        let _ = self.tx.send(None);
    }
}

/// The byte a node sends when it leaves normally.
const BYE: u8 = b'B';

/// The connections between node 0 and the others (node 0 holds one per node; the others one).
pub struct Lifelines {
    streams: Vec<(usize, TcpStream)>,
    leaving: Arc<AtomicBool>,
    byes: Arc<Mutex<usize>>,
}

impl Lifelines {
    /// Node 0: waits for the other `nodes - 1` nodes at `addr`. Node `rank` > 0: connects to it
    /// (retrying while node 0 starts). Both within `timeout`.
    pub fn connect(addr: SocketAddr, rank: usize, nodes: usize, timeout: Duration) -> Result<Self, String> {
        let streams = meet(addr, rank, nodes, timeout)?;
        let lines = Self { streams, leaving: Arc::new(AtomicBool::new(false)), byes: Arc::new(Mutex::new(0)) };
        lines.watch(rank);
        Ok(lines)
    }

    /// One thread per connection: a connection that closes without a goodbye is a lost node.
    fn watch(&self, rank: usize) {
        for (other, s) in &self.streams {
            let (other, mut s) = (*other, s.try_clone().expect("a socket handle"));
            let (leaving, byes) = (self.leaving.clone(), self.byes.clone());
            std::thread::spawn(move || {
                let mut b = [0u8; 1];
                let said_bye = matches!(s.read(&mut b), Ok(1) if b[0] == BYE);
                if !said_bye && !leaving.load(Ordering::SeqCst) {
                    fatal(&format!("node {rank}: lost peer node {other} (its connection closed: the process ended)"));
                }
                // gone either way: a node that ends while this one leaves needs no wait
                *byes.lock().expect("bye count") += 1;
            });
        }
    }

    /// Leaves normally: says goodbye to every connected node; node 0 then waits (within
    /// `timeout`) until every other node has said goodbye, so that they all leave together.
    pub fn leave(self, rank: usize, timeout: Duration) {
        self.leaving.store(true, Ordering::SeqCst);
        for (_, s) in &self.streams {
            let _ = (&*s).write_all(&[BYE]);
        }
        if rank == 0 {
            let t0 = Instant::now();
            while *self.byes.lock().expect("bye count") < self.streams.len() && t0.elapsed() < timeout {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One TCP connection between node 0 and each other node: node 0 waits for the other `nodes - 1`
/// at `addr` and gets one stream per node (sorted by rank); node `rank` > 0 connects to it
/// (retrying while node 0 starts) and gets one. Both within `timeout`.
pub fn meet(addr: SocketAddr, rank: usize, nodes: usize, timeout: Duration) -> Result<Vec<(usize, TcpStream)>, String> {
    let deadline = Instant::now() + timeout;
    let mut streams = Vec::new();
    if rank == 0 {
        let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        while streams.len() + 1 < nodes {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).map_err(|e| e.to_string())?;
                    let mut r = [0u8; 4];
                    s.read_exact(&mut r).map_err(|e| format!("a node connected to {addr} but said nothing: {e}"))?;
                    streams.push((u32::from_le_bytes(r) as usize, s));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        let here: Vec<usize> = streams.iter().map(|s| s.0).collect();
                        return Err(format!(
                            "only {} of {nodes} nodes reached node 0 at {addr} within {:.0} s (here: 0 {here:?}); \
                             start every node with the same --nodes and --coordinator",
                            streams.len() + 1,
                            timeout.as_secs_f64()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("accepting nodes at {addr}: {e}")),
            }
        }
    } else {
        let mut s = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "node {rank} cannot reach node 0 at {addr} within {:.0} s: {e}",
                        timeout.as_secs_f64()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        s.write_all(&(rank as u32).to_le_bytes()).map_err(|e| e.to_string())?;
        streams.push((0, s));
    }
    streams.sort_by_key(|s| s.0);
    Ok(streams)
}
