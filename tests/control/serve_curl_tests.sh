#!/usr/bin/env bash
# `gpumem serve` as a real process on a free port, driven with curl: every route, and
# every error path (404, 405, 400, 409, 413, 431, 503, 507) with nothing changed, a
# stalled client cut off, the connection limit, and a clean stop on SIGTERM.
#   serve_curl_tests.sh GPUMEM_BINARY
set -euo pipefail
gpumem=$1
work=$(mktemp -d)
source "$(dirname "$0")/serve_helpers.sh"
trap 'stop_servers; rm -rf "$work"' EXIT
command -v curl >/dev/null || fail "curl is missing (scripts/install-deps.sh installs it)"

MiB=1048576

# -- every route, on the shipped defaults (host backend, two devices of 1 GiB) ----------
start_server main --allocate weights=64M --allocate kv_cache=32M
main=$pid
check 200 GET /healthz '"status":"ok"'
check 200 GET /is_sleeping '{"is_sleeping":false}'
check 200 POST '/sleep?level=1' '"level":1' "\"bytes_backed_up\":$((64 * MiB))" \
  "\"bytes_discarded\":$((32 * MiB))" '"tags":["kv_cache","weights"]' '"bandwidth_bytes_per_second":'
check 200 GET /is_sleeping '{"is_sleeping":true}'
refused 409 already_asleep POST '/sleep?level=2'
check 200 POST '/wake_up?tags=weights' "\"bytes_restored\":$((64 * MiB))" '"tags":["weights"]'
check 200 POST /wake_up '"tags":["kv_cache"]'
check 200 POST /wake_up '"tags":[]'   # nothing asleep: idempotent, as vLLM's
check 200 POST '/sleep?level=2' '"bytes_backed_up":0' "\"bytes_discarded\":$((96 * MiB))"
check 200 POST '/wake_up?tags=weights&tags=kv_cache' '"tags":["kv_cache","weights"]'
check 200 POST '/sleep?level=0' "\"bytes_backed_up\":$((96 * MiB))" '"bytes_discarded":0'
check 200 POST /wake_up
check 200 POST '/sleep?tags=kv_cache' '"tags":["kv_cache"]'
check 200 GET /v1/status '"asleep_tags":["kv_cache"]' '"is_sleeping":true' '"backend":"host"'
check 200 POST /wake_up
check 200 POST /release_memory_occupation '"tags":["weights"]' -- \
  -H 'Content-Type: application/json' -d '{"tags": ["weights"]}'
check 200 POST /resume_memory_occupation '"tags":["weights"]' -- -d '{"tags": null}'
check 200 POST /release_memory_occupation '"tags":["kv_cache","weights"]'
check 200 POST /resume_memory_occupation -- -H 'Content-Type: application/json' -d '{}'
check 200 GET /v1/stats '"weights":{' '"sleeps":' '"total":{'
check 200 GET '/v1/snapshot?device=0' '"format":"gpumem.snapshot"' '"tag":"weights"'
check 200 POST /v1/trim '"bytes_released":' '"devices":[{'
check 200 POST '/v1/defragment?device=1' '"fragmentation_after":'
check 200 GET /metrics 'gpumem_allocated_bytes{device="0",tag="weights"} 67108864' \
  'gpumem_sleep_state{device="0",sleep_state="awake"} 1' '# TYPE gpumem_sleeps_total counter'
[[ $headers == *"Content-Type: text/plain; version=0.0.4; charset=utf-8"* ]] ||
  fail "/metrics: not Prometheus's content type: $headers"
check 200 GET /is_sleeping '{"is_sleeping":false}'

# -- requests refused: each answers its error and changes nothing ----------------------
call GET /v1/stats
before=$body
refused 404 not_found GET /no/such/route
refused 405 method_not_allowed GET /sleep
[[ $headers == *"Allow: POST"* ]] || fail "405 without its Allow header: $headers"
refused 405 method_not_allowed POST /metrics
refused 400 bad_parameter POST '/sleep?level=3'
refused 400 bad_parameter POST '/sleep?level=one'
refused 400 bad_parameter POST '/sleep?level=1&level=2'
refused 400 unknown_parameter POST '/sleep?levle=2'
refused 400 unknown_tag POST '/sleep?tags=no_such_tag'
refused 400 unknown_tag POST '/wake_up?tags=no_such_tag'
refused 400 bad_parameter POST '/wake_up?tags=%zz'
refused 400 unknown_parameter GET '/is_sleeping?tags=weights'
refused 400 bad_json POST /release_memory_occupation -- -d '{"tags": ["weights"'
refused 400 bad_json POST /release_memory_occupation -- -d '{"tags": "weights"}'
refused 400 bad_json POST /resume_memory_occupation -- -d '{"tag": []}'
refused 400 unknown_tag POST /release_memory_occupation -- -d '{"tags": ["nope"]}'
refused 400 bad_parameter GET /v1/snapshot
refused 400 unknown_device GET '/v1/snapshot?device=7'
refused 400 unknown_device POST '/v1/trim?device=2'
head -c $((200 * 1024)) /dev/zero | tr '\0' 'x' >"$work/big"
refused 413 body_too_large POST /release_memory_occupation -- --data-binary "@$work/big"
refused 431 header_too_large GET /healthz -- -H "X-Big: $(head -c 16384 "$work/big")"
refused 400 bad_request 'GE T' /healthz
check 200 GET /is_sleeping '{"is_sleeping":false}'
call GET /v1/stats
[[ $body == "$before" ]] || fail "a refused request changed the statistics"

