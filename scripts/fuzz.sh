#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) and runs each for SECONDS
# (default 30) from its seed corpus, one at a time. Fails on any crash, leak, timeout or
# out-of-memory and prints the executions of every target. New inputs go to a temporary
# working corpus, so the repository is not modified; crashing inputs are kept in
# $OKO_FUZZ_OUT (default BUILD_DIR/artifacts).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (targets: fuzz_safetensors ...)
# Env: OKO_FUZZ_BUILD (build-fuzz), OKO_SHARED (../shared), OKO_JOBS (2),
#      OKO_FUZZ_KEEP_CORPUS=DIR keeps each target's working corpus in DIR/<target>.
#      OKO_FUZZ_ARGS adds libFuzzer flags (e.g. -runs=10000000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_PER_TARGET="${1:-30}"
shift 
BUILD="${OKO_FUZZ_BUILD:-build-fuzz}"
export OKO_SHARED="${OKO_SHARED:-$(cd .. && pwd)/shared}"
OUT="${OKO_FUZZ_OUT:-$BUILD/artifacts}"
ALL=(fuzz_safetensors fuzz_shard_index fuzz_config fuzz_tokenizer_json fuzz_tokenizer_codec
     fuzz_chat_template fuzz_trace fuzz_lora fuzz_gguf)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")

declare -A DICT=([fuzz_safetensors]=safetensors [fuzz_shard_index]=safetensors
  [fuzz_config]=config [fuzz_tokenizer_json]=tokenizer_json
  [fuzz_tokenizer_codec]=tokenizer_codec [fuzz_chat_template]=jinja [fuzz_trace]=trace
  [fuzz_lora]=lora [fuzz_gguf]=gguf)

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOKO_FUZZ=ON -DOKO_BUILD_TESTS=OFF -DOKO_BUILD_BENCH=OFF >/dev/null
fi
nice -n 5 cmake --build "$BUILD" -j "${OKO_JOBS:-2}" --target "${TARGETS[@]}"

mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Symbolized reports when llvm-symbolizer exists under a versioned name only.
if ! command -v llvm-symbolizer >/dev/null && command -v llvm-symbolizer-14 >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  corpus="$WORK/$t"
  [[ -n "${OKO_FUZZ_KEEP_CORPUS:-}" ]] && corpus="$OKO_FUZZ_KEEP_CORPUS/$t"
  mkdir -p "$corpus"
  log="$WORK/$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  start=$(date +%s)
  rc=0
  # The seed directory comes second: libFuzzer writes new inputs only to the first.
  nice -n 10 "$BUILD/tests/fuzz/$t" "$corpus" "$ROOT/tests/fuzz/corpus/$t" \
    -dict="$ROOT/tests/fuzz/dict/${DICT[$t]}.dict" -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$OUT/$t-" ${OKO_FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line="$t: ${execs:-?} executions in ${secs}s"
  if ((rc != 0)); then
    line+=" FAILED (exit $rc)"
    failed+=("$t")
    grep -E "^==[0-9]+==ERROR|SUMMARY|runtime error|fuzz invariant|Test unit written|ALARM|out-of-memory" "$log" | head -20 || true
    cp "$log" "$OUT/$t.log"
    echo "fuzz: full log in $OUT/$t.log"
  fi
  echo "$line"
  summary+=("$line")
done
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}; inputs in $OUT (reproduce: $BUILD/tests/fuzz/<target> <input>)"
  exit 1
fi
