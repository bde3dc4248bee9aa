//! The collapse monitor: after every epoch, how close the search is to the failure that
//! one-level DARTS and DropNAS searches are known for, a normal cell taken over by
//! skip-connects and other parameter-free ops, while the alphas of many edges stay near uniform
//! (high entropy: nothing decided).

use dropnas_core::genotype::Edge;
use dropnas_core::search_space::OpKind;
use serde::{Deserialize, Serialize};

/// A cell's collapse figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellCollapse {
    /// Skip-connects among the cell's chosen edges.
    pub skip_connects: usize,
    /// Share of the chosen edges whose op has no weights (pools, skip-connects).
    pub param_free_share: f64,
    /// Entropy (nats) of each edge's softmaxed alphas, edges of node 0 first.
    pub entropies: Vec<f64>,
    /// Their mean; the uniform row's entropy is ln(number of ops).
    pub mean_entropy: f64,
}

/// Entropy in nats of a probability row.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|&&x| x > 0.0).map(|&x| x * x.ln()).sum::<f64>()
}

/// The figures of one cell: its derived `nodes` and its softmaxed alpha rows.
pub fn cell_collapse(nodes: &[Vec<Edge>], softmax_rows: &[Vec<f64>]) -> CellCollapse {
    let chosen: Vec<OpKind> = nodes.iter().flatten().map(|e| e.0).collect();
    let skip_connects = chosen.iter().filter(|&&op| op == OpKind::SkipConnect).count();
    let param_free = chosen.iter().filter(|op| !op.is_parameterised()).count();
    let entropies: Vec<f64> = softmax_rows.iter().map(|r| entropy(r)).collect();
    let mean_entropy = if entropies.is_empty() { 0.0 } else { entropies.iter().sum::<f64>() / entropies.len() as f64 };
    CellCollapse {
        skip_connects,
        param_free_share: if chosen.is_empty() { 0.0 } else { param_free as f64 / chosen.len() as f64 },
        entropies,
        mean_entropy,
    }
}

/// The warning a normal cell deserves, if any: 3 or more skip-connects, or more than half of
/// its ops parameter-free.
pub fn collapse_warning(normal: &CellCollapse, epoch: usize) -> Option<String> {
    if normal.skip_connects < 3 && normal.param_free_share <= 0.5 {
        return None;
    }
    Some(format!(
        "epoch {epoch}: the normal cell has {} skip-connects and {:.0}% parameter-free ops: the search may be \
         collapsing (such cells retrain poorly). What helps: derive with --max-skip-connects 2 (P-DARTS' rule), \
         more --warmup-epochs, a higher --drop-rate-nonparam, or an earlier epoch's genotype (metrics.jsonl)",
        normal.skip_connects,
        100.0 * normal.param_free_share
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OpKind::*;

    #[test]
    fn figures_of_a_hand_made_cell() {
        // 4 nodes, 8 chosen edges: 3 skip-connects, 1 max pool, 4 convolutions
        let nodes = vec![
            vec![(SkipConnect, 0), (SepConv3x3, 1)],
            vec![(SkipConnect, 0), (MaxPool3x3, 2)],
            vec![(SkipConnect, 1), (DilConv3x3, 3)],
            vec![(SepConv5x5, 0), (DilConv5x5, 4)],
        ];
        // a uniform row over 8 ops, a decided one, and one in between
        let uniform = vec![0.125; 8];
        let decided = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let half = vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let c = cell_collapse(&nodes, &[uniform, decided, half]);
        assert_eq!(c.skip_connects, 3);
        assert_eq!(c.param_free_share, 0.5);
        assert!((c.entropies[0] - 8f64.ln()).abs() < 1e-12);
        assert_eq!(c.entropies[1], 0.0);
        assert!((c.entropies[2] - 2f64.ln()).abs() < 1e-12);
        assert!((c.mean_entropy - (8f64.ln() + 2f64.ln()) / 3.0).abs() < 1e-12);
        let w = collapse_warning(&c, 7).expect("3 skip-connects warn");
        assert!(w.contains("3 skip-connects") && w.contains("--max-skip-connects"), "{w}");
        let fine = cell_collapse(&nodes[3..], &[]);
        assert_eq!((fine.skip_connects, fine.param_free_share), (0, 0.0));
        assert!(collapse_warning(&fine, 1).is_none());
        // more than half parameter-free, with fewer than 3 skip-connects, warns too
        let pools = vec![vec![(MaxPool3x3, 0), (AvgPool3x3, 1)], vec![(SkipConnect, 0), (SepConv3x3, 1)]];
        assert!(collapse_warning(&cell_collapse(&pools, &[]), 2).is_some());
    }
}
