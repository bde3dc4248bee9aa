//! The peers of one process: the leader (peer 0 of the node, on the run engine's thread) and
//! one thread per further device, each with a replica of the task restored from the leader's
//! state. The leader cuts every batch ([`split`](super::split)) and hands each peer its
//! sub-batch; the peers meet in the all-reduce inside the task's step.

use super::Share;
use super::collective::{CollectiveLink, Place};
use super::liveness::{Lifelines, fatal, peer_timeout};
use super::nodes::NodeLink;
use super::split::{check_split, split_batch};
use super::topology::Topology;
use crate::run::checkpoint::{Checkpoint, CheckpointHeader, Position};
use crate::run::config::TaskConfig;
use crate::run::data::RunData;
use crate::run::{RunError, RunTask};
use burn::tensor::Tensor;
use burn_collective::CollectiveConfig;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_data::Batch;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The devices of this process and its place among the nodes.
#[derive(Debug, Clone)]
pub struct Parallel<D> {
    pub devices: Vec<D>,
    /// The devices in words.
    pub names: Vec<String>,
    pub topology: Topology,
}

impl<D> Parallel<D> {
    pub fn single(device: D, name: String) -> Self {
        Self { devices: vec![device], names: vec![name], topology: Topology::single() }
    }

    /// Whether more than one peer takes part (here or on other nodes).
    pub fn is_parallel(&self) -> bool {
        self.devices.len() > 1 || self.topology.nodes > 1
    }

    /// Peers of all nodes (every node runs as many as this one).
    pub fn total_peers(&self) -> usize {
        self.devices.len() * self.topology.nodes
    }
}

/// Whether every step checks that all peers hold bit-identical parameters and optimizer states
/// (`DROPNAS_CHECK_PEERS=1`; on in the tests; costs a serialisation of the model per step).
pub fn check_peers() -> bool {
    std::env::var("DROPNAS_CHECK_PEERS").is_ok_and(|v| v == "1")
}

/// How long node 0 waits for the other nodes to connect at the start (and they for node 0).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// burn-collective keeps one local server per backend per process: one group at a time.
static GROUP: Mutex<()> = Mutex::new(());

/// Holds burn-collective's local server of this process for one group of peers (a run, or a
/// test that registers peers itself): other groups wait. Resets the server's state.
pub fn one_group<B: burn::tensor::backend::Backend>() -> MutexGuard<'static, ()> {
    let guard = GROUP.lock().unwrap_or_else(|p| p.into_inner());
    burn_collective::reset_collective::<B>();
    guard
}

enum Command {
    Epoch(usize, bool),
    Step { batch: Batch, weight: f64, whole: usize },
}

fn fingerprint<B: DropnasAutodiffBackend, T: RunTask<B>>(task: &T) -> Option<u32> {
    task.fingerprint()
}

struct Worker {
    name: String,
    tx: Option<Sender<Command>>,
    rx: Receiver<Option<Option<u32>>>,
    handle: Option<JoinHandle<()>>,
}

/// This process's peers while a run goes on.
pub struct PeerGroup<B: DropnasAutodiffBackend> {
    workers: Vec<Worker>,
    link: CollectiveLink<B::InnerBackend>,
    lifelines: Option<Lifelines>,
    /// Peers of this node, of all nodes, and the global index of this node's first.
    local: usize,
    total: usize,
    first: usize,
    rank: usize,
    check: bool,
    _one_group: MutexGuard<'static, ()>,
}

