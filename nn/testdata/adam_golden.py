#!/usr/bin/python3
"""Writes adam_golden.json: parameters after each step of torch.optim.Adam / AdamW.

Run with Debian's python3-torch: /usr/bin/python3 nn/testdata/adam_golden.py
Inputs are formulas both sides compute: p0[i] = 0.5*sin(0.37*i + 1) and, at step s (0-based),
g[i] = 0.1*cos(0.11*i*(s+1)) - 0.02, each evaluated in float64 and rounded to float32.
"""
import json, math, os
import torch

N, STEPS = 37, 6
def p0(): return torch.tensor([0.5 * math.sin(0.37 * i + 1) for i in range(N)], dtype=torch.float64).float()
def grad(s): return torch.tensor([0.1 * math.cos(0.11 * i * (s + 1)) - 0.02 for i in range(N)], dtype=torch.float64).float()

cases = []
for name, cls, wd in [("adam", torch.optim.Adam, 0.0), ("adam-l2", torch.optim.Adam, 0.1), ("adamw", torch.optim.AdamW, 0.1)]:
    p = torch.nn.Parameter(p0())
    opt = cls([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    steps = []
    for s in range(STEPS):
        p.grad = grad(s)
        opt.step()
        steps.append([float(x) for x in p.detach()])
    cases.append({"name": name, "decoupled": cls is torch.optim.AdamW, "weight_decay": wd, "lr": 1e-2, "steps": steps})
out = {"torch": torch.__version__, "n": N, "cases": cases}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "adam_golden.json"), "w") as f:
    json.dump(out, f)
