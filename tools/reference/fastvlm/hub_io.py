"""Write (and read back) checkpoints in the apple/FastVLM-0.5B hub layout.

safetensors by hand (the package is not installed): 8-byte little-endian
header length, JSON header {name: {dtype, shape, data_offsets}} plus
"__metadata__": {"format": "pt"}, padded with spaces to a multiple of 8, then
the raw little-endian tensor bytes.  Tensors are stored in the order given.
"""
import json
import os
import shutil
import struct

import numpy as np
import torch

import fastvlm_ref as R

QWEN2_TOKENIZER_DIR = "/work/shared/data/qwen2"
TOKENIZER_FILES = ["added_tokens.json", "merges.txt", "special_tokens_map.json",
                   "tokenizer.json", "tokenizer_config.json", "vocab.json"]


def tensor_bytes(t, dtype):
    """dtype: 'BF16' | 'F16' | 'F32' for floats; int64 tensors are always I64."""
    if t.dtype == torch.int64:
        return "I64", t.numpy().astype("<i8").tobytes()
    if dtype == "BF16":
        return "BF16", t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F16":
        return "F16", t.to(torch.float16).numpy().astype("<f2").tobytes()
    if dtype == "F32":
        return "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
    raise ValueError(dtype)


DTYPE_SIZE = {"BF16": 2, "F16": 2, "F32": 4, "I64": 8}


def stored_dtype(t, dtype):
    return "I64" if t.dtype == torch.int64 else dtype


def write_safetensors(path, sd, dtype):
    """Header first (from shapes), then each tensor streamed: a 1.5 GB file
    never sits in memory twice."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, t in sd.items():
        dt = stored_dtype(t, dtype)
        n = DTYPE_SIZE[dt] * t.numel()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, t in sd.items():
            dt, b = tensor_bytes(t, dtype)
            assert len(b) == header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            f.write(b)
    return off


def read_safetensors(path, keep=None):
    """Minimal reader (for self-checks): returns {name: fp32/int64 tensor};
    keep(name) -> bool selects tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    data = memoryview(np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n))
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__" or (keep is not None and not keep(name)):
            continue
        a, b = e["data_offsets"]
        raw = bytes(data[a:b])
        if e["dtype"] == "BF16":
            u = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            v = torch.from_numpy(u.view(np.float32).copy())
        elif e["dtype"] == "F16":
            v = torch.from_numpy(np.frombuffer(raw, "<f2").astype(np.float32))
        elif e["dtype"] == "F32":
            v = torch.from_numpy(np.frombuffer(raw, "<f4").copy())
        elif e["dtype"] == "I64":
            v = torch.from_numpy(np.frombuffer(raw, "<i8").copy())
        else:
            raise ValueError(e["dtype"])
        out[name] = v.reshape(e["shape"])
    return out


def hub_config(cfg, dtype):
    """config.json of apple/FastVLM-0.5B (LlavaQwen2ForCausalLM; keys as
    published, transformers 4.39.3 era), with the sizes of cfg."""
    lc, vc = cfg["llm"], cfg["vision"]
    return {
        "_name_or_path": cfg["name"],
        "architectures": ["LlavaQwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "freeze_mm_mlp_adapter": False,
        "hidden_act": "silu",
        "hidden_size": lc["hidden_size"],
        "image_aspect_ratio": "pad",
        "image_grid_pinpoints": None,
        "initializer_range": 0.02,
        "intermediate_size": lc["intermediate_size"],
        "max_position_embeddings": lc["max_position_embeddings"],
        "max_window_layers": lc["num_hidden_layers"],
        "mm_hidden_size": cfg["mm_hidden_size"],
        "mm_patch_merge_type": "flat",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": "mobileclip_l_%d" % vc["image_size"],
        "model_type": "llava_qwen2",
        "num_attention_heads": lc["num_attention_heads"],
        "num_hidden_layers": lc["num_hidden_layers"],
        "num_key_value_heads": lc["num_key_value_heads"],
        "rms_norm_eps": lc["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": lc["rope_theta"],
        "sliding_window": lc["max_position_embeddings"],
        "tie_word_embeddings": lc["tie_word_embeddings"],
        "tokenizer_model_max_length": 8192,
        "tokenizer_padding_side": "right",
        "torch_dtype": "bfloat16" if dtype == "BF16" else "float16",
        "transformers_version": "4.39.3",
        "tune_mm_mlp_adapter": False,
        "unfreeze_mm_vision_tower": True,
        "use_cache": True,
        "use_mm_proj": True,
        "use_sliding_window": False,
        "vocab_size": lc["vocab_size"],
    }


def glimpse_extra(cfg):
    """The tiny tower is not FastViTHD-sized; the stock config cannot express
    it (the real loader infers the tower from mm_vision_tower).  Written as a
    separate file so the hub config.json keeps exactly the published keys."""
    vc = cfg["vision"]
    return {"vision_layers": vc["layers"], "vision_widths": vc["widths"],
            "vision_mixers": vc["mixers"], "vision_pos_embs": vc["pos_embs"],
            "vision_image_size": vc["image_size"]}


def write_hub_folder(out, cfg, sd, dtype="BF16", shards=1, tokenizer=True):
    """model.safetensors (shards == 1) or model-0000i-of-0000n.safetensors +
    model.safetensors.index.json, config.json, generation_config.json, and the
    Qwen2 tokenizer files."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hub_config(cfg, dtype), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True, "bos_token_id": 151643, "do_sample": True,
                   "eos_token_id": 151645, "transformers_version": "4.39.3"}, f, indent=2)
    if cfg["vision"] != R.VISION_FULL:
        with open(os.path.join(out, "glimpse_test_vision.json"), "w") as f:
            json.dump(glimpse_extra(cfg), f, indent=2)
    if tokenizer:
        for fn in TOKENIZER_FILES:
            shutil.copyfile(os.path.join(QWEN2_TOKENIZER_DIR, fn), os.path.join(out, fn))
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), sd, dtype)
        return
    # split by running byte count, keeping tensor order (like HF's sharding)
    names = list(sd)
    sizes = [DTYPE_SIZE[stored_dtype(sd[n], dtype)] * sd[n].numel() for n in names]
    total = sum(sizes)
    per = total / shards
    groups, cur, acc = [], [], 0
    for n, s in zip(names, sizes):
        if cur and acc + s > per * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(cur)
            cur = []
        cur.append(n)
        acc += s
    groups.append(cur)
    wmap = {}
    for i, g in enumerate(groups):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(groups))
        write_safetensors(os.path.join(out, fn), {n: sd[n] for n in g}, dtype)
        for n in g:
            wmap[n] = fn
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)