# A sleep or wake while another runs (a large sleep, seen in progress): 409.
start_server busy --allocate weights=512M
busy=$pid
caught=""
deadline=$((SECONDS + wait_limit))
while [[ -z $caught ]] && ((SECONDS < deadline)); do
  curl -s --max-time "$wait_limit" -X POST -o "$work/slow" "http://127.0.0.1:$port/sleep?level=0" &
  slow=$!
  while kill -0 "$slow" 2>/dev/null; do
    call GET /v1/status
    if [[ $body == *'"state":"falling_asleep"'* ]]; then
      call POST /wake_up
      [[ $status != 409 ]] && kill -0 "$slow" 2>/dev/null && fail "a wake during a sleep: $status $body"
      [[ $status == 409 ]] && caught="$body"
      break
    fi
  done
  wait "$slow" || fail "the large sleep failed"
  check 200 POST /wake_up
done
[[ -n $caught ]] || fail "no sleep was seen in progress within ${wait_limit} s"
body=$caught status=409 last="POST /wake_up during a sleep"
expect 409 '"error":"transition_in_progress"'
stop_server "$busy"

# -- a wake the device has no room for: 507, the tags stay asleep; a stalled client ----
start_server tight --gpumem.host.capacity=256M --gpumem.engine.wake-margin=128M \
  --gpumem.control.read-timeout-ms=300 --allocate weights=192M
tight=$pid
check 200 POST '/sleep?level=1' "\"bytes_backed_up\":$((192 * MiB))"
refused 507 insufficient_memory POST /wake_up
check 200 GET /is_sleeping '{"is_sleeping":true}'
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: x' >&3   # and nothing more
check 200 GET /healthz                            # others are served meanwhile
timeout "$wait_limit" cat <&3 >"$work/stalled" || fail "a stalled client was not cut off"
[[ ! -s $work/stalled ]] || fail "a stalled client got an answer: $(<"$work/stalled")"
exec 3<&-
stop_server "$tight"

# -- a transition past its deadline: 503, undone; the connection limit -------------------
start_server slow --gpumem.balancer.transition-timeout-ms=1 --gpumem.control.max-connections=1 \
  --allocate weights=256M
slow_server=$pid
refused 503 timeout POST '/sleep?level=1'
deadline=$((SECONDS + wait_limit))
until call GET /is_sleeping && [[ $body == '{"is_sleeping":false}' ]]; do
  ((SECONDS < deadline)) || fail "the late sleep was not undone: $body"
  sleep 0.05
done
# A connection that holds the only slot, then one refused. The slot of the last call
# above frees when the server sees that call close, which on a busy machine can come
# after the next connection arrives: that one is refused in its place (its 503 is
# never read) and the call after it is served. So: until the held one holds.
deadline=$((SECONDS + wait_limit))
while :; do
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /healthz HTTP/1.1\r\n' >&3          # holds the only connection
  call GET /healthz
  [[ $status == 503 ]] && break
  exec 3<&-
  ((SECONDS < deadline)) || fail "a held connection never took the only slot: $status $body"
  sleep 0.05
done
refused 503 too_many_connections GET /healthz
exec 3<&-                                         # gone: its slot frees
deadline=$((SECONDS + wait_limit))
until call GET /healthz && [[ $status == 200 ]]; do
  ((SECONDS < deadline)) || fail "the slot of a closed connection never freed: $status $body"
  sleep 0.05
done
stop_server "$slow_server"

# -- bad configuration: no server ------------------------------------------------------
if "$gpumem" serve --gpumem.control.listen=nowhere >"$work/bad.log" 2>&1; then
  fail "serve started with listen=nowhere"
fi
grep -q 'gpumem.control.listen' "$work/bad.log" || fail "no message naming the bad address"
if "$gpumem" serve --gpumem.control.listen=127.0.0.1:0 --allocate weights >"$work/bad.log" 2>&1; then
  fail "serve started with --allocate weights"
fi
grep -q 'TAG=SIZE' "$work/bad.log" || fail "no message for a bad --allocate: $(<"$work/bad.log")"
if "$gpumem" serve --gpumem.control.listen=127.0.0.1:0 --cached scratch=0 >"$work/bad.log" 2>&1; then
  fail "serve started with --cached scratch=0"
fi
grep -q -- '--cached scratch=0: the size must be non-zero' "$work/bad.log" ||
  fail "no message for a bad --cached: $(<"$work/bad.log")"

stop_server "$main"
echo "gpumem serve: every route and every error path answered as documented"
