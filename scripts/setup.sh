#!/usr/bin/env bash
# Installs every Debian package oko needs (idempotent; apt-get update at most once),
# then configures and builds. Usage: scripts/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libhwy-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers   # dnnl's CMake config needs OpenCL
  libmimalloc-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libsimdjson-dev libpcre2-dev libutf8proc-dev
  libfmt-dev libcli11-dev libedit-dev
  libcpp-httplib-dev  # oko serve
  chromium  # headless: the trace viewer test
  clang libclang-rt-dev llvm  # scripts/fuzz.sh: libFuzzer (libclang_rt.fuzzer), llvm-symbolizer
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (the openai client test of oko serve, scripts/llamacpp): Debian's only
# where none is installed, since a NodeSource nodejs (which carries its own npm) conflicts
# with Debian's npm package.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

BUILD_DIR="${1:-build}"
shift || true
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "${OKO_JOBS:-2}"
