#!/usr/bin/env bash
# scripts/gpu-check.sh on a machine without a usable driver: its bundle carries
# libstdc++, and its run fails because the CUDA conformance suite was skipped.
#   gpu_check_tests.sh GPU_CHECK_SCRIPT BUILD_DIR
set -euo pipefail
script=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

"$script" bundle "$build" "$work/bundle" >"$work/bundle.txt" 2>&1 || fail "bundle: $(cat "$work/bundle.txt")"
[[ -f $work/bundle/lib/libstdc++.so.6 ]] || fail "the bundle has no libstdc++.so.6"
[[ ! -e $work/bundle/lib/libc.so.6 ]] || fail "the bundle carries glibc, which must come from the GPU machine"

# No driver, whatever this machine has: the CUDA suite exits 77 (skipped).
export GPUMEM_CUDA_LIBRARY=/nonexistent/libcuda.so.1
if "$script" run "$work/bundle" "$work/out" >"$work/run.txt" 2>&1; then
  fail "gpu-check passed although CUDA never ran: $(cat "$work/out/summary.txt")"
fi
grep -q '^conformance rc=77 failed' "$work/out/summary.txt" ||
  fail "the skipped CUDA suite is not reported as a failure: $(cat "$work/out/summary.txt")"
echo "gpu-check fails when CUDA was skipped; the bundle carries libstdc++"
