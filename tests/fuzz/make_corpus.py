#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (committed; rerun only to
regenerate). Small hand-made cases, plus reduced copies of ../shared files: the real
headers, configs, templates and conversations, and a Qwen3 tokenizer.json cut down to
its first 400 tokens. Crash inputs found by fuzzing are added by hand (crash-*).
Usage: OKO_SHARED=../shared tests/fuzz/make_corpus.py"""
import hashlib, json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("OKO_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= 100 * 1024, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def shared(*p):
    return os.path.join(SHARED, *p)


def read(*p):
    with open(shared(*p), "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None, align=True):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if align:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I8": 1, "U8": 1, "I16": 2, "U16": 2,
         "I32": 4, "U32": 4, "I64": 8, "U64": 8, "BOOL": 1}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors_seeds():
    t = "fuzz_safetensors"
    put(t, "one_f32", safetensors([("w", "F32", [2, 3], struct.pack("<6f", *range(6)))]))
    put(t, "all_dtypes", safetensors([(f"t_{k}", k, [3], bytes(3 * s)) for k, s in SIZES.items()],
                                     {"format": "pt"}))
    put(t, "empty_tensor", safetensors([("e", "F32", [0, 4], b""), ("s", "BF16", [], b"\0\0")]))
    put(t, "empty_header", safetensors([]))
    put(t, "unaligned", safetensors([("a", "F16", [3], bytes(6)), ("b", "F32", [1], bytes(4))], align=False))
    put(t, "overlap", struct.pack("<Q", 96) + json.dumps(
        {"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
         "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}).encode().ljust(96) + bytes(8))
    # Real models: the tensors that fit in 16 KB, with their real names, shapes and bytes.
    for model in ("stories260k", "tiny-llama", "tiny-qwen3"):
        raw = read("models", model, "model.safetensors")
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        meta = header.pop("__metadata__", None)
        picked = []
        for name, e in header.items():
            b, end = e["data_offsets"]
            if end - b <= 4096 and len(picked) < 6:
                picked.append((name, e["dtype"], e["shape"], raw[8 + n + b:8 + n + end]))
        put(t, f"real_{model}", safetensors(picked, meta))
        put(t, f"real_header_only_{model}", raw[:8 + n] if n < 90000 else raw[:8])


def shard_index_seeds():
    t = "fuzz_shard_index"
    put(t, "two_shards", json.dumps({"metadata": {"total_size": 123}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "model.norm.weight": "model-00002-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}, indent=2))
    put(t, "bad_shard_path", json.dumps({"weight_map": {"a": "../x.safetensors", "b": "."}}))
    put(t, "non_string", json.dumps({"weight_map": {"a": 1}}))
    put(t, "empty", "{}")


def config_seeds():
    t = "fuzz_config"
    for model in ("stories260k", "tiny-llama", "tiny-qwen3"):
        put(t, f"real_{model}", read("models", model, "config.json") + b"\0" +
            read("models", model, "generation_config.json"))
    put(t, "qwen2_rope", json.dumps({
        "model_type": "qwen2", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "eos_token_id": [1, 2], "bos_token_id": 0, "tie_word_embeddings": True, "head_dim": 16,
        "dtype": "bfloat16"}) + "\0" + json.dumps({"do_sample": True, "temperature": 0.6,
                                                   "top_k": 20, "top_p": 0.95, "eos_token_id": 3}))


def tokenizer_seeds():
    t = "fuzz_tokenizer_json"
    put(t, "stories260k", read("models", "stories260k", "tokenizer.json") + b"\0" +
        read("models", "stories260k", "tokenizer_config.json"))
    # Qwen3 cut down: the first 400 vocab entries and the merges among them.
    q = json.loads(read("models", "qwen3-tokenizer", "tokenizer.json"))
    vocab = {k: v for k, v in q["model"]["vocab"].items() if v < 400}
    merges = []
    for m in q["model"]["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    q["model"]["vocab"] = vocab
    q["model"]["merges"] = merges
    q["added_tokens"] = [dict(a, id=400 + i) for i, a in enumerate(q["added_tokens"][:8])]
    put(t, "qwen3_small", json.dumps(q, ensure_ascii=False) + "\0" + json.dumps({
        "bos_token": None, "eos_token": "<|im_end|>", "add_bos_token": False}))
    byte_level = {"version": "1.0", "added_tokens": [{"id": 5, "content": "<s>", "special": True,
                   "lstrip": False, "rstrip": False, "single_word": False, "normalized": False}],
                  "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]},
                  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                    "use_regex": True},
                  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                     {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                                     "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}},
                  "decoder": {"type": "ByteLevel"},
                  "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                            "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4},
                            "merges": ["a b", "\u0120 ab"]}}
    put(t, "byte_level_tiny", json.dumps(byte_level))
    meta = {"version": "1.0", "added_tokens": [],
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                              "split": False},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                      "vocab": dict({"<unk>": 0, "\u2581": 1, "h": 2, "i": 3, "hi": 4, "\u2581hi": 5},
                                    **{f"<0x{b:02X}>": 6 + b for b in range(256)}),
                      "merges": [["h", "i"], ["\u2581", "hi"]]}}
    put(t, "metaspace_tiny", json.dumps(meta) + "\0" + json.dumps({"bos_token": "<unk>", "add_bos_token": True}))
    split = dict(byte_level, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]})
    put(t, "split_regex", json.dumps(split))

    c = "fuzz_tokenizer_codec"
    put(c, "qwen3_encode_hello", b"\0Hello world! It's 2024... \xe4\xbd\xa0\xe5\xa5\xbd  \n\n  ok")
    put(c, "qwen3_encode_special", b"\x04<|im_start|>user\nhi<|im_end|>\n<think>\n\n</think>")
    put(c, "qwen3_encode_nfd", "\0e\u0301 A\u030a \ufb01 \U0001F999 caf\u00e9".encode())
    put(c, "stories_encode", b"\x05Once upon a time, there was a little girl named Lily.")
    put(c, "stories_encode_bytes", "\x01\u00fcber \u4f60\u597d \U0001F600".encode())
    put(c, "invalid_utf8", b"\0ab\xc3(\xff\xfe")
    put(c, "qwen3_decode", b"\x02" + struct.pack("<8i", 9707, 1879, 220, 151644, 151645, 198, 99999, -5))
    put(c, "stories_decode", b"\x07" + struct.pack("<8i", 1, 403, 407, 261, 3, 200, 0, 2))
    put(c, "split_utf8_decode", b"\x02" + struct.pack("<4i", 158, 253, 120, 16))
    for i, line in enumerate(open(shared("golden", "tokenizer", "qwen3.jsonl"), encoding="utf-8")):
        if i % 6 == 0:
            case = json.loads(line)
            text = case.get("text", case.get("input"))
            if isinstance(text, str) and len(text) < 2000:
                put(c, f"golden_{i:03d}", b"\0" + text.encode())


def chat_template_seeds():
    t = "fuzz_chat_template"
    cfg = json.loads(read("models", "qwen3-tokenizer", "tokenizer_config.json"))
    qwen3 = cfg["chat_template"]
    for i, line in enumerate(open(shared("golden", "chat_template", "qwen3.jsonl"), encoding="utf-8")):
        case = json.loads(line)
        v = dict(case.get("options", {}), messages=case["messages"])
        for k in ("tools", "documents"):
            if k in case:
                v[k] = case[k]
        put(t, f"qwen3_{i:02d}", qwen3 + "\0" + json.dumps(v, ensure_ascii=False))
    cfg = json.loads(read("models", "stories260k", "tokenizer_config.json"))
    if isinstance(cfg.get("chat_template"), str):
        put(t, "stories260k", cfg["chat_template"] + "\0[]")
    hand = {
        "llama2": "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] | trim }} [/INST]"
                  "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}",
        "loops": "{% set ns = namespace(n=0) %}{% for i in range(5) if i is odd %}{{ loop.index }}/{{ loop.length }}"
                 "{% set ns.n = ns.n + i %}{% if loop.last %}{% break %}{% endif %}{% else %}none{% endfor %}{{ ns.n }}",
        "macro": "{% macro f(x, y=2) %}[{{ x ~ y }}]{% endmacro %}{{ f(1) }}{{ f('a', y='b') }}{%- set a, b = 1, 2 -%} {{ a + b }}",
        "filters": "{{ messages | length }} {{ 'Hello' | upper | replace('L', 'l') }} {{ [3,1,2] | sort | join(',') }}"
                   " {{ {'b': 1, 'a': 2} | tojson }} {{ messages[0].content.split(' ')[1:] }} {{ '%d' if true else 'x' }}"
                   " {{ 7 // 2 }} {{ 2 ** 10 }} {{ 'abc'[::-1] }} {{ none is none }} {{ 'x' in 'xyz' }} {{ -3 | abs }}",
        "whitespace": "{%- for m in messages -%}\n  {{- m.role }}: {{ m.content -}}\n{%- endfor %}\n{# comment #}\n{%+ if true %}x{% endif %}",
        "set_block": "{% set x %}block {{ 1 + 1 }}{% endset %}{{ x | trim }}{{ raise_exception('boom') if false }}"
                     "{{ strftime_now('%Y') | length }}",
        "generation": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
                      "{% endif %}{% endfor %}{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
    }
    msgs = json.dumps([{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}])
    for k, src in hand.items():
        put(t, f"hand_{k}", src + "\0" + msgs)


def trace_seeds():
    t = "fuzz_trace"

    def trace(H, Q, K, layers, lens_k=0, chat=False, f16=False, align=True):
        tokens = [f"t{i}" for i in range(max(max(K, Q), 1) + 1)]
        n = len(tokens)
        keys = list(range(K))
        queries = list(range(n - Q, n))
        meta = {"format": "oko-trace-1", "model": "stories260k", "dtype": "f16" if f16 else "f32",
                "tokens": json.dumps(tokens), "token_ids": json.dumps(list(range(n))),
                "layers": json.dumps(layers), "heads": json.dumps(list(range(H))),
                "query_positions": json.dumps(queries), "key_positions": json.dumps(keys),
                "key_is_sink": json.dumps([1 if k < 1 else 0 for k in keys]), "sink_count": "1",
                "options": "{}"}
        if chat:
            meta["token_turns"] = json.dumps([i // 2 for i in range(n)])
            meta["token_roles"] = json.dumps(["user" if i % 2 else "assistant" for i in range(n)])
        tensors = []
        for l in layers:
            if f16:
                raw = struct.pack(f"<{H * Q * K}e", *[1.0 / max(K, 1)] * (H * Q * K))
                tensors.append((f"attn.{l}", "F16", [H, Q, K], raw))
            else:
                raw = struct.pack(f"<{H * Q * K}f", *[1.0 / max(K, 1)] * (H * Q * K))
                tensors.append((f"attn.{l}", "F32", [H, Q, K], raw))
        if lens_k:
            L = 2
            meta["lens_layers"] = json.dumps([-1, 0])
            meta["lens_k"] = str(lens_k)
            meta["lens_tokens"] = json.dumps({"3": "a", "4": "b"})
            tensors.append(("lens.ids", "I32", [L, Q, lens_k], struct.pack(f"<{L * Q * lens_k}i", *[3] * (L * Q * lens_k))))
            tensors.append(("lens.probs", "F32", [L, Q, lens_k], struct.pack(f"<{L * Q * lens_k}f", *[0.5] * (L * Q * lens_k))))
        return safetensors(tensors, meta, align)

    put(t, "small", trace(2, 3, 4, [0, 2]))
    put(t, "lens", trace(1, 2, 3, [1], lens_k=2))
    put(t, "chat_f16", trace(2, 2, 5, [0], chat=True, f16=True))
    put(t, "unaligned_lens", trace(1, 1, 2, [0], lens_k=3, f16=True, align=False))
    put(t, "empty", trace(1, 0, 0, []))


def lora_seeds():
    """adapter_config.json, a NUL, then adapter_model.safetensors, for stories260k's shapes
    (hidden 64, q 64, kv 32, intermediate 172, 5 layers, vocab 512)."""
    t = "fuzz_lora"
    config = read("golden", "lora", "adapters", "stories260k-r4-all", "adapter_config.json")

    def module(name, r, n_in, n_out, dtype="F32"):
        size = SIZES[dtype]
        prefix = f"base_model.model.{name}"
        return [(prefix + ".lora_A.weight", dtype, [r, n_in], bytes(r * n_in * size)),
                (prefix + ".lora_B.weight", dtype, [n_out, r], bytes(n_out * r * size))]

    q0 = module("model.layers.0.self_attn.q_proj", 4, 64, 64)
    put(t, "golden_config_q_proj", config + b"\0" + safetensors(q0))
    put(t, "down_proj_bf16", config + b"\0" + safetensors(module("model.layers.4.mlp.down_proj", 4, 172, 64, "BF16")))
    rs = json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": True,
                     "rank_pattern": {"lm_head": 2, "layers.1.self_attn.k_proj": 1},
                     "alpha_pattern": {"v_proj": 3}, "layers_to_transform": [1]}).encode()
    put(t, "patterns_lm_head", rs + b"\0" + safetensors(module("lm_head", 2, 64, 512, "F16")
                                                        + module("model.layers.1.self_attn.k_proj", 1, 64, 32)))
    put(t, "wrong_shape", config + b"\0" + safetensors(module("model.layers.0.self_attn.k_proj", 4, 80, 32)))
    put(t, "dora", b'{"peft_type": "LORA", "r": 4, "use_dora": true}\0' + safetensors(q0))


GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, v):
    if vtype in GGUF_SCALARS:
        return struct.pack("<" + GGUF_SCALARS[vtype], v)
    if vtype == 8:
        return gguf_string(v)
    elem, items = v  # arrays: (element type, values)
    return struct.pack("<IQ", elem, len(items)) + b"".join(gguf_value(elem, x) for x in items)


def gguf(kvs, tensors, version=3, align=32):
    """kvs: list of (key, type, value); tensors: list of (name, ne, ggml type, bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, v in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, v)
    offset, data = 0, b""
    for name, ne, gtype, raw in tensors:
        out += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", gtype, len(data))
        data += raw + bytes(-len(raw) % align)
    return out + bytes(-len(out) % align) + data


