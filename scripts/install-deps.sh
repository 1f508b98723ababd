#!/usr/bin/env bash
# Installs every Debian 12 package gpumem needs to build, test and benchmark.
# Idempotent and quiet: prints nothing and touches nothing when all is there.
# The CUDA Toolkit is optional (its cuda.h enables the CUDA driver backend) and is
# not installed here.
set -euo pipefail

packages=(
  g++ cmake make            # toolchain
  ccache                    # cheap rebuilds of every preset
  libcaf-dev                # C++ Actor Framework 0.17
  libssl-dev openssl        # TLS between processes; the tests make certificates
  libspdlog-dev             # logging (brings libfmt-dev)
  catch2                    # tests (Catch2 2.13)
  libboost-dev              # Boost.Asio for the serving clients
  libbenchmark-dev          # gpumem_bench (Google Benchmark)
  nlohmann-json3-dev        # snapshots and reports as JSON
  libtomlplusplus-dev       # the config file (TOML, with source positions)
  libcli11-dev              # the gpumem command's subcommands and their --help
  curl                      # the tests of gpumem serve drive it as a real HTTP client
  chromium                  # the memory map's test opens the page in a headless browser
  clang-14 libclang-rt-14-dev  # the fuzz preset: clang++-14 and libFuzzer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "installing: ${missing[*]}"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
