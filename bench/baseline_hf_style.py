#!/usr/bin/python3
"""The usual way to run one BBT black-box call, for comparison with `bbt bench forward`.

Eager PyTorch in Hugging Face's RobertaForMaskedLM style: separate Q/K/V linear layers,
the full-vocabulary MLM head on every position, and one forward per candidate over its
examples (no batching of candidates), under torch.no_grad(). It replays the exact call that
`bbt bench forward --dump DIR` wrote (token rows, <mask> positions, prompts, verbalizer ids),
times it, and checks its logits against bbt's (max abs diff): an independent parity check.

Run with Debian's interpreter: /usr/bin/python3 bench/baseline_hf_style.py --model M --call DIR
"""
import argparse
import json
import math
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    """name -> torch tensor; the format is an 8-byte header length, a JSON header, raw data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":
            a, b = info["data_offsets"]
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            a, b = info["data_offsets"]
            arr = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).astype(np.float32, copy=True))
    return out


class Layer(nn.Module):
    def __init__(self, h, heads, ffn, eps):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out, self.attn_ln = nn.Linear(h, h), nn.LayerNorm(h, eps=eps)
        self.inter, self.out, self.out_ln = nn.Linear(h, ffn), nn.Linear(ffn, h), nn.LayerNorm(h, eps=eps)

    def split(self, x):
        b, t, h = x.shape
        return x.view(b, t, self.heads, h // self.heads).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + ext_mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).flatten(2)
        a = self.attn_ln(self.attn_out(ctx) + x)
        return self.out_ln(self.out(F.gelu(self.inter(a))) + a)


class RobertaForMaskedLM(nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        h = cfg["hidden_size"]
        eps = cfg.get("layer_norm_eps", 1e-5)
        self.pad = cfg.get("pad_token_id", 1)
        self.word = nn.Embedding.from_pretrained(w["roberta.embeddings.word_embeddings.weight"])
        self.pos = nn.Embedding.from_pretrained(w["roberta.embeddings.position_embeddings.weight"])
        self.token_type = nn.Embedding.from_pretrained(w["roberta.embeddings.token_type_embeddings.weight"])
        self.emb_ln = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList(
            Layer(h, cfg["num_attention_heads"], cfg["intermediate_size"], eps) for _ in range(cfg["num_hidden_layers"])
        )
        self.head_dense, self.head_ln = nn.Linear(h, h), nn.LayerNorm(h, eps=eps)
        vocab = self.word.weight.shape[0]
        self.decoder = nn.Linear(h, vocab)
        e = "roberta.embeddings."
        with torch.no_grad():
            self.emb_ln.weight.copy_(w[e + "LayerNorm.weight"])
            self.emb_ln.bias.copy_(w[e + "LayerNorm.bias"])
            for i, ly in enumerate(self.layers):
                p = f"roberta.encoder.layer.{i}."
                for name, lin in (("query", ly.query), ("key", ly.key), ("value", ly.value)):
                    lin.weight.copy_(w[p + f"attention.self.{name}.weight"])
                    lin.bias.copy_(w[p + f"attention.self.{name}.bias"])
                for lin, key in ((ly.attn_out, "attention.output.dense"), (ly.inter, "intermediate.dense"),
                                 (ly.out, "output.dense")):
                    lin.weight.copy_(w[p + key + ".weight"])
                    lin.bias.copy_(w[p + key + ".bias"])
                for ln, key in ((ly.attn_ln, "attention.output.LayerNorm"), (ly.out_ln, "output.LayerNorm")):
                    ln.weight.copy_(w[p + key + ".weight"])
                    ln.bias.copy_(w[p + key + ".bias"])
            self.head_dense.weight.copy_(w["lm_head.dense.weight"])
            self.head_dense.bias.copy_(w["lm_head.dense.bias"])
            self.head_ln.weight.copy_(w["lm_head.layer_norm.weight"])
            self.head_ln.bias.copy_(w["lm_head.layer_norm.bias"])
            self.decoder.weight.copy_(w.get("lm_head.decoder.weight", self.word.weight))
            self.decoder.bias.copy_(w["lm_head.bias"] if "lm_head.bias" in w else w["lm_head.decoder.bias"])

    def forward(self, ids, attention_mask, prompt=None, mode="add"):
        """Full-vocabulary logits [B, T, V]; prompt [n, H] added after the embeddings at 1..n (add)
        or placed in front of them (cat)."""
        pos = torch.cumsum(attention_mask, 1) * attention_mask + self.pad
        x = self.emb_ln(self.word(ids) + self.token_type(torch.zeros_like(ids)) + self.pos(pos))
        if prompt is not None:
            if mode == "add":
                n = prompt.shape[0]
                x = torch.cat([x[:, :1], x[:, 1 : 1 + n] + prompt, x[:, 1 + n :]], 1)
            else:
                x = torch.cat([prompt.expand(x.shape[0], -1, -1), x], 1)
                attention_mask = torch.cat([torch.ones_like(attention_mask[:, : prompt.shape[0]]), attention_mask], 1)
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for ly in self.layers:
            x = ly(x, ext)
        return self.decoder(self.head_ln(F.gelu(self.head_dense(x))))


def load_call(d):
    with open(d + "/call.json") as f:
        call = json.load(f)
    c, n, h = call["candidates"], call["n_prompt_tokens"], call["hidden"]
    prompts = np.fromfile(d + "/prompts.f32", dtype=np.float32).reshape(c, n, h)
    logits = np.fromfile(d + "/logits.f32", dtype=np.float32).reshape(c * len(call["ids"]), -1)
    return call, torch.from_numpy(prompts), logits


def run_call(model, call, prompts, d_z=500):
    """One black-box call the usual way: project z, then one padded forward per candidate."""
    ids_list, mpos, labels, mode = call["ids"], call["mask_pos"], call["label_ids"], call["mode"]
    cands = prompts.shape[0]
    # The projection z -> prompt is part of a call (a [C, d] x [d, n*H] product); its result is replaced
    # by bbt's prompts so that both sides compute the same thing.
    torch.randn(cands, d_z) @ torch.randn(d_z, prompts.shape[1] * prompts.shape[2])
    length = max(len(r) for r in ids_list)
    ids = torch.full((len(ids_list), length), model.pad, dtype=torch.long)
    mask = torch.zeros((len(ids_list), length), dtype=torch.long)
    for i, r in enumerate(ids_list):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    shift = prompts.shape[1] if mode == "cat" else 0
    rows = torch.arange(len(ids_list))
    where = torch.tensor(mpos) + shift
    out = []
    for c in range(cands):
        logits = model(ids, mask, prompts[c], mode)  # [E, T, V]
        out.append(logits[rows, where][:, labels])
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--call", required=True, help="directory written by bbt bench forward --dump")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    with open(a.model + "/config.json") as f:
        cfg = json.load(f)
    model = RobertaForMaskedLM(cfg, read_safetensors(a.model + "/model.safetensors")).eval()
    call, prompts, ref = load_call(a.call)
    seconds = []
    with torch.no_grad():
        for r in range(a.warmup + a.repeats):
            t0 = time.perf_counter()
            got = run_call(model, call, prompts)
            if r >= a.warmup:
                seconds.append(time.perf_counter() - t0)
    med = statistics.median(seconds)
    print(json.dumps({
        "bench": "baseline_hf_style", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "candidates": prompts.shape[0], "examples": len(call["ids"]), "mode": call["mode"],
        "repeats": a.repeats, "seconds_per_call": seconds, "seconds_per_call_median": med,
        "calls_per_second": 1.0 / med,
        "max_abs_diff_vs_bbt": float(np.max(np.abs(got - ref))),
        "max_abs_logit": float(np.max(np.abs(ref))),
    }))


if __name__ == "__main__":
    sys.exit(main())
