#!/usr/bin/python3
"""The plain PyTorch loop of issue 18 on NCBI-disease, to compare with mtbert
(examples/README.md, "NCBI-disease: mtbert against a plain PyTorch loop").

    nice -n 10 /usr/bin/python3 examples/ncbi_torch.py --seed 5 [--epochs 3] [flags]

Needs Debian's python3-torch only (no transformers). Prints one JSON line:
the settings, the test micro F1 with strict BIO decoding (the loop's) and with
seqeval's lenient decoding (mtbert's), and the wall time.

The loop (defaults are the issue's):
  - data: ../shared/data/ncbi-disease train.tsv (CoNLL, BIO) and test.tsv;
    words split into WordPieces with bert-base-cased's vocabulary (BERT's basic
    tokenizer without lowercasing, then greedy longest-match WordPiece); the
    label on each word's first sub-word, -100 elsewhere; [CLS] ... [SEP]
    truncated to 128;
  - the model: a post-LN BERT encoder (4 layers, hidden 256, 4 heads,
    intermediate 1024, exact-erf GELU, LayerNorm eps 1e-12, the attention mask
    added as float32's minimum), no dropout inside it, dropout (0) on its
    output and a linear head on every sub-word; every weight matrix and
    embedding N(0, 0.02), biases 0, LayerNorm 1 and 0; the [PAD] row of the
    word embeddings is left random (--zero-pad-row zeroes it, as transformers
    and mtbert do);
  - torch.optim.AdamW over all parameters (biases and LayerNorm included), lr
    5e-4, weight decay 0.01, eps 1e-8 (--no-decay-bias-ln exempts biases and
    LayerNorm weights, as mtbert does);
  - LambdaLR with min((s+1)/warm, (total-s)/(total-warm)), warm =
    int(0.1*total) (--mtbert-schedule: s/warm during warm-up, so the first
    step's rate is 0, then (total-s)/(total-warm), as mtbert and transformers'
    get_linear_schedule_with_warmup);
  - clip_grad_norm_(1.0) before each step;
  - batches of 32 shuffled sentences (torch.randperm with the seed, each epoch)
    padded to the longest in the batch, cross-entropy averaged over the
    labelled first sub-words;
  - evaluation: argmax at first sub-words, strict BIO spans per sentence (an
    I- without a matching B- starts nothing), micro F1 over the test set.

--eval-checkpoint DIR scores an mtbert checkpoint (RUN/last) with both
decodings and this script's evaluation, without training.

--from-dump DIR trains on an mtbert dump instead (`mtbert data -config
examples/ncbi-recipe.yaml -dump DIR -dump-steps 510`): mtbert's step-0 weights
and mtbert's batches in mtbert's order, to separate the data order and the
initial weights from everything else.
"""
import argparse, json, math, os, struct, sys, time, unicodedata
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(here, "..", "..", "shared", "data")


def read_conll(path):
    sents, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if words:
                sents.append((words, tags))
            words, tags = [], []
            continue
        w, t = line.split("\t")[0], line.split("\t")[-1]
        words.append(w)
        tags.append(t)
    if words:
        sents.append((words, tags))
    return sents


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif is_cjk(cp):
            out += [" ", ch, " "]
        else:
            out.append(ch)
    toks = []
    for w in "".join(out).split():
        cur = ""
        for ch in w:
            if is_punct(ch):
                if cur:
                    toks.append(cur)
                toks.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            toks.append(cur)
    return toks


class WordPiece:
    def __init__(self, path):
        self.vocab = {l.rstrip("\n"): i for i, l in enumerate(open(path, encoding="utf-8"))}
        self.unk = self.vocab["[UNK]"]

    def word(self, w):
        if len(w) > 100:
            return [self.unk]
        out, start = [], 0
        while start < len(w):
            end, piece = len(w), None
            while start < end:
                s = w[start:end] if start == 0 else "##" + w[start:end]
                if s in self.vocab:
                    piece = self.vocab[s]
                    break
                end -= 1
            if piece is None:
                return [self.unk]
            out.append(piece)
            start = end
        return out

    def pieces(self, word):
        out = []
        for t in basic(word):
            out += self.word(t)
        return out


def encode(sents, wp, labels, max_len):
    cls, sep = wp.vocab["[CLS]"], wp.vocab["[SEP]"]
    out, long = [], 0
    for words, tags in sents:
        ids, lab, first = [cls], [-100], []
        for w, t in zip(words, tags):
            p = wp.pieces(w)
            if not p:
                first.append(-1)
                continue
            first.append(len(ids))
            ids += p
            lab += [labels[t]] + [-100] * (len(p) - 1)
        if len(ids) + 1 > max_len:
            long += 1
            ids, lab = ids[:max_len - 1], lab[:max_len - 1]
            first = [f if f < max_len - 1 else -1 for f in first]
        out.append((ids + [sep], lab + [-100], first, tags))
    return out, long


