#!/usr/bin/env bash
# Installs llama.cpp as node-llama-cpp's prebuilt CPU backend (npm, pinned) into
# $OKO_LLAMACPP_DIR (default /tmp/oko-llamacpp), once: for compare.sh and for the tests
# that run llama.cpp on the GGUF files oko writes (tests/tools/llamacpp_gguf_test.cc).
set -euo pipefail
DIR="${OKO_LLAMACPP_DIR:-${TMPDIR:-/tmp}/oko-llamacpp}"
mkdir -p "$DIR"
if [[ ! -d "$DIR/node_modules/node-llama-cpp" ]]; then
  (cd "$DIR" && npm init -y >/dev/null && npm i -E node-llama-cpp@3.21.1 >/dev/null)
fi
