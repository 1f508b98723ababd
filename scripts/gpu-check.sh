#!/usr/bin/env bash
# Checks gpumem on a GPU machine that has a driver but no build tools.
#
#   gpu-check.sh bundle BUILD_DIR BUNDLE_DIR
#       Copies the test and benchmark executables into BUNDLE_DIR/bin, the shared
#       libraries they need that the GPU machine lacks into BUNDLE_DIR/lib, and this
#       script into BUNDLE_DIR.
#   gpu-check.sh run BUNDLE_DIR OUT_DIR
#       Runs the CUDA conformance tests, the CUDA backend tests, the benchmarks and the
#       demo from the bundle, and PyTorch on gpumem where the machine has PyTorch. Each step's output goes to OUT_DIR/<step>.txt and its exit
#       code to OUT_DIR/summary.txt; every step runs even if one fails, and the script
#       exits non-zero if any did. A step that skips CUDA (exit 77: no driver or no
#       GPU) fails the check: the point is that CUDA ran. The step limits add up to
#       540 s (9 minutes), the most it can take.
set -euo pipefail

usage() {
  echo "usage: $0 bundle BUILD_DIR BUNDLE_DIR | run BUNDLE_DIR OUT_DIR" >&2
  exit 2
}

# Libraries the GPU machine lacks although they live in the system directories here;
# libstdc++ and libgcc_s too, since older base images lack this compiler's
# GLIBCXX_3.4.30 (bundled, they are found first through LD_LIBRARY_PATH).
readonly COPY_ANYWAY='^lib(caf_core|caf_io|spdlog|fmt|benchmark|stdc\+\+|gcc_s)[.-]'
# Libraries that must come from the GPU machine itself (glibc and the driver).
readonly NEVER_COPY='^(libc|libm|libcuda|ld-linux[^/]*)\.so'

bundle() {
  local build=$1 dest=$2
  mkdir -p "$dest/bin" "$dest/lib"

  local bins=() f
  for f in "$build"/tests/gpumem_*tests* "$build/bench/gpumem_bench" "$build/tools/gpumem/gpumem" \
           "$build/clients/libgpumem.so"; do
    [[ $f == *cuda_standin* ]] && continue  # the driver stand-in's tests stay here
    [[ -f $f && ( -x $f || $f == *.so ) ]] && bins+=("$f")
  done
  if ((${#bins[@]} == 0)); then
    echo "no executables found under $build" >&2
    exit 1
  fi

  local bin name path
  for bin in "${bins[@]}"; do
    cp "$bin" "$dest/bin/"
    echo "bin: $(basename "$bin")"
    # ldd lists the transitive closure: "libfoo.so.1 => /path/libfoo.so.1 (0x...)".
    while read -r name _ path _; do
      [[ $path == /* ]] || continue
      [[ $name =~ $NEVER_COPY ]] && continue
      if [[ $path == /lib/x86_64-linux-gnu/* || $path == /usr/lib/x86_64-linux-gnu/* ]] &&
         ! [[ $name =~ $COPY_ANYWAY ]]; then
        continue
      fi
      if [[ ! -e $dest/lib/$name ]]; then
        # Saved under the soname, the name the loader looks for; -L copies the file.
        cp -L "$path" "$dest/lib/$name"
        echo "lib: $name ($path)"
      fi
    done < <(ldd "$bin" 2>/dev/null | grep '=>')
    if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
      echo "warning: $(basename "$bin") has unresolved libraries:" >&2
      ldd "$bin" | grep 'not found' >&2
    fi
  done

  # The Python package and the PyTorch check beside libgpumem.so, where it exists.
  local src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -f $dest/bin/libgpumem.so && -d $src/python/gpumem ]]; then
    mkdir -p "$dest/python"
    cp -r "$src/python/gpumem" "$dest/python/"
    cp "$src/tests/gpu/torch_sleep_wake.py" "$dest/bin/"
    echo "python: gpumem, torch_sleep_wake.py"
  fi

  cp "${BASH_SOURCE[0]}" "$dest/gpu-check.sh"
  chmod +x "$dest/gpu-check.sh"
}

# run_step NAME TIMEOUT_S COMMAND...: output to the console and OUT/NAME.txt, one
# line in OUT/summary.txt. Never stops the script.
run_step() {
  local name=$1 limit=$2 rc
  shift 2
  echo "=== $name: $*"
  set +e
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  rc=${PIPESTATUS[0]}
  set -e
  local verdict=ok
  if ((rc == 77)); then
    verdict="failed: CUDA was skipped (no driver or no GPU)"
    FAILED=1
  elif ((rc == 124 || rc == 137)); then
    verdict="timed out after ${limit}s"
    FAILED=1
  elif ((rc != 0)); then
    verdict=failed
    FAILED=1
  fi
  echo "$name rc=$rc $verdict" | tee -a "$OUT/summary.txt"
}

# A step whose executable is not in the bundle counts as failed unless optional.
missing() {
  echo "$1 rc=- missing $2" | tee -a "$OUT/summary.txt"
  [[ ${3:-} == optional ]] || FAILED=1
}

run() {
  local bundle_dir out_dir
  bundle_dir=$(cd "$1" && pwd)
  mkdir -p "$2"
  out_dir=$(cd "$2" && pwd)
  OUT=$out_dir
  FAILED=0
  : >"$OUT/summary.txt"
  export LD_LIBRARY_PATH="$bundle_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local bin=$bundle_dir/bin

  if command -v nvidia-smi >/dev/null; then
    run_step nvidia-smi 15 nvidia-smi
  else
    missing nvidia-smi "(not on PATH)"
  fi

  if [[ -x $bin/gpumem_conformance_tests ]]; then
    run_step conformance 120 "$bin/gpumem_conformance_tests" --backend cuda
  else
    missing conformance "$bin/gpumem_conformance_tests"
  fi

  # The CUDA backend's own tests; on a GPU the round trip through a mapped chunk runs.
  if [[ -x $bin/gpumem_device_tests ]]; then
    run_step cuda_backend 45 "$bin/gpumem_device_tests" "[cuda_driver_backend]"
  else
    missing cuda_backend "$bin/gpumem_device_tests"
  fi

  # JSON to the file, the readable table to the console (and bench.txt).
  if [[ -x $bin/gpumem_bench ]]; then
    run_step bench 150 "$bin/gpumem_bench" --backend=cuda --benchmark_min_time=0.2 \
      --benchmark_out="$OUT/bench.json" --benchmark_out_format=json
  else
    missing bench "$bin/gpumem_bench"
  fi

  if [[ -x $bin/gpumem ]]; then
    run_step demo 60 "$bin/gpumem" demo --backend cuda
    run_step device_demo 30 "$bin/gpumem" device-demo --backend cuda
  else
    missing demo "$bin/gpumem" optional
  fi

  # PyTorch through gpumem's allocator hooks, where the machine has PyTorch (77: it
  # has not; optional, since the bundle cannot carry PyTorch).
  if [[ -f $bin/torch_sleep_wake.py ]] && python3 -c "import torch" 2>/dev/null; then
    PYTHONPATH="$bundle_dir/python" GPUMEM_LIBRARY="$bin/libgpumem.so" \
      run_step torch 120 python3 "$bin/torch_sleep_wake.py"
  else
    missing torch "(PyTorch or the Python package)" optional
  fi

  echo "=== summary"
  cat "$OUT/summary.txt"
  return "$FAILED"
}

(($# == 3)) || usage
case $1 in
  bundle) bundle "$2" "$3" ;;
  run) run "$2" "$3" ;;
  *) usage ;;
esac
