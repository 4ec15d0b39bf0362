#!/usr/bin/python3
"""Generate the golden torch.save files that bert/torchbin_test.go reads.

Run from this directory with Debian's python3-torch (1.13.1):

    /usr/bin/python3 make_bins.py

Writes:
  golden.bin         torch.save of a state dict: F32, F16, BF16, I64, I32 tensors, a
                     transposed (non-contiguous) view, a strided slice, a view with a storage
                     offset (all three sharing one storage with "bert.base"), a 0-d tensor, an
                     empty tensor, an nn.Parameter, and the _metadata attribute of a real
                     Module.state_dict() (pickled with BUILD).
  expected.json      for each tensor of golden.bin: dtype, shape, and the contiguous values as
                     raw bits (float32 bits of .float() for float types, raw 16-bit patterns
                     for F16/BF16, integers for I64/I32).
  hostile.bin        a zip laid out like torch.save whose data.pkl is a hand-written pickle
                     calling os.system("echo pwned") through GLOBAL + REDUCE. The bytes are
                     written opcode by opcode here; nothing is ever unpickled or executed.
  hostile_stack.bin  the same with STACK_GLOBAL builtins.eval.
  truncated.bin      the first half of golden.bin.
  short_storage.bin  torch.save of {"w": arange(6.)} with its storage file cut to 12 bytes.
  legacy.bin         torch.save(..., _use_new_zipfile_serialization=False) of {"w": [1,2,3]}
                     (a plain dict, not an OrderedDict).
  legacy_golden.bin  the state dict of golden.bin saved in the legacy (pre-1.6, non-zip)
                     format; expected.json describes it too.
  legacy_hostile.bin the legacy layout (magic, protocol version and sys_info pickles written by
                     pickle.dumps of plain ints and a dict) around a hand-written state-dict
                     pickle calling os.system("echo pwned"); never unpickled here.
  legacy_truncated.bin     legacy torch.save of {"w": arange(6.)} with the last 12 bytes of its
                           storage record cut off.
  legacy_short_storage.bin the same with its record's element count patched from 6 to 3 and
                           the record cut to 3 elements.
"""
import collections
import json
import math
import os
import pickle
import struct
import zipfile

import torch


def formula(shape, k, dtype=torch.float32):
    """0.02*sin(0.37*i + k) over the flat index i (ENGINEERING.md, section 4)."""
    n = math.prod(shape)
    vals = [0.02 * math.sin(0.37 * i + k) for i in range(n)]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape).to(dtype)


def f32bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def expected_entry(t):
    c = t.contiguous()
    e = {"shape": list(t.shape)}
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        e["dtype"] = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[t.dtype]
        e["f32bits"] = [f32bits(v) for v in c.float().flatten().tolist()]
        if t.dtype != torch.float32:
            e["raw16"] = [v & 0xFFFF for v in c.view(torch.int16).flatten().tolist()]
    else:
        e["dtype"] = {torch.int64: "I64", torch.int32: "I32"}[t.dtype]
        e["ints"] = c.flatten().tolist()
    return e


def golden():
    base = formula([3, 4], 1)
    sd = collections.OrderedDict()
    sd["bert.embeddings.word_embeddings.weight"] = formula([5, 4], 0)
    sd["bert.embeddings.position_ids"] = torch.tensor([[0, 1, 2, -3, 2**40, -(2**62)]], dtype=torch.int64)
    sd["bert.int32"] = torch.tensor([7, -2147483648], dtype=torch.int32)
    sd["bert.f16"] = (formula([2, 3], 2) * 1000).half()
    # Largest half, smallest subnormal, a subnormal, -0, +Inf, -Inf, NaN.
    sd["bert.f16_special"] = torch.tensor(
        [65504.0, 2.0**-24, 3 * 2.0**-20, -0.0, math.inf, -math.inf, math.nan], dtype=torch.float16)
    sd["bert.bf16"] = formula([2, 3], 3).bfloat16()
    sd["bert.base"] = base
    sd["bert.transposed"] = base.t()           # stride (1, 4), shares base's storage
    sd["bert.strided"] = base[:, ::2]           # stride (4, 2)
    sd["bert.offset"] = base.view(-1)[5:9]      # storage offset 5
    sd["bert.scalar"] = torch.tensor(2.5)       # 0-d
    sd["bert.empty"] = torch.zeros(0, 3)
    sd["bert.pooler.dense.bias"] = torch.nn.Parameter(formula([3], 4))
    # The _metadata attribute nn.Module.state_dict() attaches (pickled through BUILD).
    sd._metadata = torch.nn.Linear(1, 1).state_dict()._metadata
    torch.save(sd, "golden.bin")
    torch.save(sd, "legacy_golden.bin", _use_new_zipfile_serialization=False)
    exp = collections.OrderedDict((k, expected_entry(v.detach())) for k, v in sd.items())
    with open("expected.json", "w") as f:
        f.write("{\n" + ",\n".join(json.dumps(k) + ": " + json.dumps(v) for k, v in exp.items()) + "\n}\n")
    # The storage sharing the test relies on.
    assert sd["bert.transposed"].data_ptr() == base.data_ptr()
    assert sd["bert.offset"].storage_offset() == 5
    assert not sd["bert.transposed"].is_contiguous()


