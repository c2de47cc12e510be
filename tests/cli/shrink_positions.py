# shrink_positions.py DIR N: rewrites the model in DIR to N position embeddings (config.json and tensor).
import json, struct, sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
raw = open(f"{d}/model.safetensors", "rb").read()
hl = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + hl]); data = raw[8 + hl:]
out, blobs, off = {}, [], 0
for name, info in header.items():
    if name == "__metadata__": out[name] = info; continue
    b, e = info["data_offsets"]; blob = data[b:e]
    if name.endswith("position_embeddings.weight"):
        rows, h = info["shape"]; item = len(blob) // (rows * h)
        blob = blob[: n * h * item]; info = dict(info, shape=[n, h])
    out[name] = dict(info, data_offsets=[off, off + len(blob)]); blobs.append(blob); off += len(blob)
hj = json.dumps(out).encode(); hj += b" " * (-len(hj) % 8)
open(f"{d}/model.safetensors", "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
c = json.load(open(f"{d}/config.json")); c["max_position_embeddings"] = n; json.dump(c, open(f"{d}/config.json", "w"))
