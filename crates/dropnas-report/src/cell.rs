//! Cell diagrams: a layered left-to-right layout of one cell of a genotype, drawn as SVG (with
//! one `<g class="node">` per state and one `<g class="edge">` per genotype entry), as PNG, and
//! as Graphviz DOT text like the original's `plot()`.
//!
//! The layout is a small Sugiyama-style one. Each state gets a layer (inputs 0, a node one more
//! than its deepest input, the output last); between two node layers sits a label layer where
//! every op label is a box of its own, so labels can't overlap: the edge runs through its label.
//! Edges that skip layers pass through placeholder slots, so they never cross a node. Within a
//! layer, items are ordered by the barycentre of their neighbours (fewer crossings), then placed
//! vertically as close to their neighbours as the minimum spacing allows (isotonic regression).

use crate::plots::{self, Rgb, op_colour};
use crate::{ReportError, esc};
use dropnas_core::genotype::{Concat, Edge, Genotype};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Fill colours of the original's Graphviz figures.
pub const INPUT_FILL: Rgb = Rgb(0xb4, 0xee, 0xb4); // darkseagreen2
pub const NODE_FILL: Rgb = Rgb(0xad, 0xd8, 0xe6); // lightblue
pub const OUTPUT_FILL: Rgb = Rgb(0xee, 0xe8, 0xaa); // palegoldenrod

const FONT_PX: f64 = 14.0;
const SUB_PX: f64 = 10.0;
const LABEL_PX: f64 = 13.0;
const NODE_H: f64 = 34.0;
const LABEL_H: f64 = 20.0;
const DUMMY_H: f64 = 4.0;
const GAP: f64 = 10.0;
const RANK_GAP: f64 = 26.0;
const MARGIN: f64 = 16.0;
const TITLE_H: f64 = 30.0;
const ARROW: f64 = 9.0;
/// Cell PNGs are drawn at twice the SVG's size: they are small and mostly text.
pub const PNG_SCALE: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Input,
    Node,
    Output,
}

/// A state's box, `x`/`y` its top-left corner.
#[derive(Debug, Clone, PartialEq)]
pub struct StateBox {
    /// The original's Graphviz name: `c_{k-2}`, `c_{k-1}`, `0`..`3`, `c_{k}`.
    pub name: String,
    pub kind: StateKind,
    /// Label as text and subscript (`c`, `k-2`).
    pub text: (String, Option<String>),
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// An edge: the waypoints it passes through (the first at the source, the last at the tip of the
/// arrow), and its op label's box.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgePath {
    pub from: usize,
    pub to: usize,
    pub op: Option<String>,
    pub points: Vec<(f64, f64)>,
    /// `(x, y, w, h)` of the label box.
    pub label: Option<(f64, f64, f64, f64)>,
}

/// A laid-out cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellDiagram {
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub states: Vec<StateBox>,
    pub edges: Vec<EdgePath>,
}

/// State names as the original's Graphviz figure has them.
fn state_name(s: usize, n_nodes: usize) -> String {
    match s {
        0 => "c_{k-2}".into(),
        1 => "c_{k-1}".into(),
        s if s < n_nodes + 2 => (s - 2).to_string(),
        _ => "c_{k}".into(),
    }
}

fn state_text(s: usize, n_nodes: usize) -> (String, Option<String>) {
    match s {
        0 => ("c".into(), Some("k-2".into())),
        1 => ("c".into(), Some("k-1".into())),
        s if s < n_nodes + 2 => ((s - 2).to_string(), None),
        _ => ("c".into(), Some("k".into())),
    }
}

/// Text width in px of DejaVu Sans at `px` (em size).
fn text_width(text: &str, px: f64) -> f64 {
    plots::ensure_fonts();
    ("sans-serif", px * plots::PX_TO_PLOTTERS).into_font().box_size(text).map(|(w, _)| f64::from(w)).unwrap_or(
        // Without the font (never: it is embedded), a wide estimate.
        text.chars().count() as f64 * px * 0.65,
    )
}

