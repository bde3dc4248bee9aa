//! What one image costs through a network, counted on the built modules by following the
//! feature-map shapes: multiply-adds ("FLOPs" in NAS tables) and per-element operations.
//!
//! - `macs`: a convolution costs `C_out * H_out * W_out * (C_in / groups) * kh * kw`, a linear
//!   layer `in * out`. The strict multiply-add count (DARTS V2 at 224x224: 529.9M).
//! - `elementwise`: what the ptflops counter (`flops-counter.pytorch`) adds to that, one per
//!   element: BatchNorm inputs (two per element when affine), ReLU inputs, pooling inputs,
//!   linear biases. `macs + elementwise` is the convention behind the numbers P-DARTS (557M)
//!   and PC-DARTS (586M) report for their cells on ImageNet, reproduced to the million (and
//!   DARTS V2's 544.9M, where the DARTS paper says 574M: no known convention gives that one,
//!   see quark0/darts#46).
//!
//! Neither counts the sums of a cell's nodes, concatenation, drop path or a search edge's
//! mixing. The auxiliary head only runs in training and is counted apart. A search network is
//! counted with every op of every edge evaluated (DropNAS skips the ops it drops, so a step
//! costs less).
//!
//! The walk also checks the shapes: a feature map that a FactorizedReduce cannot halve, or two
//! edges of one node that disagree, is an error instead of a panic deep inside a forward pass.

use crate::augment_cell::AugmentCell;
use crate::augment_network::AugmentNetwork;
use crate::augment_network_imagenet::ImagenetStem;
use crate::aux_head::AuxHead;
use crate::batch_norm::BatchNorm2d;
use crate::conv::Conv2d;
use crate::mixed_op::MixedOp;
use crate::ops::{DilConv, FacConv, FactorizedReduce, Op, PoolBn, SepConv, StdConv};
use crate::search_cell::{Preproc, SearchCell};
use crate::search_network::{SearchNetwork, Stem};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign};

/// Channels, height and width of one image's feature map.
pub type Shape = [usize; 3];

/// Operations of one image through some part of a network (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-adds of convolutions and linear layers.
    pub macs: u64,
    /// BatchNorm (two per element when affine), ReLU, pooling and bias operations, one per
    /// element, as ptflops counts them.
    pub elementwise: u64,
}

impl Cost {
    fn macs(n: usize) -> Self {
        Cost { macs: n as u64, elementwise: 0 }
    }

    fn elementwise(n: usize) -> Self {
        Cost { macs: 0, elementwise: n as u64 }
    }

    /// `macs + elementwise`: the ptflops convention.
    pub fn ptflops(&self) -> u64 {
        self.macs + self.elementwise
    }
}

impl Add for Cost {
    type Output = Cost;

