#!/usr/bin/python3
"""Replays the first steps of an mtbert training run in PyTorch, from a dump
(`mtbert data -config C -dump DIR`), and writes the golden the trajectory test
reads (trajectory_test.go).

Run with Debian's python3-torch (not a pyenv python without torch):
    /usr/bin/python3 replay.py DUMP OUT.safetensors [--variant V]
gen.sh beside this file makes the dump and every golden.

What it loads from the dump: the step-0 weights (initial/model.safetensors,
initial/heads.safetensors, initial/config.json), each step's batches
(batches.safetensors: input_ids, token_type_ids, attention_mask, labels with
-100 where untrained) and the task of each step (steps.jsonl), and the
optimiser's settings (run.json). What it does NOT take from the dump: the
learning rates and the weight-decay groups. It computes those itself, from the
rules below, and only checks that they agree with what mtbert wrote, so a
mistake on mtbert's side shows as a mismatch rather than being copied.

The loop, for step s = 0, 1, ... (one task per step, as mtbert's round-robin
trainer chose it):
  - forward: a from-scratch transformers.BertModel (post-LN, exact-erf GELU,
    LayerNorm eps from config.json, the attention mask added as float32's
    minimum before the softmax, no pooler, dropout 0), then the task's head:
    ner: a linear layer on every sub-word, cross-entropy averaged over the
    labelled sub-words (ignore_index -100); pair-classification: a linear layer
    on the [CLS] vector, cross-entropy averaged over the pairs; regression: a
    linear layer on [CLS] giving one score, mean-squared error over the pairs;
  - backward; only the encoder and that task's head get gradients (the other
    heads' gradients stay None, so torch.optim.AdamW leaves them, their moments
    and their step counts alone, as mtbert does);
  - torch.nn.utils.clip_grad_norm_(encoder + head parameters, clip_norm)
    before the update;
  - the rate of step s: lr*s/warmup while s < warmup, then
    lr*max(0, (total-s)/(total-warmup)) (transformers'
    get_linear_schedule_with_warmup; its first step has rate 0);
  - torch.optim.AdamW(betas, eps from run.json) with two parameter groups:
    weight_decay for every weight matrix and embedding table, 0 for every
    parameter whose name ends in ".bias" or contains "LayerNorm" (biases and
    LayerNorm weights, as BERT fine-tuning recipes exempt them).

Variants (each one thing wrong, for the test's negative cases):
  shift       the schedule one step ahead: step s uses the rate of s+1
  decay-all   weight decay on every parameter (biases and LayerNorm too)
  clip-after  clipping after the optimiser step (so it never changes an update)

The golden (safetensors, float32): "loss" (steps), "lr" (steps, the rates
used), "grad_norm" (steps, the global norm before clipping) and "w.NAME" for
every parameter after the last step. metadata: variant, steps, torch version.
"""
import argparse, json, math, os, struct, sys
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    dt = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        buf = bytearray(data[base + lo:base + hi])
        t = torch.frombuffer(buf, dtype=dt[e["dtype"]]) if hi > lo else torch.zeros(0, dtype=dt[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def encoder(cfg, w, ids, types, mask):
    B, T = ids.shape
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = h // nh
    eps = cfg["layer_norm_eps"]
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos] + w["embeddings.token_type_embeddings.weight"][types]
    x = F.layer_norm(x, (h,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda n, t: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])
        split = lambda t: t.view(B, T, nh, d).permute(0, 2, 1, 3)
        q, k, v = split(lin("attention.self.query", x)), split(lin("attention.self.key", x)), split(lin("attention.self.value", x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
        ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, T, h)
        x = F.layer_norm(lin("attention.output.dense", ctx) + x, (h,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        m = gelu(lin("intermediate.dense", x))
        x = F.layer_norm(lin("output.dense", m) + x, (h,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def task_loss(kind, name, w, last, labels, ignore):
    W, b = w[name + ".weight"], w[name + ".bias"]
    if kind == "ner":
        z = F.linear(last, W, b)
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), labels.reshape(-1), ignore_index=ignore)
    z = F.linear(last[:, 0], W, b)
    if kind == "regression":
        return F.mse_loss(z.reshape(-1), labels.float())
    return F.cross_entropy(z, labels, ignore_index=ignore)


def no_decay(name):
    return name.endswith(".bias") or "LayerNorm" in name


def rate(run, s):
    peak, warm, total = run["lr"], run["warmup"], run["total_steps"]
    if s < warm:
        return peak * s / max(1, warm)
    if run["schedule"] != "linear" or total <= warm:
        return peak
    return peak * max(0.0, (total - s) / (total - warm))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump")
    ap.add_argument("out")
    ap.add_argument("--variant", default="correct", choices=["correct", "shift", "decay-all", "clip-after"])
    a = ap.parse_args()
    run = json.load(open(os.path.join(a.dump, "run.json")))
    cfg = json.load(open(os.path.join(a.dump, "initial", "config.json")))
    steps = [json.loads(l) for l in open(os.path.join(a.dump, "steps.jsonl"))]
    batches = read_safetensors(os.path.join(a.dump, "batches.safetensors"))
    w = read_safetensors(os.path.join(a.dump, "initial", "model.safetensors"))
    w.update(read_safetensors(os.path.join(a.dump, "initial", "heads.safetensors")))
    w = {k: v.float().requires_grad_(True) for k, v in w.items() if not k.startswith("cls.")}
    if run["optimizer"] != "adamw" or not run["decoupled"]:
        sys.exit("replay.py replays AdamW only")
    if run["dropout"] != 0 or run["accumulate"] != 1:
        sys.exit("replay.py replays dropout 0 and accumulate 1 only")
    if cfg.get("hidden_act", "gelu") != "gelu":
        sys.exit("replay.py has the exact-erf GELU only")

    # Our own groups and rates, checked against mtbert's.
    ours = sorted(n for n in w if no_decay(n))
    if ours != sorted(run["no_decay"]):
        print("warning: mtbert's no-decay group differs:", sorted(set(ours) ^ set(run["no_decay"])), file=sys.stderr)
    for st in steps:
        if abs(rate(run, st["step"]) - st["lr"]) > 1e-12 * run["lr"]:
            print(f"warning: step {st['step']}: mtbert's rate {st['lr']} differs from {rate(run, st['step'])}", file=sys.stderr)

    decay_all = a.variant == "decay-all"
    groups = [
        {"params": [w[n] for n in sorted(w) if decay_all or not no_decay(n)], "weight_decay": run["weight_decay"]},
        {"params": [w[n] for n in sorted(w) if not decay_all and no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=run["lr"], betas=(run["beta1"], run["beta2"]), eps=run["eps"])
    kinds = {t["name"]: t for t in run["tasks"]}
    losses, lrs, norms = [], [], []
    for st in steps:
        s, name = st["step"], st["task"]
        task = kinds[name]
        pre = f"{s:04d}.0."
        ids, types, mask, labels = (batches[pre + k] for k in ("input_ids", "token_type_ids", "attention_mask", "labels"))
        params = [w[n] for n in run["encoder_params"]] + [w[n] for n in task["params"]]
        for p in w.values():
            p.grad = None
        last = encoder(cfg, w, ids, types, mask)
        loss = task_loss(task["kind"], name, w, last, labels, run["ignore_index"])
        loss.backward()
        lr = rate(run, s + 1 if a.variant == "shift" else s)
        for g in opt.param_groups:
            g["lr"] = lr
        clip = run["clip_norm"]
        if a.variant == "clip-after":
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None))
            opt.step()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
        else:
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None))
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        norms.append(norm.item())
    out = {"loss": torch.tensor(losses), "lr": torch.tensor(lrs, dtype=torch.float64), "grad_norm": torch.tensor(norms)}
    for n, p in w.items():
        out["w." + n] = p
    write_safetensors(a.out, out, {"variant": a.variant, "steps": str(len(steps)), "torch": torch.__version__})
    clipped = sum(n > run["clip_norm"] for n in norms)
    print(f"{a.out}: {a.variant}, {len(steps)} steps, loss {losses[0]:.5f} -> {losses[-1]:.5f}, {clipped} steps clipped", file=sys.stderr)


if __name__ == "__main__":
    main()
