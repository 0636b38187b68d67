#!/usr/bin/env bash
# `tobd --check-config` reports ports that are in use, one message per problem
# naming the file and the key, and exits 1; with the ports free it prints
# "config ok". The testnet uses free ports of its own (not 7100..).
#
# usage: check_config.sh BIN_DIR   (BIN_DIR holds tobctl and tobd)
set -euo pipefail

bin=${1:?usage: check_config.sh BIN_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobd-check-config.XXXXXX")
holder=
cleanup() {
    if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# Eight consecutive free ports on 127.0.0.1 in 20000..31999.
base=$(python3 - <<'PY'
import os, socket
for attempt in range(1500):
    base = 20000 + ((os.getpid() + attempt * 8) % 1500) * 8
    socks = []
    try:
        for p in range(base, base + 8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            socks.append(s)
            s.bind(("127.0.0.1", p))
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
PY
)
[ -n "$base" ] || fail "no free ports"

# hold PORT: a listener on 127.0.0.1:PORT until killed.
hold() {
    python3 -u -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
time.sleep(120)
' "$1" >"$tmp/hold.out" &
    holder=$!
    for _ in $(seq 100); do grep -q listening "$tmp/hold.out" 2>/dev/null && return; sleep 0.05; done
    fail "listener on $1 did not start"
}
release() { kill "$holder"; wait "$holder" 2>/dev/null || true; holder=; }

step "tobctl testnet --base-port $base"
"$bin/tobctl" testnet --nodes 4 --dir "$tmp/net" --base-port "$base" >/dev/null || fail "tobctl testnet failed"
config=$tmp/net/node0/config.toml
out=$("$bin/tobd" --config "$config" --check-config 2>&1) || fail "free ports: $out"
[ "$out" = "config ok" ] || fail "unexpected output: $out"

step "node 0's ROUTER port in use"
hold $((base + 1))
if out=$("$bin/tobd" --config "$config" --check-config 2>&1); then fail "accepted a port in use: $out"; fi
echo "$out"
grep -qF "$tmp/net/cluster.toml: node[0].router_endpoint: tcp://127.0.0.1:$((base + 1)): cannot listen: Address already in use" <<<"$out" ||
    fail "no message naming the cluster file and node[0].router_endpoint"
grep -qx "config has 1 problem" <<<"$out" || fail "expected exactly one problem"
# Node 1's ports are free: its check passes while node 0's port is held.
out=$("$bin/tobd" --config "$tmp/net/node1/config.toml" --check-config 2>&1) || fail "node1: $out"

step "metrics_address on node 0's own ROUTER port, and a missing high_water_file directory"
sed -i -e "s/^metrics_address = .*/metrics_address = \"127.0.0.1:$((base + 1))\"/" \
    -e "s#^data_dir = .*#&\nhigh_water_file = \"$tmp/nowhere/sign-high-water\"#" "$config"
release
if out=$("$bin/tobd" --config "$config" --check-config 2>&1); then fail "accepted: $out"; fi
echo "$out"
grep -qF "$config: metrics_address: 127.0.0.1:$((base + 1)): cannot listen: Address already in use" <<<"$out" ||
    fail "no message naming metrics_address (each port is free alone, not together)"
grep -qF "$config: high_water_file: $tmp/nowhere/sign-high-water: directory $tmp/nowhere does not exist" <<<"$out" ||
    fail "no message naming high_water_file"
grep -qx "config has 2 problems" <<<"$out" || fail "expected exactly two problems"
[ ! -e "$tmp/nowhere" ] || fail "--check-config created $tmp/nowhere"
echo "ok"
