#!/usr/bin/env python3
"""Converts the reference's pre-trained prompt (nli_base_prompt.pt: an nn.Embedding(50, 1024)
pickled with torch.save, its weights on a GPU) into a float32 .npy [n, hidden] that bbt reads as
prompt.init_file (p0, cat mode) or `bbt score --prompt-npy`.

Usage: tools/convert_nli_prompt.py nli_base_prompt.pt out.npy
Needs Debian's python3-torch (scripts/setup.sh installs it); tensors are mapped to the CPU, so no
GPU is needed. Accepts a pickled nn.Embedding (the reference's form), a state dict holding one
2-D tensor (or one named 'weight'), or a bare 2-D tensor. One line on stderr and exit 1 on error.
"""
import sys


def fail(message):
    sys.stderr.write(f"convert_nli_prompt: error: {message}\n")
    sys.exit(1)


def prompt_of(obj, path):
    import torch

    if isinstance(obj, torch.nn.Module):
        weight = getattr(obj, "weight", None)
        if weight is None:
            fail(f"{path}: a {type(obj).__name__} without a weight")
        return weight.detach()
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if "weight" in tensors:
            return tensors["weight"]
        if len(tensors) == 1:
            return next(iter(tensors.values()))
        fail(f"{path}: a dict with {len(tensors)} tensors and none named 'weight'")
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    fail(f"{path}: holds a {type(obj).__name__}, not an nn.Embedding, a state dict or a tensor")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    src, dst = argv[1], argv[2]
    try:
        import numpy as np
        import torch
    except ImportError as e:
        fail(f"needs python3-torch and python3-numpy ({e})")
    try:
        # A pickled module needs the full unpickler (weights_only would refuse it): only convert
        # files you trust, as with any pickle.
        obj = torch.load(src, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is reported in one line
        fail(f"{src}: cannot be read by torch.load: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    t = prompt_of(obj, src).to(torch.float32).cpu()
    if t.dim() != 2:
        fail(f"{src}: the prompt has shape {list(t.shape)}, expected [n_tokens, hidden]")
    a = t.numpy()
    if not np.isfinite(a).all():
        fail(f"{src}: the prompt holds non-finite values")
    np.save(dst, np.ascontiguousarray(a))
    print(f"{dst}: prompt [{a.shape[0]}, {a.shape[1]}] float32")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
