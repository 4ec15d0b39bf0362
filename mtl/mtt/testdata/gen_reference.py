"""Generates mtbert's parity fixtures for the MT-Clinical BERT reference layout.

Run from this folder with Debian's python3-torch (no transformers needed):

    python3 gen_reference.py

It builds a small seeded BertModel and one head of each class (refmodel.py mirrors the
reference's classes), saves them as MultiTaskingBert.save_checkpoint and TransformerHead.save
do, in both torch formats:

    released-zip/     torch.save's zip format (and the position_ids buffer of transformers 3-4)
    released-legacy/  _use_new_zipfile_serialization=False, as a 2020 torch wrote the release

and writes golden.json: the sub-word ids and offsets of a few notes, every head's logits on
them (chunked as predict_ner.py chunks) and on a few sentence pairs ([CLS] a [SEP] b [SEP],
batched with padding), and the NER spans of predict_ner.py's grouping. Logits are computed in
float64 from the same weights (the tests allow 1e-5); the spans come from the float32 forward
the reference runs, and the script checks no argmax is a near tie.
"""
import json, os, shutil

import torch

from refmodel import (BertConfig, BertModel, CLSClassificationHead, CLSRegressionHead,
                      SubwordClassificationHead, WordPiece, predict_ner_spans, save_checkpoint)

HERE = os.path.dirname(os.path.abspath(__file__))

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", ":", "(", ")", "-", "/", "0", "1", "2",
         "5", "the", "patient", "was", "is", "given", "aspirin", "for", "chest", "pain", "and", "denied",
         "fever", "history", "of", "hyper", "##tension", "meto", "##pro", "##lol", "mg", "daily", "ct",
         "scan", "showed", "no", "mass", "cafe", "admitted", "with", "shortness", "breath", "started",
         "on", "heparin", "drip", "head", "neg", "##ative", "a", "man", "woman", "has", "takes", "##s",
         "##ed", "##ing", "cough", "x", "##ray", "clear", "lungs", "he", "she", "denies", "sob"]

NOTES = [
    "The patient was given Aspirin 5 mg daily for chest pain; denied fever.",
    "History of hypertension, on Metoprolol 25 mg. CT scan showed no mass (negative). "
    "Admitted with shortness of breath and started on heparin drip. Café 10/2 x-ray: lungs clear, "
    "denies SOB. She takes aspirin and metoprolol daily; chest pain resolved. Zebra coughing. "
    "The woman was admitted for fever and cough, given heparin; head CT negative. He denies chest pain "
    "and shortness of breath.",
]
PAIRS = [
    ("The patient denied chest pain.", "The patient has chest pain."),
    ("He takes aspirin daily.", "A man takes aspirin."),
    ("CT scan showed no mass.", "The patient had a CT scan of the head and chest, negative."),
]
NER_TASK, NER_TYPES = "i2b2_2010", ["problem", "test", "treatment"]
NER_LABELS = sorted([f"{p}-{t}" for p in "BILU" for t in NER_TYPES] + ["O", "BERT_TOKEN"])
NLI_TASK, NLI_LABELS = "mednli_2018", ["contradiction", "entailment", "neutral"]
STS_TASK = "n2c2_2019"


def build():
    torch.manual_seed(5)
    config = BertConfig(architectures=["BertModel"], attention_probs_dropout_prob=0.1, hidden_act="gelu",
                        hidden_dropout_prob=0.1, hidden_size=32, initializer_range=0.02, intermediate_size=64,
                        layer_norm_eps=1e-12, max_position_embeddings=64, model_type="bert",
                        num_attention_heads=4, num_hidden_layers=2, output_hidden_states=True,
                        pad_token_id=0, type_vocab_size=2, vocab_size=len(VOCAB))
    bert = BertModel(config)
    heads = [SubwordClassificationHead(NER_TASK, labels=NER_LABELS, hidden_size=32, hidden_dropout_prob=0.1),
             CLSClassificationHead(NLI_TASK, labels=NLI_LABELS, hidden_size=32, hidden_dropout_prob=0.1),
             CLSRegressionHead(STS_TASK, hidden_size=32, hidden_dropout_prob=0.1)]
    with torch.no_grad():
        for name, p in list(bert.named_parameters()) + [(n, p) for h in heads for n, p in h.named_parameters()]:
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape))
            elif name.startswith("classifier"):
                p.copy_(0.4 * torch.randn(p.shape))
            else:  # larger weights make a random encoder's hidden states collapse to one tag
                p.copy_(0.05 * torch.randn(p.shape))
    bert.eval()
    for h in heads:
        h.eval()
    return config, bert, heads


