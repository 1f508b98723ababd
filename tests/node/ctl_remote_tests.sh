#!/usr/bin/env bash
# `gpumem ctl --node` and `--cluster` against real `gpumem node` processes, one of them
# hosting the cluster (--cluster), on free loopback ports: every command they answer,
# and the exit code of each kind of failure (1: refused; 2: bad usage; 3: no answer).
#   ctl_remote_tests.sh GPUMEM_BINARY
set -euo pipefail
gpumem=$1
work=$(mktemp -d)
source "$(dirname "$0")/../control/serve_helpers.sh"  # fail, ctl, has, stop_servers
trap 'stop_servers; rm -rf "$work"' EXIT

# wait_for_file FILE PID WHAT: until FILE has something in it, bounded by time.
wait_for_file() {
  local deadline=$((SECONDS + wait_limit))
  until [[ -s $1 ]]; do
    kill -0 "$2" 2>/dev/null || fail "$3 exited before it listened"
    ((SECONDS < deadline)) || fail "$3 did not listen within ${wait_limit} s"
    sleep 0.05
  done
}

node_options=(--gpumem.host.devices=2 --gpumem.host.capacity=128M --gpumem.node.listen=127.0.0.1:0)
"$gpumem" node "${node_options[@]}" --port-file "$work/a.port" >"$work/a.log" 2>&1 &
servers+=($!)
wait_for_file "$work/a.port" $! "gpumem node (a)"
a=127.0.0.1:$(<"$work/a.port")
"$gpumem" node "${node_options[@]}" --port-file "$work/b.port" --cluster \
  --cluster-port-file "$work/cluster.port" --gpumem.cluster.listen=127.0.0.1:0 \
  --gpumem.cluster.heartbeat-ms=100 --gpumem.cluster.nodes="$a" >"$work/b.log" 2>&1 &
servers+=($!)
wait_for_file "$work/cluster.port" $! "gpumem node --cluster (b)"
b=127.0.0.1:$(<"$work/b.port")
cluster=127.0.0.1:$(<"$work/cluster.port")
grep -q "gpumem cluster: listening on $cluster (no TLS), watching 2 node(s)" "$work/b.log" ||
  fail "gpumem node --cluster did not say where its cluster listens"

# One node.
ctl 0 --node "$a" status
has "$out" '"name": "gpumem host device 1"'
ctl 0 --node "$a" stats
has "$out" '"devices": ['
ctl 0 sleep --level 1 --node "$a"                     # --node after the command too
has "$out" '"kind": "sleep"'
ctl 0 --node "$a" wake
has "$out" '"kind": "wake"'

# The cluster, inside node b: both nodes up, then a collective sleep and wake.
deadline=$((SECONDS + wait_limit))
until ctl 0 --cluster "$cluster" status && [[ $(grep -c '"health": "up"' <<<"$out") == 2 ]]; do
  ((SECONDS < deadline)) || fail "the cluster did not see both nodes up within ${wait_limit} s: $out"
  sleep 0.1
done
has "$out" "\"address\": \"$a\""
has "$out" "\"address\": \"$b\""
ctl 0 --cluster "$cluster" stats
has "$out" "\"node\": \"$b\""
ctl 0 --cluster "$cluster" sleep --level 1
has "$out" "\"node\": \"$a\""
has "$out" "\"node\": \"$b\""
ctl 0 --cluster "$cluster" wake --nodes "$a,$b"
has "$out" '"kind": "wake"'

# Failures.
ctl 1 --cluster "$cluster" sleep --nodes 127.0.0.1:1   # not one of its nodes
has "$err" '127.0.0.1:1'
ctl 2 --node "$a" trim
has "$err" 'goes to a node'
ctl 2 --node "$a" --cluster "$cluster" status
ctl 2 --node "not-an-address" status
has "$err" '--node expects host:port'
ctl 2 --node "$a" --certificate /nonexistent.pem --key /k --ca-file /ca status
has "$err" 'cannot read /nonexistent.pem'
ctl 3 --node 127.0.0.1:1 status                       # nothing listens there
has "$err" 'node_unreachable'
echo "ctl --node and --cluster: all passed"
