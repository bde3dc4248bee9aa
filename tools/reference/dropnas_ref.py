"""Independent PyTorch reference of DropNAS (grouped operation dropout for one-level DARTS).

Written from the specification in shared/reference/dropnas-spec.md, not from the original code.
Module attribute names are chosen so that `state_dict()` paths equal the parameter paths of the
Rust crates (`cells.0.dag.1.0.ops.4.bn.running_mean`, `cells.2.dag.3.1.op.first.depthwise.weight`).

Everything is float32. The only layout difference from the Rust side is PyTorch's: a Linear
weight is [out, in] here (Burn keeps [in, out]).

PyTorch versions (`compat`, the Rust side's `--torch-compat`): "1.0" reproduces PyTorch 1.0.0,
which the original ran (BatchNorm weights initialised U(0, 1), Adam's epsilon added before the bias
correction, zero-filled gradients, and the original's in-place ReLU at the head of the auxiliary
classifier); "modern" is PyTorch >= 2.0 throughout. What was read where: PYTORCH-1.0.md.
"""

from __future__ import annotations

import contextlib
import math
from collections import namedtuple
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.1
BN_EPS = 1e-5


COMPATS = ("1.0", "modern")
_BUILD_COMPAT = ["1.0"]


def check_compat(compat: str) -> str:
    if compat not in COMPATS:
        raise ValueError(f"unknown torch compat {compat!r}: use one of {COMPATS}")
    return compat


@contextlib.contextmanager
def building(compat: str):
    """Modules constructed inside initialise like PyTorch `compat` (see BatchNorm2d)."""
    _BUILD_COMPAT.append(check_compat(compat))
    try:
        yield
    finally:
        _BUILD_COMPAT.pop()


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose affine weight starts as in the PyTorch being reproduced: PyTorch 1.0's
    `_BatchNorm.reset_parameters` draws it from U(0, 1) (`init.uniform_(self.weight)`, after
    resetting the running stats and before zeroing the bias); PyTorch >= 1.2 fills it with ones.
    Drawn during construction, as 1.0 did, so the RNG stream interleaves as it did there."""

    def reset_parameters(self):
        super().reset_parameters()
        if self.affine and _BUILD_COMPAT[-1] == "1.0":
            nn.init.uniform_(self.weight)


def bn(c: int, affine: bool) -> nn.BatchNorm2d:
    return BatchNorm2d(c, affine=affine, momentum=BN_MOMENTUM, eps=BN_EPS)


# ----------------------------------------------------------------------------------------------
# Operations
# ----------------------------------------------------------------------------------------------


class StdConv(nn.Module):
    """ReLU, 1x1 conv, BN (cell preprocessing)."""

    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False)
        self.bn = bn(c_out, affine)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x)))


class FactorizedReduce(nn.Module):
    """ReLU once, then two 1x1 stride-2 convs (the second on x[:, :, 1:, 1:]) concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__()
        assert c_out % 2 == 0
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
        self.bn = bn(c_out, affine)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Module):
    """ReLU, depthwise conv (dilated), 1x1 conv, BN."""

    def __init__(self, c_in, c_out, k, stride, padding, dilation, affine):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, k, stride, padding, dilation, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False)
        self.bn = bn(c_out, affine)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(F.relu(x))))