def read_gguf(raw):
    """(kvs, {name: (ne, type, bytes)}) of a GGUF image, for reduced copies of real files."""
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, raw, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return raw[pos - n:pos]

    def value(vtype):
        if vtype in GGUF_SCALARS:
            return take(GGUF_SCALARS[vtype])
        if vtype == 8:
            return string()
        elem, n = take("I"), take("Q")
        return (elem, [value(elem) for _ in range(n)])

    pos = 8
    n_tensors, n_kv = take("Q"), take("Q")
    kvs = []
    for _ in range(n_kv):
        key = string().decode()
        vtype = take("I")
        kvs.append((key, vtype, value(vtype)))
    align = dict((k, v) for k, _, v in kvs).get("general.alignment", 32)
    infos = []
    for _ in range(n_tensors):
        name = string().decode()
        ne = [take("Q") for _ in range(take("I"))]
        infos.append((name, ne, take("I"), take("Q")))
    start = pos + (-pos % align)
    sizes = {0: (1, 4), 2: (32, 18), 8: (32, 34), 14: (256, 210)}
    tensors = {}
    for name, ne, gtype, off in infos:
        numel = 1
        for d in ne:
            numel *= d
        if gtype in sizes:
            block, nbytes = sizes[gtype]
            tensors[name] = (ne, gtype, raw[start + off:start + off + numel // block * nbytes])
    return kvs, tensors


def gguf_seeds():
    t = "fuzz_gguf"
    f32 = struct.pack("<4f", 1, 2, 3, 4)
    put(t, "one_f32", gguf([("general.architecture", 8, "llama")], [("w", [4], 0, f32)]))
    put(t, "every_type", gguf([(f"k{vt}", vt, 1) for vt in GGUF_SCALARS] +
                              [("s", 8, "x"), ("a", 9, (8, ["a", "b"])), ("n", 9, (9, [(5, [1, 2]), (0, [])]))],
                              [("q", [32, 2], 8, bytes(68)), ("e", [0], 0, b"")]))
    put(t, "v2_align64", gguf([("general.alignment", 4, 64)], [("a", [2], 0, bytes(8)), ("b", [256], 14, bytes(210))],
                              version=2, align=64))
    put(t, "empty", gguf([], []))
    kvs, tensors = read_gguf(read("models", "gguf", "small-llama-256-q4_0.gguf"))
    picked = [(n, *tensors[n]) for n in ("output_norm.weight", "blk.0.attn_k.weight")]
    put(t, "real_small_llama_q4_0", gguf(kvs, picked))


if __name__ == "__main__":
    safetensors_seeds()
    shard_index_seeds()
    config_seeds()
    tokenizer_seeds()
    chat_template_seeds()
    trace_seeds()
    lora_seeds()
    gguf_seeds()
    total = 0
    for root, _, files in os.walk(os.path.join(HERE, "corpus")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"corpus: {total} bytes")