impl<B: DropnasAutodiffBackend> PeerGroup<B> {
    /// Starts the peers of this process around the `leader` task (peer 0 of the node): checks
    /// the split, connects the nodes (several nodes: lifelines and the link between nodes), starts
    /// one thread per further device with a replica of the leader, registers everyone.
    pub fn start<T>(
        par: &Parallel<B::Device>,
        cfg: &T::Config,
        data: &Arc<RunData>,
        leader: &T,
    ) -> Result<Self, RunError>
    where
        T: RunTask<B> + 'static,
        T::Config: Send + 'static,
        B: 'static,
    {
        let topo = &par.topology;
        let (local, total) = (par.devices.len(), par.total_peers());
        let loader = &data.train.loader;
        let bs = cfg.basics().batch_size;
        let len = loader.len();
        let last = if len <= bs {
            len
        } else if len.is_multiple_of(bs) {
            bs
        } else {
            len % bs
        };
        check_split(bs.min(len), last, total).map_err(RunError::Config)?;

        let one_group = one_group::<B::InnerBackend>();
        let timeout = peer_timeout();
        let config = CollectiveConfig::default().with_num_devices(local);
        let mut lifelines = None;
        let mut node_link = None;
        if topo.nodes > 1 {
            let addr = |offset| topo.coordinator_addr(offset).map_err(RunError::Config);
            lifelines =
                Some(Lifelines::connect(addr(1)?, topo.rank, topo.nodes, CONNECT_TIMEOUT).map_err(RunError::Config)?);
            node_link = Some(NodeLink::connect(addr(0)?, topo.rank, topo.nodes, timeout).map_err(RunError::Config)?);
        }

        // The replicas start from the leader's state, whatever it is (new or resumed). Burn
        // initialises parameters lazily, per copy of the module: reading the leader's values
        // (its fingerprint) fixes them before they are copied.
        let _ = leader.fingerprint();
        let (state, parts) =
            leader.save().map_err(|e| RunError::Config(format!("copying the model to the peers: {e}")))?;
        let header = CheckpointHeader {
            kind: T::KIND,
            run_id: String::new(),
            dropnas_version: env!("CARGO_PKG_VERSION").into(),
            position: Position::default(),
            config: cfg.clone(),
            state,
        };
        let snapshot =
            Arc::new(parts.into_iter().fold(Checkpoint::new(&header), |c, (name, bytes)| c.with_part(&name, bytes)));

        let first = topo.rank * local;
        let check = check_peers();
        let mut workers = Vec::new();
        for k in 1..local {
            let (tx, rx_cmd) = channel();
            let (tx_reply, rx) = channel();
            let name = peer_name(first + k, &par.names[k], topo);
            let (device, cfg, data, snapshot, config) =
                (par.devices[k].clone(), cfg.clone(), data.clone(), snapshot.clone(), config.clone());
            let thread_name = name.clone();
            let topo_nodes = topo.nodes;
            let handle = std::thread::Builder::new()
                .name(format!("dropnas-peer-{}", first + k))
                .spawn(move || {
                    let body = std::panic::AssertUnwindSafe(|| {
                        let place = Place { local_peers: local, several_nodes: topo_nodes > 1, nodes: None };
                        replica::<B, T>(
                            first + k,
                            &thread_name,
                            device,
                            &cfg,
                            &data,
                            &snapshot,
                            config,
                            place,
                            timeout,
                            check,
                            rx_cmd,
                            tx_reply,
                        )
                    });
                    if let Err(p) = std::panic::catch_unwind(body) {
                        let why = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        fatal(&format!("{thread_name} failed: {why}"))
                    }
                })
                .map_err(|e| RunError::Config(format!("cannot start a peer thread: {e}")))?;
            workers.push(Worker { name, tx: Some(tx), rx, handle: Some(handle) });
        }
        let place = Place { local_peers: local, several_nodes: topo.nodes > 1, nodes: node_link };
        let name = peer_name(first, &par.names[0], topo);
        let link = CollectiveLink::register(first, name, par.devices[0].clone(), config, place, timeout);
        Ok(Self { workers, link, lifelines, local, total, first, rank: topo.rank, check, _one_group: one_group })
    }

    /// Every peer starts `epoch` (the task's schedules).
    pub fn start_epoch(&self, epoch: usize, fresh: bool) {
        for w in &self.workers {
            self.send(w, Command::Epoch(epoch, fresh));
        }
    }

