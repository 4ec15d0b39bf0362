"""PyTorch beside mtbert's GPU path, for scripts/gpu-check.sh: the bf16 GEMM on BERT's
shapes and 8192^3, scaled_dot_product_attention forward and backward at B32 H12 T128 D64, and
a BERT-base-like training step (12 post-LN GELU encoder layers, a 9-label token head, AdamW,
bf16 autocast) at 32x128 and 8x512. Prints one JSON line. Exit 3: no CUDA (--device cuda)."""
import argparse, json, sys, time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cuda")
ap.add_argument("--small", action="store_true", help="tiny shapes (a dry run on the CPU)")
a = ap.parse_args()
if a.device == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"reason": "torch.cuda.is_available() is false", "torch": torch.__version__}))
    sys.exit(3)
dev = torch.device(a.device)
dt = torch.bfloat16


def timed(fn, reps):
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


reps = 1 if a.small else 20
res = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "gemm": {}, "sdpa": {}, "bert_step": {}}
shapes = [("qkv_out", 1024, 768, 768), ("ffn_up", 1024, 3072, 768), ("ffn_down", 1024, 768, 3072), ("square_8192", 8192, 8192, 8192)]
if a.small:
    shapes = [("small", 64, 64, 64)]
for name, m, n, k in shapes:
    x, w = torch.randn(m, k, device=dev, dtype=dt), torch.randn(n, k, device=dev, dtype=dt)
    s = timed(lambda: x @ w.t(), reps)
    res["gemm"][name] = {"tflops": 2 * m * n * k / s / 1e12, "us_per_call": s * 1e6}
B, H, T, D = (1, 1, 64, 64) if a.small else (32, 12, 128, 64)
q, k, v = (torch.randn(B, H, T, D, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
fwd = 4.0 * B * H * T * T * D
sdpa = getattr(F, "scaled_dot_product_attention", None)
if sdpa is None:  # torch < 2.0: the unfused product, marked as such
    res["sdpa"]["note"] = "torch %s has no scaled_dot_product_attention: unfused softmax(QK^T/sqrt(D))V" % torch.__version__
    sdpa = lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2) / D**0.5, -1) @ v
s = timed(lambda: sdpa(q, k, v), reps)
res["sdpa"]["fwd"] = {"tflops": fwd / s / 1e12, "us_per_call": s * 1e6}
s = timed(lambda: sdpa(q, k, v).sum().backward(), reps)
res["sdpa"]["fwd_bwd"] = {"tflops": 3.5 * fwd / s / 1e12, "us_per_call": s * 1e6}

L, Hd = (1, 64) if a.small else (12, 768)
emb = torch.nn.Embedding(28996, Hd).to(dev)
enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(Hd, Hd // 64, 4 * Hd, dropout=0.0, activation="gelu", batch_first=True), L).to(dev)
head = torch.nn.Linear(Hd, 9).to(dev)
params = list(emb.parameters()) + list(enc.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=5e-5, **({"fused": True} if dev.type == "cuda" else {}))
for b, t in ([(2, 16)] if a.small else [(32, 128), (8, 512)]):
    ids = torch.randint(0, 28996, (b, t), device=dev)
    tags = torch.randint(0, 9, (b * t,), device=dev)

    def step():
        with torch.autocast(dev.type, dtype=dt):
            loss = F.cross_entropy(head(enc(emb(ids))).reshape(-1, 9).float(), tags)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    s = timed(step, max(1, reps // 4))
    res["bert_step"][f"{b}x{t}"] = {"ms_per_step": s * 1e3, "tokens_per_s": b * t / s}
print(json.dumps(res))
