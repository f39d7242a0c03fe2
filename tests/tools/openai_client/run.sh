#!/usr/bin/env bash
# ctest's openai_client_test: installs the pinned openai npm package (npm ci from
# package-lock.json, into WORK; once), starts `oko serve` on a free port, runs
# client_test.mjs against it, then stops the server with SIGTERM, which must exit 0.
# Usage: run.sh OKO_BINARY MODEL_NAME WORK_DIR; the model is $OKO_SHARED/models/MODEL_NAME
# ($OKO_SHARED defaults to ../shared beside the repository). Exit 77 (skipped) without
# node and npm.
set -euo pipefail
OKO=$1 NAME=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="${OKO_SHARED:-$HERE/../../../../shared}/models/$NAME"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not installed: skipped"; exit 77; }
mkdir -p "$WORK"
if ! cmp -s "$HERE/package-lock.json" "$WORK/package-lock.json" || [[ ! -d $WORK/node_modules/openai ]]; then
  cp "$HERE/package.json" "$HERE/package-lock.json" "$WORK/"
  (cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi
cp "$HERE/client_test.mjs" "$WORK/"

LOG="$WORK/serve.log"
# --compute f32: a repeated request reuses its slot's cached prompt and runs only its last
# token, and bf16 compute's results depend on how positions are grouped (a prefill chunk
# rounds activations to bf16, one position does not; docs/SERVER.md), while this test
# compares a request with its repeat.
"$OKO" serve -m "$MODEL" --port 0 -c 512 -t 2 --parallel 2 --api-key test-key --compute f32 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$LOG")
  [[ -n $PORT ]] && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
[[ -n $PORT ]] || { echo "oko serve did not start"; cat "$LOG"; exit 1; }
(cd "$WORK" && node client_test.mjs "http://127.0.0.1:$PORT/v1" test-key "$NAME")
kill -TERM $PID
wait $PID
trap - EXIT
echo "oko serve stopped cleanly"
