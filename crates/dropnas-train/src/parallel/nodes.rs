//! The all-reduce between nodes (processes), over one TCP connection from each node to node 0:
//! every node sends its (locally reduced) vector, node 0 adds them up in rank order and sends
//! the sum back, so every node gets the same bits.
//!
//! Why not burn-collective's global level: in Burn 0.21 its global all-reduce strategies (ring,
//! tree, centralized) reuse the same tensor transfer ids in every call, so the second all-reduce
//! between nodes hangs or reads the previous call's tensor (tracel-ai/burn#4549, reproduced
//! here: a 2-process search hung in its second step). Within a node the peers still reduce with
//! burn-collective; this replaces only the level between nodes, until Burn fixes it.

use super::liveness::{fatal, meet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// This node's end of the connections between nodes (node 0 holds one per other node).
pub struct NodeLink {
    rank: usize,
    streams: Vec<(usize, TcpStream)>,
}

impl NodeLink {
    pub fn connect(addr: SocketAddr, rank: usize, nodes: usize, timeout: Duration) -> Result<Self, String> {
        let streams = meet(addr, rank, nodes, timeout)?;
        for (_, s) in &streams {
            s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
        }
        Ok(Self { rank, streams })
    }

    /// The sum of `v` over all nodes (the same on every node).
    pub fn sum(&self, v: Vec<f32>) -> Vec<f32> {
        let lost = |node: usize, e: std::io::Error| -> ! {
            fatal(&format!("node {}: lost peer node {node} in the all-reduce between nodes ({e})", self.rank))
        };
        if self.rank == 0 {
            let mut sum = v;
            for (node, s) in &self.streams {
                let theirs = receive(s).unwrap_or_else(|e| lost(*node, e));
                if theirs.len() != sum.len() {
                    fatal(&format!(
                        "node {node} sent {} values to the all-reduce, node 0 has {}: the nodes run different \
                         configurations; start every node with the same flags",
                        theirs.len(),
                        sum.len()
                    ));
                }
                for (a, b) in sum.iter_mut().zip(theirs) {
                    *a += b;
                }
            }
            for (node, s) in &self.streams {
                send(s, &sum).unwrap_or_else(|e| lost(*node, e));
            }
            sum
        } else {
            let (node, s) = &self.streams[0];
            send(s, &v).unwrap_or_else(|e| lost(*node, e));
            receive(s).unwrap_or_else(|e| lost(*node, e))
        }
    }
}

fn send(mut s: &TcpStream, v: &[f32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + 4 * v.len());
    bytes.extend((v.len() as u64).to_le_bytes());
    for x in v {
        bytes.extend(x.to_le_bytes());
    }
    s.write_all(&bytes)
}

fn receive(mut s: &TcpStream) -> std::io::Result<Vec<f32>> {
    let mut n = [0u8; 8];
    s.read_exact(&mut n)?;
    let mut bytes = vec![0u8; 4 * u64::from_le_bytes(n) as usize];
    s.read_exact(&mut bytes)?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
