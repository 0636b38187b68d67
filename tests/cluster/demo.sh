#!/usr/bin/env bash
# make demo: a real 4-node tobd cluster on 127.0.0.1 doing real work.
#
#   1. tobctl testnet --nodes 4 --dir ./demo-net (keys 0600, configs, cluster file)
#   2. start four tobd processes (logs in demo-net/node<i>.log)
#   3. write 1,000 keys with tobctl put (16 at a time); halfway through, SIGKILL
#      node 2 and keep writing with three nodes (t = 1 may fail)
#   4. restart node 2 and wait until it has caught up: every node reports the same
#      applied epoch and state digest
#   5. tobctl status for all four, read keys back with --quorum (t+1 matching
#      signed replies) and from the restarted node's local state
#   6. a short tobctl bench, then stop the cluster (SIGTERM; nothing left running)
set -euo pipefail
bin=$(cd "${1:-build/bin}" && pwd)
dir=${DEMO_DIR:-demo-net}
keys=${DEMO_KEYS:-1000}
base_port=${DEMO_BASE_PORT:-7100}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cluster="$dir/cluster.toml"
client=(--cluster "$cluster" --key-file "$dir/client.key")
pids=()

stop_all() {
  for i in "${!pids[@]}"; do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT

start_node() {
  local i=$1
  "$bin/tobd" --config "$dir/node$i/config.toml" >>"$dir/node$i.log" 2>&1 &
  pids[$i]=$!
}

put_range() {  # put_range FROM TO: keys demo-FROM .. demo-(TO-1), 16 in flight
  seq "$1" $(($2 - 1)) | xargs -P 16 -I{} \
    "$bin/tobctl" put "${client[@]}" "demo-{}" "value-{}" >/dev/null
}

digests_equal() {
  "$bin/tobctl" status --cluster "$cluster" --json | python3 -c '
import json, sys
st = [s for s in json.load(sys.stdin) if s.get("up", True)]
ok = len(st) == 4 and len({(s["applied"], s["state_digest"]) for s in st}) == 1
sys.exit(0 if ok and st[0]["applied"] > 0 else 1)'
}

echo "== tobctl testnet --nodes 4 --dir $dir"
"$bin/tobctl" testnet --nodes 4 --dir "$dir" --base-port "$base_port" --force
rm -f "$dir"/node*.log

echo "== starting 4 nodes"
for i in 0 1 2 3; do start_node "$i"; done
for _ in $(seq 1 50); do
  "$bin/tobctl" status --cluster "$cluster" --json | grep -q '"up": false' || break
  sleep 0.2
done
"$bin/tobctl" status --cluster "$cluster"

half=$((keys / 2))
t0=$(date +%s.%N)
echo "== writing keys 0..$((half - 1))"
put_range 0 "$half"
echo "== SIGKILL node 2 (pid ${pids[2]})"
kill -KILL "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
echo "== writing keys $half..$((keys - 1)) with node 2 down"
put_range "$half" "$keys"
t1=$(date +%s.%N)
python3 -c "print('   $keys puts through tobctl in %.1f s' % ($t1 - $t0))"

echo "== restarting node 2; waiting until it has caught up"
start_node 2
caught=0
for _ in $(seq 1 300); do
  if digests_equal; then caught=1; break; fi
  sleep 0.5
done
"$bin/tobctl" status --cluster "$cluster"
if [ "$caught" != 1 ]; then
  echo "demo: FAILED: node 2 did not catch up (logs in $dir/node*.log)" >&2
  exit 1
fi
echo "   all four nodes: same applied epoch and state digest"

echo "== reading keys back with --quorum (t+1 matching signed replies)"
for k in 0 1 $((half - 1)) "$half" $((keys - 1)); do
  printf '   demo-%s = ' "$k"
  "$bin/tobctl" get "${client[@]}" --quorum "demo-$k" 2>/dev/null
done
echo "== reading from the restarted node's local state"
missing=0
for k in $(seq 0 97 $((keys - 1))); do
  v=$("$bin/tobctl" get --cluster "$cluster" --key-file "$dir/client.key" --local --node 2 "demo-$k")
  [ "$v" = "value-$k" ] || { echo "   demo-$k: '$v' (expected value-$k)"; missing=1; }
done
[ "$missing" = 0 ] || { echo "demo: FAILED: node 2 lacks keys" >&2; exit 1; }
echo "   node 2 holds every sampled key"

echo "== tobctl bench --clients 16 --txs 5000 --size 100"
"$bin/tobctl" bench --cluster "$cluster" --clients 16 --txs 5000 --size 100 --json
echo "== tobctl bench --clients 16 --txs 500 --size 100 --ops-per-request 64"
"$bin/tobctl" bench --cluster "$cluster" --clients 16 --txs 500 --size 100 \
  --ops-per-request 64 --json

echo "== final status"
for _ in $(seq 1 40); do digests_equal && break; sleep 0.5; done
"$bin/tobctl" status --cluster "$cluster"
digests_equal || { echo "demo: FAILED: digests differ" >&2; exit 1; }
echo "== stopping the cluster"
stop_all
trap - EXIT
if pgrep -f "tobd --config $dir/" >/dev/null; then
  echo "demo: FAILED: tobd processes left running" >&2
  exit 1
fi
echo "demo: done: 4 nodes, $keys keys written, one node killed and caught up, equal state digests"