class SepConv(nn.Module):
    """Two DilConvs with dilation 1; only the first one strided."""

    def __init__(self, c, k, stride, affine):
        super().__init__()
        self.first = DilConv(c, c, k, stride, k // 2, 1, affine)
        self.second = DilConv(c, c, k, 1, k // 2, 1, affine)

    def forward(self, x):
        return self.second(self.first(x))


class FacConv(nn.Module):
    """conv_7x1_1x7: ReLU, (1,7) conv with stride (1,s), (7,1) conv with stride (s,1), BN."""

    def __init__(self, c, stride, affine):
        super().__init__()
        self.conv_1x7 = nn.Conv2d(c, c, (1, 7), (1, stride), (0, 3), bias=False)
        self.conv_7x1 = nn.Conv2d(c, c, (7, 1), (stride, 1), (3, 0), bias=False)
        self.bn = bn(c, affine)

    def forward(self, x):
        return self.bn(self.conv_7x1(self.conv_1x7(F.relu(x))))


class PoolBN(nn.Module):
    """3x3 max or average pool (padding not counted in the average), then BN."""

    def __init__(self, kind: str, c: int, stride: int, affine: bool):
        super().__init__()
        if kind == "avg":
            self.pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        elif kind == "max":
            self.pool = nn.MaxPool2d(3, stride, 1)
        else:
            raise ValueError(kind)
        self.bn = bn(c, affine)

    def forward(self, x):
        return self.bn(self.pool(x))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        s = self.stride
        return x[:, :, ::s, ::s] * 0.0


class Identity(nn.Module):
    def forward(self, x):
        return x


OP_NAMES = [
    "none", "avg_pool_3x3", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
    "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7",
]
PARAMETERISED = {"sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"}


def make_op(name: str, c: int, stride: int, affine: bool) -> nn.Module:
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return PoolBN("avg", c, stride, affine)
    if name == "max_pool_3x3":
        return PoolBN("max", c, stride, affine)
    if name == "skip_connect":
        return Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"):
        return SepConv(c, int(name[-1]), stride, affine)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2, affine)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2, affine)
    if name == "conv_7x1_1x7":
        return FacConv(c, stride, affine)
    raise ValueError(f"unknown op {name!r}")


# ----------------------------------------------------------------------------------------------
# Search spaces: column order of an alpha row, and the two dropout groups
# ----------------------------------------------------------------------------------------------

SEARCH_SPACES: Dict[str, List[str]] = {
    "original": ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                 "max_pool_3x3", "avg_pool_3x3", "skip_connect", "none"],
    "1-skip": ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "skip_connect", "none"],
    "3-skip": ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
               "skip_connect", "skip_connect", "skip_connect", "none"],
}


def space_ops(space) -> List[str]:
    return SEARCH_SPACES[space] if isinstance(space, str) else list(space)


def space_groups(space) -> List[List[int]]:
    """[parameterised columns, non-parameterised columns]."""
    ops = space_ops(space)
    p = [i for i, o in enumerate(ops) if o in PARAMETERISED]
    np_ = [i for i, o in enumerate(ops) if o not in PARAMETERISED]
    return [p, np_]


# ----------------------------------------------------------------------------------------------
# Search network
# ----------------------------------------------------------------------------------------------


class MixedOp(nn.Module):
    def __init__(self, space, c: int, stride: int):
        super().__init__()
        self.ops = nn.ModuleList([make_op(name, c, stride, affine=False) for name in space_ops(space)])

    def forward(self, x, w_row, keep_row: Sequence[bool]):
        out = None
        for k, op in enumerate(self.ops):
            if not keep_row[k]:
                continue  # dropped ops are not evaluated at all
            y = w_row[k] * op(x)
            out = y if out is None else out + y
        assert out is not None, "an edge keeps at least one op"
        return out


class SearchCell(nn.Module):
    def __init__(self, space, n_nodes, c_pp, c_p, c, reduction_p, reduction):
        super().__init__()
        self.reduction = reduction
        self.n_nodes = n_nodes
        self.preproc0 = FactorizedReduce(c_pp, c, affine=False) if reduction_p else StdConv(c_pp, c, affine=False)
        self.preproc1 = StdConv(c_p, c, affine=False)
        self.dag = nn.ModuleList()
        for i in range(n_nodes):
            row = nn.ModuleList()
            for j in range(i + 2):
                row.append(MixedOp(space, c, 2 if reduction and j < 2 else 1))
            self.dag.append(row)

    def forward(self, s0, s1, weights, keep):
        states = [self.preproc0(s0), self.preproc1(s1)]
        for i, row in enumerate(self.dag):
            node = None
            for j, edge in enumerate(row):
                y = edge(states[j], weights[i][j], keep[i][j])
                node = y if node is None else node + y
            states.append(node)
        return torch.cat(states[2:], dim=1)


