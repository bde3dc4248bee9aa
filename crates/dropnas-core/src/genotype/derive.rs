//! From alphas to a genotype: per edge the best op (ignoring `none`), per node the two edges
//! with the highest such score, best first.

use super::{Concat, Edge, Genotype};
use crate::search_space::{OpKind, SearchSpace};
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
    select(&scores(rows, ranking), space, n_nodes, k)
}

/// What each op of each edge is ranked by.
fn scores(rows: &[Vec<f32>], ranking: Ranking) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|row| match ranking {
            Ranking::RawAlpha => row.clone(),
            Ranking::Softmax => softmax(row),
        })
        .collect()
}

/// Per edge the best op (ignoring `none`), per node the `k` edges with the highest such score.
fn select(scores: &[Vec<f32>], space: &SearchSpace, n_nodes: usize, k: usize) -> Vec<Vec<Edge>> {
    let none = space.none_column();
    let mut nodes = Vec::with_capacity(n_nodes);
    let mut offset = 0;
    for i in 0..n_nodes {
        let edges = &scores[offset..offset + i + 2];
        offset += i + 2;
        // best op and its score per edge; the first maximum wins ties, as torch.topk does on CPU
        let best: Vec<(usize, f32)> = edges
            .iter()
            .map(|scores| {
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

/// The first alpha row of node `i` (node 0 has rows 0 and 1, node 1 rows 2 to 4, ...).
fn first_row(i: usize) -> usize {
    (0..i).map(|n| n + 2).sum()
}

/// [`derive_cell`] with at most `max_skip` skip-connects: P-DARTS' rule. While the cell has
/// more, the chosen skip-connect edge whose skip-connect scores lowest gets its best
/// parameterised op instead (its parameter-free ops are ruled out), and the cell is derived
/// again (which may pick other edges for that node). Returns the cell and how many edges were
/// changed.
pub fn derive_cell_limited(
    rows: &[Vec<f32>],
    space: &SearchSpace,
    n_nodes: usize,
    k: usize,
    ranking: Ranking,
    max_skip: usize,
) -> (Vec<Vec<Edge>>, usize) {
    let mut scores = scores(rows, ranking);
    let skip_cols: Vec<usize> = (0..space.ops.len()).filter(|&c| space.ops[c] == OpKind::SkipConnect).collect();
    let mut replaced = 0;
    loop {
        let nodes = select(&scores, space, n_nodes, k);
        let chosen: Vec<(usize, f32)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, edges)| {
                edges.iter().filter(|(op, _)| *op == OpKind::SkipConnect).map(move |&(_, j)| first_row(i) + j)
            })
            .map(|row| (row, skip_cols.iter().map(|&c| scores[row][c]).fold(f32::NEG_INFINITY, f32::max)))
            .collect();
        if chosen.len() <= max_skip {
            return (nodes, replaced);
        }
        let (row, _) = chosen
            .iter()
            .copied()
            .min_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
            .expect("more skip-connects than the limit");
        for (c, op) in space.ops.iter().enumerate() {
            if !op.is_parameterised() {
                scores[row][c] = f32::NEG_INFINITY;
            }
        }
        replaced += 1;
    }
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
    derive_genotype_limited(normal, reduce, space, n_nodes, ranking, None).0
}

/// [`derive_genotype`] with at most `max_skip` skip-connects in the normal cell (see
/// [`derive_cell_limited`]; `None`: the original's derivation). Also returns how many
/// skip-connect edges the limit replaced.
pub fn derive_genotype_limited(
    normal: &[Vec<f32>],
    reduce: &[Vec<f32>],
    space: &SearchSpace,
    n_nodes: usize,
    ranking: Ranking,
    max_skip: Option<usize>,
) -> (Genotype, usize) {
    let (normal, replaced) = match max_skip {
        Some(k) => derive_cell_limited(normal, space, n_nodes, 2, ranking, k),
        None => (derive_cell(normal, space, n_nodes, 2, ranking), 0),
    };
    let g = Genotype {
        normal,
        normal_concat: Concat::Range(2, 2 + n_nodes),
        reduce: derive_cell(reduce, space, n_nodes, 2, ranking),
        reduce_concat: Concat::Range(2, 2 + n_nodes),
        flat: false,
    };
    (g, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P-DARTS' rule on a normal cell whose raw derivation has 4 skip-connects: with at most 2,
    /// the two weakest skip-connect edges take their best parameterised op.
    #[test]
    fn at_most_k_skip_connects_replaces_the_weakest() {
        use OpKind::*;
        let space = SearchSpace::named("original").unwrap();
        // columns: sep3 sep5 dil3 dil5 max avg skip none
        let z = |v: [f32; 8]| v.to_vec();
        let rows = vec![
            // node 0: skip 0.9 (edge 0), skip 0.5 (edge 1; its best parameterised op: dil3 0.3)
            z([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0]),
            z([0.0, 0.0, 0.3, 0.0, 0.4, 0.0, 0.5, 0.0]),
            // node 1: skip 0.8 (edge 0), sep5 0.7 (edge 2), edge 1 weak
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            z([0.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            // node 2: skip 0.6 (edge 3; next best parameterised: sep3 0.2), dil5 0.65 (edge 0)
            z([0.0, 0.0, 0.0, 0.65, 0.0, 0.0, 0.0, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            z([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.0]),
            // node 3: sep3 0.9 (edge 4), dil3 0.85 (edge 2)
            z([0.0; 8]),
            z([0.0; 8]),
            z([0.0, 0.0, 0.85, 0.0, 0.0, 0.0, 0.0, 0.0]),
            z([0.0; 8]),
            z([0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ];
        let skips = |nodes: &[Vec<Edge>]| nodes.iter().flatten().filter(|e| e.0 == SkipConnect).count();
        let raw = derive_cell(&rows, &space, 4, 2, Ranking::RawAlpha);
        assert_eq!(skips(&raw), 4, "{raw:?}");
        let (two, replaced) = derive_cell_limited(&rows, &space, 4, 2, Ranking::RawAlpha, 2);
        assert_eq!(replaced, 2);
        assert_eq!(
            two,
            vec![
                // the skip at 0.5 became dil3 (0.3), which still ranks second in node 0
                vec![(SkipConnect, 0), (DilConv3x3, 1)],
                vec![(SkipConnect, 0), (SepConv5x5, 2)],
                // the skip at 0.6 became sep3 (0.2): node 2 keeps dil5 and that edge
                vec![(DilConv5x5, 0), (SepConv3x3, 3)],
                vec![(SepConv3x3, 4), (DilConv3x3, 2)],
            ]
        );
        // no limit, or a limit already met: the original's derivation
        assert_eq!(derive_cell_limited(&rows, &space, 4, 2, Ranking::RawAlpha, 4), (raw.clone(), 0));
        let (g, n) = derive_genotype_limited(&rows, &rows, &space, 4, Ranking::RawAlpha, Option::None);
        assert_eq!((g.normal, n), (raw, 0));
    }

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

    /// Exact ties resolve to the lower index, among an edge's ops and among a node's edges, so a
    /// derivation is the same on every machine. (The original's `torch.topk` leaves the order of
    /// equal values unspecified: PyTorch 2.x on the CPU returns indices [2, 4] as the top two of
    /// five equal values. Ties are practically impossible in trained alphas; they occur in
    /// hand-made or all-zero ones.)
    #[test]
    fn ties_go_to_the_lower_index() {
        use OpKind::*;
        let space = SearchSpace::named("original").unwrap();
        let z = |v: [f32; 8]| v.to_vec();
        let zero = || z([0.0; 8]);
        let mut rows = vec![zero(); 14];
        // node 0: edge 0 ties sep3/max at 0.5 -> sep3 (column 0); edge 1 ties dil5/skip at 0.5 -> dil5
        rows[0] = z([0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]);
        rows[1] = z([0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.9]);
        // node 1: three edges tied at 0.4 -> edges 0 and 1, in that order
        rows[2] = z([0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0, 0.0]);
        rows[3] = z([0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        rows[4] = z([0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // node 2: a strict best (edge 3) and a tie between edges 1 and 2 for second place
        rows[6] = z([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0]);
        rows[7] = z([0.0, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0]);
        rows[8] = z([0.0, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0]);
        // node 3: all zero: edges 0 and 1, each's first op (sep3)
        let cell = derive_cell(&rows, &space, 4, 2, Ranking::RawAlpha);
        assert_eq!(
            cell,
            vec![
                vec![(SepConv3x3, 0), (DilConv5x5, 1)],
                vec![(AvgPool3x3, 0), (SepConv5x5, 1)],
                vec![(DilConv5x5, 3), (SkipConnect, 1)],
                vec![(SepConv3x3, 0), (SepConv3x3, 1)],
            ]
        );
        // node 2's edge 0 (all zero) does not beat the tied 0.2 edges; node 1's order is stable
        // under the softmax ranking too
        let soft = derive_cell(&rows, &space, 4, 2, Ranking::Softmax);
        assert_eq!(soft[1], cell[1]);
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
