#!/usr/bin/env bash
# The memory map in a real headless browser (Debian's chromium, which
# scripts/install-deps.sh installs): the page GET /v1/map serves from `gpumem serve`,
# and the one `gpumem snapshot --html` writes from snapshot files, each opened and
# checked against the snapshots it was drawn from (segments and blocks by state, block
# sizes, statistics rows, fragmentation bars; drawn, with no script error, no tag
# turned into markup), with a screenshot of each kept as a test artefact; and the bad
# input of `gpumem snapshot`.
#   map_browser_tests.sh GPUMEM_BINARY ARTEFACT_DIR
set -euo pipefail
gpumem=$1
artefacts=$2
work=$(mktemp -d)
here=$(dirname "$0")
source "$here/serve_helpers.sh"
trap 'stop_servers; rm -rf "$work"' EXIT
command -v curl >/dev/null || fail "curl is missing (scripts/install-deps.sh installs it)"
command -v python3 >/dev/null || fail "python3 is missing"
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n $browser ]] ||
  fail "chromium is missing: this test opens the memory map in a headless browser (scripts/install-deps.sh installs it)"
mkdir -p "$artefacts"
rm -f "$artefacts"/map*.png

# browse URL [chromium options...]: the page in headless chromium, its output on stdout.
# The browser is not the program under test: no sanitizer settings reach it, and its
# noise on stderr (D-Bus, GPU) goes to a log shown only when the test fails.
browse() {
  local url=$1
  shift
  env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS \
    timeout "$wait_limit" "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$work/profile" "$@" "$url" 2>>"$work/chromium.log" ||
    fail "chromium did not open $url within ${wait_limit} s (exit $?)"
}

# check_page URL NAME SNAPSHOT...: the drawn DOM against the snapshots, and a screenshot.
check_page() {
  local url=$1 name=$2
  shift 2
  browse "$url" --dump-dom >"$work/$name.dom"
  python3 "$here/map_counts.py" "$work/$name.dom" "$@" \
    --require mapped,cached,released,resident,backed_up,discarded,free \
    --tag '</script><b>x' --tag weights >"$work/$name.counts" 2>"$work/$name.mismatch" ||
    fail "$name: the page does not show the snapshots: $(<"$work/$name.mismatch")"
  echo "$name: $(<"$work/$name.counts")"
  browse "$url" --screenshot="$artefacts/$name.png" --window-size=1400,2000 --hide-scrollbars >/dev/null
  [[ -s $artefacts/$name.png ]] || fail "$name: no screenshot at $artefacts/$name.png"
  [[ $(head -c 8 "$artefacts/$name.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    fail "$name: the screenshot is not a PNG"
  local size
  size=$(stat -c %s "$artefacts/$name.png")
  ((size > 20000)) || fail "$name: the screenshot is only $size bytes: a blank page?"
}

# -- the served map: weights, a tag whose name is markup, a cached segment, a tag
# asleep with its bytes kept and one asleep without ------------------------------------
start_server map --allocate weights=64M --allocate kv_cache=6M --allocate '</script><b>x=1M' \
  --allocate activations=4M --cached scratch=16M
main=$pid
check 200 POST '/sleep?level=0&tags=kv_cache' '"tags":["kv_cache"]'
check 200 POST '/sleep?level=2&tags=activations' '"tags":["activations"]'
snapshots=()
for device in 0 1; do
  check 200 GET "/v1/snapshot?device=$device" '"format":"gpumem.snapshot"'
  cp "$work/body" "$work/snapshot$device.json"
  snapshots+=("$work/snapshot$device.json")
done
call GET /v1/map
[[ $status == 200 ]] || fail "GET /v1/map: status $status: $body"
[[ $headers == *"Content-Type: text/html; charset=utf-8"* ]] ||
  fail "GET /v1/map: not HTML: $headers"
check_page "http://127.0.0.1:$port/v1/map" map "${snapshots[@]}"

# -- the same snapshots from files -----------------------------------------------------
"$gpumem" snapshot --html "$work/map.html" "${snapshots[@]}" 2>"$work/snapshot.err" ||
  fail "gpumem snapshot --html failed: $(<"$work/snapshot.err")"
grep -q "wrote the memory map of 2 snapshot(s) to $work/map.html" "$work/snapshot.err" ||
  fail "gpumem snapshot: no summary: $(<"$work/snapshot.err")"
check_page "file://$work/map.html" map-file "${snapshots[@]}"

# -- bad input: a clear error naming the file, a non-zero exit, and nothing written -----
# snapshot_refused EXIT TEXT FILE...: gpumem snapshot --html over an existing page.
snapshot_refused() {
  local want=$1 text=$2 rc=0
  shift 2
  echo "the page before" >"$work/kept.html"
  timeout "$wait_limit" "$gpumem" snapshot --html "$work/kept.html" "$@" 2>"$work/err" || rc=$?
  ((rc == want)) || fail "gpumem snapshot $*: exit $rc, expected $want: $(<"$work/err")"
  grep -qF -- "$text" "$work/err" || fail "gpumem snapshot $*: no '$text' in: $(<"$work/err")"
  [[ $(<"$work/kept.html") == "the page before" ]] || fail "gpumem snapshot $*: the page was replaced"
  [[ ! -e $work/kept.html.partial ]] || fail "gpumem snapshot $*: a partial page was left"
}
snapshot_refused 1 "cannot read '$work/no_such.json'" "${snapshots[0]}" "$work/no_such.json"
head -c 200 "${snapshots[0]}" >"$work/truncated.json"
snapshot_refused 1 "'$work/truncated.json' is not a gpumem snapshot (docs/snapshot.md): invalid_config: snapshot JSON: not JSON" \
  "$work/truncated.json"
call GET /v1/stats
cp "$work/body" "$work/stats.json"
snapshot_refused 1 "'$work/stats.json' is not a gpumem snapshot" "$work/stats.json"
snapshot_refused 1 "cannot read '$work'" "$work"
snapshot_refused 2 "files is required"
snapshot_refused 2 "unknown option '--color'" --color "${snapshots[0]}"
rc=0
"$gpumem" snapshot "${snapshots[0]}" 2>"$work/err" || rc=$?
((rc == 2)) && grep -q -- "--html is required" "$work/err" ||
  fail "gpumem snapshot without --html: exit $rc: $(<"$work/err")"

stop_server "$main"
echo "the memory map: drawn in chromium from gpumem serve and from files as the snapshots hold; screenshots in $artefacts"