class Stem(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn = bn(c_out, affine=True)

    def forward(self, x):
        return self.bn(self.conv(x))


def reduction_layers(layers: int):
    return (layers // 3, 2 * layers // 3)


class SearchNetwork(nn.Module):
    """`compat` "1.0": the stem's (affine) BatchNorm weight starts U(0, 1), as in PyTorch 1.0."""

    def __init__(self, c_in, c, n_classes, layers, space="original", n_nodes=4, stem_multiplier=3, compat="1.0"):
        super().__init__()
        with building(compat):
            self._build(c_in, c, n_classes, layers, space, n_nodes, stem_multiplier)

    def _build(self, c_in, c, n_classes, layers, space, n_nodes, stem_multiplier):
        self.space = space
        self.n_nodes = n_nodes
        c_cur = stem_multiplier * c
        self.stem = Stem(c_in, c_cur)
        c_pp, c_p, c_cur = c_cur, c_cur, c
        self.cells = nn.ModuleList()
        reduction_p = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_cur *= 2
            self.cells.append(SearchCell(space, n_nodes, c_pp, c_p, c_cur, reduction_p, reduction))
            reduction_p = reduction
            c_pp, c_p = c_p, n_nodes * c_cur
        self.linear = nn.Linear(c_p, n_classes)

    def forward(self, x, w_normal, w_reduce, keep_normal, keep_reduce):
        """w_*: per node a [i+2, n_ops] tensor of mixing weights; keep_*: per node [i+2][n_ops] bools."""
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            if cell.reduction:
                w, k = w_reduce, keep_reduce
            else:
                w, k = w_normal, keep_normal
            s0, s1 = s1, cell(s0, s1, w, k)
        return self.linear(F.adaptive_avg_pool2d(s1, 1).flatten(1))


class AdamPt10(torch.optim.Optimizer):
    """torch.optim.Adam as PyTorch 1.0.0 computed it (torch/optim/adam.py at tag v1.0.0):

        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v) + eps                                  # eps before the bias correction
        step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)     # Python float (double)
        p = p - step_size * m / denom

    PyTorch >= 1.6 divides by sqrt(v) / sqrt(1 - beta2^t) + eps instead. No weight decay and no
    AMSGrad (the search uses neither). Parameters without a gradient are skipped, as in 1.0."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                g = p.grad
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = v.sqrt().add_(group["eps"])
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(m, denom, value=-step_size)


def alpha_optimizer(params, compat: str, lr=3e-4):
    """The alphas' Adam (betas (0.5, 0.999), eps 1e-8, no weight decay) of PyTorch `compat`."""
    if check_compat(compat) == "1.0":
        return AdamPt10(params, lr=lr, betas=(0.5, 0.999), eps=1e-8)
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), eps=1e-8, weight_decay=0)


class Alphas(nn.Module):
    def __init__(self, n_nodes: int, n_ops: int):
        super().__init__()
        self.normal = nn.ParameterList([nn.Parameter(1e-3 * torch.randn(i + 2, n_ops)) for i in range(n_nodes)])
        self.reduce = nn.ParameterList([nn.Parameter(1e-3 * torch.randn(i + 2, n_ops)) for i in range(n_nodes)])


