#!/usr/bin/env bash
# Smoke test of the tools around the config: `tobctl testnet` writes a 4-node
# testnet with private key files and a signing high-water mark (epoch 0) beside
# each node key, and `tobd --check-config` accepts it and
# rejects a key file that others can read, naming the file.
#
# usage: testnet_smoke.sh BIN_DIR   (BIN_DIR holds tobctl and tobd)
set -euo pipefail

bin=${1:?usage: testnet_smoke.sh BIN_DIR}
tobctl=$bin/tobctl
tobd=$bin/tobd
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobd-testnet-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

step "tobctl testnet --nodes 4"
summary=$("$tobctl" testnet --nodes 4 --dir "$tmp") || fail "tobctl testnet failed"
echo "$summary"
grep -q "chain id  [0-9a-f]\{64\}" <<<"$summary" || fail "summary has no chain id"
grep -q "n = 4, t = 1, q = 3" <<<"$summary" || fail "summary does not say n = 4, t = 1, q = 3"

step "files and modes"
[ -f "$tmp/cluster.toml" ] || fail "no cluster.toml"
for i in 0 1 2 3; do
    d=$tmp/node$i
    for f in config.toml node.key coin.key sign-high-water; do
        [ -f "$d/$f" ] || fail "missing $d/$f"
    done
    for f in node.key coin.key sign-high-water; do
        mode=$(stat -c %a "$d/$f")
        [ "$mode" = 600 ] || fail "$d/$f has mode $mode, expected 600"
    done
    [ "$(grep -c "^tobd-high-water-v2 0 [0-9a-f]\{64\} *\$" "$d/sign-high-water")" = 2 ] ||
        fail "$d/sign-high-water is not a signing high-water mark at epoch 0"
    grep -q "^node_id = $i\$" "$d/config.toml" || fail "$d/config.toml does not say node_id = $i"
    grep -q "pub_endpoint = \"tcp://127.0.0.1:$((7100 + 2 * i))\"" "$tmp/cluster.toml" ||
        fail "cluster.toml lacks node $i's pub endpoint"
done

step "an existing testnet is not overwritten without --force"
if "$tobctl" testnet --nodes 4 --dir "$tmp" 2>"$tmp/err.txt"; then fail "testnet overwrote a non-empty dir"; fi
grep -q -- "--force" "$tmp/err.txt" || fail "refusal does not mention --force"
rm -f "$tmp/err.txt"

step "fewer than 4 nodes need --allow-unsafe"
if "$tobctl" testnet --nodes 3 --dir "$tmp/small" 2>/dev/null; then fail "n = 3 accepted without --allow-unsafe"; fi
[ ! -e "$tmp/small" ] || fail "a refused testnet left files behind"

step "tobd --version"
version=$("$tobd" --config "$tmp/node0/config.toml" --version)
[[ "$version" == "tobd "* ]] || fail "unexpected version output: $version"
echo "$version"

step "tobd --check-config on every node"
for i in 0 1 2 3; do
    out=$("$tobd" --config "$tmp/node$i/config.toml" --check-config 2>&1) || fail "node$i: $out"
    [ "$out" = "config ok" ] || fail "node$i: unexpected output: $out"
done

step "tobd --config starts, logs its node and stops cleanly on SIGTERM"
"$tobd" --config "$tmp/node1/config.toml" >"$tmp/node1.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do grep -q "serving" "$tmp/node1.log" && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid" || fail "tobd exited non-zero after SIGTERM: $(cat "$tmp/node1.log")"
grep -q "node 1 of n=4" "$tmp/node1.log" || fail "tobd did not log its node: $(cat "$tmp/node1.log")"

step "a key file readable by others is refused"
chmod 644 "$tmp/node0/node.key"
if out=$("$tobd" --config "$tmp/node0/config.toml" --check-config 2>&1); then
    fail "--check-config accepted a 0644 node.key"
fi
echo "$out"
grep -q "node0/node.key" <<<"$out" || fail "the error does not name node.key: $out"
if "$tobd" --config "$tmp/node0/config.toml" >/dev/null 2>&1; then fail "tobd started with a 0644 node.key"; fi
chmod 600 "$tmp/node0/node.key"

step "a cluster file with t inconsistent with n is refused"
sed -i 's/^t = 1$/t = 2/' "$tmp/cluster.toml"
if out=$("$tobd" --config "$tmp/node0/config.toml" --check-config 2>&1); then fail "t = 2 with n = 4 accepted"; fi
grep -q "cluster.toml: t: 2 is inconsistent with n = 4" <<<"$out" || fail "unexpected error: $out"

echo "testnet smoke: ok"
