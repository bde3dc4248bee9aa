"""Regenerates every fixture under tools/fixtures/ from the PyTorch reference (dropnas_ref.py).

    python3 tools/reference/make_fixtures.py [--out tools/fixtures]

Deterministic: each fixture seeds torch itself. The key naming of each file is described in
tools/reference/README.md and, per file, in the safetensors metadata entry "config" (JSON).
Every file must stay under 300 KB (asserted).

Two PyTorch settings (dropnas' `--torch-compat`): the steps are written for "1.0" (the default:
PyTorch 1.0.0 as the original ran it; plain file names) and for "modern" (`*.modern.*` files).
Initial states are built once, under "1.0", and shared by both.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dropnas_ref as R  # noqa: E402

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures"))

# Initial channels of the search fixtures: 2, not 4. At C=4 the 3-layer search network has 73k
# weights and ~1,270 state tensors, and the search fixtures would total ~2.5 MB.
SEARCH_C = 2

# The auxiliary head's 2x2 conv 128->768 alone is 1.5 MB of float32, too big to ship in every
# fixture. Where a fixture builds an AugmentNetwork with the auxiliary head, that one tensor is
# set to this closed-form pattern (reproducible bit for bit in any language with IEEE doubles)
# instead of being stored.
PATTERN_PATH = "aux_head.conv2.weight"
PATTERN_FORMULA = "w[i] = f32((f64((i*7919 + 13) % 2003) - 1001.0) / 1001.0 * 0.04), i = flat row-major index"


def fixture_name(base: str, compat: str, ext: str = "safetensors") -> str:
    """`base.ext` for the default setting (1.0), `base.modern.ext` for the other."""
    return f"{base}.{ext}" if R.check_compat(compat) == "1.0" else f"{base}.modern.{ext}"


def pattern(shape, scale=0.04):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    v = (((i * 7919 + 13) % 2003).astype(np.float64) - 1001.0) / 1001.0 * scale
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def randomise_bn(module: nn.Module):
    """Non-trivial BN state so that mistakes show: gamma 1+0.1N, beta 0.1N, mean 0.1N, var U(0.5,1.5)."""
    for m in R.bn_modules(module):
        if m.affine:
            m.weight.copy_(1.0 + 0.1 * torch.randn_like(m.weight))
            m.bias.copy_(0.1 * torch.randn_like(m.bias))
        m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
        m.running_var.copy_(0.5 + torch.rand_like(m.running_var))


def state(module: nn.Module, skip=()):
    """state_dict without num_batches_tracked (params and BN running stats), detached clones."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked") and k not in skip}


def running_stats(module: nn.Module):
    return {k: v for k, v in state(module).items() if k.endswith("running_mean") or k.endswith("running_var")}


def prefixed(prefix, d):
    return {f"{prefix}{k}": v for k, v in d.items()}


def scalar(x):
    return torch.tensor([float(x)], dtype=torch.float32)


def save(out_dir, name, tensors, config):
    path = os.path.join(out_dir, name)
    t = {}
    for k, v in tensors.items():
        v = v.detach()
        if v.dtype == torch.bool:
            v = v.float()
        assert v.dtype == torch.float32, (k, v.dtype)
        t[k] = v.contiguous()
    save_file(t, path, metadata={"config": json.dumps(config, sort_keys=True)})
    size = os.path.getsize(path)
    print(f"{name}: {len(t)} tensors, {size / 1024:.1f} KiB")
    assert size < 300 * 1024, f"{name} is too big ({size} bytes)"
    return path


def grads_of(module: nn.Module):
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


# ----------------------------------------------------------------------------------------------
# (a) single ops
# ----------------------------------------------------------------------------------------------


def make_ops(out_dir):
    cases = []
    for name in R.OP_NAMES:
        for s in (1, 2):
            cases.append((f"{name}.s{s}", name, s, lambda name=name, s=s: R.make_op(name, 4, s, affine=True)))
    cases.append(("std_conv_4_6.s1", "std_conv", 1, lambda: R.StdConv(4, 6, affine=True)))
    cases.append(("factorized_reduce_4_6.s2", "factorized_reduce", 2, lambda: R.FactorizedReduce(4, 6, affine=True)))

    tensors, config = {}, {"cases": {}}
    for idx, (case, op, s, ctor) in enumerate(cases):
        torch.manual_seed(1000 + idx)
        m = ctor()
        randomise_bn(m)
        m.train()
        x = torch.randn(2, 4, 8, 8, requires_grad=True)
        before = state(m)
        y = m(x)
        g = torch.randn(y.shape)
        (y * g).sum().backward()
        p = f"{case}."
        tensors.update(prefixed(p + "param.", before))
        tensors[p + "input"] = x.detach().clone()
        tensors[p + "output"] = y.detach().clone()
        tensors[p + "gout"] = g
        tensors[p + "grad_input"] = x.grad.detach().clone()
        tensors.update(prefixed(p + "grad.", grads_of(m)))
        tensors.update(prefixed(p + "after.", running_stats(m)))
        config["cases"][case] = {
            "op": op, "stride": s, "c_in": 4, "c_out": 6 if op in ("std_conv", "factorized_reduce") else 4,
            "affine": True, "training": True, "input_shape": list(x.shape), "output_shape": list(y.shape),
            "seed": 1000 + idx,
        }
    config["description"] = (
        "Every op at stride 1 and 2 (C=4, affine BN, training mode) plus StdConv(4->6), "
        "FactorizedReduce(4->6). Keys: <case>.{input,output,gout,grad_input}, <case>.param.<path> (before), "
        "<case>.grad.<path> (d sum(output*gout)), <case>.after.<path> (running stats after the forward)."
    )
    save(out_dir, "ops.safetensors", tensors, config)