    fn send(&self, w: &Worker, c: Command) {
        if w.tx.as_ref().is_none_or(|tx| tx.send(c).is_err()) {
            fatal(&format!("lost {}", w.name))
        }
    }

    /// One data-parallel step of the whole `batch`: this node's peers take their sub-batches.
    pub fn step<T: RunTask<B>>(&self, task: &mut T, batch: &Batch) -> Tensor<B::InnerBackend, 1> {
        let whole = batch.len();
        let mut chunks = split_batch(batch, self.total).into_iter().skip(self.first).take(self.local);
        let mine = chunks.next().expect("the split was checked at the start");
        for (w, chunk) in self.workers.iter().zip(chunks) {
            let weight = chunk.len() as f64 / whole as f64;
            self.send(w, Command::Step { batch: chunk, weight, whole });
        }
        let share = Share { link: &self.link, weight: mine.len() as f64 / whole as f64, batch: whole };
        let result = task.step(&mine, Some(&share));
        let own = self.check.then(|| fingerprint(task));
        for w in &self.workers {
            let theirs = w.rx.recv().unwrap_or_else(|_| fatal(&format!("lost {}", w.name)));
            if theirs != own {
                fatal(&format!("{} no longer holds the same parameters as the leader after this step", w.name));
            }
        }
        result
    }

    /// Asks every peer of every node to stop after the next step (a signal here).
    pub fn ask_stop(&self) {
        self.link.ask_stop();
    }

    /// Whether a node asked to stop in the last step.
    pub fn stop_seen(&self) -> bool {
        self.link.stop_seen()
    }

    /// Seconds in all-reduces so far and how many (this node's leader).
    pub fn all_reduce_time(&self) -> (Duration, u64) {
        self.link.spent()
    }

    /// Ends the peers' threads, leaves the collective, and (several nodes) says goodbye.
    pub fn finish(mut self) {
        for w in &mut self.workers {
            w.tx = None;
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
        let Self { link, lifelines, rank, .. } = self;
        link.finish();
        if let Some(l) = lifelines {
            l.leave(rank, peer_timeout());
        }
    }
}

fn peer_name(id: usize, device: &str, topo: &Topology) -> String {
    if topo.nodes > 1 { format!("peer {id} ({device}, node {})", topo.rank) } else { format!("peer {id} ({device})") }
}

/// A further peer's thread: the replica, then one command at a time until the leader hangs up.
#[allow(clippy::too_many_arguments)]
fn replica<B: DropnasAutodiffBackend, T: RunTask<B>>(
    id: usize,
    name: &str,
    device: B::Device,
    cfg: &T::Config,
    data: &RunData,
    snapshot: &Checkpoint,
    config: CollectiveConfig,
    place: Place,
    timeout: Duration,
    check: bool,
    commands: Receiver<Command>,
    replies: Sender<Option<Option<u32>>>,
) {
    let here = Path::new("<the leader's state>");
    let mut task = T::new(cfg, data, &device).unwrap_or_else(|e| fatal(&format!("{name}: {e}")));
    let header: CheckpointHeader<T::Config, T::State> =
        snapshot.header(here).unwrap_or_else(|e| fatal(&format!("{name}: {e}")));
    task.restore(header.state, snapshot, here).unwrap_or_else(|e| fatal(&format!("{name}: {e}")));
    let link = CollectiveLink::<B::InnerBackend>::register(id, name.to_string(), device, config, place, timeout);
    while let Ok(c) = commands.recv() {
        match c {
            Command::Epoch(epoch, fresh) => {
                task.start_epoch(epoch, fresh).unwrap_or_else(|e| fatal(&format!("{name}: {e}")));
            }
            Command::Step { batch, weight, whole } => {
                task.step(&batch, Some(&Share { link: &link, weight, batch: whole }));
                if replies.send(check.then(|| fingerprint(&task))).is_err() {
                    break;
                }
            }
        }
    }
    link.finish();
}
