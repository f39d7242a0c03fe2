#!/usr/bin/env bash
# Sanitizer CI (issue 8). Two builds beside the normal one:
#   build-asan  ASan + UBSan, -O1 -g1: the whole ctest suite (unit, golden, CLI).
#   build-tsan  TSan, -O1 -g1: the tests that run the thread pool (the engine
#               tests: thread_pool, kv_cache, variants, trace, chat_session, golden,
#               batch_decoder, batch_scheduler; server (oko serve's HTTP threads); and
#               run_cli, whose `oko run -t 2` children are TSan builds too).
# Both must be clean: any report fails the run. Prints the time each part took.
# Usage: scripts/sanitize.sh [asan|tsan|all]  (default all). OKO_JOBS sets -j (default 2).
# Cost (2 cores, fresh clone, nothing else running, 2026-12-04): ASan+UBSan build 898 s
# (1727 s at -O2 -g, session 5), its 678 ctest entries 347 s; TSan build 297 s, its
# tests 101 s. Both are built for this CPU only (-DOKO_NATIVE=ON: one Highway target, ~3x
# faster kernel compiles): they check the code paths this CPU runs (the threading is the
# same on every target); the Release build's tests run every target the CPU has.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export OKO_SHARED="${OKO_SHARED:-$(cd .. && pwd)/shared}"
JOBS="${OKO_JOBS:-2}"
WHAT="${1:-all}"
# Sanitizer builds are slower to compile: the benchmarks are not needed here. -O1 -g1 (line
# tables: reports still name file:line) as ASan's docs advise, not RelWithDebInfo's -O2 -g:
# tools/cmd_info.cc under ASan+UBSan compiled in 117 s at -O2 -g and 44 s at -O1 -g1
# (2026-12-04, 2 cores, load 2).
COMMON=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DOKO_BUILD_BENCH=OFF)

elapsed() { echo "sanitize: $1 took $(( $(date +%s) - $2 )) s"; }

if [[ $WHAT == all || $WHAT == asan ]]; then
  t0=$(date +%s)
  cmake -S . -B build-asan "${COMMON[@]}" -DOKO_SANITIZE=address -DOKO_NATIVE=ON >/dev/null
  nice -n 5 cmake --build build-asan -j "$JOBS"
  elapsed "ASan+UBSan build" "$t0"
  t0=$(date +%s)
  # Leak checking on; UBSan stops at the first report (-fno-sanitize-recover) with a stack.
  ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 1800
  elapsed "ASan+UBSan tests" "$t0"
fi

if [[ $WHAT == all || $WHAT == tsan ]]; then
  TSAN_TESTS=(thread_pool_test kv_cache_test variants_test trace_test chat_session_test golden_test
              batch_decoder_test batch_scheduler_test server_test
              run_cli_test)
  t0=$(date +%s)
  cmake -S . -B build-tsan "${COMMON[@]}" -DOKO_SANITIZE=thread -DOKO_NATIVE=ON >/dev/null
  nice -n 5 cmake --build build-tsan -j "$JOBS" --target oko "${TSAN_TESTS[@]}"
  elapsed "TSan build" "$t0"
  t0=$(date +%s)
  # scripts/tsan.supp: only libraries that TSan cannot see into (see the file).
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$ROOT/scripts/tsan.supp"
  for t in "${TSAN_TESTS[@]}"; do
    echo "sanitize: TSan $t"
    "build-tsan/tests/$t" --gtest_brief=1
  done
  elapsed "TSan tests" "$t0"
fi