#[derive(Debug, Clone, Copy)]
enum Item {
    State(usize),
    /// A slot of edge `edge` in a rank it passes (its label when it has one and this is its last).
    Slot {
        edge: usize,
        label: bool,
    },
}

/// Checks that every edge reads an earlier state.
pub fn check_cell(nodes: &[Vec<Edge>], concat: &Concat) -> Result<(), ReportError> {
    for (i, edges) in nodes.iter().enumerate() {
        if let Some((op, j)) = edges.iter().find(|(_, j)| *j >= i + 2) {
            return Err(ReportError::InvalidGenotype(format!(
                "node {i} reads state {j} ({op}), which is not computed before it (states 0..{})",
                i + 1
            )));
        }
    }
    if let Some(c) = concat.indices().into_iter().find(|&c| c >= nodes.len() + 2) {
        return Err(ReportError::InvalidGenotype(format!(
            "the concat lists state {c}, but the cell has only states 0..{}",
            nodes.len() + 1
        )));
    }
    Ok(())
}

/// Lays out one cell (`reduction` picks which) of `g`.
pub fn layout_genotype(g: &Genotype, reduction: bool) -> Result<CellDiagram, ReportError> {
    let (nodes, concat) = g.cell(reduction);
    layout(nodes, concat, if reduction { "reduction cell" } else { "normal cell" })
}

