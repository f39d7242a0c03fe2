#!/usr/bin/env bash
# oko and llama.cpp on the same weights, threads and KV-cache type, alternated round by
# round in one run (the machine's other tenants move both; compare within a round).
# Usage: scripts/llamacpp/compare.sh MODEL [THREADS=2] [N_PROMPT=512] [N_GEN=128]
#   MODEL: a GGUF file, which both engines read as it is (any format: make one with
#          `oko make-model --preset qwen3-0.6b --quant q4_k_m --out F.gguf`), or an oko
#          model folder, exported to GGUF beside llama.cpp by gguf_export.py.
#   LLAMA_BENCH=PATH  a native build's llama-bench (../shared/docs/PERF.md says how to build
#                     one); without it, node-llama-cpp's prebuilt CPU backend (npm, pinned,
#                     installed once into $OKO_LLAMACPP_DIR), which is slower than native.
#   ROUNDS=3          rounds, each oko then llama.cpp, 2 repetitions apiece.
#   KV=f16            oko's --kv, f16 as llama.cpp's default cache type.
# N_PROMPT or N_GEN 0 leaves that test out. Prints one line per round: tok/s, oko's share
# of this machine's limit (`oko bench`'s roofline) and the ratio to llama.cpp.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODEL="$1" THREADS="${2:-2}" NP="${3:-512}" NG="${4:-128}"
ROUNDS="${ROUNDS:-3}" KV="${KV:-f16}"
DIR="${OKO_LLAMACPP_DIR:-${TMPDIR:-/tmp}/oko-llamacpp}"
OKO="${OKO:-$ROOT/build/oko}"

if [[ -f "$MODEL" ]]; then
  GGUF="$MODEL"
else
  GGUF="$DIR/$(basename "$MODEL").gguf"
  mkdir -p "$DIR"
  [[ -f "$GGUF" && "$GGUF" -nt "$MODEL/model.safetensors" ]] || python3 "$HERE/gguf_export.py" "$MODEL" "$GGUF"
fi
if [[ -n "${LLAMA_BENCH:-}" ]]; then
  [[ -x "$LLAMA_BENCH" ]] || { echo "compare.sh: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2; exit 2; }
  echo "llama.cpp: $LLAMA_BENCH (native)"
else
  OKO_LLAMACPP_DIR="$DIR" "$HERE/install.sh"
  cp "$HERE/bench.mjs" "$DIR/bench.mjs"
  echo "llama.cpp: node-llama-cpp's prebuilt CPU backend (npm; slower than a native build)"
fi

# "PP TG ROOFLINE" of one oko run; 0 for a test left out.
oko_round() {
  local json
  json=$("$OKO" bench -m "$MODEL" -t "$THREADS" -p "$NP" -n "$NG" -r 2 --kv "$KV" --json) || return 1
  python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r.get("pp", {}).get("tok_s", 0), r.get("tg", {}).get("tok_s", 0), r.get("tg_roofline", 0))' <<<"$json"
}
# "PP TG" of one llama.cpp run.
llama_round() {
  if [[ -n "${LLAMA_BENCH:-}" ]]; then
    local tests=()
    ((NP > 0)) && tests+=(-p "$NP" -n 0)
    ((NG > 0)) && tests+=(-p 0 -n "$NG")
    local pp=0 tg=0 json line
    # One llama-bench per test: -p and -n given together would also run their cross product.
    for ((i = 0; i < ${#tests[@]}; i += 4)); do
      json=$("$LLAMA_BENCH" -m "$GGUF" -t "$THREADS" "${tests[@]:i:4}" -r 2 -o json 2>/dev/null) || return 1
      line=$(python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
print(r["n_prompt"], r["avg_ts"])' <<<"$json")
      if [[ ${line%% *} != 0 ]]; then pp=${line#* }; else tg=${line#* }; fi
    done
    echo "$pp $tg"
  else
    (cd "$DIR" && node bench.mjs "$GGUF" "$THREADS" "$NP" "$NG" 2 2>&1) | python3 -c '
import re, sys
text = sys.stdin.read()
pp, tg = re.search(r"pp\d+ ([\d.]+)", text), re.search(r"tg\d+ ([\d.]+)", text)
print(pp.group(1) if pp else 0, tg.group(1) if tg else 0)'
  fi
}

echo "oko: $OKO, --kv $KV; $(basename "$GGUF"), $THREADS thread(s)"
for ((r = 1; r <= ROUNDS; ++r)); do
  # $(...) rather than < <(...): a failed run (its message already on stderr) stops here.
  result=$(oko_round) || { echo "compare.sh: oko bench failed on $MODEL" >&2; exit 2; }
  read -r opp otg roof <<<"$result"
  result=$(llama_round) || { echo "compare.sh: llama.cpp failed on $GGUF" >&2; exit 2; }
  read -r lpp ltg <<<"$result"
  python3 - "$r" "$NP" "$NG" "$opp" "$otg" "$roof" "$lpp" "$ltg" <<'EOF'
import sys
r, np_, ng = sys.argv[1:4]
opp, otg, roof, lpp, ltg = map(float, sys.argv[4:])
ratio = lambda a, b: f"{a / b:.2f}x" if b > 0 else "n/a"
parts = []
if int(np_) > 0:
    parts.append(f"pp{np_} oko {opp:.1f} llama.cpp {lpp:.1f} ({ratio(opp, lpp)})")
if int(ng) > 0:
    parts.append(f"tg{ng} oko {otg:.1f} ({roof * 100:.0f}% of limit) llama.cpp {ltg:.1f} ({ratio(otg, ltg)})")
print(f"round {r}: " + " | ".join(parts))
EOF
done
