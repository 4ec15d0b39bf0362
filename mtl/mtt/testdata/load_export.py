"""Loads a checkpoint folder in the reference layout as the reference does (BertModel's
from_pretrained, then each head's from_pretrained: strict load_state_dict of torch.load with
weights_only=True) and prints, as JSON on stdout, every head's logits on the inputs of
golden.json: {"notes": [{task: [chunk logits, flat]}], "pairs": [{task: logits}]}.

    python3 load_export.py DIR golden.json
"""
import json, sys

import torch

from refmodel import BertModel, SubwordClassificationHead, load_heads


def main(directory, golden_path):
    with open(golden_path, encoding="utf-8") as f:
        golden = json.load(f)
    bert = BertModel.from_pretrained(directory)
    bert.eval()
    heads = load_heads(directory)
    max_len = golden["max_sequence_length"]
    out = {"notes": [], "pairs": []}
    with torch.no_grad():
        for note in golden["notes"]:
            ids = torch.tensor(note["ids"], dtype=torch.long)
            res = {}
            for task, h in heads.items():
                if not isinstance(h, SubwordClassificationHead):
                    continue
                res[task] = []
                for c in ids.split(max_len):
                    hidden = bert(c[None, :], attention_mask=torch.ones_like(c)[None, :])[0]
                    res[task].append(h(hidden)[0][0].flatten().tolist())
            out["notes"].append(res)
        for p in golden["pairs"]:
            ids = torch.tensor([p["ids"]], dtype=torch.long)
            types = torch.tensor([p["types"]], dtype=torch.long)
            hidden = bert(ids, attention_mask=torch.ones_like(ids), token_type_ids=types)[0]
            out["pairs"].append({task: h(hidden)[0][0].tolist() for task, h in heads.items()
                                 if not isinstance(h, SubwordClassificationHead)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