def spans(tags, strict):
    """Spans (start, end, type) of word tags: strict BIO (an I- continues only a span of its
    type begun by B-; otherwise it starts nothing) or seqeval's lenient default (an I- after O
    or another type starts a span)."""
    out, cur = [], None
    for i, t in enumerate(tags + ["O"]):
        p, typ = (t[0], t[2:]) if t != "O" else ("O", "")
        if p == "I" and cur is not None and cur[2] == typ:
            continue
        if cur is not None:
            out.append((cur[0], i, cur[2]))
            cur = None
        if p == "B" or (p == "I" and not strict):
            cur = (i, None, typ)
    return out


def init_weights(cfg, g, zero_pad):
    h, it, V = cfg["hidden"], cfg["intermediate"], cfg["vocab"]
    n = lambda *s: (torch.randn(*s, generator=g) * 0.02)
    w = {"embeddings.word_embeddings.weight": n(V, h), "embeddings.position_embeddings.weight": n(cfg["max_position"], h),
         "embeddings.token_type_embeddings.weight": n(2, h),
         "embeddings.LayerNorm.weight": torch.ones(h), "embeddings.LayerNorm.bias": torch.zeros(h)}
    if zero_pad:
        w["embeddings.word_embeddings.weight"][cfg["pad"]] = 0
    for l in range(cfg["layers"]):
        p = f"encoder.layer.{l}."
        for name, (o, i) in [("attention.self.query", (h, h)), ("attention.self.key", (h, h)), ("attention.self.value", (h, h)),
                             ("attention.output.dense", (h, h)), ("intermediate.dense", (it, h)), ("output.dense", (h, it))]:
            w[p + name + ".weight"], w[p + name + ".bias"] = n(o, i), torch.zeros(o)
        for name in ["attention.output.LayerNorm", "output.LayerNorm"]:
            w[p + name + ".weight"], w[p + name + ".bias"] = torch.ones(h), torch.zeros(h)
    w["ncbi-disease.weight"], w["ncbi-disease.bias"] = n(cfg["labels"], h), torch.zeros(cfg["labels"])
    return w


def forward(cfg, w, ids, mask):
    B, T = ids.shape
    h, nh = cfg["hidden"], cfg["heads"]
    d = h // nh
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos] + w["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
    x = F.layer_norm(x, (h,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], 1e-12)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda n, t: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])
        split = lambda t: t.view(B, T, nh, d).permute(0, 2, 1, 3)
        q, k, v = split(lin("attention.self.query", x)), split(lin("attention.self.key", x)), split(lin("attention.self.value", x))
        ctx = ((q @ k.transpose(-1, -2) / math.sqrt(d) + ext).softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, T, h)
        x = F.layer_norm(lin("attention.output.dense", ctx) + x, (h,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], 1e-12)
        m = lin("intermediate.dense", x)
        m = 0.5 * m * (1 + torch.erf(m / math.sqrt(2)))
        x = F.layer_norm(lin("output.dense", m) + x, (h,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], 1e-12)
    return F.linear(x, w["ncbi-disease.weight"], w["ncbi-disease.bias"])


