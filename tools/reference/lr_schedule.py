"""Learning rates of the original's schedule, for the Rust schedule test.

PyTorch 1.0's CosineAnnealingLR.get_lr() used the closed form (newer PyTorch steps a recursive
form that drifts in the last digits); the closed form is `_get_closed_form_lr()` today.
Epoch e (from 0) trains at position e + 1, since the original steps at the start of each epoch.
"""
import warnings

import torch

warnings.simplefilter("ignore")


def step_closed_form(lr, gamma, epochs):
    """DARTS' ImageNet schedule: StepLR(step_size=1, gamma), stepped at the start of each epoch."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=gamma)
    out = []
    for _ in range(epochs):
        sched.step()
        out.append(sched._get_closed_form_lr()[0])
    return out


def closed_form(lr_max, lr_min, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr_max)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=lr_min)
    out = []
    for _ in range(epochs):
        sched.step()
        out.append(sched._get_closed_form_lr()[0])
    return out


if __name__ == "__main__":
    lrs = closed_form(0.0375, 0.0015, 76)
    print("search:", [(e, repr(lrs[e])) for e in (0, 1, 37, 74, 75)])
    lrs = closed_form(0.05, 0.0, 600)
    print("augment:", [(e, repr(lrs[e])) for e in (0, 299, 598, 599)])
    lrs = step_closed_form(0.1, 0.97, 250)
    print("imagenet step:", [(e, repr(lrs[e])) for e in (0, 1, 100, 249)])
