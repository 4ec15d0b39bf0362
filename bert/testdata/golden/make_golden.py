#!/usr/bin/python3
"""Golden outputs for mtbert's BERT: a from-scratch PyTorch implementation of
transformers.BertModel (eval mode: no dropout), written with torch.nn.functional only.

Run with Debian's python3-torch from the repository root:
    /usr/bin/python3 bert/testdata/golden/make_golden.py
It writes tiny.json (a 2-layer model: last hidden state, pooled output, every hidden state, and
the gradient of a scalar loss for every parameter) and base.json (BERT-base dimensions: last
hidden state and pooled output of one short sequence).

Weights come from a formula both sides compute, over the parameters sorted by name (index k)
and each tensor's flat index i, in float64 rounded to float32:
    *LayerNorm.weight: 1 + 0.1*sin(0.37*i + k);  *bias: 0.02*sin(0.37*i + k);  else 0.05*sin(0.37*i + k)
"""
import json, math, os
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
here = os.path.dirname(os.path.abspath(__file__))

def shapes(cfg, pooler=True):
    h, it = cfg["hidden_size"], cfg["intermediate_size"]
    s = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            s[p + n + ".weight"] = (h, h); s[p + n + ".bias"] = (h,)
        for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
            s[p + n + ".weight"] = (h,); s[p + n + ".bias"] = (h,)
        s[p + "intermediate.dense.weight"] = (it, h); s[p + "intermediate.dense.bias"] = (it,)
        s[p + "output.dense.weight"] = (h, it); s[p + "output.dense.bias"] = (h,)
    if pooler:
        s["pooler.dense.weight"] = (h, h); s["pooler.dense.bias"] = (h,)
    return s

def weights(cfg):
    out = {}
    for k, name in enumerate(sorted(shapes(cfg))):
        shape = shapes(cfg)[name]
        n = math.prod(shape)
        i = torch.arange(n, dtype=torch.float64)
        base = torch.sin(0.37 * i + k)
        if name.endswith("LayerNorm.weight"):
            v = 1 + 0.1 * base
        elif name.endswith("bias"):
            v = 0.02 * base
        else:
            v = 0.05 * base
        out[name] = v.float().reshape(shape).requires_grad_(True)
    return out

def gelu(x, act):
    if act == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

def bert(cfg, w, ids, types, mask):
    B, T = ids.shape
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = h // nh
    eps = cfg["layer_norm_eps"]
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos] + w["embeddings.token_type_embeddings.weight"][types]
    x = F.layer_norm(x, (h,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    hidden = [x]
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda n, t: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])
        split = lambda t: t.view(B, T, nh, d).permute(0, 2, 1, 3)
        q, k, v = split(lin("attention.self.query", x)), split(lin("attention.self.key", x)), split(lin("attention.self.value", x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext
        ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, T, h)
        a = lin("attention.output.dense", ctx)
        x1 = F.layer_norm(a + x, (h,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        o = lin("output.dense", gelu(lin("intermediate.dense", x1), cfg["hidden_act"]))
        x = F.layer_norm(o + x1, (h,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        hidden.append(x)
    pooled = torch.tanh(F.linear(x[:, 0], w["pooler.dense.weight"], w["pooler.dense.bias"]))
    return hidden, pooled

def inputs(cfg, B, T, pad):
    ids = torch.tensor([[(7 * b + 13 * t + 3) % cfg["vocab_size"] for t in range(T)] for b in range(B)])
    types = torch.tensor([[1 if t >= T // 2 else 0 for t in range(T)] for b in range(B)])
    mask = torch.ones(B, T, dtype=torch.long)
    if pad:
        mask[B - 1, T - pad:] = 0
        ids[B - 1, T - pad:] = 0
    return ids, types, mask

def flat(t): return [float(x) for x in t.detach().reshape(-1)]

def run(cfg, B, T, pad, grads, path):
    w = weights(cfg)
    ids, types, mask = inputs(cfg, B, T, pad)
    hidden, pooled = bert(cfg, w, ids, types, mask)
    out = {"config": cfg, "B": B, "T": T, "ids": flat(ids), "types": flat(types), "mask": flat(mask),
           "last_hidden": flat(hidden[-1]), "pooled": flat(pooled), "torch": torch.__version__}
    if grads:
        out["hidden"] = [flat(x) for x in hidden]
        n1, n2 = hidden[-1].numel(), pooled.numel()
        r1 = torch.sin(0.1 * torch.arange(n1, dtype=torch.float64) + 0.5).float().reshape(hidden[-1].shape)
        r2 = torch.cos(0.2 * torch.arange(n2, dtype=torch.float64)).float().reshape(pooled.shape)
        loss = (hidden[-1] * r1).sum() + (pooled * r2).sum()
        loss.backward()
        out["loss"] = float(loss)
        out["grads"] = {k: flat(v.grad) for k, v in w.items()}
    with open(os.path.join(here, path), "w") as f:
        json.dump(out, f)

tiny = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=16,
            type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
run(tiny, 2, 9, 3, True, "tiny.json")
run(dict(tiny, hidden_act="gelu_new"), 2, 9, 3, False, "tiny_gelu_new.json")
base = dict(tiny, vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512)
import sys
if "--skip-base" not in sys.argv:
    run(base, 1, 12, 0, False, "base.json")

# A BertForPreTraining-style pytorch_model.bin of the tiny model: "bert." prefix, old
# TensorFlow-era LayerNorm names (gamma/beta) on the embeddings, and an MLM bias to ignore.
bindir = os.path.join(here, "tiny_bin")
os.makedirs(bindir, exist_ok=True)
sd = {}
for k, v in weights(tiny).items():
    k = k.replace("embeddings.LayerNorm.weight", "embeddings.LayerNorm.gamma").replace("embeddings.LayerNorm.bias", "embeddings.LayerNorm.beta")
    sd["bert." + k] = v.detach().clone()
sd["cls.predictions.bias"] = torch.zeros(tiny["vocab_size"])
torch.save(sd, os.path.join(bindir, "pytorch_model.bin"))
with open(os.path.join(bindir, "config.json"), "w") as f:
    json.dump(dict(tiny, model_type="bert", architectures=["BertForPreTraining"]), f, indent=2)
