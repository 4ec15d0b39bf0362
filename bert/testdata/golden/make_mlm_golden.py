#!/usr/bin/python3
"""Golden outputs for mtbert's masked-language-model head (BertForMaskedLM's cls.predictions),
from a hand-written PyTorch reference on the tiny config of make_golden.py.

Run with Debian's python3-torch from the repository root:
    /usr/bin/python3 bert/testdata/golden/make_mlm_golden.py
It writes mlm_tiny.json: the logits at every position (BertForMaskedLM's prediction_scores),
the logits at the masked positions, the mean cross-entropy over the masked positions, and the
gradient of that loss for the head's parameters, every embedding tensor (the word embeddings
are also the tied decoder weight) and one encoder weight.

Weights use make_golden.py's formula over the parameters of a pooler-less BertModel plus the
head, sorted by name (index k), flat index i, in float64 rounded to float32:
    *LayerNorm.weight: 1 + 0.1*sin(0.37*i + k);  *bias: 0.02*sin(0.37*i + k);  else 0.05*sin(0.37*i + k)
"""
import json, math, os
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
here = os.path.dirname(os.path.abspath(__file__))

def shapes(cfg):
    h, it, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    s = {
        "embeddings.word_embeddings.weight": (V, h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
        "cls.predictions.transform.dense.weight": (h, h), "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,), "cls.predictions.transform.LayerNorm.bias": (h,),
        "cls.predictions.bias": (V,),
    }
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            s[p + n + ".weight"] = (h, h); s[p + n + ".bias"] = (h,)
        for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
            s[p + n + ".weight"] = (h,); s[p + n + ".bias"] = (h,)
        s[p + "intermediate.dense.weight"] = (it, h); s[p + "intermediate.dense.bias"] = (it,)
        s[p + "output.dense.weight"] = (h, it); s[p + "output.dense.bias"] = (h,)
    return s

def weights(cfg):
    out = {}
    sh = shapes(cfg)
    for k, name in enumerate(sorted(sh)):
        n = math.prod(sh[name])
        base = torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + k)
        if name.endswith("LayerNorm.weight"):
            v = 1 + 0.1 * base
        elif name.endswith("bias"):
            v = 0.02 * base
        else:
            v = 0.05 * base
        out[name] = v.float().reshape(sh[name]).requires_grad_(True)
    return out

def gelu(x, act):
    if act == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

def encoder(cfg, w, ids, types, mask):
    B, T = ids.shape
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = h // nh, cfg["layer_norm_eps"]
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos] + w["embeddings.token_type_embeddings.weight"][types]
    x = F.layer_norm(x, (h,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda n, t: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])
        split = lambda t: t.view(B, T, nh, d).permute(0, 2, 1, 3)
        q, k, v = split(lin("attention.self.query", x)), split(lin("attention.self.key", x)), split(lin("attention.self.value", x))
        ctx = ((q @ k.transpose(-1, -2) / math.sqrt(d) + ext).softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, T, h)
        x1 = F.layer_norm(lin("attention.output.dense", ctx) + x, (h,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        o = lin("output.dense", gelu(lin("intermediate.dense", x1), cfg["hidden_act"]))
        x = F.layer_norm(o + x1, (h,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x

def head(cfg, w, x):
    """BertOnlyMLMHead: transform (dense, act, LayerNorm), then decoder tied to the word
    embeddings plus cls.predictions.bias."""
    t = gelu(F.linear(x, w["cls.predictions.transform.dense.weight"], w["cls.predictions.transform.dense.bias"]), cfg["hidden_act"])
    t = F.layer_norm(t, (cfg["hidden_size"],), w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"], cfg["layer_norm_eps"])
    return F.linear(t, w["embeddings.word_embeddings.weight"], w["cls.predictions.bias"])

def flat(t): return [float(x) for x in t.detach().reshape(-1)]

def run(cfg, B, T, pad, path):
    w = weights(cfg)
    V = cfg["vocab_size"]
    ids = torch.tensor([[(7 * b + 13 * t + 3) % V for t in range(T)] for b in range(B)])
    types = torch.tensor([[1 if t >= T // 2 else 0 for t in range(T)] for b in range(B)])
    mask = torch.ones(B, T, dtype=torch.long)
    mask[B - 1, T - pad:] = 0
    ids[B - 1, T - pad:] = 0
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, t in [(0, 1), (0, 4), (0, 7), (1, 2), (1, 5)]:
        labels[b, t] = (11 * b + 5 * t + 2) % V
    x = encoder(cfg, w, ids, types, mask)
    logits = head(cfg, w, x)                        # (B, T, V), as BertForMaskedLM returns
    sel = labels.reshape(-1) != -100
    masked = head(cfg, w, x.reshape(B * T, -1)[sel])  # (M, V): only the masked rows
    loss = F.cross_entropy(masked, labels.reshape(-1)[sel])
    full = F.cross_entropy(logits.reshape(B * T, V), labels.reshape(-1), ignore_index=-100)
    assert torch.allclose(loss, full)
    loss.backward()
    keep = [k for k in w if k.startswith("cls.") or k.startswith("embeddings.") or k == "encoder.layer.0.attention.self.query.weight"]
    out = {"config": cfg, "B": B, "T": T, "ids": flat(ids), "types": flat(types), "mask": flat(mask), "labels": flat(labels),
           "logits": flat(logits), "masked_logits": flat(masked), "loss": float(loss),
           "grads": {k: flat(w[k].grad) for k in sorted(keep)}, "torch": torch.__version__}
    with open(os.path.join(here, path), "w") as f:
        json.dump(out, f)

tiny = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=16,
            type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
run(tiny, 2, 9, 3, "mlm_tiny.json")