/// Lays out a cell given as per-node edges and the concat.
pub fn layout(nodes: &[Vec<Edge>], concat: &Concat, title: &str) -> Result<CellDiagram, ReportError> {
    check_cell(nodes, concat)?;
    let n = nodes.len();
    let out = n + 2;
    let n_states = n + 3;

    // Layers: inputs 0, a node one past its deepest input, the output past every node.
    let mut layer = vec![0usize; n_states];
    for (i, edges) in nodes.iter().enumerate() {
        layer[i + 2] = 1 + edges.iter().map(|&(_, j)| layer[j]).max().unwrap_or(0);
    }
    layer[out] = 1 + layer[..out].iter().copied().max().unwrap_or(0);

    // Edges: the genotype's, then state -> output for the concat.
    let mut edges: Vec<(usize, usize, Option<String>)> = Vec::new();
    for (i, es) in nodes.iter().enumerate() {
        for (op, j) in es {
            edges.push((*j, i + 2, Some(op.name().to_string())));
        }
    }
    for c in concat.indices() {
        edges.push((c, out, None));
    }

    // Ranks: layer l at rank 2l; slots for every rank an edge skips.
    let n_ranks = 2 * layer[out] + 1;
    let mut ranks: Vec<Vec<Item>> = vec![Vec::new(); n_ranks];
    for (s, &l) in layer.iter().enumerate() {
        ranks[2 * l].push(Item::State(s));
    }
    // chains[e]: the ranks edge `e` passes through, source to target (its item in each rank is
    // looked up by `item_of`).
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for (e, (from, to, op)) in edges.iter().enumerate() {
        let (r0, r1) = (2 * layer[*from], 2 * layer[*to]);
        for (r, items) in ranks.iter_mut().enumerate().take(r1).skip(r0 + 1) {
            items.push(Item::Slot { edge: e, label: op.is_some() && r == r1 - 1 });
        }
        chains.push((r0..=r1).collect());
    }

    // Sizes.
    let label_w: Vec<f64> =
        edges.iter().map(|(_, _, op)| op.as_deref().map(|o| text_width(o, LABEL_PX) + 10.0).unwrap_or(0.0)).collect();
    let state_w: Vec<f64> = (0..n_states)
        .map(|s| {
            let (t, sub) = state_text(s, n);
            let w = text_width(&t, FONT_PX) + sub.map(|s| text_width(&s, SUB_PX) + 1.0).unwrap_or(0.0);
            (w + 22.0).max(NODE_H)
        })
        .collect();
    let size = |it: &Item| -> (f64, f64) {
        match *it {
            Item::State(s) => (state_w[s], NODE_H),
            Item::Slot { edge, label: true } => (label_w[edge], LABEL_H),
            Item::Slot { .. } => (0.0, DUMMY_H),
        }
    };

    // Position of each item: index in its rank.
    let find = |ranks: &Vec<Vec<Item>>, r: usize, want: &dyn Fn(&Item) -> bool| -> usize {
        ranks[r].iter().position(want).expect("item in its rank")
    };
    let item_of = |e: usize, r: usize| -> Box<dyn Fn(&Item) -> bool> {
        let (from, to, _) = &edges[e];
        let r0 = 2 * layer[*from];
        let r1 = 2 * layer[*to];
        let (from, to) = (*from, *to);
        if r == r0 {
            Box::new(move |it: &Item| matches!(it, Item::State(s) if *s == from))
        } else if r == r1 {
            Box::new(move |it: &Item| matches!(it, Item::State(s) if *s == to))
        } else {
            Box::new(move |it: &Item| matches!(it, Item::Slot { edge, .. } if *edge == e))
        }
    };

    // Neighbours of each item in the ranks on either side, as (edge, rank of neighbour).
    // Computed once as a list of links between (rank, predicate) pairs.
    let links: Vec<(usize, usize, usize)> =
        chains.iter().enumerate().flat_map(|(e, ranks)| ranks.windows(2).map(move |w| (e, w[0], w[1]))).collect();

    // Crossing reduction: barycentre sweeps, rank 0 kept in order (c_{k-2} above c_{k-1}).
    for sweep in 0..6 {
        let down = sweep % 2 == 0;
        let order: Vec<usize> =
            if down { (1..n_ranks).collect() } else { (1..n_ranks.saturating_sub(1)).rev().collect() };
        for r in order {
            let nr = if down { r - 1 } else { r + 1 };
            let mut keys: Vec<(f64, usize)> = Vec::new();
            for (i, it) in ranks[r].iter().enumerate() {
                let mut sum = 0.0;
                let mut cnt = 0.0;
                for &(e, a, b) in &links {
                    let (mine, other) = if down { (b, a) } else { (a, b) };
                    if mine != r || other != nr {
                        continue;
                    }
                    if !(item_of(e, r))(it) {
                        continue;
                    }
                    sum += find(&ranks, nr, &*item_of(e, nr)) as f64;
                    cnt += 1.0;
                }
                keys.push((if cnt > 0.0 { sum / cnt } else { i as f64 }, i));
            }
            keys.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let old = ranks[r].clone();
            ranks[r] = keys.iter().map(|&(_, i)| old[i]).collect();
        }
    }

    // Vertical placement: start stacked, then pull each item towards its neighbours.
    let mut ys: Vec<Vec<f64>> = ranks
        .iter()
        .map(|items| {
            let mut y = 0.0;
            let mut out = Vec::new();
            for (k, it) in items.iter().enumerate() {
                if k > 0 {
                    y += sep(size(&items[k - 1]).1, size(it).1);
                }
                out.push(y);
            }
            out
        })
        .collect();
    // Neighbour pairs: ((rank, index), (rank, index)).
    let pairs: Vec<((usize, usize), (usize, usize))> = links
        .iter()
        .map(|&(e, a, b)| ((a, find(&ranks, a, &*item_of(e, a))), (b, find(&ranks, b, &*item_of(e, b)))))
        .collect();
    for it in 0..40 {
        let order: Vec<usize> = if it % 2 == 0 { (0..n_ranks).collect() } else { (0..n_ranks).rev().collect() };
        for r in order {
            let mut sum = vec![0.0; ranks[r].len()];
            let mut cnt = vec![0.0; ranks[r].len()];
            for &((ra, ia), (rb, ib)) in &pairs {
                if ra == r {
                    sum[ia] += ys[rb][ib];
                    cnt[ia] += 1.0;
                }
                if rb == r {
                    sum[ib] += ys[ra][ia];
                    cnt[ib] += 1.0;
                }
            }
            let desired: Vec<f64> =
                (0..ranks[r].len()).map(|i| if cnt[i] > 0.0 { sum[i] / cnt[i] } else { ys[r][i] }).collect();
            let seps: Vec<f64> =
                (1..ranks[r].len()).map(|i| sep(size(&ranks[r][i - 1]).1, size(&ranks[r][i]).1)).collect();
            ys[r] = place_in_order(&desired, &seps);
        }
    }

    // Horizontal placement: rank columns as wide as their widest item.
    let col_w: Vec<f64> = ranks.iter().map(|items| items.iter().map(|it| size(it).0).fold(0.0, f64::max)).collect();
    let mut col_x = Vec::with_capacity(n_ranks);
    let mut x = MARGIN;
    for (r, w) in col_w.iter().enumerate() {
        col_x.push(x);
        x += w + if r + 1 < n_ranks { RANK_GAP } else { 0.0 };
    }
    let width = x + MARGIN;
    let top = ys.iter().zip(&ranks).flat_map(|(y, items)| y.iter().zip(items).map(|(y, it)| y - size(it).1 / 2.0));
    let top = top.fold(f64::INFINITY, f64::min);
    let bottom = ys.iter().zip(&ranks).flat_map(|(y, items)| y.iter().zip(items).map(|(y, it)| y + size(it).1 / 2.0));
    let bottom = bottom.fold(f64::NEG_INFINITY, f64::max);
    let dy = MARGIN + TITLE_H - top;
    let height = bottom + dy + MARGIN;
    let centre = |r: usize, i: usize| -> (f64, f64) { (col_x[r] + col_w[r] / 2.0, ys[r][i] + dy) };

    let mut states: Vec<StateBox> = Vec::new();
    let mut state_pos = vec![(0usize, 0usize); n_states];
    for (r, items) in ranks.iter().enumerate() {
        for (i, it) in items.iter().enumerate() {
            if let Item::State(s) = *it {
                state_pos[s] = (r, i);
            }
        }
    }
    for s in 0..n_states {
        let (r, i) = state_pos[s];
        let (cx, cy) = centre(r, i);
        let w = state_w[s];
        states.push(StateBox {
            name: state_name(s, n),
            kind: match s {
                0 | 1 => StateKind::Input,
                s if s == out => StateKind::Output,
                _ => StateKind::Node,
            },
            text: state_text(s, n),
            x: cx - w / 2.0,
            y: cy - NODE_H / 2.0,
            w,
            h: NODE_H,
        });
    }

    // Ports: edges leave a state's right side and enter its left side spread over its height,
    // in the order of where they go to (or come from), so they don't cross at the state.
    let next_y = |e: usize, first: bool| -> f64 {
        let ch = &chains[e];
        let r = if first { ch[1] } else { ch[ch.len() - 2] };
        let i = find(&ranks, r, &*item_of(e, r));
        ys[r][i]
    };
    let mut out_port = vec![0.0; edges.len()];
    let mut in_port = vec![0.0; edges.len()];
    for s in 0..n_states {
        for (outgoing, ports) in [(true, &mut out_port), (false, &mut in_port)] {
            let mut es: Vec<usize> =
                (0..edges.len()).filter(|&e| if outgoing { edges[e].0 == s } else { edges[e].1 == s }).collect();
            es.sort_by(|&a, &b| next_y(a, outgoing).total_cmp(&next_y(b, outgoing)).then(a.cmp(&b)));
            let k = es.len();
            let step = if k > 1 { ((NODE_H - 12.0) / (k - 1) as f64).min(7.0) } else { 0.0 };
            for (j, &e) in es.iter().enumerate() {
                ports[e] = (j as f64 - (k as f64 - 1.0) / 2.0) * step;
            }
        }
    }

    let mut paths = Vec::new();
    for (e, (from, to, op)) in edges.iter().enumerate() {
        let a = &states[*from];
        let b = &states[*to];
        let mut points = vec![(a.x + a.w, a.y + a.h / 2.0 + out_port[e])];
        let mut label = None;
        let ch = &chains[e];
        for &r in &ch[1..ch.len() - 1] {
            let i = find(&ranks, r, &*item_of(e, r));
            let (cx, cy) = centre(r, i);
            match ranks[r][i] {
                Item::Slot { label: true, .. } => {
                    let w = label_w[e];
                    points.push((cx - w / 2.0, cy));
                    points.push((cx + w / 2.0, cy));
                    label = Some((cx - w / 2.0, cy - LABEL_H / 2.0, w, LABEL_H));
                }
                _ => {
                    points.push((col_x[r], cy));
                    points.push((col_x[r] + col_w[r], cy));
                }
            }
        }
        points.push((b.x - ARROW, b.y + b.h / 2.0 + in_port[e]));
        paths.push(EdgePath { from: *from, to: *to, op: op.clone(), points, label });
    }
    Ok(CellDiagram { title: title.to_string(), width: width.ceil(), height: height.ceil(), states, edges: paths })
}