# ----------------------------------------------------------------------------------------------
# (b) search network forward/backward
# ----------------------------------------------------------------------------------------------


def hand_masks(n_nodes, n_ops, drops):
    """drops: {(node, edge): [columns]} -> list of [i+2, n_ops] bool keep masks."""
    ms = [torch.ones(i + 2, n_ops, dtype=torch.bool) for i in range(n_nodes)]
    for (i, e), cols in drops.items():
        for c in cols:
            ms[i][e, c] = False
    return ms


def check_masks(ms, space="original"):
    for m in ms:
        for row in m:
            for g in R.space_groups(space):
                assert bool(row[g].any()), "every group keeps at least one op"


SEARCH_SEED = 2000


def search_init():
    """The initial SearchNetwork + Alphas shared by search_network.* and search_step.*: default
    conv/linear init, stem BN randomised, the cells' BN buffers at PyTorch's defaults (mean 0,
    var 1: a training-mode forward never reads them, and storing ~700 small tensors per copy would
    triple the files), alphas 1e-3*N + 0.5*N so that they are not uniform."""
    torch.manual_seed(SEARCH_SEED)
    model = R.SearchNetwork(3, SEARCH_C, 10, 3, "original")
    randomise_bn(model.stem)
    alphas = R.Alphas(4, 8)
    with torch.no_grad():
        for p in alphas.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model.train(), alphas


def search_initial_state(model, alphas):
    t = prefixed("param.", {k: v for k, v in state(model).items()
                            if not (k.startswith("cells.") and "running_" in k)})
    for i in range(4):
        t[f"alpha.normal.{i}"] = alphas.normal[i].detach().clone()
        t[f"alpha.reduce.{i}"] = alphas.reduce[i].detach().clone()
    return t


SEARCH_CONFIG = {"c_in": 3, "init_channels": SEARCH_C, "n_classes": 10, "layers": 3, "space": "original",
                 "ops": R.SEARCH_SPACES["original"], "n_nodes": 4, "training": True}


def make_search_network(out_dir):
    model, alphas = search_init()
    t = search_initial_state(model, alphas)
    torch.manual_seed(SEARCH_SEED + 1)
    x = torch.randn(2, 3, 8, 8)
    labels = torch.randint(0, 10, (2,))
    mn = hand_masks(4, 8, {(0, 0): [4, 5, 6], (1, 2): [0, 3], (3, 4): [1, 7], (2, 1): [5]})
    mr = hand_masks(4, 8, {(0, 1): [6, 2], (2, 0): [4, 5, 6], (3, 3): [0, 1, 2], (1, 0): [7]})
    check_masks(mn)
    check_masks(mr)
    wn = [R.mixing_weights(a, m) for a, m in zip(alphas.normal, mn)]
    wr = [R.mixing_weights(a, m) for a, m in zip(alphas.reduce, mr)]
    logits = model(x, wn, wr, R.keep_lists(mn), R.keep_lists(mr))
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    t.update({"input": x, "labels": labels.float(), "output": logits.detach().clone(),
              "loss": scalar(loss.detach())})
    for i in range(4):
        t[f"mask.normal.{i}"] = mn[i]
        t[f"mask.reduce.{i}"] = mr[i]
        t[f"weights.normal.{i}"] = wn[i].detach().clone()
        t[f"weights.reduce.{i}"] = wr[i].detach().clone()
        t[f"grad.alpha.normal.{i}"] = alphas.normal[i].grad.detach().clone()
        t[f"grad.alpha.reduce.{i}"] = alphas.reduce[i].grad.detach().clone()
    g = grads_of(model)
    no_grad = [n for n, _ in model.named_parameters() if n not in g]
    assert no_grad, "some dropped op has weights"
    # with every op kept, the masked softmax is the plain softmax
    full = torch.ones(3, 8, dtype=torch.bool)
    assert torch.allclose(R.mixing_weights(alphas.normal[1], full), torch.softmax(alphas.normal[1], -1), atol=1e-7)
    files = ["search_network.safetensors", "search_network.grad.safetensors"]
    config = dict(SEARCH_CONFIG, seed=SEARCH_SEED, input_shape=list(x.shape), loss=float(loss.detach()),
                  params_without_grad=no_grad, files=files, description=(
        "SearchNetwork forward+backward (train mode) with fixed keep masks. search_network.safetensors: "
        "param.<path>: initial parameters and the stem BN buffers (the search cells' BN buffers start at "
        "PyTorch's defaults, mean 0 / var 1, and are not stored); alpha.{normal,reduce}.<i>: initial alphas; "
        "mask.*.<i> (1 keep, 0 drop); weights.*.<i>: mixing weights (softmax over kept); output: logits; "
        "loss: cross entropy with labels; grad.alpha.*.<i>. search_network.grad.safetensors: grad.<path>, "
        "present only for parameters that got a gradient (params_without_grad lists the others: the weights "
        "of dropped ops)."))
    save(out_dir, files[0], t, config)
    save(out_dir, files[1], prefixed("grad.", g), {"see": files[0], "files": files})


# ----------------------------------------------------------------------------------------------
# (c) augment network forward (train with fixed drop path, and eval)
# ----------------------------------------------------------------------------------------------

AUGMENT_SEED = 3000


def augment_init():
    """The initial AugmentNetwork shared by augment_network.* and augment_step.*: default conv and
    linear init, every BN randomised, aux_head.conv2.weight set to the generated pattern."""
    torch.manual_seed(AUGMENT_SEED)
    model = R.AugmentNetwork(32, 3, 4, 10, 3, True, "dropnas-cifar10")
    randomise_bn(model)
    with torch.no_grad():
        w = model.aux_head.conv2.weight
        w.copy_(pattern(tuple(w.shape)))
    return model


