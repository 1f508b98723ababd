# Helpers for the tests that drive `gpumem serve`, `node` and `ctl` as processes (sourced,
# bash): start a server on a free port, stop it, call it with curl or gpumem ctl. Every wait is bounded
# by wall-clock time. Needs $gpumem (the binary) and $work (a scratch folder).

wait_limit=60     # seconds, as tests/support/wait.hpp
servers=()        # the pids this script started

fail() {
  echo "FAILED: $*" >&2
  for log in "$work"/*.log; do
    [[ -f $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}

stop_servers() {
  for pid in "${servers[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
}

# start_server NAME [serve options...]: sets $port and $pid.
start_server() {
  local name=$1
  shift
  rm -f "$work/$name.port"
  "$gpumem" serve --gpumem.control.listen=127.0.0.1:0 --port-file "$work/$name.port" "$@" \
    >"$work/$name.log" 2>&1 &
  pid=$!
  servers+=("$pid")
  local deadline=$((SECONDS + wait_limit))
  until [[ -s $work/$name.port ]]; do
    kill -0 "$pid" 2>/dev/null || fail "gpumem serve ($name) exited before it listened"
    ((SECONDS < deadline)) || fail "gpumem serve ($name) did not listen within ${wait_limit} s"
    sleep 0.05
  done
  port=$(<"$work/$name.port")
  grep -q "listening on http://127.0.0.1:$port" "$work/$name.log" ||
    fail "gpumem serve ($name) did not print the address it listens on"
}

# stop_server PID: SIGTERM, and a clean exit (0) within the limit.
stop_server() {
  local victim=$1 deadline=$((SECONDS + wait_limit))
  kill -TERM "$victim"
  while kill -0 "$victim" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "gpumem serve did not stop within ${wait_limit} s of SIGTERM"
    sleep 0.05
  done
  wait "$victim" || fail "gpumem serve exited with $? after SIGTERM"
}

# call METHOD PATH [curl options...]: sets $status, $body and $headers.
call() {
  local method=$1 path=$2
  shift 2
  status=$(curl -s --max-time "$wait_limit" -X "$method" -o "$work/body" -D "$work/headers" \
    -w '%{http_code}' "$@" "http://127.0.0.1:$port$path") || true
  body=$(<"$work/body")
  headers=$(<"$work/headers")
}

# expect STATUS [TEXT...]: the last call's status, and each TEXT in its body.
expect() {
  local want=$1
  shift
  [[ $status == "$want" ]] || fail "$last: status $status, expected $want: $body"
  for text in "$@"; do
    [[ $body == *"$text"* ]] || fail "$last: no '$text' in: $body"
  done
}

# check STATUS METHOD PATH [TEXT...] [-- curl options...]: a call and its expectation.
check() {
  local want=$1 method=$2 path=$3
  shift 3
  local texts=()
  while (($#)) && [[ $1 != -- ]]; do
    texts+=("$1")
    shift
  done
  (($#)) && shift
  last="$method $path"
  call "$method" "$path" "$@"
  expect "$want" "${texts[@]}"
}

# refused STATUS CODE METHOD PATH [-- curl options...]: a JSON error with that code.
refused() {
  local want=$1 code=$2 method=$3 path=$4
  shift 4
  check "$want" "$method" "$path" "\"error\":\"$code\"" "\"message\":" "$@"
}

# ctl EXPECTED_EXIT ARGS...: runs gpumem ctl; its stdout in $out, stderr in $err.
ctl() {
  local want=$1 rc=0
  shift
  timeout "$wait_limit" "$gpumem" ctl --timeout "$wait_limit" "$@" >"$work/out" 2>"$work/err" || rc=$?
  out=$(<"$work/out")
  err=$(<"$work/err")
  ((rc == want)) || fail "gpumem ctl $*: exit $rc, expected $want; stdout: $out; stderr: $err"
}

# has TEXT PART: PART is in TEXT.
has() { [[ $1 == *"$2"* ]] || fail "no '$2' in: $1"; }
