#!/usr/bin/python3
"""The album's indexing pipeline in Python, for comparison with `glimpse index`.

    /usr/bin/python3 bench/album_python.py PHOTO_DIR [--threads 2] [--draft] [--tiny] [--ort DIR]

Pillow decode (Image.open + convert('RGB'); with --draft, Pillow's JPEG draft mode, the same
libjpeg DCT scaling as --fast-decode) + the OpenCLIP eval preprocessing + MobileCLIP2-S0 image
tower in PyTorch (tools/reference/mobileclip, random weights, train-time form: no
reparameterisation), batch of 1 per image, one process with torch.set_num_threads(threads).
With --ort DIR the model is ONNX Runtime instead (the issue's baseline: Pillow + ONNX Runtime):
onnxruntime has no Python wheel here (no PyPI), so bench/album_ort.mjs runs DIR/image.onnx
(bench/clip_peers.py prepare: re-parameterised S0) in onnxruntime-node behind a pipe, one image per
call, as session.run would; the pipe costs ~1 ms per image. Prints images/s, wall and CPU
seconds (CPU: this process only; with --ort the node process's CPU is not included)."""
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference", "mobileclip"))
import clip  # noqa: E402


def main():
    args = sys.argv[1:]
    d = args[0]
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2
    draft, tiny = "--draft" in args, "--tiny" in args
    torch.set_num_threads(threads)
    name = "MobileCLIP2-S0"
    model, mcfg = clip.build(name, tiny=tiny, seed=1)
    size = mcfg["vision_cfg"]["image_size"]
    pc = clip.preprocess_config(name)
    ort = args[args.index("--ort") + 1] if "--ort" in args else None
    if ort:
        env = dict(os.environ, NODE_PATH=os.environ.get("NODE_PATH", "/tmp/ortnode/node_modules"))
        js = os.path.join(os.path.dirname(__file__), "album_ort.mjs")
        srv = subprocess.Popen(["node", js, ort, str(threads), str(size)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=env)
        assert srv.stdout.readline() == b"ready\n"
        dim = mcfg["embed_dim"]
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    t0, c0 = time.time(), time.process_time()
    t_dec = 0.0
    with torch.no_grad():
        for f in files:
            a = time.time()
            im = Image.open(f)
            if draft:
                im.draft("RGB", (size, size))
            x = clip.preprocess(im, size, pc["mean"], pc["std"], Image.BILINEAR)
            t_dec += time.time() - a
            if ort:
                srv.stdin.write(np.ascontiguousarray(x, np.float32).tobytes())
                srv.stdin.flush()
                e = np.frombuffer(srv.stdout.read(4 * dim), np.float32)
                e = e / np.linalg.norm(e)
            else:
                e = model.encode_image(torch.from_numpy(x)[None])
                e = e / e.norm(dim=-1, keepdim=True)
    dt, dc = time.time() - t0, time.process_time() - c0
    if ort:
        srv.stdin.close()
        srv.wait()
    print(f"python {name}{' tiny' if tiny else ''}{' draft' if draft else ''}{' +ort' if ort else ''}: {len(files)} images, "
          f"{dt:.2f} s wall ({t_dec:.2f} s decode+preprocess), {dc:.2f} s CPU, {len(files) / dt:.2f} images/s")


if __name__ == "__main__":
    main()
