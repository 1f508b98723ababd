#!/usr/bin/env bash
# `gpumem ctl` against `gpumem serve` (a real process on a free port): every command,
# its output and summary, and the exit code and message of every kind of failure
# (1: the server refused; 2: bad usage; 3: no answer).
#   ctl_tests.sh GPUMEM_BINARY
set -euo pipefail
gpumem=$1
work=$(mktemp -d)
source "$(dirname "$0")/serve_helpers.sh"
trap 'stop_servers; rm -rf "$work"' EXIT

start_server ctl --allocate weights=64M --allocate kv_cache=32M
url="http://127.0.0.1:$port"

ctl 0 --url "$url" status
has "$out" '"is_sleeping": false'
ctl 0 stats --url "$url"                              # --url after the command too
has "$out" '"weights": {'
ctl 0 --url "$url" snapshot --device 0
has "$out" '"format": "gpumem.snapshot"'
ctl 0 --url "$url" map --out "$work/map.html"
has "$err" "wrote the memory map"
has "$err" "to $work/map.html"
curl -s --max-time "$wait_limit" "$url/v1/map" >"$work/served.html"
cmp -s "$work/served.html" "$work/map.html" || fail "ctl map wrote another page than GET /v1/map serves"
ctl 0 --url "$url" map --device 1 --out -
has "$out" '<!DOCTYPE html>'
has "$out" '"label":"device 1"'
ctl 0 --url "$url" sleep --level 1
has "$err" 'sleeping at level 1 ...'
has "$err" 'slept kv_cache, weights: 64 MiB backed up, 32 MiB discarded, 96 MiB released'
has "$out" '"level": 1'
ctl 1 --url "$url" sleep
has "$err" 'already_asleep'
has "$err" '(HTTP 409)'
ctl 0 --url "$url" wake --tags weights
has "$err" 'woke weights: 64 MiB mapped, 64 MiB restored'
ctl 0 --url "$url" wake
has "$err" 'woke kv_cache'
ctl 0 --url "$url" sleep --level 2 --tags kv_cache
has "$err" 'slept kv_cache: 0 B backed up, 32 MiB discarded'
ctl 0 --url "$url" wake --tags weights,kv_cache
ctl 0 --url "$url" trim
has "$out" '"bytes_released":'
ctl 0 --url "$url" defragment --device 1
has "$out" '"fragmentation_after":'

ctl 1 --url "$url" wake --tags no_such_tag
has "$err" "unknown_tag: no device knows tag 'no_such_tag'"
has "$err" '(HTTP 400)'
ctl 1 --url "$url" snapshot --device 9
has "$err" 'unknown_device'
ctl 2 --url "$url" sleep --level 5
has "$err" '--level'
ctl 2 --url "$url" snapshot
has "$err" '--device is required'
echo "the page before" >"$work/kept.html"
ctl 1 --url "$url" map --device 9 --out "$work/kept.html"
has "$err" 'unknown_device'
[[ $(<"$work/kept.html") == "the page before" ]] || fail "a refused ctl map replaced the page"
ctl 1 --url "$url" map --out "$work/no_such_dir/map.html"
has "$err" "cannot write '$work/no_such_dir/map.html'"
ctl 2 --url "$url" map
has "$err" '--out is required'
ctl 2 --url "$url" frobnicate
ctl 2 --url "ftp://127.0.0.1:$port" status
has "$err" '--url expects http://host:port'
stop_server "$pid"
ctl 3 --url "$url" status                        # nobody listens there now
has "$err" "cannot reach $url"
ctl 3 --url "$url" map --out "$work/kept.html"
[[ $(<"$work/kept.html") == "the page before" ]] || fail "ctl map without a server replaced the page"
echo "gpumem ctl: every command and every failure answered as documented"
