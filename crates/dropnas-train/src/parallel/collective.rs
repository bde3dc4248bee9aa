//! A peer's link to the others: burn-collective between the peers of this process (`register`
//! once, one `all_reduce` per step, `finish_collective` at the end); with several nodes the
//! node's first peer then reduces the node's sum with the other nodes ([`NodeLink`]) and
//! hands the result to its local peers with burn-collective's `broadcast` (hierarchically:
//! local, then global). The stop flag of a node (a signal) travels as the last element of every
//! reduced vector, so every peer stops after the same step.

use super::AllReduce;
use super::liveness::{Watchdog, fatal};
use super::nodes::NodeLink;
use burn::tensor::TensorData;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};
use std::cell::Cell;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// One peer's end of the collective (used by its own thread only).
pub struct CollectiveLink<B: Backend> {
    id: PeerId,
    /// The peer, in words (for messages).
    name: String,
    /// 1 when this peer asks every peer to stop after the next reduce.
    stop: Cell<bool>,
    stop_seen: Cell<bool>,
    spent: Cell<Duration>,
    calls: Cell<u64>,
    watchdog: Watchdog,
    /// Several nodes: the connection to the other nodes (the node's first peer), and whether
    /// this node has further peers to broadcast the result to.
    nodes: Option<NodeLink>,
    several_nodes: bool,
    local_peers: usize,
    backend: PhantomData<B>,
}

/// Where a peer stands within its node and among the nodes.
pub struct Place {
    /// Peers of this node.
    pub local_peers: usize,
    pub several_nodes: bool,
    /// The node's first peer's connection to the other nodes.
    pub nodes: Option<NodeLink>,
}

impl<B: Backend> CollectiveLink<B> {
    /// Registers peer `id` (global: unique over all nodes) on `device`; returns when every peer
    /// has registered, or ends the process naming who did not within `timeout`.
    pub fn register(
        id: usize,
        name: String,
        device: B::Device,
        config: CollectiveConfig,
        place: Place,
        timeout: Duration,
    ) -> Self {
        let watchdog = Watchdog::new(timeout);
        watchdog.arm(format!("{name}: not every peer registered with the collective"));
        if let Err(e) = burn_collective::register::<B>(PeerId::from(id), device, config) {
            fatal(&format!("{name}: registering with burn-collective failed: {e:?}"));
        }
        watchdog.disarm();
        Self {
            id: PeerId::from(id),
            name,
            stop: Cell::new(false),
            stop_seen: Cell::new(false),
            spent: Cell::new(Duration::ZERO),
            calls: Cell::new(0),
            watchdog,
            nodes: place.nodes,
            several_nodes: place.several_nodes,
            local_peers: place.local_peers,
            backend: PhantomData,
        }
    }

    /// Asks every peer to stop after the next step (this node got a signal).
    pub fn ask_stop(&self) {
        self.stop.set(true);
    }

    /// Whether a peer asked to stop in the last reduce.
    pub fn stop_seen(&self) -> bool {
        self.stop_seen.get()
    }

    /// Time spent in all-reduces so far (waiting for the slowest peer included), and how many.
    pub fn spent(&self) -> (Duration, u64) {
        (self.spent.get(), self.calls.get())
    }

    /// Leaves the collective.
    pub fn finish(self) {
        self.watchdog.arm(format!("{}: leaving the collective", self.name));
        if let Err(e) = burn_collective::finish_collective::<B>(self.id) {
            tracing::warn!("{}: leaving burn-collective: {e:?}", self.name);
        }
        self.watchdog.disarm();
    }
}

impl<B: Backend> AllReduce<B> for CollectiveLink<B> {
    fn sum(&self, flat: Tensor<B, 1>) -> Tensor<B, 1> {
        let device = flat.device();
        let flag = Tensor::<B, 1>::from_floats([f32::from(u8::from(self.stop.get()))], &device);
        let flat = Tensor::cat(vec![flat, flag], 0);
        let n = flat.dims()[0];
        let t0 = Instant::now();
        self.watchdog.arm(format!(
            "{}: no answer from the other peers in all-reduce #{} (a peer stopped or hangs)",
            self.name,
            self.calls.get() + 1
        ));
        let reduced = burn_collective::all_reduce::<B>(self.id, flat.into_primitive().tensor(), ReduceOperation::Sum)
            .unwrap_or_else(|e| fatal(&format!("{}: all-reduce failed: {e:?}", self.name)));
        let mut reduced = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(reduced));
        if self.several_nodes {
            // between nodes: the node's first peer, then to the node's other peers
            let global = self.nodes.as_ref().map(|link| {
                let v: Vec<f32> = reduced.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
                Tensor::<B, 1>::from_data(TensorData::new(link.sum(v), [n]), &device)
            });
            reduced = if self.local_peers > 1 {
                let sent = global.map(|t| t.into_primitive().tensor());
                let got = burn_collective::broadcast::<B>(self.id, sent)
                    .unwrap_or_else(|e| fatal(&format!("{}: broadcast failed: {e:?}", self.name)));
                Tensor::from_primitive(TensorPrimitive::Float(got))
            } else {
                global.expect("a node's only peer is its first")
            };
        }
        // one host read: the stop flag (it also waits for the reduce to land)
        let stop: f32 = reduced.clone().narrow(0, n - 1, 1).into_scalar().elem();
        self.watchdog.disarm();
        self.spent.set(self.spent.get() + t0.elapsed());
        self.calls.set(self.calls.get() + 1);
        self.stop_seen.set(stop > 0.0);
        reduced.narrow(0, 0, n - 1)
    }
}

use burn::tensor::ElementConversion;
