"""Mirrors of MT-Clinical BERT's reference code (multitasking_transformers, MIT) in plain torch,
for mtbert's parity tests: this file is written for mtbert, no line is copied from there.

- BertModel: Hugging Face transformers' BertModel forward (embeddings, post-LayerNorm encoder
  layers with exact-erf GELU, the (1 - mask) * -10000 attention mask of transformers 2.x, the
  tanh pooler), with the module names that give its state_dict keys.
- TransformerHeadConfig, SubwordClassificationHead, CLSClassificationHead, CLSRegressionHead:
  heads/heads.py's classes (save and from_pretrained as there).
- save_checkpoint: MultiTaskingBert.save_checkpoint (torch.save of BertModel's state dict,
  config.json, vocab.txt, then every head's save).
- WordPiece: BertWordPieceTokenizer(vocab, lowercase=True, add_special_tokens=False) for the
  test notes (lower-casing, accent stripping, whitespace and punctuation splitting, greedy
  longest-match WordPiece, offsets in characters of the original text).
- predict_ner_spans: the chunking and span grouping of examples/predict_ner.py.
"""
import json, math, os, unicodedata

import torch
from torch import nn


class BertConfig:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    @classmethod
    def from_json_file(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))

    def to_json_file(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")


class BertEmbeddings(nn.Module):
    def __init__(self, c, position_ids_buffer):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        if position_ids_buffer:  # transformers 3.x to 4.30 saved it in the state dict
            self.register_buffer("position_ids", torch.arange(c.max_position_embeddings).expand((1, -1)))

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.d = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x, ext_mask):
        B, T, _ = x.shape
        split = lambda t: t.view(B, T, self.h, self.d).permute(0, 2, 1, 3)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + ext_mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        return ctx.permute(0, 2, 1, 3).reshape(B, T, self.h * self.d)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf GELU


class BertOutput(BertSelfOutput):
    def __init__(self, c):
        nn.Module.__init__(self)
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, ext_mask):
        for l in self.layer:
            x = l(x, ext_mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, config, position_ids_buffer=False):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config, position_ids_buffer)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    @classmethod
    def from_pretrained(cls, directory):
        """BertModel.from_pretrained of a folder: config.json and pytorch_model.bin (keys
        without the bert. prefix); a missing or unexpected parameter is an error here."""
        config = BertConfig.from_json_file(os.path.join(directory, "config.json"))
        m = cls(config)
        sd = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if not k.endswith("position_ids")}
        m.load_state_dict(sd, strict=True)
        return m

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        ext = (1.0 - attention_mask[:, None, None, :].to(self.embeddings.word_embeddings.weight.dtype)) * -10000.0
        x = self.encoder(self.embeddings(input_ids, token_type_ids), ext)
        return x, self.pooler(x)


class TransformerHeadConfig(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__ = self

    def to_json_file(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json_file(cls, path):
        with open(path, "r", encoding="utf-8") as f:
            return cls(**json.loads(f.read()))


class TransformerHead(nn.Module):
    def __init__(self, head_name, head_task, hidden_size=None, hidden_dropout_prob=None, labels=None):
        super().__init__()
        self.config = TransformerHeadConfig({"head_name": head_name, "head_task": str(head_task), "labels": labels,
                                             "hidden_size": hidden_size, "hidden_dropout_prob": hidden_dropout_prob})

    def _paths(self, directory):
        base = f"{self.config.head_name}_{self.config.head_task}".replace(" ", "_")
        return os.path.join(directory, base + ".json"), os.path.join(directory, base + ".pt")

    def from_pretrained(self, directory):
        cpath, wpath = self._paths(directory)
        loaded = TransformerHeadConfig.from_json_file(cpath)
        assert loaded.head_name == self.config.head_name and loaded.head_task == self.config.head_task
        self.config.update(loaded.__dict__)
        self.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))  # strict
        return True

    def save(self, directory, legacy=False):
        cpath, wpath = self._paths(directory)
        self.config.to_json_file(cpath)
        torch.save(self.state_dict(), wpath, _use_new_zipfile_serialization=not legacy)


class SubwordClassificationHead(TransformerHead):
    def __init__(self, head_task, labels=None, hidden_size=768, hidden_dropout_prob=.1):
        super().__init__("SubwordClassificationHead", head_task, labels=labels, hidden_size=hidden_size,
                         hidden_dropout_prob=hidden_dropout_prob)
        self.config.evaluate_biluo = False
        self.classifier = nn.Linear(hidden_size, len(labels))

    def forward(self, hidden_states):
        return (self.classifier(hidden_states),)


class CLSClassificationHead(TransformerHead):
    def __init__(self, head_task, hidden_size=768, hidden_dropout_prob=.1, labels=None):
        super().__init__("CLSClassificationHead", head_task, labels=labels, hidden_size=hidden_size,
                         hidden_dropout_prob=hidden_dropout_prob)
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.classifier = nn.Linear(hidden_size, len(labels))

    def forward(self, hidden_states):
        return (self.classifier(hidden_states[:, 0, :]),)


