#!/usr/bin/env bash
# oko and llama.cpp on the same model, threads and weight format, one after the other in
# one run (PERF.md's llama.cpp figures come from another machine state; compare here).
# llama.cpp is node-llama-cpp's prebuilt CPU backend (npm, pinned as PERF.md says; it
# picks its AVX-512/BF16 build at run time), installed once into $OKO_LLAMACPP_DIR.
# The model is exported to GGUF beside it by gguf_export.py.
# Usage: scripts/llamacpp/compare.sh MODEL_DIR [THREADS=2] [N_PROMPT=512] [N_GEN=128]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODEL="$1" THREADS="${2:-2}" NP="${3:-512}" NG="${4:-128}"
DIR="${OKO_LLAMACPP_DIR:-${TMPDIR:-/tmp}/oko-llamacpp}"
OKO="${OKO:-$ROOT/build/oko}"

OKO_LLAMACPP_DIR="$DIR" "$HERE/install.sh"
cp "$HERE/bench.mjs" "$DIR/bench.mjs"
GGUF="$DIR/$(basename "$MODEL").gguf"
[[ -f "$GGUF" && "$GGUF" -nt "$MODEL/model.safetensors" ]] || python3 "$HERE/gguf_export.py" "$MODEL" "$GGUF"

"$OKO" bench -m "$MODEL" -t "$THREADS" -p "$NP" -n "$NG" -r 3
(cd "$DIR" && node bench.mjs "$GGUF" "$THREADS" "$NP" "$NG" 3 2>&1 | grep -E "^llama.cpp")