AUGMENT_CONFIG = {"input_size": 32, "c_in": 3, "init_channels": 4, "n_classes": 10, "layers": 3,
                  "auxiliary": True, "genotype": R.NAMED_GENOTYPES["dropnas-cifar10"],
                  "genotype_name": "dropnas-cifar10", "drop_path_prob": 0.2,
                  "generated": {PATTERN_PATH: {"shape": [768, 128, 2, 2], "formula": PATTERN_FORMULA}}}


def n_droppath(model):
    return sum(1 for cell in model.cells for row in cell.dag for e in row if not isinstance(e.op, R.Identity))


def draw_droppath(n_masks, batch, prob=0.2):
    keep = 1.0 - prob
    ms = [(torch.rand(batch) < keep).float() / keep for _ in range(n_masks)]
    if not any(bool((m == 0).any()) for m in ms):
        ms[0][0] = 0.0
    return ms


def set_forward_compat(model, compat):
    """The forward semantics of `compat` on an AugmentNetwork built under another setting."""
    model.aux_head.relu_inplace = R.check_compat(compat) == "1.0"


def without_pattern(st):
    return {k: v for k, v in st.items() if k != PATTERN_PATH}


def make_augment_network(out_dir):
    model = augment_init()
    before = state(model)
    torch.manual_seed(AUGMENT_SEED + 1)
    x = torch.randn(2, 3, 32, 32)
    n_masks = n_droppath(model)
    masks = draw_droppath(n_masks, 2)

    ev = copy.deepcopy(model).eval()
    with torch.no_grad():
        eval_out, eval_aux = ev(x)
    assert eval_aux is None

    # train mode under each setting, from the same initial state: the aux head reads the last of the
    # 3 cells, so the original's in-place ReLU (1.0) reaches the final pooling
    outs = {}
    for compat in R.COMPATS:
        m = copy.deepcopy(model).train()
        set_forward_compat(m, compat)
        src = R.FixedDropPath(masks)
        with torch.no_grad():
            outs[compat] = m(x, src)
        assert src.used == n_masks
    out, aux = outs["1.0"]
    out_modern, aux_modern = outs["modern"]
    assert torch.equal(aux, aux_modern), "the auxiliary output does not depend on the setting"
    assert (out - out_modern).abs().max() > 1e-4, "the in-place ReLU must change the output here"
    model = m  # running stats after the forward: the same under both settings

    # gradients of CE + 0.4 CE_aux under PyTorch 1.0 from the initial state, on a batch of 4: the
    # auxiliary head's second BN normalises [N, 768, 1, 1], and with N = 2 each channel's two
    # values normalise to +-1, so that everything upstream of it gets a gradient of round-off
    torch.manual_seed(AUGMENT_SEED + 2)
    gx = torch.randn(4, 3, 32, 32)
    labels = torch.randint(0, 10, (4,))
    g_masks = draw_droppath(n_masks, 4)
    g_model = copy.deepcopy(augment_init()).train()
    set_forward_compat(g_model, "1.0")
    aux_in = {}
    g_model.aux_head.conv2.register_forward_hook(lambda mod, inp, out: aux_in.update(x=inp[0].detach().clone(),
                                                                                     out=out))
    src = R.FixedDropPath(g_masks)
    g_out, g_aux = g_model(gx, src)
    assert src.used == n_masks
    aux_in["out"].register_hook(lambda g: aux_in.update(gout=g.detach().clone()))
    g_loss = F.cross_entropy(g_out, labels) + 0.4 * F.cross_entropy(g_aux, labels)
    g_loss.backward()
    grads = grads_of(g_model)
    assert set(grads) == {n for n, _ in g_model.named_parameters()}, "every parameter has a gradient"
    # the 2x2 convolution 128->768 maps a 2x2 input to 1x1: its weight gradient is the outer
    # product of the output gradient and the input, summed over the batch (1.5 MB as a tensor,
    # 10 KB as its two factors); the factors reproduce PyTorch's gradient
    aux_x, aux_gout = aux_in["x"], aux_in["gout"]
    assert aux_x.shape[2:] == (2, 2) and aux_gout.shape[2:] == (1, 1)
    rebuilt = torch.einsum("no,nikl->oikl", aux_gout[:, :, 0, 0].double(), aux_x.double())
    err = (rebuilt - grads[PATTERN_PATH].double()).abs().max()
    assert err <= 1e-5 * grads[PATTERN_PATH].abs().max(), f"factors: {err}"
    g_file = {"grad_input": gx, "labels": labels.float(), "loss": scalar(g_loss.detach()),
              **{f"grad_droppath.{k}": m for k, m in enumerate(g_masks)},
              f"grad_factor.input.{PATTERN_PATH}": aux_x, f"grad_factor.gout.{PATTERN_PATH}": aux_gout}
    g_file.update(prefixed("grad.", without_pattern(grads)))

    t = {"input": x, "output": out, "output.modern": out_modern, "aux_output": aux, "eval_output": eval_out}
    t.update(prefixed("param.", without_pattern(before)))
    t.update({f"droppath.{k}": m for k, m in enumerate(masks)})
    t.update(prefixed("after.", running_stats(model)))
    files = ["augment_network.safetensors", "augment_network.grad.safetensors"]
    config = dict(AUGMENT_CONFIG, seed=AUGMENT_SEED, n_droppath_masks=n_masks, input_shape=list(x.shape),
                  files=files, description=(
        "AugmentNetwork. param.<path>: initial state (params + BN running stats) except "
        f"{PATTERN_PATH}, which is generated (see 'generated'); droppath.<k>: per-sample masks (0 or 1/0.8) "
        "in forward order (cell, node, edge; identity edges take none); output/aux_output: train-mode "
        "forward with those masks under PyTorch 1.0 (the auxiliary head's in-place ReLU reaches the final "
        "pooling: the head reads the last cell); output.modern: the same without it; after.<path>: running "
        "stats after it; eval_output: eval-mode forward (running stats, no drop path, no aux) from the "
        "initial state. augment_network.grad.safetensors: a train-mode forward under PyTorch 1.0 from the "
        "initial state on grad_input ([4, ...]) with the masks grad_droppath.<k>; labels; loss = CE(output) + "
        "0.4 CE(aux_output); grad.<path>: its gradient for every parameter except "
        f"{PATTERN_PATH}, whose gradient is sum_n gout[n, o] * input[n, i, kh, kw] over "
        f"grad_factor.input.{PATTERN_PATH} ([N, 128, 2, 2]: the convolution's input) and "
        f"grad_factor.gout.{PATTERN_PATH} ([N, 768, 1, 1]: the gradient of its output)."))
    save(out_dir, files[0], t, config)
    save(out_dir, files[1], g_file, {"see": files[0], "files": files})