class CLSRegressionHead(TransformerHead):
    def __init__(self, head_task, hidden_size=768, hidden_dropout_prob=.1, labels=None):
        super().__init__("CLSRegressionHead", head_task, hidden_size=hidden_size,
                         hidden_dropout_prob=hidden_dropout_prob)
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.classifier = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states):
        return (self.classifier(hidden_states[:, 0, :]),)


HEAD_CLASSES = {c.__name__: c for c in (SubwordClassificationHead, CLSClassificationHead, CLSRegressionHead)}


def load_heads(directory):
    """The heads of a checkpoint folder, as the reference builds them from their JSON and
    from_pretrained: {task: head}."""
    heads = {}
    for name in sorted(os.listdir(directory)):
        cls = name.split("_", 1)[0]
        if not name.endswith(".json") or cls not in HEAD_CLASSES:
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            c = json.load(f)
        head = HEAD_CLASSES[cls](c["head_task"], labels=c["labels"], hidden_size=c["hidden_size"],
                                 hidden_dropout_prob=c["hidden_dropout_prob"])
        head.from_pretrained(directory)
        head.eval()
        heads[c["head_task"]] = head
    return heads


def save_checkpoint(path, bert, vocab, heads, legacy=False):
    if os.path.exists(path):
        raise ValueError("Attempting to save checkpoint to an existing directory")
    os.mkdir(path)
    torch.save(bert.state_dict(), os.path.join(path, "pytorch_model.bin"), _use_new_zipfile_serialization=not legacy)
    bert.config.to_json_file(os.path.join(path, "config.json"))
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    for h in heads:
        h.save(path, legacy=legacy)


def _is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    def __init__(self, vocab):
        self.ids = {t: i for i, t in enumerate(vocab)}

    def encode(self, text):
        """ids and (start, end) character offsets of text's sub-words, no special tokens."""
        chars = []  # (normalised char, original index)
        for i, ch in enumerate(text):
            for n in unicodedata.normalize("NFD", ch.lower()):
                if unicodedata.category(n) != "Mn":
                    chars.append((n, i))
        words, cur = [], []
        for n, i in chars:
            if n.isspace():
                if cur:
                    words.append(cur)
                cur = []
            elif _is_punct(n):
                if cur:
                    words.append(cur)
                words.append([(n, i)])
                cur = []
            else:
                cur.append((n, i))
        if cur:
            words.append(cur)
        ids, offs = [], []
        for w in words:
            s = "".join(c for c, _ in w)
            pieces, start = [], 0
            while start < len(s):
                end = len(s)
                while end > start:
                    sub = ("##" if start else "") + s[start:end]
                    if sub in self.ids:
                        break
                    end -= 1
                if end == start:
                    pieces = None
                    break
                pieces.append((self.ids[("##" if start else "") + s[start:end]], w[start][1], w[end - 1][1] + 1))
                start = end
            if pieces is None:
                pieces = [(self.ids["[UNK]"], w[0][1], w[-1][1] + 1)]
            for i, a, b in pieces:
                ids.append(i)
                offs.append((a, b))
        return ids, offs


def predict_ner_spans(bert, head, ids, offsets, max_sequence_length):
    """examples/predict_ner.py for one note and one head: chunks of max_sequence_length
    sub-words without special tokens, zero-padded, argmax per sub-word, tags reduced to types,
    runs of one type grouped. Returns the spans and each chunk's unpadded logits."""
    t = torch.tensor(ids, dtype=torch.long)
    chunks = t.split(max_sequence_length)
    batch = torch.zeros((len(chunks), max_sequence_length), dtype=torch.long)
    mask = torch.zeros_like(batch)
    for i, c in enumerate(chunks):
        batch[i][: len(c)] = c
        mask[i][: len(c)] = 1
    counts = [len(c) for c in chunks]
    offs = [offsets[i:i + max_sequence_length] for i in range(0, len(offsets), max_sequence_length)]
    hidden = bert(input_ids=batch, attention_mask=mask, token_type_ids=torch.zeros_like(batch))[0]
    scores = head(hidden)[0]
    spans = []
    for idx, (pred, so) in enumerate(zip(scores.max(2)[1].tolist(), offs)):
        labels = [x[2:] if "-" in x else x.replace("BERT_TOKEN", "O") for x in (head.config["labels"][k] for k in pred)]
        i, n = 0, counts[idx]
        while i < n:
            if labels[i] == "O":
                i += 1
                continue
            start = i
            while i + 1 != n and labels[i] == labels[i + 1]:
                i += 1
            spans.append((so[start][0], so[i][1], labels[i]))
            i += 1
    return spans, [scores[i, :counts[i]] for i in range(len(chunks))]
