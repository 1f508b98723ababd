#!/usr/bin/env bash
# Builds CAF 0.17.6 (core and io) with ThreadSanitizer into build/caf-tsan, for the
# tsan preset. Debian's libcaf is not instrumented, so TSan cannot see CAF hand an
# actor from one scheduler thread to the next and reports races on actor state that
# are not races; against this build it sees the hand-offs. The source is Debian's own
# tarball in third_party/caf. Does nothing when the libraries are already there.
# Usage: scripts/build-caf-tsan.sh [PREFIX]   (default: build/caf-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(realpath -m "${1:-build/caf-tsan}")
build=$prefix.build
if [[ -f $prefix/lib/libcaf_core.so && -f $prefix/lib/libcaf_io.so ]]; then
  echo "CAF with TSan already at $prefix"; exit 0
fi
rm -rf "$build"
mkdir -p "$build"
tar xzf third_party/caf/actor-framework_0.17.6.orig.tar.gz -C "$build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Paths relative to the build folder in ccache's hashes and in the debug information:
# every checkout shares the cache.
export CCACHE_BASEDIR=$build CCACHE_NOHASHDIR=1
# GCC 12 needs <limits> in libcaf_io (Debian patches this; the plain tarball does not).
# OpenSSL, tools and examples are left out: the project's TSan build needs core and io.
cmake -S "$build/actor-framework-0.17.6" -B "$build/out" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -include limits -fdebug-prefix-map=$build=." \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCAF_NO_EXAMPLES=ON -DCAF_NO_UNIT_TESTS=ON -DCAF_NO_OPENSSL=ON -DCAF_NO_TOOLS=ON \
  -DCAF_NO_PYTHON=ON -DCAF_NO_OPENCL=ON "${launcher[@]}" >"$build/configure.log"
cmake --build "$build/out" -j"$(nproc)" >"$build/build.log"
cmake --install "$build/out" >"$build/install.log"
echo "CAF with TSan installed at $prefix (include/, lib/)"