def write_zip(name, pickle_bytes):
    prefix = name.rsplit(".", 1)[0]
    with zipfile.ZipFile(name, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pickle_bytes)
        z.writestr(prefix + "/version", b"3\n")


def unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def hostile():
    # PROTO 2; GLOBAL 'os system'; BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP.
    p = b"\x80\x02" + b"cos\nsystem\n" + unicode("echo pwned") + b"\x85" + b"R" + b"."
    write_zip("hostile.bin", p)
    # PROTO 2; 'builtins' 'eval' STACK_GLOBAL; '1+1'; TUPLE1; REDUCE; STOP.
    p = b"\x80\x02" + unicode("builtins") + unicode("eval") + b"\x93" + unicode("1+1") + b"\x85" + b"R" + b"."
    write_zip("hostile_stack.bin", p)


def truncated():
    with open("golden.bin", "rb") as f:
        b = f.read()
    with open("truncated.bin", "wb") as f:
        f.write(b[: len(b) // 2])


def short_storage():
    torch.save({"w": torch.arange(6, dtype=torch.float32)}, "tmp_short.bin")
    zin = zipfile.ZipFile("tmp_short.bin")
    with zipfile.ZipFile("short_storage.bin", "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            new = info.filename.replace("tmp_short/", "short_storage/")
            if info.filename.endswith("/data/0"):
                data = data[:12]
            zout.writestr(new, data)
    zin.close()
    os.remove("tmp_short.bin")


def legacy():
    torch.save({"w": torch.tensor([1.0, 2.0, 3.0])}, "legacy.bin", _use_new_zipfile_serialization=False)

    # The legacy header pickles, from plain Python values (what _legacy_save writes first).
    header = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
              + pickle.dumps(1001, protocol=2)
              + pickle.dumps(dict(protocol_version=1001, little_endian=True,
                                  type_sizes=dict(short=2, int=4, long=4)), protocol=2))
    with open("legacy.bin", "rb") as f:
        assert f.read().startswith(header)
    # PROTO 2; GLOBAL 'os system'; BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP.
    p = b"\x80\x02" + b"cos\nsystem\n" + unicode("echo pwned") + b"\x85" + b"R" + b"."
    with open("legacy_hostile.bin", "wb") as f:
        f.write(header + p + pickle.dumps([], protocol=2))

    torch.save({"w": torch.arange(6, dtype=torch.float32)}, "tmp_legacy.bin", _use_new_zipfile_serialization=False)
    with open("tmp_legacy.bin", "rb") as f:
        b = f.read()
    os.remove("tmp_legacy.bin")
    record = struct.pack("<q", 6) + struct.pack("<6f", *range(6))
    assert b.endswith(record)
    with open("legacy_truncated.bin", "wb") as f:
        f.write(b[:-12])
    with open("legacy_short_storage.bin", "wb") as f:
        f.write(b[: -len(record)] + struct.pack("<q", 3) + struct.pack("<3f", 0, 1, 2))


if __name__ == "__main__":
    golden()
    hostile()
    truncated()
    short_storage()
    legacy()
    print("torch", torch.__version__)
