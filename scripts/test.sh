#!/usr/bin/env bash
# The whole test suite: the release build, then the AddressSanitizer and
# UndefinedBehaviorSanitizer build, then the ThreadSanitizer build (skip both with
# GPUMEM_SKIP_SANITIZERS=1, only the latter with GPUMEM_SKIP_TSAN=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh release
ctest --preset release --output-on-failure
if [[ ${GPUMEM_SKIP_SANITIZERS:-0} != 1 ]]; then
  scripts/build.sh debug-asan
  ctest --preset debug-asan --output-on-failure
fi
# ThreadSanitizer: against CAF built with it too, else TSan cannot see CAF hand actors
# between threads (scripts/build-caf-tsan.sh; built once, kept in build/caf-tsan).
if [[ ${GPUMEM_SKIP_SANITIZERS:-0} != 1 && ${GPUMEM_SKIP_TSAN:-0} != 1 ]]; then
  scripts/build-caf-tsan.sh
  scripts/build.sh tsan
  ctest --preset tsan --output-on-failure
fi
# Every fuzz target for 30 s in the clang fuzz build (skip it with GPUMEM_SKIP_FUZZ=1).
if [[ ${GPUMEM_SKIP_FUZZ:-0} != 1 ]]; then
  scripts/build.sh fuzz
  ctest --preset fuzz --output-on-failure
fi
