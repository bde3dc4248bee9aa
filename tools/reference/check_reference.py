"""Self-checks of the reference and of the committed fixtures.

    python3 tools/reference/check_reference.py

1. The reference against itself: masked softmax with every op kept = plain softmax mixture;
   a hand-written functional SepConv/BN (biased variance to normalise, unbiased in the running
   estimate) = the module; the alpha adjustment restores the kept mass; genotype parsing of
   the flat and nested forms; published parameter sizes (DARTS V2 ~3.3M, DropNAS ~3.8M).
2. The fixtures are self-sufficient: a fresh model loaded from the stored keys only (plus the
   documented defaults and the generated aux weight) reproduces every stored result, the way a
   test in another language has to use them; under both PyTorch settings ("1.0", "modern").
3. The PyTorch 1.0 quirks: Adam against the update written out by hand, and against today's
   Adam where the two must agree; BatchNorm's U(0, 1) weights; the in-place ReLU's effect.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dropnas_ref as R  # noqa: E402
import make_fixtures as MF  # noqa: E402

FIX = os.path.normpath(os.path.join(HERE, "..", "fixtures"))
torch.set_num_threads(2)


def load(name):
    out = {}
    with safe_open(os.path.join(FIX, name), "pt") as f:
        meta = json.loads(f.metadata()["config"])
        for k in f.keys():
            out[k] = f.get_tensor(k)
    return out, meta


def close(a, b, tol=1e-5, what=""):
    err = (a - b).abs().max().item() if a.numel() else 0.0
    scale = max(1.0, b.abs().max().item() if b.numel() else 0.0)
    assert err <= tol * scale, f"{what}: max abs err {err}"


def load_into(model, t, prefix, allowed_missing=lambda k: False, extra=None):
    sd = model.state_dict()
    used = 0
    with torch.no_grad():
        for k, v in sd.items():
            if k.endswith("num_batches_tracked"):
                continue
            key = prefix + k
            if key in t:
                v.copy_(t[key])
                used += 1
            elif extra is not None and k in extra:
                v.copy_(extra[k])
            else:
                assert allowed_missing(k), f"missing {key}"
    n_stored = sum(1 for k in t if k.startswith(prefix))
    assert used == n_stored, (used, n_stored)


# ----------------------------------------------------------------------------------------------
# 1. reference against itself
# ----------------------------------------------------------------------------------------------


def check_mixed_op():
    torch.manual_seed(0)
    m = R.MixedOp("original", 4, 1).train()
    x = torch.randn(2, 4, 8, 8)
    a = torch.randn(8)
    w = R.mixing_weights(a[None], torch.ones(1, 8, dtype=torch.bool))[0]
    y = m(x, w, [True] * 8)
    ref = sum(p * op(x) for p, op in zip(torch.softmax(a, 0), m.ops))
    close(y, ref, 1e-6, "mixed op, all kept")
    keep = torch.tensor([True, False, True, True, False, False, True, True])
    w = R.mixing_weights(a[None], keep[None])[0]
    e = torch.exp(a) * keep
    close(w, e / e.sum(), 1e-6, "masked softmax")
    assert float(w[~keep].abs().sum()) == 0.0


def functional_bn_train(x, rm, rv, w=None, b=None, momentum=0.1, eps=1e-5):
    n = x.numel() / x.shape[1]
    mean = x.mean(dim=(0, 2, 3))
    var_b = ((x - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
    y = (x - mean[None, :, None, None]) / torch.sqrt(var_b[None, :, None, None] + eps)
    if w is not None:
        y = y * w[None, :, None, None] + b[None, :, None, None]
    return y, (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var_b * n / (n - 1)


def check_functional_sepconv():
    t, meta = load("ops.safetensors")
    for case in ("sep_conv_5x5.s2", "dil_conv_3x3.s1"):
        p = case + ".param."
        x = t[case + ".input"]
        y = x
        parts = ["first.", "second."] if case.startswith("sep") else [""]
        k = int(case.split("_")[2][0])
        stride = int(case[-1])
        for i, part in enumerate(parts):
            dil = 1 if case.startswith("sep") else 2
            pad = k // 2 if dil == 1 else (2 if k == 3 else 4)
            s = stride if i == 0 else 1
            y = F.conv2d(F.relu(y), t[p + part + "depthwise.weight"], stride=s, padding=pad, dilation=dil, groups=4)
            y = F.conv2d(y, t[p + part + "pointwise.weight"])
            y, rm, rv = functional_bn_train(y, t[p + part + "bn.running_mean"], t[p + part + "bn.running_var"],
                                            t[p + part + "bn.weight"], t[p + part + "bn.bias"])
            close(rm, t[case + ".after." + part + "bn.running_mean"], 1e-5, case + " running_mean")
            close(rv, t[case + ".after." + part + "bn.running_var"], 1e-5, case + " running_var")
        close(y, t[case + ".output"], 1e-4, case + " functional")


def check_alpha_adjust():
    torch.manual_seed(1)
    a = [torch.randn(3, 8) for _ in range(2)]
    m = [torch.rand(3, 8) > 0.3 for _ in range(2)]
    for x in m:
        x[:, 0] = True
    r = R.edge_ratios(a, m)
    a2 = [x + 0.3 * torch.randn_like(x) for x in a]
    R.adjust_alphas(a2, m, r)
    for r0, r1 in zip(r, R.edge_ratios(a2, m)):
        close(r1, r0, 1e-6, "alpha adjustment")


def check_genotypes():
    g = R.parse_genotype("dropnas-cifar10")
    assert len(g.normal) == 4 and g.normal[0] == [("sep_conv_3x3", 1), ("skip_connect", 0)]
    assert g.normal_concat == [2, 3, 4, 5]
    v2 = R.parse_genotype("darts-v2")
    assert v2.reduce[1] == [("skip_connect", 2), ("max_pool_3x3", 1)]
    flat = R.parse_genotype("Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
                            "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4), "
                            "('dil_conv_3x3', 1)],\n normal_concat = [2, 3, 4, 5], reduce=" + repr(
                                [e for node in g.reduce for e in node]) + ", reduce_concat=range(2, 6))")
    assert flat == g, (flat, g)
    al = R.Alphas(4, 8)
    with torch.no_grad():
        al.normal[0].copy_(torch.tensor([[0.1, 0.2, 0, 0, 0, 0, 0, 9.0], [0, 0, 0, 0.5, 0, 0, 0, 0]]))
    d = R.derive_genotype(al)
    assert d.normal[0] == [("dil_conv_5x5", 1), ("sep_conv_5x5", 0)], d.normal[0]


def check_param_sizes():
    with open(os.path.join(FIX, "param_counts.json")) as f:
        pc = json.load(f)
    for row in pc["augment"]:
        if row["input_size"] == 32 and row["n_classes"] == 10:
            target = {"darts-v2": 3.3e6, "dropnas-cifar10": 3.8e6}[row["genotype"]]
            assert abs(row["without_aux"] - target) / target < 0.03, row
    assert pc["search"][0]["weights"] == 1930618  # the usual DARTS search network (8 cells, C=16)


# ----------------------------------------------------------------------------------------------
# 2. fixtures are self-sufficient
# ----------------------------------------------------------------------------------------------


def check_ops_fixture():
    t, meta = load("ops.safetensors")
    for case, c in meta["cases"].items():
        if c["op"] == "std_conv":
            m = R.StdConv(4, 6, True)
        elif c["op"] == "factorized_reduce":
            m = R.FactorizedReduce(4, 6, True)
        else:
            m = R.make_op(c["op"], 4, c["stride"], True)
        load_into(m, t, case + ".param.")
        m.train()
        x = t[case + ".input"].clone().requires_grad_(True)
        y = m(x)
        (y * t[case + ".gout"]).sum().backward()
        close(y, t[case + ".output"], 1e-6, case)
        close(x.grad, t[case + ".grad_input"], 1e-6, case + " grad_input")
        for n, p in m.named_parameters():
            close(p.grad, t[f"{case}.grad.{n}"], 1e-6, f"{case} grad {n}")
        for k, v in MF.running_stats(m).items():
            close(v, t[f"{case}.after.{k}"], 1e-6, f"{case} after {k}")


def fresh_search(t):
    model = R.SearchNetwork(3, MF.SEARCH_C, 10, 3, "original").train()
    # cell BN buffers: documented defaults (mean 0, var 1), which a fresh BN has
    load_into(model, t, "param.", allowed_missing=lambda k: k.startswith("cells.") and "running_" in k)
    alphas = R.Alphas(4, 8)
    with torch.no_grad():
        for i in range(4):
            alphas.normal[i].copy_(t[f"alpha.normal.{i}"])
            alphas.reduce[i].copy_(t[f"alpha.reduce.{i}"])
    return model, alphas


def masks_of(t, prefix):
    return ([t[f"{prefix}mask.normal.{i}"].bool() for i in range(4)],
            [t[f"{prefix}mask.reduce.{i}"].bool() for i in range(4)])


def check_search_network_fixture():
    t, meta = load("search_network.safetensors")
    g, _ = load("search_network.grad.safetensors")
    model, alphas = fresh_search(t)
    mn, mr = masks_of(t, "")
    y = R.search_forward(model, alphas, t["input"], mn, mr)
    loss = F.cross_entropy(y, t["labels"].long())
    loss.backward()
    close(y, t["output"], 1e-6, "search logits")
    for n, p in model.named_parameters():
        if p.grad is None:
            assert "grad." + n not in g and n in meta["params_without_grad"], n
        else:
            close(p.grad, g["grad." + n], 1e-5, "search grad " + n)
    for i in range(4):
        close(alphas.normal[i].grad, t[f"grad.alpha.normal.{i}"], 1e-6, "alpha grad")
        close(alphas.reduce[i].grad, t[f"grad.alpha.reduce.{i}"], 1e-6, "alpha grad")


def check_search_step_fixture(compat):
    t0, _ = load("search_network.safetensors")
    t, meta = load(MF.fixture_name("search_step", compat))
    t1, _ = load(MF.fixture_name("search_step.1", compat))
    assert meta["torch_compat"] == compat
    model, alphas = fresh_search(t0)
    w_opt = torch.optim.SGD(model.parameters(), lr=0.0375, momentum=0.9, weight_decay=0)
    a_opt = R.alpha_optimizer(alphas.parameters(), compat)
    for s in range(2):
        p = f"step.{s}."
        mn, mr = masks_of(t, p)
        rec = R.search_step(model, alphas, w_opt, a_opt, t["input"], t["labels"].long(), mn, mr, compat=compat)
        for k in ("loss_1", "loss_2", "norm_1", "norm_2"):
            assert abs(rec[k] - meta["steps"][s][k]) <= 1e-6 * max(1, abs(rec[k])), (k, rec[k])
        assert rec["decay_selected"] == meta["steps"][s]["decay_selected"]
        for ph in ("alpha_p2", "alpha_p4", "alpha_p5"):
            for i in range(4):
                close(rec[ph][i], t[f"{p}{ph}.normal.{i}"], 1e-6, ph)
                close(rec[ph][4 + i], t[f"{p}{ph}.reduce.{i}"], 1e-6, ph)
        src = t if s == 0 else t1
        for k, v in MF.state(model).items():
            if s == 0 and "running_" in k:
                continue
            close(v, src[p + "param." + k], 1e-6, f"step {s} {k}")


def fresh_augment(t, meta):
    model = R.AugmentNetwork(32, 3, 4, 10, 3, True, meta["genotype"])
    gen = {MF.PATTERN_PATH: MF.pattern(tuple(meta["generated"][MF.PATTERN_PATH]["shape"]))}
    load_into(model, t, "param.", extra=gen)
    return model


def check_augment_network_fixture(compat):
    t, meta = load("augment_network.safetensors")
    model = fresh_augment(t, meta)
    ev = copy.deepcopy(model).eval()
    key = "output" if compat == "1.0" else "output.modern"
    with torch.no_grad():
        close(ev(t["input"])[0], t["eval_output"], 1e-5, "augment eval")
        model.train()
        MF.set_forward_compat(model, compat)
        masks = [t[f"droppath.{k}"] for k in range(meta["n_droppath_masks"])]
        out, aux = model(t["input"], R.FixedDropPath(masks))
    close(out, t[key], 1e-5, "augment train " + compat)
    close(aux, t["aux_output"], 1e-5, "augment aux")
    other = "output.modern" if compat == "1.0" else "output"
    assert (t[key] - t[other]).abs().max() > 1e-4, "the two settings' outputs must differ on this network"


def check_augment_step_fixture(compat):
    t, meta = load("augment_network.safetensors")
    ts, ms = load(MF.fixture_name("augment_step", compat))
    ts1, _ = load(MF.fixture_name("augment_step.1", compat))
    assert ms["torch_compat"] == compat
    model = fresh_augment(t, meta).train()
    MF.set_forward_compat(model, compat)
    w0 = model.aux_head.conv2.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    for s in range(2):
        p = f"step.{s}."
        masks = [ts[f"{p}droppath.{k}"] for k in range(ms["n_droppath_masks"])]
        opt.zero_grad(set_to_none=compat != "1.0")
        logits, aux = model(ts["input"], R.FixedDropPath(masks))
        y = ts["labels"].long()
        loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        assert abs(float(loss.detach()) - ms["steps"][s]["loss"]) < 1e-5 and abs(float(norm) - ms["steps"][s]["norm"]) < 1e-5
        src = ts if s == 0 else ts1
        for k, v in MF.state(model).items():
            if k == MF.PATTERN_PATH:
                close(v[:16], src[p + "slice16." + k], 1e-6, k)
                close((v.double() - w0.double()).sum(dim=(1, 2, 3)).float(), src[p + "delta_rowsum." + k], 1e-5, k)
            elif s == 0 and "running_" in k:
                continue
            else:
                close(v, src[p + "param." + k], 1e-6, f"augment step {s} {k}")


# ----------------------------------------------------------------------------------------------
# 3. PyTorch 1.0's quirks
# ----------------------------------------------------------------------------------------------


def check_adam_pt10():
    """AdamPt10 against PyTorch 1.0's update written out in float64 by hand, and against today's
    Adam with eps = 0 (where the two placements agree)."""
    g_seq = [torch.tensor([0.3, -1e-4, 2.0, 0.0]), torch.tensor([-0.1, 2e-4, 1.0, 0.0]),
             torch.tensor([0.05, 0.0, -3.0, 1e-6])]
    p = torch.nn.Parameter(torch.tensor([0.1, -0.2, 0.0, 1.0]))
    opt = R.AdamPt10([p], lr=3e-4, betas=(0.5, 0.999), eps=1e-8)
    want = [0.1, -0.2, 0.0, 1.0]
    m = [0.0] * 4
    v = [0.0] * 4
    for t, g in enumerate(g_seq, start=1):
        p.grad = g.clone()
        opt.step()
        step_size = 3e-4 * math.sqrt(1 - 0.999 ** t) / (1 - 0.5 ** t)
        for i in range(4):
            gi = float(g[i])
            m[i] = 0.5 * m[i] + 0.5 * gi
            v[i] = 0.999 * v[i] + 0.001 * gi * gi
            want[i] -= step_size * m[i] / (math.sqrt(v[i]) + 1e-8)
        for i in range(4):
            assert abs(float(p.detach()[i]) - want[i]) <= 1e-7 * max(1.0, abs(want[i])), (t, i, float(p.detach()[i]), want[i])
    # where v is tiny (here 1e-4 of a gradient) the placement matters most: 1.0 moves less
    q = torch.nn.Parameter(torch.zeros(1))
    r = torch.nn.Parameter(torch.zeros(1))
    a, b = R.AdamPt10([q], lr=1.0, betas=(0.5, 0.999), eps=1e-8), torch.optim.Adam([r], lr=1.0, betas=(0.5, 0.999))
    q.grad = torch.tensor([1e-9])
    r.grad = torch.tensor([1e-9])
    a.step()
    b.step()
    assert abs(float(q.detach())) < 0.1 * abs(float(r.detach())), (float(q.detach()), float(r.detach()))
    # with eps = 0 they are the same algorithm
    torch.manual_seed(3)
    x = torch.nn.Parameter(torch.randn(50))
    y = torch.nn.Parameter(x.detach().clone())
    a, b = R.AdamPt10([x], lr=1e-2, betas=(0.5, 0.999), eps=0.0), torch.optim.Adam([y], lr=1e-2, betas=(0.5, 0.999), eps=0.0)
    for _ in range(5):
        g = torch.randn(50)
        x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
    close(x.detach(), y.detach(), 1e-6, "Adam 1.0 vs today's with eps 0")


def check_adam_fixture():
    t, meta = load("adam.safetensors")
    for compat in R.COMPATS:
        p = torch.nn.Parameter(t["param"].clone())
        opt = R.alpha_optimizer([p], compat, lr=meta["lr"])
        for s in range(meta["steps"]):
            p.grad = t[f"grad.{s}"].clone()
            opt.step()
            key = f"after.{s}" if compat == "1.0" else f"after.modern.{s}"
            assert torch.equal(p.detach(), t[key]), (compat, s)


def check_bn_init():
    torch.manual_seed(0)
    net = R.AugmentNetwork(32, 3, 16, 10, 8, True, "dropnas-cifar10", compat="1.0")
    w = torch.cat([m.weight.detach() for m in R.bn_modules(net) if m.affine])
    assert w.numel() > 5000 and float(w.min()) >= 0.0 and float(w.max()) < 1.0, (w.min(), w.max())
    assert abs(float(w.mean()) - 0.5) < 0.02, float(w.mean())
    net = R.AugmentNetwork(32, 3, 16, 10, 8, True, "dropnas-cifar10", compat="modern")
    assert all(bool((m.weight == 1).all()) for m in R.bn_modules(net) if m.affine)


def main():
    checks = [check_mixed_op, check_functional_sepconv, check_alpha_adjust, check_genotypes, check_param_sizes,
              check_ops_fixture, check_search_network_fixture, check_adam_pt10, check_adam_fixture, check_bn_init]
    for compat in R.COMPATS:
        for f in (check_search_step_fixture, check_augment_network_fixture, check_augment_step_fixture):
            checks.append(lambda f=f, compat=compat: f(compat))
            checks[-1].__name__ = f"{f.__name__}({compat})"
    for f in checks:
        f()
        print("ok", f.__name__)
    print("all reference checks passed")


if __name__ == "__main__":
    main()