def pair_batch(wp):
    rows = []
    for a, b in PAIRS:
        ia, _ = wp.encode(a)
        ib, _ = wp.encode(b)
        rows.append(([2] + ia + [3] + ib + [3], [0] * (len(ia) + 2) + [1] * (len(ib) + 1)))
    T = max(len(r[0]) for r in rows)
    ids = torch.zeros((len(rows), T), dtype=torch.long)
    types, mask = torch.zeros_like(ids), torch.zeros_like(ids)
    for i, (r, t) in enumerate(rows):
        ids[i, :len(r)], types[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), torch.tensor(t), 1
    return rows, ids, types, mask


def main():
    config, bert, heads = build()
    for d, legacy in (("released-zip", False), ("released-legacy", True)):
        path = os.path.join(HERE, d)
        if os.path.exists(path):
            shutil.rmtree(path)
        if not legacy:  # a transformers 3/4 BertModel also saved embeddings.position_ids
            b2 = BertModel(config, position_ids_buffer=True)
            b2.load_state_dict(bert.state_dict(), strict=False)
            save_checkpoint(path, b2, VOCAB, heads, legacy=False)
        else:
            save_checkpoint(path, bert, VOCAB, heads, legacy=True)

    wp = WordPiece(VOCAB)
    ner = heads[0]
    max_len = min(512, config.max_position_embeddings)
    bert64 = BertModel(config).double()
    bert64.load_state_dict(bert.state_dict())
    ner64 = SubwordClassificationHead(NER_TASK, labels=NER_LABELS, hidden_size=32).double()
    ner64.load_state_dict(ner.state_dict())
    golden = {"max_sequence_length": max_len, "notes": [], "pairs": []}
    with torch.no_grad():
        for text in NOTES:
            ids, offs = wp.encode(text)
            spans, chunks32 = predict_ner_spans(bert, ner, ids, offs, max_len)
            _, chunks64 = predict_ner_spans(bert64, ner64, ids, offs, max_len)
            for c in chunks32:  # no near ties: float32 and float64 argmaxes agree
                top = c.topk(2, dim=1).values
                assert float((top[:, 0] - top[:, 1]).min()) > 1e-4, "near tie: change the seed"
            assert all(torch.equal(a.argmax(1), b.argmax(1)) for a, b in zip(chunks32, chunks64))
            golden["notes"].append({"text": text, "ids": ids, "offsets": offs,
                                    "logits": {NER_TASK: [c.flatten().tolist() for c in chunks64]},
                                    "spans": {NER_TASK: [list(s) for s in spans]}})
        rows, ids, types, mask = pair_batch(wp)
        hidden = bert64(ids, attention_mask=mask, token_type_ids=types)[0]
        out = {}
        for h in heads[1:]:
            h64 = type(h)(h.config.head_task, labels=h.config.labels, hidden_size=32).double()
            h64.load_state_dict(h.state_dict())
            out[h.config.head_task] = h64(hidden)[0]
        for i, ((a, b), (r, t)) in enumerate(zip(PAIRS, rows)):
            golden["pairs"].append({"a": a, "b": b, "ids": r, "types": t,
                                    "logits": {k: v[i].tolist() for k, v in out.items()}})
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