# ----------------------------------------------------------------------------------------------
# (d) parameter counts
# ----------------------------------------------------------------------------------------------


def run_augment(model, x):
    return model(x)


def search_keep_all(alphas):
    def run(model, x):
        masks = [torch.ones(a.shape, dtype=torch.bool) for a in alphas.normal]
        return R.search_forward(model, alphas, x, masks, masks)
    return run


# Genotypes transferred to ImageNet in the papers, for the operation counts (the Rust side has them
# by name too).
TRANSFERRED = {
    "pc-darts": "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), "
                "('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), "
                "('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), "
                "('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), "
                "('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",
    "p-darts": "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
               "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], "
               "normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), "
               "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), "
               "('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",
}


def make_param_counts(out_dir):
    res = {"search": [], "augment": [], "imagenet": []}
    for space, layers in (("original", 8), ("original", 14), ("1-skip", 8), ("3-skip", 8)):
        net = R.SearchNetwork(3, 16, 10, layers, space)
        n_ops = len(R.SEARCH_SPACES[space])
        alphas = R.Alphas(4, n_ops)
        ops = R.count_ops(net, (3, 32, 32), search_keep_all(alphas))
        res["search"].append({"space": space, "layers": layers, "init_channels": 16, "n_classes": 10,
                              "input_channels": 3, "weights": R.count_params(net),
                              "alphas": R.count_params(alphas), "input_size": 32,
                              "macs": ops["macs"], "elementwise": ops["elementwise"]})
    rows = [(g, 32, 3, nc) for g in ("darts-v2", "dropnas-cifar10") for nc in (10, 100)]
    rows.append(("dropnas-cifar10", 28, 1, 10))
    for g, size, cin, nc in rows:
        net = R.AugmentNetwork(size, cin, 36, nc, 20, True, g)
        res["augment"].append(dict({"genotype": g, "layers": 20, "init_channels": 36, "n_classes": nc,
                                    "input_size": size, "input_channels": cin,
                                    "with_aux": R.count_params(net), "without_aux": R.count_params(net, "aux_head")},
                                   **R.count_ops(net, (cin, size, size), run_augment)))
    for g, nc in (("darts-v2", 1000), ("dropnas-cifar10", 1000), ("pc-darts", 1000), ("p-darts", 1000),
                  ("darts-v2", 10)):
        net = R.AugmentNetworkImageNet(3, 48, nc, 14, True, TRANSFERRED.get(g, g))
        res["imagenet"].append(dict({"genotype": g, "layers": 14, "init_channels": 48, "n_classes": nc,
                                     "input_size": 224, "input_channels": 3,
                                     "with_aux": R.count_params(net), "without_aux": R.count_params(net, "aux_head")},
                                    **R.count_ops(net, (3, 224, 224), run_augment)))
    res["note"] = ("Trainable parameters only (sum of numel over parameters(); BN running stats excluded). "
                   "without_aux = parameters whose path does not start with 'aux_head'. Operations of one image "
                   "(dropnas_ref.count_ops): macs = multiply-adds of convolutions and linear layers; elementwise = "
                   "BN inputs (x2 when affine), ReLU inputs, pooling inputs and linear biases, as ptflops counts "
                   "them; aux_* = the same for the auxiliary head; the search network with every op kept. "
                   "imagenet: AugmentNetworkImageNet (DARTS' mobile setting) at 224x224.")
    path = os.path.join(out_dir, "param_counts.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print("param_counts.json:", json.dumps(res["search"]), json.dumps(res["augment"]))
    return res


# ----------------------------------------------------------------------------------------------
# (d2) the ImageNet network (mobile setting) and the label-smoothed loss
# ----------------------------------------------------------------------------------------------

IMAGENET_SEED = 6000
# A 224x224 batch is 1.2 MB of float32: generated like the aux head's weight, at scale 1.
INPUT_FORMULA = "x[i] = f32((f64((i*7919 + 13) % 2003) - 1001.0) / 1001.0), i = flat row-major index"
IMAGENET_CONFIG = {"input_size": 224, "c_in": 3, "init_channels": 4, "n_classes": 10, "layers": 3,
                   "auxiliary": True, "genotype": R.NAMED_GENOTYPES["darts-v2"], "genotype_name": "darts-v2",
                   "label_smoothing": 0.1, "aux_weight": 0.4,
                   "generated": {PATTERN_PATH: {"shape": [768, 128, 2, 2], "formula": PATTERN_FORMULA},
                                 "input": {"shape": [2, 3, 224, 224], "formula": INPUT_FORMULA}}}
# Gradients stored: the parts the ImageNet network adds to the CIFAR one (the cells are checked by
# the other fixtures), so that the file stays small.
IMAGENET_GRAD_PREFIXES = ("stem0.", "stem.", "cells.0.preproc0.", "aux_head.", "linear.")


def label_smoothed_ce(logits, y, eps):
    """Cross entropy against (1 - eps) * one_hot + eps / classes, averaged over the batch."""
    log_p = F.log_softmax(logits, dim=1)
    q = torch.full_like(log_p, eps / logits.shape[1])
    q.scatter_add_(1, y.view(-1, 1), torch.full((len(y), 1), 1.0 - eps))
    return -(q * log_p).sum(dim=1).mean()


def make_augment_network_imagenet(out_dir):
    c = IMAGENET_CONFIG
    torch.manual_seed(IMAGENET_SEED)
    model = R.AugmentNetworkImageNet(3, c["init_channels"], c["n_classes"], c["layers"], True, "darts-v2")
    randomise_bn(model)
    with torch.no_grad():
        w = model.aux_head.conv2.weight
        w.copy_(pattern(tuple(w.shape)))
    before = state(model)
    x = pattern((2, 3, 224, 224), scale=1.0)
    torch.manual_seed(IMAGENET_SEED + 1)
    y = torch.randint(0, c["n_classes"], (2,))

    ev = copy.deepcopy(model).eval()
    with torch.no_grad():
        eval_out, eval_aux = ev(x)
    assert eval_aux is None

    # the aux head reads the last of the 3 cells: the in-place ReLU (1.0) reaches the final pooling
    modern = copy.deepcopy(model).train()
    set_forward_compat(modern, "modern")
    with torch.no_grad():
        out_modern, aux_modern = modern(x)

    model.train()
    logits, aux = model(x)
    assert torch.equal(aux.detach(), aux_modern), "the auxiliary output does not depend on the setting"
    assert (logits.detach() - out_modern).abs().max() > 1e-4, "the in-place ReLU must change the output here"
    ls = label_smoothed_ce(logits, y, c["label_smoothing"])
    ls_aux = label_smoothed_ce(aux, y, c["label_smoothing"])
    loss = ls + c["aux_weight"] * ls_aux
    loss.backward()
    grads = {n: g for n, g in grads_of(model).items() if n.startswith(IMAGENET_GRAD_PREFIXES) and n != PATTERN_PATH}

    t = {"labels": y.float(), "output": logits, "output.modern": out_modern, "aux_output": aux,
         "eval_output": eval_out,
         "loss": scalar(loss.detach()), "ls": scalar(ls.detach()), "ls_aux": scalar(ls_aux.detach()),
         "ce": scalar(F.cross_entropy(logits.detach(), y))}
    t.update(prefixed("param.", without_pattern(before)))
    t.update(prefixed("grad.", grads))
    t.update(prefixed("after.", running_stats(model)))
    config = dict(c, seed=IMAGENET_SEED, description=(
        "AugmentNetworkImageNet (DARTS' NetworkImageNet shape) at C=4, 3 cells, 224x224 input (generated, "
        "see 'generated'), with the auxiliary head, under PyTorch 1.0. param.<path>: initial state except the "
        f"generated {PATTERN_PATH}; output/aux_output: train-mode forward (no drop path; the auxiliary head's "
        "in-place ReLU reaches the final pooling: the head reads the last cell); output.modern: the same "
        "without it; eval_output: eval-mode forward "
        "from the initial state; ls, ls_aux: label-smoothed cross entropy (eps 0.1) of output and aux_output; "
        "loss = ls + 0.4 ls_aux; ce: plain cross entropy of output; grad.<path>: gradients of loss for the "
        f"parameters under {list(IMAGENET_GRAD_PREFIXES)} ({PATTERN_PATH} excepted); after.<path>: running "
        "stats after the train-mode forward."))
    save(out_dir, "augment_network_imagenet.safetensors", t, config)


# ----------------------------------------------------------------------------------------------
# (e) two DropNAS search steps
# ----------------------------------------------------------------------------------------------


def make_search_step(out_dir, compat):
    model, alphas = search_init()
    seed = 4001
    torch.manual_seed(seed)
    x = torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 10, (4,))
    w_opt = torch.optim.SGD(model.parameters(), lr=0.0375, momentum=0.9, weight_decay=0)
    a_opt = R.alpha_optimizer(alphas.parameters(), compat)

    steps = [
        # step 0 (A): a few drops
        (hand_masks(4, 8, {(1, 0): [1]}),
         hand_masks(4, 8, {(0, 0): [6], (2, 3): [4]})),
        # step 1 (B): several drops, some of ops kept in A (their weights have momentum, no gradient)
        (hand_masks(4, 8, {(0, 0): [0, 4, 5, 6], (2, 1): [2, 3], (3, 4): [0, 1, 2, 7], (1, 2): [6]}),
         hand_masks(4, 8, {(0, 1): [0, 6], (1, 2): [1], (3, 0): [4, 5, 7], (2, 2): [3, 5]})),
    ]
    param_names = [n for n, _ in model.named_parameters()]

    t = {"input": x, "labels": y.float()}
    t_final = {}
    meta_steps = []
    prev = state(model)
    alphas_at_start = []
    for s, (mn, mr) in enumerate(steps):
        check_masks(mn)
        check_masks(mr)
        alphas_at_start.append([a.detach().clone() for a in list(alphas.normal) + list(alphas.reduce)])
        p = f"step.{s}."
        for i in range(4):
            t[p + f"mask.normal.{i}"] = mn[i]
            t[p + f"mask.reduce.{i}"] = mr[i]
        rec = R.search_step(model, alphas, w_opt, a_opt, x, y, mn, mr, compat=compat)
        now = state(model)
        for g in rec["alpha_grad_1"]:  # no alpha gradient near the 1e-7 decay threshold
            a = g.abs()
            assert not bool(((a > 1e-8) & (a < 1e-5)).any()), a
        for key in ("alpha_p2", "alpha_p4", "alpha_p5"):
            for i in range(4):
                t[p + f"{key}.normal.{i}"] = rec[key][i]
                t[p + f"{key}.reduce.{i}"] = rec[key][4 + i]
        for i in range(4):
            for kind, off in (("normal", 0), ("reduce", 4)):
                t[p + f"alpha_decay_mask.{kind}.{i}"] = rec["alpha_decay_mask"][off + i]
                t[p + f"ratio.{kind}.{i}"] = rec["ratios"][off + i].float()
                t[p + f"k.{kind}.{i}"] = rec["k"][off + i].float()
        for key in ("loss_1", "loss_2", "norm_1", "norm_2"):
            t[p + key] = scalar(rec[key])
        if s == len(steps) - 1:  # after the last step: weights and every BN buffer
            t_final.update(prefixed(p + "param.", now))
        else:  # after earlier steps: the weights
            t.update(prefixed(p + "param.", {n: now[n] for n in param_names}))
        moved = {n for n in param_names if not torch.equal(now[n], prev[n])}
        zero_grad = [n for n in rec["grad_present"] if n not in rec["decay_selected"]]
        meta_steps.append({
            "loss_1": rec["loss_1"], "loss_2": rec["loss_2"], "norm_1": rec["norm_1"], "norm_2": rec["norm_2"],
            "decay_selected": rec["decay_selected"],
            "no_grad": [n for n in param_names if n not in rec["grad_present"]],
            "zero_grad": zero_grad,
            "moved_without_gradient": [n for n in zero_grad if n in moved],
            "unmoved": [n for n in param_names if n not in moved],
        })
        prev = now

    dropped_in_b = "cells.0.dag.0.0.ops.0.first.depthwise.weight"
    if compat == "1.0":
        # step B: weights of ops dropped in B (zero gradient) but used in A still move by momentum
        mwg = meta_steps[1]["moved_without_gradient"]
        assert dropped_in_b in mwg, mwg
        assert not meta_steps[1]["unmoved"]
    else:
        # no gradient at all: SGD leaves them alone, momentum or not
        assert dropped_in_b in meta_steps[1]["no_grad"] and dropped_in_b in meta_steps[1]["unmoved"]
        assert set(meta_steps[1]["unmoved"]) == set(meta_steps[1]["no_grad"])
    # weights never used so far have no gradient and do not move
    assert "cells.0.dag.1.0.ops.1.first.depthwise.weight" in meta_steps[0]["no_grad"]
    assert "cells.0.dag.1.0.ops.1.first.depthwise.weight" in meta_steps[0]["unmoved"]
    assert set(meta_steps[0]["unmoved"]) == set(meta_steps[0]["no_grad"])
    # the alpha adjustment restores the kept probability mass of every edge (to round-off)
    for s, (mn, mr) in enumerate(steps):
        after = list(t[f"step.{s}.alpha_p5.normal.{i}"] for i in range(4)) + \
            list(t[f"step.{s}.alpha_p5.reduce.{i}"] for i in range(4))
        r0 = R.edge_ratios(alphas_at_start[s], list(mn) + list(mr))
        r1 = R.edge_ratios(after, list(mn) + list(mr))
        for a0, a1 in zip(r0, r1):
            assert torch.allclose(a0, a1, rtol=0, atol=2e-6), (s, a0, a1)

    files = [fixture_name("search_step", compat), fixture_name("search_step.1", compat)]
    adam = ("Adam as PyTorch 1.0 (eps added to sqrt(v) before the bias correction)" if compat == "1.0"
            else "Adam as PyTorch >= 1.6 (eps added to sqrt(v_hat))")
    zero = "PyTorch 1.0 (zeros, not None)" if compat == "1.0" else "PyTorch >= 2.0 (None)"
    config = dict(SEARCH_CONFIG, seed=seed, initial_state="search_network.safetensors", batch=4,
                  input_shape=list(x.shape), torch_compat=compat,
                  w_optimizer={"type": "SGD", "lr": 0.0375, "momentum": 0.9, "dampening": 0, "weight_decay": 0},
                  a_optimizer={"type": adam, "lr": 3e-4, "betas": [0.5, 0.999], "eps": 1e-8, "weight_decay": 0},
                  clip=3.0, w_decay=3e-4, a_decay=1e-3, zero_grad=zero,
                  steps=meta_steps, files=files, description=(
        "Two DropNAS one-level steps from the initial state param.* / alpha.* of search_network.safetensors. "
        "input, labels; step.<s>.mask.*.<i>: keep masks; step.<s>.{loss_1,loss_2,norm_1,norm_2}: [1] scalars "
        "(float64 in 'steps'); step.<s>.alpha_p2/alpha_p4/alpha_p5.*.<i>: alphas after phases 2, 4, 5; "
        "step.<s>.alpha_decay_mask.*.<i>: 1 where |grad of loss_1| > 1e-7; step.<s>.ratio.*.<i>: ratio_e per "
        "edge; step.<s>.k.*.<i>: the shift added to the kept alphas (0 where nothing dropped); "
        "step.0.param.<path>: the weights after step 0; step.1.param.<path> (search_step.1.safetensors): "
        "weights and every BN buffer after step 1. steps[s]: decay_selected: weight paths in loss_2; "
        "no_grad: weights whose gradient is None after phase 1 (never used so far: skipped by clip and SGD); "
        "zero_grad: weights with a zero gradient after phase 1 (used before, dropped now: SGD momentum still "
        "moves them); moved_without_gradient: those of zero_grad that moved; unmoved: weights unchanged by "
        "the step."))
    save(out_dir, files[0], t, config)
    save(out_dir, files[1], t_final, {"see": files[0], "files": files})
    return config


