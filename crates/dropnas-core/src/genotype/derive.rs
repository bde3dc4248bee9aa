//! From alphas to a genotype: per edge the best op (ignoring `none`), per node the two edges
//! with the highest such score, best first.

use super::{Concat, Edge, Genotype};
use crate::search_space::SearchSpace;
use serde::{Deserialize, Serialize};

/// What an edge's best op is ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Ranking {
    /// The raw alpha, as the original DropNAS code does (default, for comparable results).
    #[default]
    #[serde(rename = "raw")]
    RawAlpha,
    /// The softmax over the edge's ops (DARTS' paper; comparable across edges).
    #[serde(rename = "softmax")]
    Softmax,
}

impl Ranking {
    pub fn as_str(self) -> &'static str {
        match self {
            Ranking::RawAlpha => "raw",
            Ranking::Softmax => "softmax",
        }
    }
}

impl std::str::FromStr for Ranking {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "raw" => Ok(Ranking::RawAlpha),
            "softmax" => Ok(Ranking::Softmax),
            _ => Err(format!("unknown ranking `{s}` (known: raw, softmax)")),
        }
    }
}

impl std::fmt::Display for Ranking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Derives one cell's nodes from its alpha rows (edges of node 0 first, `[n_ops]` each).
pub fn derive_cell(
    rows: &[Vec<f32>],
    space: &SearchSpace,
    n_nodes: usize,
    k: usize,
    ranking: Ranking,
) -> Vec<Vec<Edge>> {
    let none = space.none_column();
    let mut nodes = Vec::with_capacity(n_nodes);
    let mut offset = 0;
    for i in 0..n_nodes {
        let edges = &rows[offset..offset + i + 2];
        offset += i + 2;
        // best op and its score per edge; the first maximum wins ties, as torch.topk does on CPU
        let best: Vec<(usize, f32)> = edges
            .iter()
            .map(|row| {
                let scores = match ranking {
                    Ranking::RawAlpha => row.clone(),
                    Ranking::Softmax => softmax(row),
                };
                let mut best = (usize::MAX, f32::NEG_INFINITY);
                for (col, &s) in scores.iter().enumerate() {
                    if Some(col) != none && (best.0 == usize::MAX || s > best.1) {
                        best = (col, s);
                    }
                }
                best
            })
            .collect();
        let mut order: Vec<usize> = (0..edges.len()).collect();
        // stable sort: equal scores keep the lower edge index first
        order.sort_by(|&a, &b| best[b].1.partial_cmp(&best[a].1).unwrap_or(std::cmp::Ordering::Equal));
        nodes.push(order.into_iter().take(k).map(|e| (space.ops[best[e].0], e)).collect());
    }
    nodes
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = row.iter().map(|&a| ((a - m) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

/// The genotype of a search: both cells, two edges per node, all nodes concatenated.
pub fn derive_genotype(
    normal: &[Vec<f32>],
    reduce: &[Vec<f32>],
    space: &SearchSpace,
    n_nodes: usize,
    ranking: Ranking,
) -> Genotype {
    Genotype {
        normal: derive_cell(normal, space, n_nodes, 2, ranking),
        normal_concat: Concat::Range(2, 2 + n_nodes),
        reduce: derive_cell(reduce, space, n_nodes, 2, ranking),
        reduce_concat: Concat::Range(2, 2 + n_nodes),
        flat: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_space::OpKind;

    /// A hand-checked example on the original space (columns: sep3 sep5 dil3 dil5 max avg skip none).
    #[test]
    fn derivation_on_a_hand_checked_example() {
        let space = SearchSpace::named("original").unwrap();
        let z = |v: [f32; 8]| v.to_vec();
        let rows = vec![
            // node 0: edge 0 best = skip (0.5); edge 1 best = sep3 (0.9), `none` (2.0) ignored
            z([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.3]),
            z([0.9, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]),
            // node 1: edges 0, 1, 2 -> best scores 0.3 (dil5), 0.8 (max), 0.6 (avg)
            z([0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.0, 0.0]),
            // node 2: 4 edges; best are edge 3 (sep5 0.7) and edge 0 (dil3 0.4)
            z([0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 9.0]),
            z([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0]),
            z([0.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            // node 3: 5 edges; all negative, best are edge 4 (skip -0.1) and edge 2 (sep3 -0.2)
            z([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 5.0]),
            z([-0.5, -0.6, -0.7, -0.8, -0.9, -0.9, -0.9, 0.0]),
            z([-0.2, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3, 0.0]),
            z([-0.4, -0.3, -0.3, -0.3, -0.3, -0.3, -0.3, 0.0]),
            z([-0.9, -0.9, -0.9, -0.9, -0.9, -0.9, -0.1, 0.0]),
        ];
        let nodes = derive_cell(&rows, &space, 4, 2, Ranking::RawAlpha);
        use OpKind::*;
        assert_eq!(
            nodes,
            vec![
                vec![(SepConv3x3, 1), (SkipConnect, 0)],
                vec![(MaxPool3x3, 1), (AvgPool3x3, 2)],
                vec![(SepConv5x5, 3), (DilConv3x3, 0)],
                vec![(SkipConnect, 4), (SepConv3x3, 2)],
            ]
        );
        let g = derive_genotype(&rows, &rows, &space, 4, Ranking::RawAlpha);
        assert_eq!(g.normal, nodes);
        assert_eq!(g.reduce_concat, Concat::Range(2, 6));
    }

    #[test]
    fn softmax_ranking_can_differ_from_raw_alpha() {
        let space = SearchSpace::named("original").unwrap();
        // edge 0: one dominant op (raw 1.0) among equal others -> softmax 0.31
        // edge 1: raw 1.2 but its `none` is huge, so its softmax share is tiny
        let mut rows = vec![vec![0.0f32; 8]; 2];
        rows[0][0] = 1.0;
        rows[1][1] = 1.2;
        rows[1][7] = 6.0;
        let raw = derive_cell(&rows, &space, 1, 1, Ranking::RawAlpha);
        let soft = derive_cell(&rows, &space, 1, 1, Ranking::Softmax);
        assert_eq!(raw, vec![vec![(OpKind::SepConv5x5, 1)]]);
        assert_eq!(soft, vec![vec![(OpKind::SepConv3x3, 0)]]);
    }
}