def pad(rows, pad_id):
    T = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    lab = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r[0])] = torch.tensor(r[0])
        lab[i, :len(r[1])] = torch.tensor(r[1])
        mask[i, :len(r[0])] = 1
    return ids, mask, lab


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    dt = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for name, e in header.items():
        if name != "__metadata__":
            lo, hi = e["data_offsets"]
            out[name] = torch.frombuffer(bytearray(data[8 + n + lo:8 + n + hi]), dtype=dt[e["dtype"]]).reshape(e["shape"]).clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--mtbert-schedule", action="store_true")
    ap.add_argument("--no-decay-bias-ln", action="store_true")
    ap.add_argument("--zero-pad-row", action="store_true")
    ap.add_argument("--from-dump", default="")
    ap.add_argument("--eval-checkpoint", default="", help="no training: score an mtbert checkpoint (e.g. RUN/last) with both decodings")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (timing only)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    wp = WordPiece(os.path.join(DATA, "vocab", "bert-base-cased-vocab.txt"))
    names = ["O", "B-Disease", "I-Disease"]  # mtbert's order: O, then the scheme's tags of each type
    labels = {t: i for i, t in enumerate(names)}
    train, long_train = encode(read_conll(os.path.join(DATA, "ncbi-disease", "train.tsv")), wp, labels, 128)
    test, long_test = encode(read_conll(os.path.join(DATA, "ncbi-disease", "test.tsv")), wp, labels, 128)
    cfg = {"hidden": a.hidden, "heads": a.heads, "layers": a.layers, "intermediate": a.intermediate, "max_position": 128, "vocab": len(wp.vocab),
           "pad": wp.vocab["[PAD]"], "labels": len(names)}
    g = torch.Generator().manual_seed(a.seed)
    bs = 32
    if a.eval_checkpoint:
        w = read_safetensors(os.path.join(a.eval_checkpoint, "model.safetensors"))
        w.update(read_safetensors(os.path.join(a.eval_checkpoint, "heads.safetensors")))
        w = {k: v for k, v in w.items() if not k.startswith(("pooler.", "cls."))}
        order, total = [], 10
    elif a.from_dump:
        steps = [json.loads(l) for l in open(os.path.join(a.from_dump, "steps.jsonl"))]
        dumped = read_safetensors(os.path.join(a.from_dump, "batches.safetensors"))
        w = read_safetensors(os.path.join(a.from_dump, "initial", "model.safetensors"))
        w.update(read_safetensors(os.path.join(a.from_dump, "initial", "heads.safetensors")))
        w = {k: v for k, v in w.items() if not k.startswith(("pooler.", "cls."))}
        order = [("dump", s["step"]) for s in steps]
        total = json.load(open(os.path.join(a.from_dump, "run.json")))["total_steps"]
    else:
        w = init_weights(cfg, g, a.zero_pad_row)
        nb = (len(train) + bs - 1) // bs
        total = a.epochs * nb
        order = []
        for e in range(a.epochs):
            perm = torch.randperm(len(train), generator=g).tolist()
            order += [("data", perm[i:i + bs]) for i in range(0, len(train), bs)]
    for v in w.values():
        v.requires_grad_(True)
    no_decay = lambda n: n.endswith(".bias") or "LayerNorm" in n
    if a.no_decay_bias_ln:
        groups = [{"params": [v for n, v in w.items() if not no_decay(n)], "weight_decay": 0.01},
                  {"params": [v for n, v in w.items() if no_decay(n)], "weight_decay": 0.0}]
    else:
        groups = [{"params": list(w.values()), "weight_decay": 0.01}]
    opt = torch.optim.AdamW(groups, lr=5e-4, eps=1e-8)
    warm = int(0.1 * total)
    if a.mtbert_schedule:
        lam = lambda s: s / warm if s < warm else max(0.0, (total - s) / (total - warm))
    else:
        lam = lambda s: min((s + 1) / warm, (total - s) / (total - warm))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    params = list(w.values())
    losses = []
    for s, (kind, what) in enumerate(order[:a.max_steps or len(order)]):
        if kind == "dump":
            pre = f"{what:04d}.0."
            ids, mask, lab = dumped[pre + "input_ids"], dumped[pre + "attention_mask"], dumped[pre + "labels"]
        else:
            ids, mask, lab = pad([train[i] for i in what], cfg["pad"])
        z = forward(cfg, w, ids, mask)
        loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), lab.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if s % 50 == 0:
            print(f"step {s}/{len(order)} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s", file=sys.stderr)
    # Evaluation: argmax at first sub-words, per sentence.
    tp = {True: 0, False: 0}
    npred = {True: 0, False: 0}
    ngold = 0
    with torch.no_grad():
        for i in range(0, len(test), 64):
            rows = test[i:i + 64]
            ids, mask, _ = pad(rows, cfg["pad"])
            pred = forward(cfg, w, ids, mask).argmax(-1)
            for r, row in enumerate(rows):
                _, _, first, gold = row
                ptags = [names[pred[r, f].item()] if f >= 0 else "O" for f in first]
                gs = set(spans(gold, True))
                ngold += len(gs)
                for strict in (True, False):
                    ps = set(spans(ptags, strict))
                    npred[strict] += len(ps)
                    tp[strict] += len(ps & gs)
    f1 = lambda k: 2 * tp[k] / max(1, npred[k] + ngold)
    print(json.dumps({"checkpoint": a.eval_checkpoint, "seed": a.seed, "epochs": a.epochs, "layers": a.layers, "hidden": a.hidden, "steps": len(order), "warmup": warm, "mtbert_schedule": a.mtbert_schedule,
                      "no_decay_bias_ln": a.no_decay_bias_ln, "zero_pad_row": a.zero_pad_row, "from_dump": bool(a.from_dump),
                      "truncated": [long_train, long_test], "f1_strict": round(f1(True), 4), "f1_lenient": round(f1(False), 4),
                      "gold": ngold, "pred_strict": npred[True], "pred_lenient": npred[False], "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