# ----------------------------------------------------------------------------------------------
# (e2) two DropNAS steps in the 1-skip and 3-skip spaces
# ----------------------------------------------------------------------------------------------

SPACE_SEEDS = {"1-skip": 7000, "3-skip": 7100}


def make_search_step_space(out_dir, space):
    """Two steps in `space` under PyTorch 1.0, from an initial state stored in the same file. Small:
    the weights after the last step only (the BatchNorm buffers and the weights after every step
    are covered by search_step.*, whose mechanics are those of every space)."""
    seed = SPACE_SEEDS[space]
    torch.manual_seed(seed)
    n_ops = len(R.SEARCH_SPACES[space])
    model = R.SearchNetwork(3, SEARCH_C, 10, 3, space).train()
    randomise_bn(model.stem)
    alphas = R.Alphas(4, n_ops)
    with torch.no_grad():
        for p in alphas.parameters():
            p.add_(0.5 * torch.randn_like(p))
    t = search_initial_state(model, alphas)
    x = torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 10, (4,))
    w_opt = torch.optim.SGD(model.parameters(), lr=0.0375, momentum=0.9, weight_decay=0)
    a_opt = R.alpha_optimizer(alphas.parameters(), "1.0")
    params, free = R.space_groups(space)
    # drops in both groups, on edges of every node; the last op of each group always kept
    steps = [
        (hand_masks(4, n_ops, {(0, 0): [params[0]], (2, 1): free[:-1], (3, 4): params[1:3]}),
         hand_masks(4, n_ops, {(1, 2): [params[2], free[0]], (3, 0): params[:3]})),
        (hand_masks(4, n_ops, {(0, 1): params[:2] + free[:-1], (1, 0): [params[3]]}),
         hand_masks(4, n_ops, {(2, 3): [free[0]], (3, 2): [params[0], params[2]], (0, 0): [params[1]]})),
    ]
    param_names = [n for n, _ in model.named_parameters()]
    t.update({"input": x, "labels": y.float()})
    meta_steps = []
    for s, (mn, mr) in enumerate(steps):
        check_masks(mn, space)
        check_masks(mr, space)
        p = f"step.{s}."
        for i in range(4):
            t[p + f"mask.normal.{i}"] = mn[i]
            t[p + f"mask.reduce.{i}"] = mr[i]
        rec = R.search_step(model, alphas, w_opt, a_opt, x, y, mn, mr, compat="1.0")
        for key in ("alpha_p2", "alpha_p4", "alpha_p5"):
            for i in range(4):
                t[p + f"{key}.normal.{i}"] = rec[key][i]
                t[p + f"{key}.reduce.{i}"] = rec[key][4 + i]
        for i in range(4):
            for kind, off in (("normal", 0), ("reduce", 4)):
                t[p + f"alpha_decay_mask.{kind}.{i}"] = rec["alpha_decay_mask"][off + i]
                t[p + f"ratio.{kind}.{i}"] = rec["ratios"][off + i].float()
                t[p + f"k.{kind}.{i}"] = rec["k"][off + i].float()
        for key in ("loss_1", "loss_2", "norm_1", "norm_2"):
            t[p + key] = scalar(rec[key])
        meta_steps.append({"loss_1": rec["loss_1"], "loss_2": rec["loss_2"], "norm_1": rec["norm_1"],
                           "norm_2": rec["norm_2"], "decay_selected": rec["decay_selected"]})
    now = state(model)
    t_final = prefixed(f"step.{len(steps) - 1}.param.", {n: now[n] for n in param_names})
    files = [f"search_step_{space}.safetensors", f"search_step_{space}.1.safetensors"]
    config = dict(SEARCH_CONFIG, space=space, ops=R.SEARCH_SPACES[space], seed=seed, batch=4,
                  input_shape=list(x.shape), torch_compat="1.0",
                  w_optimizer={"type": "SGD", "lr": 0.0375, "momentum": 0.9, "dampening": 0, "weight_decay": 0},
                  a_optimizer={"type": "Adam as PyTorch 1.0", "lr": 3e-4, "betas": [0.5, 0.999], "eps": 1e-8,
                               "weight_decay": 0},
                  clip=3.0, w_decay=3e-4, a_decay=1e-3, steps=meta_steps, files=files, description=(
        f"Two DropNAS one-level steps in the {space} space under PyTorch 1.0 (C={SEARCH_C}, 3 cells). "
        "param.<path> / alpha.{normal,reduce}.<i>: the initial state (the search cells' BN buffers at "
        "PyTorch's defaults); the other keys as in search_step.safetensors, except that the weights are "
        f"stored after the last step only (step.{len(steps) - 1}.param.<path>, no BN buffers: in {files[1]})."))
    save(out_dir, files[0], t, config)
    save(out_dir, files[1], t_final, {"see": files[0], "files": files})


