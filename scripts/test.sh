#!/usr/bin/env bash
# The whole test suite: the release build, then the AddressSanitizer and
# UndefinedBehaviorSanitizer build (skip it with GPUMEM_SKIP_SANITIZERS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh release
ctest --preset release --output-on-failure
if [[ ${GPUMEM_SKIP_SANITIZERS:-0} != 1 ]]; then
  scripts/build.sh debug-asan
  ctest --preset debug-asan --output-on-failure
fi
# Every fuzz target for 30 s in the clang fuzz build (skip it with GPUMEM_SKIP_FUZZ=1).
if [[ ${GPUMEM_SKIP_FUZZ:-0} != 1 ]]; then
  scripts/build.sh fuzz
  ctest --preset fuzz --output-on-failure
fi