/// Minimum distance between the centres of two stacked items.
fn sep(h_a: f64, h_b: f64) -> f64 {
    (h_a + h_b) / 2.0 + GAP
}

/// The positions closest (least squares) to `desired` that keep the order and at least `seps[i]`
/// between item `i` and `i + 1`: isotonic regression by pooling adjacent violators.
fn place_in_order(desired: &[f64], seps: &[f64]) -> Vec<f64> {
    let n = desired.len();
    let mut offset = vec![0.0; n];
    for i in 1..n {
        offset[i] = offset[i - 1] + seps[i - 1];
    }
    // Blocks of (sum, count); z_i = y_i - offset_i must be non-decreasing.
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for i in 0..n {
        blocks.push((desired[i] - offset[i], 1.0, 1));
        while blocks.len() > 1 {
            let (s1, c1, n1) = blocks[blocks.len() - 1];
            let (s0, c0, n0) = blocks[blocks.len() - 2];
            if s0 / c0 <= s1 / c1 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().expect("two blocks") = (s0 + s1, c0 + c1, n0 + n1);
        }
    }
    let mut out = Vec::with_capacity(n);
    for (s, c, k) in blocks {
        for _ in 0..k {
            out.push(s / c + offset[out.len()]);
        }
    }
    out
}

/// Cubic Bézier control points between two waypoints, tangents horizontal at both.
fn bezier(p: (f64, f64), q: (f64, f64)) -> [(f64, f64); 3] {
    let dx = (q.0 - p.0) / 2.0;
    [(p.0 + dx, p.1), (q.0 - dx, q.1), q]
}