# ----------------------------------------------------------------------------------------------
# (f) two augment steps
# ----------------------------------------------------------------------------------------------


def make_augment_step(out_dir, compat):
    model = augment_init().train()
    set_forward_compat(model, compat)
    seed = 5000
    torch.manual_seed(seed)
    x = torch.randn(4, 3, 32, 32)
    y = torch.randint(0, 10, (4,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    n_masks = n_droppath(model)
    w0 = model.aux_head.conv2.weight.detach().clone()
    param_names = [n for n, _ in model.named_parameters()]

    def stored(prefix, buffers):
        st = state(model)
        w = st.pop(PATTERN_PATH)
        if not buffers:
            st = {n: st[n] for n in param_names if n != PATTERN_PATH}
        out = prefixed(prefix + "param.", st)
        out[prefix + "slice16." + PATTERN_PATH] = w[:16].clone()
        out[prefix + "delta_rowsum." + PATTERN_PATH] = (w.double() - w0.double()).sum(dim=(1, 2, 3)).float()
        return out

    t = {"input": x, "labels": y.float()}
    t_final = {}
    meta_steps = []
    for s in range(2):
        p = f"step.{s}."
        masks = draw_droppath(n_masks, 4)
        t.update({p + f"droppath.{k}": m for k, m in enumerate(masks)})
        opt.zero_grad(set_to_none=compat != "1.0")
        src = R.FixedDropPath(masks)
        logits, aux = model(x, src)
        assert src.used == n_masks
        ce = F.cross_entropy(logits, y)
        ce_aux = F.cross_entropy(aux, y)
        loss = ce + 0.4 * ce_aux
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        vals = {"loss": float(loss.detach()), "ce": float(ce.detach()), "ce_aux": float(ce_aux.detach()),
                "norm": float(norm)}
        t.update({p + k: scalar(v) for k, v in vals.items()})
        if s == 1:
            t_final.update(stored(p, buffers=True))
        else:
            t.update(stored(p, buffers=False))
        meta_steps.append(vals)
    files = [fixture_name("augment_step", compat), fixture_name("augment_step.1", compat)]
    config = dict(AUGMENT_CONFIG, seed=seed, initial_state="augment_network.safetensors", aux_weight=0.4,
                  n_params=R.count_params(model),
                  batch=4, n_droppath_masks=n_masks, torch_compat=compat,
                  aux_relu_inplace=compat == "1.0",
                  optimizer={"type": "SGD", "lr": 0.05, "momentum": 0.9, "dampening": 0, "weight_decay": 3e-4},
                  clip=3.0, steps=meta_steps, files=files, description=(
        "Two augment training steps (train mode, loss = CE + 0.4 CE_aux, clip all parameters to global norm "
        "3, SGD) from the initial state param.* of augment_network.safetensors (plus the generated "
        f"{PATTERN_PATH}). input, labels; step.<s>.droppath.<k>: masks in forward order; "
        "step.<s>.{loss,ce,ce_aux,norm}: [1] scalars; step.0.param.<path>: the parameters after step 0; "
        "step.1.param.<path> (augment_step.1.safetensors): parameters and BN buffers after step 1; in both, "
        f"{PATTERN_PATH} is replaced by step.<s>.slice16.{PATTERN_PATH} (output channels 0..16) and "
        f"step.<s>.delta_rowsum.{PATTERN_PATH} ([768]: sum over in/kh/kw of (after - initial), in float64)."))
    save(out_dir, files[0], t, config)
    save(out_dir, files[1], t_final, {"see": files[0], "files": files})


# ----------------------------------------------------------------------------------------------
# (g) the alphas' Adam under both settings
# ----------------------------------------------------------------------------------------------


def make_adam(out_dir):
    """Six Adam steps on a [4, 8] alpha-like matrix with gradients from 1e-1 down to 1e-10 (and zeros,
    as for dropped ops): where v is tiny the two epsilon placements differ by up to the whole update."""
    torch.manual_seed(6000)
    p0 = 1e-3 * torch.randn(4, 8)
    scale = torch.tensor([10.0 ** -(1 + (c % 8) * 9 / 7) for c in range(8)])[None, :]
    grads = []
    for t in range(6):
        g = torch.randn(4, 8) * scale
        g[t % 4, :] = 0.0  # one row without gradient per step (a dropped op's alpha: zero gradient)
        grads.append(g)
    tensors = {"param": p0, **{f"grad.{t}": g for t, g in enumerate(grads)}}
    for compat in R.COMPATS:
        p = torch.nn.Parameter(p0.clone())
        opt = R.alpha_optimizer([p], compat, lr=3e-4)
        for t, g in enumerate(grads):
            p.grad = g.clone()
            opt.step()
            key = f"after.{t}" if compat == "1.0" else f"after.modern.{t}"
            tensors[key] = p.detach().clone()
    diff = (tensors["after.5"] - tensors["after.modern.5"]).abs().max()
    assert diff > 1e-5, f"the two placements must differ clearly here ({diff})"
    config = {"lr": 3e-4, "betas": [0.5, 0.999], "eps": 1e-8, "steps": len(grads), "seed": 6000,
              "description": (
                  "The alphas' Adam, six steps from param ([4, 8]) with gradients grad.<t>. after.<t>: the parameter "
                  "after step t under PyTorch 1.0's Adam (eps added to sqrt(v) before the bias correction, "
                  "step size lr*sqrt(1-beta2^t)/(1-beta1^t)); after.modern.<t>: under PyTorch >= 1.6's "
                  "(torch.optim.Adam). Column c's gradients are N(0,1) * 10^-(1 + 9c/7); row t % 4 gets a "
                  "zero gradient in step t.")}
    save(out_dir, "adam.safetensors", tensors, config)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_ops(args.out)
    make_search_network(args.out)
    make_augment_network(args.out)
    make_param_counts(args.out)
    make_augment_network_imagenet(args.out)
    make_adam(args.out)
    for space in SPACE_SEEDS:
        make_search_step_space(args.out, space)
    for compat in R.COMPATS:
        make_search_step(args.out, compat)
        make_augment_step(args.out, compat)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"total: {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