def mixing_weights(alpha: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over the kept ops of each row only; 0 for dropped ops.

    w_k = exp(a_k) / sum_{kept k'} exp(a_k') for kept k (computed as a softmax with the dropped
    entries set to -inf, i.e. shifted by the row max of the kept entries)."""
    keep = keep.to(alpha.device).bool()
    assert bool(keep.any(dim=-1).all()), "every edge keeps at least one op"
    return torch.softmax(alpha.masked_fill(~keep, float("-inf")), dim=-1)


def keep_lists(masks: Sequence[torch.Tensor]):
    return [m.bool().tolist() for m in masks]


def search_forward(model: SearchNetwork, alphas: Alphas, x, masks_normal, masks_reduce):
    wn = [mixing_weights(a, m) for a, m in zip(alphas.normal, masks_normal)]
    wr = [mixing_weights(a, m) for a, m in zip(alphas.reduce, masks_reduce)]
    return model(x, wn, wr, keep_lists(masks_normal), keep_lists(masks_reduce))


# ----------------------------------------------------------------------------------------------
# Grouped operation dropout
# ----------------------------------------------------------------------------------------------


def draw_cell_mask(space, n_nodes: int, rates: Sequence[float], gen: torch.Generator, exponent=0.25):
    """One keep mask per node ([i+2, n_ops] bool). Each op of a group is dropped independently with
    probability rate**exponent; a group that lost every op is redrawn until it keeps one."""
    groups = space_groups(space)
    n_ops = len(space_ops(space))
    out = []
    for i in range(n_nodes):
        m = torch.ones(i + 2, n_ops, dtype=torch.bool)
        for e in range(i + 2):
            for g, rate in zip(groups, rates):
                p = rate ** exponent if rate > 0 else 0.0
                while True:
                    drop = torch.rand(len(g), generator=gen) < p
                    if not bool(drop.all()):
                        break
                for col, d in zip(g, drop.tolist()):
                    m[e, col] = not d
        out.append(m)
    return out


# ----------------------------------------------------------------------------------------------
# The one-level DropNAS training step
# ----------------------------------------------------------------------------------------------


def zero_grad_pt10(params: Iterable[nn.Parameter]):
    """PyTorch 1.0 zero_grad: existing gradients become zero tensors, missing ones stay None."""
    for p in params:
        if p.grad is not None:
            p.grad.detach_()
            p.grad.zero_()


def zero_grad(params: Iterable[nn.Parameter], compat: str):
    """`zero_grad` of PyTorch `compat`: zeros (1.0) or no gradient at all (>= 2.0's set_to_none)."""
    if check_compat(compat) == "1.0":
        zero_grad_pt10(params)
    else:
        for p in params:
            p.grad = None


def edge_ratios(alpha_list, mask_list):
    """ratio_e = (sum exp(alpha) over kept) / (sum over all) per edge, float64."""
    out = []
    for a, m in zip(alpha_list, mask_list):
        e = torch.exp(a.detach().double())
        out.append((e * m.to(e.device).double()).sum(-1) / e.sum(-1))
    return out


@torch.no_grad()
def adjust_alphas(alpha_list, mask_list, ratios):
    """For every edge with a dropped op: add k = ln(ratio/(1-ratio) * R/U) to its kept alphas,
    U/R = sum exp(alpha) over kept/dropped (float64 from the float32 values); add in float32."""
    ks = []
    for a, m, r in zip(alpha_list, mask_list, ratios):
        keep = m.to(a.device).bool()
        k_row = torch.zeros(a.shape[0], dtype=torch.float64)
        for e in range(a.shape[0]):
            if bool(keep[e].all()):
                continue
            ea = torch.exp(a[e].double())
            u = ea[keep[e]].sum()
            rr = ea[~keep[e]].sum()
            k = torch.log(r[e] / (1.0 - r[e]) * rr / u)
            k_row[e] = k
            a[e][keep[e]] += k.float()
        ks.append(k_row)
    return ks


def search_step(model: SearchNetwork, alphas: Alphas, w_opt, a_opt, x, y, masks_normal, masks_reduce,
                w_decay=3e-4, a_decay=1e-3, clip=3.0, alpha_step_phase1=True, record=None, compat="1.0"):
    """One DropNAS step (spec, "One training step"). Returns a dict of what happened. `compat`
    picks zero_grad's semantics; the alpha optimizer (alpha_optimizer) carries Adam's."""
    weights = list(model.parameters())
    alpha_params = list(alphas.parameters())
    masks = list(masks_normal) + list(masks_reduce)
    alpha_list = list(alphas.normal) + list(alphas.reduce)
    rec = {} if record is None else record

    zero_grad(weights, compat)
    zero_grad(alpha_params, compat)
    ratios = edge_ratios(alpha_list, masks)

    # (1) loss_1
    logits = search_forward(model, alphas, x, masks_normal, masks_reduce)
    loss_1 = F.cross_entropy(logits, y)
    loss_1.backward()
    named = dict(model.named_parameters())
    # gradients of (1), captured before anything zeroes them
    w_sel = [n for n, p in named.items() if p.grad is not None and float(p.grad.view(-1)[0]) != 0.0]
    a_grad_1 = [a.grad.detach().clone() if a.grad is not None else torch.zeros_like(a) for a in alpha_list]
    a_sel = [(g.abs() > 1e-7).float() for g in a_grad_1]
    grad_present = [n for n, p in named.items() if p.grad is not None]

    # (2) clip, steps
    norm_1 = torch.nn.utils.clip_grad_norm_(weights, clip)
    w_opt.step()
    if alpha_step_phase1:
        a_opt.step()
    rec["alpha_p2"] = [a.detach().clone() for a in alpha_list]

    # (3) partial decay on the updated parameters
    zero_grad(weights, compat)
    zero_grad(alpha_params, compat)
    loss_w = sum((named[n] * named[n]).sum() for n in w_sel) if w_sel else torch.zeros(())
    loss_a = sum(((a * s) ** 2).sum() for a, s in zip(alpha_list, a_sel))
    loss_2 = w_decay * loss_w + a_decay * loss_a
    loss_2.backward()

    # (4) clip, steps
    norm_2 = torch.nn.utils.clip_grad_norm_(weights, clip)
    w_opt.step()
    a_opt.step()
    rec["alpha_p4"] = [a.detach().clone() for a in alpha_list]

    # (5) alpha adjustment
    ks = adjust_alphas(alpha_list, masks, ratios)
    rec["alpha_p5"] = [a.detach().clone() for a in alpha_list]

    rec.update(loss_1=float(loss_1.detach()), loss_2=float(loss_2.detach()), alpha_grad_1=a_grad_1, norm_1=float(norm_1), norm_2=float(norm_2),
               decay_selected=w_sel, alpha_decay_mask=a_sel, grad_present=grad_present, ratios=ratios, k=ks)
    return rec


# ----------------------------------------------------------------------------------------------
# Genotypes
# ----------------------------------------------------------------------------------------------

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

NAMED_GENOTYPES = {
    "dropnas-cifar10": "Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]], normal_concat=range(2, 6), reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 2), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 2)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 4)]], reduce_concat=range(2, 6))",
    "darts-v2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
}


def _nodes(cell):
    cell = list(cell)
    if cell and isinstance(cell[0], tuple):  # DARTS flat list: two (op, input) pairs per node
        assert len(cell) % 2 == 0
        return [[tuple(cell[i]), tuple(cell[i + 1])] for i in range(0, len(cell), 2)]
    return [[tuple(e) for e in node] for node in cell]


def parse_genotype(text: str) -> Genotype:
    """Genotype text as Python prints it (nested per-node lists or DARTS' flat pair list)."""
    if text in NAMED_GENOTYPES:
        text = NAMED_GENOTYPES[text]
    g = eval(text, {"__builtins__": {}}, {"Genotype": Genotype, "range": range})
    return Genotype(_nodes(g.normal), list(g.normal_concat), _nodes(g.reduce), list(g.reduce_concat))


def derive_genotype(alphas: Alphas, space="original", k=2) -> Genotype:
    """Per edge the best op by raw alpha ignoring `none`; per node the k best edges, descending."""
    ops = space_ops(space)

    def cell(alist):
        nodes = []
        for a in alist:
            best = []
            for j, row in enumerate(a.detach()):
                cands = [(float(row[c]), ops[c]) for c in range(len(ops)) if ops[c] != "none"]
                v, name = max(cands, key=lambda t: t[0])
                best.append((v, name, j))
            best.sort(key=lambda t: -t[0])
            nodes.append([(name, j) for _, name, j in best[:k]])
        return nodes

    n = len(alphas.normal)
    return Genotype(cell(alphas.normal), list(range(2, 2 + n)), cell(alphas.reduce), list(range(2, 2 + n)))


# ----------------------------------------------------------------------------------------------
# Augment network
# ----------------------------------------------------------------------------------------------


class FixedDropPath:
    """Masks ([N] tensors of 0 or 1/keep) consumed in forward order."""

    def __init__(self, masks: Sequence[torch.Tensor]):
        self.masks = list(masks)
        self.used = 0

    def next(self, n: int) -> Optional[torch.Tensor]:
        m = self.masks[self.used]
        self.used += 1
        assert m.shape == (n,)
        return m


class RandomDropPath:
    def __init__(self, prob: float, gen: Optional[torch.Generator] = None):
        self.prob = prob
        self.gen = gen
        self.drawn: List[torch.Tensor] = []

    def next(self, n: int) -> Optional[torch.Tensor]:
        if self.prob <= 0:
            return None
        keep = 1.0 - self.prob
        m = (torch.rand(n, generator=self.gen) < keep).float() / keep
        self.drawn.append(m)
        return m


def apply_drop_path(x, source):
    if source is None:
        return x
    m = source.next(x.shape[0])
    if m is None:
        return x
    return x * m.to(x.device).view(-1, 1, 1, 1)


class AugmentEdge(nn.Module):
    def __init__(self, name: str, c: int, stride: int, input_idx: int):
        super().__init__()
        self.name = name
        self.op = make_op(name, c, stride, affine=True)
        self.input = input_idx


class AugmentCell(nn.Module):
    def __init__(self, genotype: Genotype, c_pp, c_p, c, reduction_p, reduction):
        super().__init__()
        self.reduction = reduction
        self.preproc0 = FactorizedReduce(c_pp, c, affine=True) if reduction_p else StdConv(c_pp, c, affine=True)
        self.preproc1 = StdConv(c_p, c, affine=True)
        nodes = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.dag = nn.ModuleList()
        for edges in nodes:
            row = nn.ModuleList()
            for name, inp in edges:
                row.append(AugmentEdge(name, c, 2 if reduction and inp < 2 else 1, inp))
            self.dag.append(row)

    def forward(self, s0, s1, drop_path=None):
        states = [self.preproc0(s0), self.preproc1(s1)]
        for row in self.dag:
            node = None
            for edge in row:
                y = edge.op(states[edge.input])
                if not isinstance(edge.op, Identity):
                    y = apply_drop_path(y, drop_path)
                node = y if node is None else node + y
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxHead(nn.Module):
    def __init__(self, side: int, c: int, n_classes: int, relu_inplace: bool = False):
        super().__init__()
        assert side >= 6, "aux head needs a feature map of at least 6x6"
        # the original's head starts with nn.ReLU(inplace=True): the caller's tensor is changed
        self.relu_inplace = relu_inplace
        self.pool = nn.AvgPool2d(5, stride=side - 5, padding=0, count_include_pad=False)
        self.conv1 = nn.Conv2d(c, 128, 1, bias=False)
        self.bn1 = bn(128, True)
        self.conv2 = nn.Conv2d(128, 768, 2, bias=False)
        self.bn2 = bn(768, True)
        self.linear = nn.Linear(768, n_classes)

    def forward(self, x):
        x = self.pool(F.relu(x, inplace=self.relu_inplace))
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(x.flatten(1))


class AugmentNetwork(nn.Module):
    """`compat` "1.0": BatchNorm weights U(0, 1) and the original's in-place ReLU in the auxiliary
    head (in training, the final pooling then sees relu(s1) when the head reads the last cell)."""

    def __init__(self, input_size, c_in, c, n_classes, layers, auxiliary, genotype, stem_multiplier=3,
                 compat="1.0"):
        super().__init__()
        with building(compat):
            self._build(input_size, c_in, c, n_classes, layers, auxiliary, genotype, stem_multiplier, compat)

    def _build(self, input_size, c_in, c, n_classes, layers, auxiliary, genotype, stem_multiplier, compat):
        if isinstance(genotype, str):
            genotype = parse_genotype(genotype)
        self.genotype = genotype
        self.aux_pos = 2 * layers // 3 if auxiliary else -1
        c_cur = stem_multiplier * c
        self.stem = Stem(c_in, c_cur)
        c_pp, c_p, c_cur = c_cur, c_cur, c
        self.cells = nn.ModuleList()
        reduction_p = False
        self.aux_head = None
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_cur *= 2
            cell = AugmentCell(genotype, c_pp, c_p, c_cur, reduction_p, reduction)
            self.cells.append(cell)
            reduction_p = reduction
            c_pp, c_p = c_p, c_cur * len(cell.concat)
            if i == self.aux_pos:
                self.aux_head = AuxHead(input_size // 4, c_p, n_classes, relu_inplace=compat == "1.0")
        self.linear = nn.Linear(c_p, n_classes)

    def forward(self, x, drop_path=None):
        """drop_path: None (no drop path) or a FixedDropPath / RandomDropPath. Returns (logits, aux)."""
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_path if self.training else None)
            if i == self.aux_pos and self.training:
                aux = self.aux_head(s1)
        logits = self.linear(F.adaptive_avg_pool2d(s1, 1).flatten(1))
        return logits, aux


class ImagenetStem(nn.Module):
    """The ImageNet network's first stem: 3x3 conv in -> C/2 stride 2, BN, ReLU, 3x3 conv C/2 -> C
    stride 2, BN (224 -> 56)."""

    def __init__(self, c_in, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c // 2, 3, 2, 1, bias=False)
        self.bn1 = bn(c // 2, affine=True)
        self.conv2 = nn.Conv2d(c // 2, c, 3, 2, 1, bias=False)
        self.bn2 = bn(c, affine=True)

    def forward(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


class ImagenetStem1(nn.Module):
    """The ImageNet network's second stem: ReLU, 3x3 conv C -> C stride 2, BN (56 -> 28)."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 1, bias=False)
        self.bn = bn(c, affine=True)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x)))


class ImagenetAuxHead(nn.Module):
    """Auxiliary head of the ImageNet network on the 7x7 map after cell 2L/3: ReLU, AvgPool(5,
    stride 2, padding not counted) to 2x2, 1x1 conv C->128, BN, ReLU, 2x2 conv 128->768, ReLU
    (no BN there), linear 768->classes."""

    def __init__(self, c: int, n_classes: int, relu_inplace: bool = False):
        super().__init__()
        # DARTS' head starts with nn.ReLU(inplace=True) too (see AuxHead)
        self.relu_inplace = relu_inplace
        self.pool = nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False)
        self.conv1 = nn.Conv2d(c, 128, 1, bias=False)
        self.bn1 = bn(128, True)
        self.conv2 = nn.Conv2d(128, 768, 2, bias=False)
        self.linear = nn.Linear(768, n_classes)

    def forward(self, x):
        x = self.pool(F.relu(x, inplace=self.relu_inplace))
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.linear(x.flatten(1))


class AugmentNetworkImageNet(nn.Module):
    """The network of the DARTS family for 224x224 input (the mobile setting): the two stems above
    (56x56 and 28x28, both C channels), the first cell treating the 56x56 stem as the output of a
    reduction cell (FactorizedReduce), reductions at L/3 and 2L/3 (14x14, 7x7), the auxiliary head
    after cell 2L/3, AvgPool2d(7) and a linear classifier. `compat` as in AugmentNetwork."""

    def __init__(self, c_in, c, n_classes, layers, auxiliary, genotype, compat="1.0"):
        super().__init__()
        with building(compat):
            self._build(c_in, c, n_classes, layers, auxiliary, genotype, compat)

    def _build(self, c_in, c, n_classes, layers, auxiliary, genotype, compat):
        if isinstance(genotype, str):
            genotype = parse_genotype(genotype)
        self.genotype = genotype
        self.aux_pos = 2 * layers // 3 if auxiliary else -1
        self.stem0 = ImagenetStem(c_in, c)
        self.stem = ImagenetStem1(c)
        c_pp, c_p, c_cur = c, c, c
        self.cells = nn.ModuleList()
        reduction_p = True
        self.aux_head = None
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_cur *= 2
            cell = AugmentCell(genotype, c_pp, c_p, c_cur, reduction_p, reduction)
            self.cells.append(cell)
            reduction_p = reduction
            c_pp, c_p = c_p, c_cur * len(cell.concat)
            if i == self.aux_pos:
                self.aux_head = ImagenetAuxHead(c_p, n_classes, relu_inplace=compat == "1.0")
        self.pool = nn.AvgPool2d(7)
        self.linear = nn.Linear(c_p, n_classes)

    def forward(self, x, drop_path=None):
        aux = None
        s0 = self.stem0(x)
        s1 = self.stem(s0)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_path if self.training else None)
            if i == self.aux_pos and self.training:
                aux = self.aux_head(s1)
        logits = self.linear(self.pool(s1).flatten(1))
        return logits, aux


def count_ops(model: nn.Module, input_shape, run) -> Dict[str, int]:
    """Operations of one image, by forward hooks (and by wrapping F.relu / F.adaptive_avg_pool2d):
    `macs`: multiply-adds of convolutions (C_out * H_out * W_out * C_in / groups * kh * kw) and linear
    layers (in * out); `elementwise`: what ptflops counts besides, one per element: BatchNorm inputs
    (two per element when affine), ReLU inputs, pooling inputs, linear biases. Modules under
    `aux_head` are summed apart (`aux_macs`, `aux_elementwise`). `run(model, x)` does the forward in
    train mode (so that the auxiliary head runs) on a batch of 2 (training-mode BN needs more than
    one value per channel); the counts are per image."""
    counts = {"macs": 0, "elementwise": 0, "aux_macs": 0, "aux_elementwise": 0}
    in_aux = [False]

    def add(kind, n):
        counts[("aux_" if in_aux[0] else "") + kind] += int(n)

    def hook(mod, inputs, out):
        x = inputs[0][0]
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            add("macs", out[0].numel() * (mod.in_channels // mod.groups) * kh * kw)
        elif isinstance(mod, nn.Linear):
            add("macs", mod.in_features * mod.out_features)
            add("elementwise", mod.out_features if mod.bias is not None else 0)
        elif isinstance(mod, nn.BatchNorm2d):
            add("elementwise", x.numel() * (2 if mod.affine else 1))
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            add("elementwise", x.numel())

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d))]
    aux = getattr(model, "aux_head", None)
    if aux is not None:
        hooks.append(aux.register_forward_pre_hook(lambda m, i: in_aux.__setitem__(0, True)))
        hooks.append(aux.register_forward_hook(lambda m, i, o: in_aux.__setitem__(0, False)))
    relu, adaptive = F.relu, F.adaptive_avg_pool2d

    def counted_relu(x, *a, **k):
        add("elementwise", x[0].numel())
        return relu(x, *a, **k)

    def counted_adaptive(x, *a, **k):
        add("elementwise", x[0].numel())
        return adaptive(x, *a, **k)

    F.relu, F.adaptive_avg_pool2d = counted_relu, counted_adaptive
    try:
        model.train()
        with torch.no_grad():
            run(model, torch.zeros(2, *input_shape))
    finally:
        F.relu, F.adaptive_avg_pool2d = relu, adaptive
        for h in hooks:
            h.remove()
    return counts


def count_params(module: nn.Module, exclude_prefix: Optional[str] = None) -> int:
    return sum(p.numel() for n, p in module.named_parameters()
               if exclude_prefix is None or not n.startswith(exclude_prefix))


def bn_modules(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