fn f(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() { format!("{}", r as i64) } else { format!("{r:.1}") }
}

impl CellDiagram {
    /// The edges with an op (the genotype's entries).
    pub fn op_edges(&self) -> impl Iterator<Item = &EdgePath> {
        self.edges.iter().filter(|e| e.op.is_some())
    }

    /// SVG text: `<g class="node">` per state (with `data-state` and a tooltip), `<g
    /// class="edge">` per edge (`data-from`, `data-to`, `data-op`), labels on top of the edges.
    pub fn to_svg(&self) -> String {
        let mut s = String::with_capacity(8192);
        s.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\">\n<title>{t}</title>\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n\
             <text x=\"{m}\" y=\"{ty}\" font-size=\"15\" font-weight=\"bold\" fill=\"#222222\">{t}</text>\n",
            w = f(self.width),
            h = f(self.height),
            t = esc(&self.title),
            m = f(MARGIN),
            ty = f(MARGIN + 12.0),
        ));
        s.push_str("<g class=\"edges\" fill=\"none\">\n");
        for e in &self.edges {
            let from = &self.states[e.from].name;
            let to = &self.states[e.to].name;
            let colour = e.op.as_deref().map(edge_colour).unwrap_or(Rgb(0x9a, 0x9a, 0x9a));
            let mut d = format!("M{},{}", f(e.points[0].0), f(e.points[0].1));
            for w in e.points.windows(2) {
                let [c1, c2, q] = bezier(w[0], w[1]);
                d.push_str(&format!(" C{},{} {},{} {},{}", f(c1.0), f(c1.1), f(c2.0), f(c2.1), f(q.0), f(q.1)));
            }
            let tip = *e.points.last().expect("an edge has points");
            let op_attr = e.op.as_deref().map(|o| format!(" data-op=\"{}\"", esc(o))).unwrap_or_default();
            let tooltip = match &e.op {
                Some(op) => format!("{from} → {to}: {op}"),
                None => format!("{from} → {to}"),
            };
            s.push_str(&format!(
                "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\"{op_attr}><title>{}</title>\
                 <path d=\"{d}\" stroke=\"{c}\" stroke-width=\"1.8\"/>\
                 <path d=\"M{},{} L{},{} L{},{} Z\" fill=\"{c}\"/></g>\n",
                esc(from),
                esc(to),
                esc(&tooltip),
                f(tip.0),
                f(tip.1 - ARROW / 2.0),
                f(tip.0 + ARROW),
                f(tip.1),
                f(tip.0),
                f(tip.1 + ARROW / 2.0),
                c = colour.hex(),
            ));
        }
        s.push_str("</g>\n<g class=\"edge-labels\">\n");
        for e in &self.edges {
            if let (Some(op), Some((x, y, w, h))) = (&e.op, e.label) {
                s.push_str(&format!(
                    "<g class=\"edge-label\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" \
                     fill=\"#ffffff\" fill-opacity=\"0.92\"/><text x=\"{}\" y=\"{}\" font-size=\"{}\" \
                     text-anchor=\"middle\" fill=\"#111111\">{}</text></g>\n",
                    f(x),
                    f(y),
                    f(w),
                    f(h),
                    f(x + w / 2.0),
                    f(y + h / 2.0 + LABEL_PX * 0.36),
                    f(LABEL_PX),
                    esc(op)
                ));
            }
        }
        s.push_str("</g>\n<g class=\"nodes\">\n");
        for (i, b) in self.states.iter().enumerate() {
            let fill = match b.kind {
                StateKind::Input => INPUT_FILL,
                StateKind::Node => NODE_FILL,
                StateKind::Output => OUTPUT_FILL,
            };
            let sub = b
                .text
                .1
                .as_deref()
                .map(|t| format!("<tspan dy=\"4\" font-size=\"{}\">{}</tspan>", f(SUB_PX), esc(t)))
                .unwrap_or_default();
            s.push_str(&format!(
                "<g class=\"node\" data-state=\"{i}\" data-name=\"{name}\"><title>{name}</title>\
                 <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"7\" fill=\"{}\" stroke=\"#333333\" \
                 stroke-width=\"1.6\"/><text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\" \
                 fill=\"#111111\">{}{sub}</text></g>\n",
                f(b.x),
                f(b.y),
                f(b.w),
                f(b.h),
                fill.hex(),
                f(b.x + b.w / 2.0),
                f(b.y + b.h / 2.0 + FONT_PX * 0.36 - if sub.is_empty() { 0.0 } else { 1.5 }),
                f(FONT_PX),
                esc(&b.text.0),
                name = esc(&b.name),
            ));
        }
        s.push_str("</g>\n</svg>\n");
        s
    }

    /// Graphviz DOT text, like the original's `visualize.plot()` (`dot -Tpng cell.dot`).
    pub fn to_dot(&self) -> String {
        let mut s = String::from(
            "digraph cell {\n  rankdir=LR;\n  edge [fontsize=20, fontname=\"times\"];\n  \
             node [style=filled, shape=rect, align=center, fontsize=20, height=0.5, width=0.5, penwidth=2, \
             fontname=\"times\"];\n",
        );
        for b in &self.states {
            let fill = match b.kind {
                StateKind::Input => "darkseagreen2",
                StateKind::Node => "lightblue",
                StateKind::Output => "palegoldenrod",
            };
            s.push_str(&format!("  \"{}\" [fillcolor={fill}];\n", b.name));
        }
        for e in &self.edges {
            let (a, b) = (&self.states[e.from].name, &self.states[e.to].name);
            match &e.op {
                Some(op) => s.push_str(&format!("  \"{a}\" -> \"{b}\" [label=\"{op}\", fillcolor=gray];\n")),
                None => s.push_str(&format!("  \"{a}\" -> \"{b}\" [fillcolor=gray];\n")),
            }
        }
        s.push_str("}\n");
        s
    }

    /// Draws the diagram with plotters (for PNG), every length times `k`.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, k: f64) -> Result<(), plots::DrawError>
    where
        DB::ErrorType: 'static,
    {
        let p = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        root.fill(&WHITE)?;
        let title = FontDesc::new(FontFamily::SansSerif, 15.0 * k * plots::PX_TO_PLOTTERS, FontStyle::Bold)
            .color(&RGBColor(0x22, 0x22, 0x22));
        root.draw(&Text::new(
            self.title.clone(),
            p(MARGIN, MARGIN + 12.0),
            title.pos(Pos::new(HPos::Left, VPos::Bottom)),
        ))?;
        for e in &self.edges {
            let colour = e.op.as_deref().map(edge_colour).unwrap_or(Rgb(0x9a, 0x9a, 0x9a)).rgb();
            let mut pts = vec![p(e.points[0].0, e.points[0].1)];
            for w in e.points.windows(2) {
                let [c1, c2, q] = bezier(w[0], w[1]);
                let p0 = w[0];
                let steps = (((q.0 - p0.0).abs() + (q.1 - p0.1).abs()) / 4.0).ceil().max(1.0) as usize;
                for i in 1..=steps {
                    let t = i as f64 / steps as f64;
                    let u = 1.0 - t;
                    let x = u * u * u * p0.0 + 3.0 * u * u * t * c1.0 + 3.0 * u * t * t * c2.0 + t * t * t * q.0;
                    let y = u * u * u * p0.1 + 3.0 * u * u * t * c1.1 + 3.0 * u * t * t * c2.1 + t * t * t * q.1;
                    pts.push(p(x, y));
                }
            }
            root.draw(&PathElement::new(pts, colour.stroke_width((1.8 * k).round() as u32)))?;
            let tip = *e.points.last().expect("an edge has points");
            root.draw(&Polygon::new(
                vec![p(tip.0, tip.1 - ARROW / 2.0), p(tip.0 + ARROW, tip.1), p(tip.0, tip.1 + ARROW / 2.0)],
                colour.filled(),
            ))?;
        }
        let label_font =
            ("sans-serif", LABEL_PX * k * plots::PX_TO_PLOTTERS).into_font().color(&RGBColor(0x11, 0x11, 0x11));
        for e in &self.edges {
            if let (Some(op), Some((x, y, w, h))) = (&e.op, e.label) {
                root.draw(&Polygon::new(rounded_rect(x, y, w, h, 3.0, k), RGBAColor(255, 255, 255, 0.92).filled()))?;
                root.draw(&Text::new(
                    op.clone(),
                    p(x + w / 2.0, y + h / 2.0),
                    label_font.clone().pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
            }
        }
        let font = ("sans-serif", FONT_PX * k * plots::PX_TO_PLOTTERS).into_font().color(&RGBColor(0x11, 0x11, 0x11));
        let sub_font =
            ("sans-serif", SUB_PX * k * plots::PX_TO_PLOTTERS).into_font().color(&RGBColor(0x11, 0x11, 0x11));
        for b in &self.states {
            let fill = match b.kind {
                StateKind::Input => INPUT_FILL,
                StateKind::Node => NODE_FILL,
                StateKind::Output => OUTPUT_FILL,
            };
            // The border: the box in the border colour, the inside filled over it.
            let (t, h) = (1.6, 0.8);
            let outer = rounded_rect(b.x - h, b.y - h, b.w + t, b.h + t, 7.0 + h, k);
            root.draw(&Polygon::new(outer, RGBColor(0x33, 0x33, 0x33).filled()))?;
            let inner = rounded_rect(b.x + h, b.y + h, b.w - t, b.h - t, 7.0 - h, k);
            root.draw(&Polygon::new(inner, fill.rgb().filled()))?;
            let (cx, cy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
            match &b.text.1 {
                None => root.draw(&Text::new(
                    b.text.0.clone(),
                    p(cx, cy),
                    font.clone().pos(Pos::new(HPos::Center, VPos::Center)),
                ))?,
                Some(sub) => {
                    let wm = text_width(&b.text.0, FONT_PX);
                    let ws = text_width(sub, SUB_PX) + 1.0;
                    let x0 = cx - (wm + ws) / 2.0;
                    root.draw(&Text::new(
                        b.text.0.clone(),
                        p(x0, cy - 1.5),
                        font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                    ))?;
                    root.draw(&Text::new(
                        sub.clone(),
                        p(x0 + wm + 1.0, cy + 4.0),
                        sub_font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                    ))?;
                }
            }
        }
        Ok(())
    }
}

/// The colour of an edge with op `op`: the op's plot colour, darkened for contrast on white.
fn edge_colour(op: &str) -> Rgb {
    op_colour(op).darken(0.15)
}

fn rounded_rect(x: f64, y: f64, w: f64, h: f64, r: f64, k: f64) -> Vec<(i32, i32)> {
    let mut pts = Vec::new();
    let corners =
        [(x + w - r, y + r, -90.0), (x + w - r, y + h - r, 0.0), (x + r, y + h - r, 90.0), (x + r, y + r, 180.0)];
    for (cx, cy, a0) in corners {
        for i in 0..=6 {
            let a = (a0 + 15.0 * i as f64).to_radians();
            pts.push((((cx + r * a.cos()) * k).round() as i32, ((cy + r * a.sin()) * k).round() as i32));
        }
    }
    pts
}

/// The files [`write_cell_files`] writes for a cell: `STEM.svg`, `STEM.png`, `STEM.dot`.
pub fn write_cell_files(
    diagram: &CellDiagram,
    dir: &std::path::Path,
    stem: &str,
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let svg = dir.join(format!("{stem}.svg"));
    crate::write_atomic(&svg, diagram.to_svg().as_bytes())?;
    let dot = dir.join(format!("{stem}.dot"));
    crate::write_atomic(&dot, diagram.to_dot().as_bytes())?;
    let png = dir.join(format!("{stem}.png"));
    let (w, h) = (diagram.width.ceil() as u32, diagram.height.ceil() as u32);
    let bytes = plots::render_png(w, h, PNG_SCALE, |root, k| diagram.draw(root, k))?;
    crate::write_atomic(&png, &bytes)?;
    Ok(vec![svg, png, dot])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_keeps_order_and_spacing_and_is_least_squares() {
        assert_eq!(place_in_order(&[0.0, 0.0], &[10.0]), vec![-5.0, 5.0]);
        assert_eq!(place_in_order(&[0.0, 100.0], &[10.0]), vec![0.0, 100.0]);
        assert_eq!(place_in_order(&[5.0, 0.0, 50.0], &[10.0, 10.0]), vec![-2.5, 7.5, 50.0]);
    }
}