    fn add(self, o: Cost) -> Cost {
        Cost { macs: self.macs + o.macs, elementwise: self.elementwise + o.elementwise }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

/// What one image costs through an augment network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCost {
    /// Stems, cells and classifier: the network as it is tested (what papers report).
    pub network: Cost,
    /// The auxiliary head, which runs only in training (zero without one).
    pub aux_head: Cost,
}

type Walk = Result<(Shape, Cost), String>;

fn numel(s: Shape) -> usize {
    s.iter().product()
}

fn out_side(side: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Result<usize, String> {
    let reach = dilation * (kernel - 1) + 1;
    if side + 2 * padding < reach {
        return Err(format!("a {kernel}x{kernel} window does not fit a side of {side} (padding {padding})"));
    }
    Ok((side + 2 * padding - reach) / stride + 1)
}

fn conv<B: Backend>(c: &Conv2d<B>, [ch, h, w]: Shape) -> Walk {
    let [c_out, c_in_g, kh, kw] = c.weight.dims();
    if c_in_g * c.groups != ch {
        return Err(format!("a convolution expects {} input channels, the feature map has {ch}", c_in_g * c.groups));
    }
    let ho = out_side(h, kh, c.stride[0], c.padding[0], c.dilation[0])?;
    let wo = out_side(w, kw, c.stride[1], c.padding[1], c.dilation[1])?;
    Ok(([c_out, ho, wo], Cost::macs(c_out * ho * wo * c_in_g * kh * kw)))
}

fn batch_norm<B: Backend>(bn: &BatchNorm2d<B>, x: Shape) -> Cost {
    Cost::elementwise(numel(x) * if bn.weight.is_some() { 2 } else { 1 })
}

fn relu(x: Shape) -> Cost {
    Cost::elementwise(numel(x))
}

fn linear<B: Backend>(l: &Linear<B>, features: usize) -> Result<Cost, String> {
    let [d_in, d_out] = l.weight.dims();
    if d_in != features {
        return Err(format!("the classifier expects {d_in} features, the pooled feature map has {features}"));
    }
    Ok(Cost::macs(d_in * d_out) + Cost::elementwise(if l.bias.is_some() { d_out } else { 0 }))
}

/// ReLU of the input, convolution(s), BN of the output: the shape of every DARTS conv op.
fn relu_convs_bn<B: Backend>(convs: &[&Conv2d<B>], bn: &BatchNorm2d<B>, x: Shape) -> Walk {
    let (mut s, mut cost) = (x, relu(x));
    for c in convs {
        let (next, m) = conv(c, s)?;
        (s, cost) = (next, cost + m);
    }
    Ok((s, cost + batch_norm(bn, s)))
}

fn std_conv<B: Backend>(m: &StdConv<B>, x: Shape) -> Walk {
    relu_convs_bn(&[&m.conv], &m.bn, x)
}

fn factorized_reduce<B: Backend>(m: &FactorizedReduce<B>, x: Shape) -> Walk {
    let [c, h, w] = x;
    if !h.is_multiple_of(2) || !w.is_multiple_of(2) {
        return Err(format!(
            "FactorizedReduce (a stride-2 skip_connect, or the input of a cell after a reduction cell) needs an even \
             side, got {h}x{w}"
        ));
    }
    let (a, ma) = conv(&m.conv1, x)?;
    let (b, mb) = conv(&m.conv2, [c, h - 1, w - 1])?;
    let out = [a[0] + b[0], a[1], a[2]];
    Ok((out, relu(x) + ma + mb + batch_norm(&m.bn, out)))
}

fn dil_conv<B: Backend>(m: &DilConv<B>, x: Shape) -> Walk {
    relu_convs_bn(&[&m.depthwise, &m.pointwise], &m.bn, x)
}

fn sep_conv<B: Backend>(m: &SepConv<B>, x: Shape) -> Walk {
    let (y, a) = dil_conv(&m.first, x)?;
    let (z, b) = dil_conv(&m.second, y)?;
    Ok((z, a + b))
}

fn fac_conv<B: Backend>(m: &FacConv<B>, x: Shape) -> Walk {
    relu_convs_bn(&[&m.conv_1x7, &m.conv_7x1], &m.bn, x)
}

fn pool_bn<B: Backend>(p: &PoolBn<B>, x: Shape) -> Walk {
    let [c, h, w] = x;
    let out = [c, out_side(h, 3, p.stride, 1, 1)?, out_side(w, 3, p.stride, 1, 1)?];
    Ok((out, Cost::elementwise(numel(x)) + batch_norm(&p.bn, out)))
}

/// One candidate operation (identity and `none` cost nothing).
pub fn op_cost<B: Backend>(op: &Op<B>, x: Shape) -> Walk {
    let [c, h, w] = x;
    match op {
        Op::Zero(z) => Ok(([c, h.div_ceil(z.stride), w.div_ceil(z.stride)], Cost::default())),
        Op::Identity(_) => Ok((x, Cost::default())),
        Op::AvgPool(p) | Op::MaxPool(p) => pool_bn(p, x),
        Op::FactorizedReduce(m) => factorized_reduce(m, x),
        Op::SepConv(m) => sep_conv(m, x),
        Op::DilConv(m) => dil_conv(m, x),
        Op::FacConv(m) => fac_conv(m, x),
    }
}

fn preproc<B: Backend>(p: &Preproc<B>, x: Shape) -> Walk {
    match p {
        Preproc::Std(m) => std_conv(m, x),
        Preproc::Reduce(m) => factorized_reduce(m, x),
    }
}

fn same(what: &str, a: Shape, b: Shape) -> Result<Shape, String> {
    if a == b { Ok(a) } else { Err(format!("{what}: feature maps {a:?} and {b:?} do not match")) }
}

fn cell_inputs<B: Backend>(
    p0: &Preproc<B>,
    p1: &StdConv<B>,
    s0: Shape,
    s1: Shape,
) -> Result<(Vec<Shape>, Cost), String> {
    let (a, ca) = preproc(p0, s0)?;
    let (b, cb) = std_conv(p1, s1)?;
    same("the two preprocessed cell inputs", a, b)?;
    Ok((vec![a, b], ca + cb))
}

fn concat(states: &[Shape], indices: &[usize]) -> Shape {
    let [_, h, w] = states[indices[0]];
    [indices.iter().map(|&i| states[i][0]).sum(), h, w]
}

/// Sums the edges of one node, which must agree in shape.
fn node(edges: impl Iterator<Item = Walk>) -> Walk {
    let mut out: Option<(Shape, Cost)> = None;
    for edge in edges {
        let (y, c) = edge?;
        out = Some(match out {
            Some((acc, total)) => (same("two edges of a node", acc, y)?, total + c),
            None => (y, c),
        });
    }
    out.ok_or_else(|| "a node without edges".to_string())
}

fn augment_cell<B: Backend>(cell: &AugmentCell<B>, s0: Shape, s1: Shape) -> Walk {
    let (mut states, mut total) = cell_inputs(&cell.preproc0, &cell.preproc1, s0, s1)?;
    for edges in &cell.dag {
        let (y, c) = node(edges.iter().map(|e| op_cost(&e.op, states[e.input])))?;
        states.push(y);
        total += c;
    }
    Ok((concat(&states, &cell.concat), total))
}

fn mixed_op<B: Backend>(m: &MixedOp<B>, x: Shape) -> Walk {
    node(m.ops.iter().map(|op| op_cost(op, x))).map_err(|e| format!("a mixed op: {e}"))
}

fn search_cell<B: Backend>(cell: &SearchCell<B>, s0: Shape, s1: Shape) -> Walk {
    let (mut states, mut total) = cell_inputs(&cell.preproc0, &cell.preproc1, s0, s1)?;
    for edges in &cell.dag {
        let (y, c) = node(edges.iter().enumerate().map(|(j, e)| mixed_op(e, states[j])))?;
        states.push(y);
        total += c;
    }
    let nodes: Vec<usize> = (2..states.len()).collect();
    Ok((concat(&states, &nodes), total))
}

fn stem<B: Backend>(s: &Stem<B>, x: Shape) -> Walk {
    let (y, c) = conv(&s.conv, x)?;
    Ok((y, c + batch_norm(&s.bn, y) + if s.relu { relu(x) } else { Cost::default() }))
}

fn imagenet_stem<B: Backend>(s: &ImagenetStem<B>, x: Shape) -> Walk {
    let (a, ca) = conv(&s.conv1, x)?;
    let (b, cb) = conv(&s.conv2, a)?;
    Ok((b, ca + batch_norm(&s.bn1, a) + relu(a) + cb + batch_norm(&s.bn2, b)))
}

/// The auxiliary head on the feature map `x` after cell 2L/3.
pub fn aux_head_cost<B: Backend>(head: &AuxHead<B>, x: Shape) -> Result<Cost, String> {
    let [c, h, w] = x;
    let s = head.pool_stride;
    let pooled = [c, out_side(h, 5, s, 0, 1)?, out_side(w, 5, s, 0, 1)?];
    let (a, ca) = conv(&head.conv1, pooled)?;
    let (b, cb) = conv(&head.conv2, a)?;
    let bn2 = head.bn2.as_ref().map(|bn| batch_norm(bn, b)).unwrap_or_default();
    Ok(relu(x)
        + Cost::elementwise(numel(x))
        + ca
        + batch_norm(&head.bn1, a)
        + relu(a)
        + cb
        + bn2
        + relu(b)
        + linear(&head.linear, numel(b))?)
}

/// What one `input` image (channels, height, width) costs through `net`.
pub fn augment_network_cost<B: Backend>(net: &AugmentNetwork<B>, input: Shape) -> Result<NetworkCost, String> {
    let (mut s0, mut s1, mut total) = match &net.stem0 {
        Some(stem0) => {
            let (a, ca) = imagenet_stem(stem0, input)?;
            let (b, cb) = stem(&net.stem, a)?;
            (a, b, ca + cb)
        }
        None => {
            let (a, c) = stem(&net.stem, input)?;
            (a, a, c)
        }
    };
    let mut aux = Cost::default();
    for (i, cell) in net.cells.iter().enumerate() {
        let (next, c) = augment_cell(cell, s0, s1).map_err(|e| format!("cell {i}: {e}"))?;
        total += c;
        (s0, s1) = (s1, next);
        if i == net.aux_position
            && let Some(head) = &net.aux_head
        {
            aux = aux_head_cost(head, s1).map_err(|e| format!("auxiliary head: {e}"))?;
        }
    }
    let [c, h, w] = s1;
    let pooled = match net.final_pool {
        0 => [c, 1, 1],
        k => [c, out_side(h, k, k, 0, 1)?, out_side(w, k, k, 0, 1)?],
    };
    total += Cost::elementwise(numel(s1)) + linear(&net.linear, numel(pooled))?;
    Ok(NetworkCost { network: total, aux_head: aux })
}

/// What one `input` image costs through the supernet with every op of every edge kept.
pub fn search_network_cost<B: Backend>(net: &SearchNetwork<B>, input: Shape) -> Result<Cost, String> {
    let (s, mut total) = stem(&net.stem, input)?;
    let (mut s0, mut s1) = (s, s);
    for (i, cell) in net.cells.iter().enumerate() {
        let (next, c) = search_cell(cell, s0, s1).map_err(|e| format!("cell {i}: {e}"))?;
        total += c;
        (s0, s1) = (s1, next);
    }
    Ok(total + Cost::elementwise(numel(s1)) + linear(&net.linear, s1[0])?)
}

/// `n` operations in words: "574.0M", "1.23G".
pub fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment_network::AugmentNetworkConfig;
    use crate::genotype::named::named;
    use crate::search_network::SearchNetworkConfig;
    use crate::search_space::SearchSpace;
    use burn::backend::Flex;

    /// A hand count: the CIFAR network of one cell (a reduction cell at index 0) with the
    /// genotype below (only node 0 costs anything), C = 2, 8x8 RGB input, 10 classes, no auxiliary head.
    #[test]
    fn a_hand_counted_network() {
        // Nodes 1-3 are stride-1 skip connections (identities: free).
        let free = "('skip_connect', 2), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 3), \
                    ('skip_connect', 4), ('skip_connect', 4)";
        let g = format!(
            "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), {free}], normal_concat=[2], \
             reduce=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), {free}], reduce_concat=[2])"
        );
        let cfg = AugmentNetworkConfig::new(8, 3, 2, 10, 1, false, g.parse().unwrap());
        let net = cfg.init::<Flex>(&mut crate::ParamInit::new(0, Default::default(), &Default::default()));
        let m = augment_network_cost(&net, [3, 8, 8]).unwrap().network.macs;
        let stem = 6 * 8 * 8 * 3 * 9; // 3x3 conv 3 -> 6 at 8x8
        let preproc = 2 * (4 * 8 * 8 * 6); // two 1x1 convs 6 -> C = 4 (a reduction doubles C)
        // sep_conv_3x3 at stride 2 on 4 channels: depthwise 3x3 stride 2 (4x4 out), 1x1, then
        // depthwise 3x3 and 1x1 at 4x4
        let sep = (4 * 16 * 9 + 4 * 16 * 4) * 2;
        let classifier = 4 * 10;
        assert_eq!(m, (stem + preproc + sep + classifier) as u64);
    }

    #[test]
    fn shape_errors_are_messages() {
        // 5 cells, reductions at 1 and 3: from a 6x6 input the FactorizedReduce of cell 4 (after
        // a reduction cell) would see the 3x3 output of cell 2.
        let cfg = AugmentNetworkConfig::new(32, 3, 4, 10, 5, false, named("darts-v2").unwrap());
        let net = cfg.init::<Flex>(&mut crate::ParamInit::new(0, Default::default(), &Default::default()));
        assert!(augment_network_cost(&net, [3, 32, 32]).is_ok());
        let e = augment_network_cost(&net, [3, 6, 6]).unwrap_err();
        assert!(e.contains("even side"), "{e}");
        let e = augment_network_cost(&net, [1, 32, 32]).unwrap_err();
        assert!(e.contains("input channels"), "{e}");
    }

    #[test]
    fn the_supernet_counts_every_op() {
        let space = SearchSpace::named("original").unwrap();
        let cfg = SearchNetworkConfig::new(3, 4, 10, 3, space);
        let net = cfg.init::<Flex>(&mut crate::ParamInit::new(0, Default::default(), &Default::default())).net;
        let full = search_network_cost(&net, [3, 16, 16]).unwrap().macs;
        let half = search_network_cost(&net, [3, 8, 8]).unwrap().macs;
        // Convolutions scale with the area (the classifier does not).
        let classifier = net.linear.weight.dims().iter().product::<usize>() as u64;
        assert_eq!(full - classifier, 4 * (half - classifier));
        assert_eq!(human(574_000_000), "574.0M");
    }
}
