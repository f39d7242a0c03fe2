#!/usr/bin/env python3
"""A Qwen3 model folder (as `oko make-model` writes it) as a GGUF file for llama.cpp.

Only for speed comparisons on the same machine: the weights are copied in their own type
(BF16, F16 or F32; norms widened to F32, as llama.cpp keeps them), the tokenizer comes
from tokenizer.json. Qwen3 needs no permutation of q/k (llama.cpp runs it with NEOX RoPE).
Standard library only; writes OUT.tmp, then renames it.
Usage: gguf_export.py MODEL_DIR OUT.gguf
"""
import json
import os
import struct
import sys

ALIGNMENT = 32
GGUF_TYPE = {"F32": 0, "F16": 1, "BF16": 30}
PER_LAYER = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down"}


def string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, kind, value):
    """One metadata entry; kind is a struct code (I u32, f f32, ? bool) or 'str'."""
    if kind == "str":
        return string(key) + struct.pack("<I", 8) + string(value)
    type_id = {"I": 4, "f": 6, "?": 7}[kind]
    return string(key) + struct.pack("<I", type_id) + struct.pack("<" + kind, value)


def kv_array(key, kind, values):
    if kind == "str":
        body = b"".join(string(v) for v in values)
        return string(key) + struct.pack("<IIQ", 9, 8, len(values)) + body
    return string(key) + struct.pack("<IIQ", 9, 5, len(values)) + struct.pack(f"<{len(values)}i", *values)


def metadata(cfg, tok):
    vocab = cfg["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(vocab)]
    types = [5] * vocab  # unused
    for text, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = text, 1  # normal
    for added in tok["added_tokens"]:
        tokens[added["id"]], types[added["id"]] = added["content"], 3 if added["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    a = "qwen3"
    return [
        kv("general.architecture", "str", a), kv("general.name", "str", "oko-make-model"),
        kv("general.alignment", "I", ALIGNMENT),
        kv(f"{a}.context_length", "I", cfg["max_position_embeddings"]),
        kv(f"{a}.embedding_length", "I", cfg["hidden_size"]),
        kv(f"{a}.block_count", "I", cfg["num_hidden_layers"]),
        kv(f"{a}.feed_forward_length", "I", cfg["intermediate_size"]),
        kv(f"{a}.attention.head_count", "I", cfg["num_attention_heads"]),
        kv(f"{a}.attention.head_count_kv", "I", cfg["num_key_value_heads"]),
        kv(f"{a}.attention.key_length", "I", cfg["head_dim"]),
        kv(f"{a}.attention.value_length", "I", cfg["head_dim"]),
        kv(f"{a}.rope.freq_base", "f", float(cfg["rope_theta"])),
        kv(f"{a}.attention.layer_norm_rms_epsilon", "f", float(cfg["rms_norm_eps"])),
        kv("tokenizer.ggml.model", "str", "gpt2"), kv("tokenizer.ggml.pre", "str", "qwen2"),
        kv_array("tokenizer.ggml.tokens", "str", tokens),
        kv_array("tokenizer.ggml.token_type", "i32", types),
        kv_array("tokenizer.ggml.merges", "str", merges),
        kv("tokenizer.ggml.bos_token_id", "I", cfg["bos_token_id"]),
        kv("tokenizer.ggml.eos_token_id", "I", cfg["eos_token_id"]),
        kv("tokenizer.ggml.padding_token_id", "I", cfg["bos_token_id"]),
        kv("tokenizer.ggml.add_bos_token", "?", False)]


def padded(n):
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def write_tensor(f, st, entry, widen):
    left = entry["data_offsets"][1] - entry["data_offsets"][0]
    if widen:  # a norm vector: bf16 or f16 to f32
        raw = st.read(left)
        if entry["dtype"] == "BF16":
            halves = struct.unpack(f"<{left // 2}H", raw)
            f.write(struct.pack(f"<{len(halves)}I", *[h << 16 for h in halves]))
        else:
            f.write(struct.pack(f"<{left // 2}f", *struct.unpack(f"<{left // 2}e", raw)))
        return
    while left:
        chunk = st.read(min(left, 1 << 24))
        f.write(chunk)
        left -= len(chunk)


def main():
    src, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(f"{src}/config.json"))
    tok = json.load(open(f"{src}/tokenizer.json"))
    st = open(f"{src}/model.safetensors", "rb")
    header_len = struct.unpack("<Q", st.read(8))[0]
    header = json.loads(st.read(header_len))
    data_start = 8 + header_len

    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight"}  # tied: llama.cpp reuses token_embd
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in PER_LAYER.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    tensors, offset = [], 0  # (hf name, gguf name, dims, type, bytes, offset)
    for hf, gg in names.items():
        entry = header[hf]
        shape = entry["shape"]
        widen = len(shape) == 1 and entry["dtype"] != "F32"
        kind = 0 if widen else GGUF_TYPE[entry["dtype"]]
        count = 1
        for d in shape:
            count *= d
        nbytes = count * (4 if kind == 0 else 2)
        tensors.append((hf, gg, list(reversed(shape)), kind, nbytes, offset))  # GGUF: fastest dim first
        offset += padded(nbytes)

    meta = metadata(cfg, tok)
    info = b"".join(string(gg) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims) +
                    struct.pack("<IQ", kind, off) for _, gg, dims, kind, _, off in tensors)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + info
    with open(out + ".tmp", "wb") as f:
        f.write(head + b"\0" * (padded(len(head)) - len(head)))
        for hf, _, _, kind, nbytes, _ in tensors:
            entry = header[hf]
            st.seek(data_start + entry["data_offsets"][0])
            write_tensor(f, st, entry, widen=kind == 0 and entry["dtype"] != "F32")
            f.write(b"\0" * (padded(nbytes) - nbytes))
    os.rename(out + ".tmp", out)
    print(f"wrote {out}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
